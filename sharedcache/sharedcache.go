// Package sharedcache lets several controllers of one process (provisioner,
// resizer, snapshot sidecar, snapshot controller) share one set of
// informers: one watch and one cached copy per resource instead of one per
// controller.
//
// Create a Cache, pass it in each controller's Options, run the
// controllers, and call Shutdown after every Run has returned:
//
//	c := sharedcache.New(kubeClient, snapClient)
//	defer c.Shutdown()
//	p, _ := provisioner.New(provisioner.Options{Cache: c, SnapshotClient: snapClient}, ...)
//	r, _ := resizer.New(resizer.Options{Cache: c}, ...)
//
// The informers live as long as the Cache, not as long as one controller's
// Run: a controller that stops leaves the others' watches running. Each
// controller removes its event handlers when its Run returns.
package sharedcache

import (
	"context"
	"sync"
	"time"

	snapclient "github.com/kubernetes-csi/external-snapshotter/client/v8/clientset/versioned"
	snapinformers "github.com/kubernetes-csi/external-snapshotter/client/v8/informers/externalversions"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"

	"github.com/csi-kit/sidecars/internal/kube"
)

// ResyncCheck is how often the informers of a Cache look for handlers due
// for a resync; a handler's resync period is rounded up to it.
const ResyncCheck = time.Minute

// Cache is one set of shared informers. Its zero value is not usable; call
// New.
type Cache struct {
	// Kube holds the informers of built-in types.
	Kube informers.SharedInformerFactory
	// Snapshot holds the VolumeSnapshot API informers; nil when New got no
	// snapshot client.
	Snapshot snapinformers.SharedInformerFactory

	ctx    context.Context
	cancel context.CancelFunc
	once   sync.Once
}

// New returns a Cache over kube and, when snap is not nil, the snapshot API.
// Cached objects lose their managedFields and last-applied annotation, and
// Nodes keep only their metadata: no controller of this module reads more.
// Informers check for resyncs every ResyncCheck; each controller's handlers
// resync at the period its own options ask for.
func New(kubeClient kubernetes.Interface, snap snapclient.Interface) *Cache {
	return NewWithTransform(kubeClient, snap, kube.StripForCache)
}

// NewWithTransform is New with another transform of cached objects. The
// transform must keep every field that any controller sharing the Cache
// reads; controllers use it for the private caches they make when their
// Options name no Cache.
func NewWithTransform(kubeClient kubernetes.Interface, snap snapclient.Interface, transform cache.TransformFunc) *Cache {
	ctx, cancel := context.WithCancel(context.Background())
	c := &Cache{
		Kube: informers.NewSharedInformerFactoryWithOptions(kubeClient, ResyncCheck, informers.WithTransform(transform)),
		ctx:  ctx, cancel: cancel,
	}
	if snap != nil {
		c.Snapshot = snapinformers.NewSharedInformerFactoryWithOptions(snap, ResyncCheck, snapinformers.WithTransform(transform))
	}
	return c
}

// Start starts every informer requested so far. Controllers call it from
// Run after requesting theirs; calling it again starts only new ones.
func (c *Cache) Start() {
	c.Kube.StartWithContext(c.ctx)
	if c.Snapshot != nil {
		c.Snapshot.Start(c.ctx.Done())
	}
}

// WaitForSync waits until every started informer has synced, or ctx ends;
// it reports whether all did.
func (c *Cache) WaitForSync(ctx context.Context) bool {
	for _, ok := range c.Kube.WaitForCacheSync(ctx.Done()) {
		if !ok {
			return false
		}
	}
	if c.Snapshot != nil {
		for _, ok := range c.Snapshot.WaitForCacheSync(ctx.Done()) {
			if !ok {
				return false
			}
		}
	}
	return true
}

// Shutdown stops every informer and waits for them. Call it after every
// controller's Run has returned.
func (c *Cache) Shutdown() {
	c.once.Do(func() {
		c.cancel()
		c.Kube.Shutdown()
		if c.Snapshot != nil {
			c.Snapshot.Shutdown()
		}
	})
}

// Handlers collects the event handler registrations of one controller, so
// that it can remove them when its Run returns (on a shared informer they
// would otherwise outlive it).
type Handlers struct {
	regs []registration
}

type registration struct {
	inf cache.SharedIndexInformer
	reg cache.ResourceEventHandlerRegistration
}

// Add registers h on inf, resyncing every resync (0 or negative: never).
func (hs *Handlers) Add(inf cache.SharedIndexInformer, h cache.ResourceEventHandler, resync time.Duration) error {
	reg, err := inf.AddEventHandlerWithResyncPeriod(h, max(resync, 0))
	if err != nil {
		return err
	}
	hs.regs = append(hs.regs, registration{inf, reg})
	return nil
}

// HasSynced reports whether every handler has been told of every object
// the informers held when it was added.
func (hs *Handlers) HasSynced() bool {
	for _, r := range hs.regs {
		if !r.reg.HasSynced() {
			return false
		}
	}
	return true
}

// RemoveAll removes every registered handler.
func (hs *Handlers) RemoveAll() {
	for _, r := range hs.regs {
		_ = r.inf.RemoveEventHandler(r.reg)
	}
	hs.regs = nil
}

// AddIndex adds the index name to inf unless it already has one of that
// name (a second controller of the same kind on the Cache). Names must be
// unique per function: prefix them with the package name.
func AddIndex(inf cache.SharedIndexInformer, name string, fn cache.IndexFunc) error {
	if _, ok := inf.GetIndexer().GetIndexers()[name]; ok {
		return nil
	}
	return inf.AddIndexers(cache.Indexers{name: fn})
}

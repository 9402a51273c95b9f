package provisioner

import (
	"context"
	"fmt"
	"sort"
	"sync"

	"github.com/container-storage-interface/spec/lib/go/csi"
	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/sync/errgroup"
	v1 "k8s.io/api/core/v1"
	storagev1 "k8s.io/api/storage/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	storagelisters "k8s.io/client-go/listers/storage/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/klog/v2"

	"github.com/csi-kit/sidecars/internal/ctrl"
	"github.com/csi-kit/sidecars/internal/metricsutil"
)

// Labels of the CSIStorageCapacity objects, as upstream sets them.
const (
	labelDriverName  = "csi.storage.k8s.io/drivername"
	labelManagedBy   = "csi.storage.k8s.io/managed-by"
	managedByDefault = "external-provisioner"
)

// capacityController publishes one CSIStorageCapacity per topology segment
// and StorageClass of the driver. Every trigger (poll tick, Node, CSINode
// or class change, provision, delete) coalesces into one full pass, which
// asks the driver for each capacity, CapacityOptions.Workers at a time,
// and writes only what changed. One pass runs at a time.
type capacityController struct {
	p       *Provisioner
	opts    CapacityOptions
	client  kubernetes.Interface // CapacityOptions.Client, else the provisioner's
	factory informers.SharedInformerFactory
	objects storagelisters.CSIStorageCapacityLister
	synced  cache.InformerSynced
	trigger chan struct{}

	// The informer lags behind this process's own writes; without these
	// a pass right after another would create a second object for an
	// item, or write to one it deleted. Items of one pass run in
	// parallel, hence the lock.
	mu   sync.Mutex
	mine map[string]*storagev1.CSIStorageCapacity // written here, by name, until the informer has them
	gone map[string]bool                          // deleted here, by name, until the informer drops them

	goal, current, obsolete prometheus.Gauge
}

func newCapacityController(p *Provisioner) (*capacityController, error) {
	c := &capacityController{p: p, opts: *p.opts.Capacity, client: p.opts.Capacity.Client, trigger: make(chan struct{}, 1),
		mine: map[string]*storagev1.CSIStorageCapacity{}, gone: map[string]bool{},
		goal: prometheus.NewGauge(prometheus.GaugeOpts{Name: "csistoragecapacities_desired_goal",
			Help: "Number of CSIStorageCapacity objects that are supposed to be managed automatically."}),
		current: prometheus.NewGauge(prometheus.GaugeOpts{Name: "csistoragecapacities_desired_current",
			Help: "Number of CSIStorageCapacity objects that exist and are supposed to be managed automatically."}),
		obsolete: prometheus.NewGauge(prometheus.GaugeOpts{Name: "csistoragecapacities_obsolete",
			Help: "Number of CSIStorageCapacity objects that exist and will be deleted automatically."}),
	}
	if c.client == nil {
		c.client = p.kube
	}
	if p.opts.Registerer != nil {
		var err error
		for _, g := range []*prometheus.Gauge{&c.goal, &c.current, &c.obsolete} {
			if *g, err = metricsutil.Register(p.opts.Registerer, *g); err != nil {
				return nil, fmt.Errorf("registering capacity metrics: %w", err)
			}
		}
	}
	return c, nil
}

// watch builds the private informer of the published objects and
// registers the handlers that ask for a pass; called by Run.
func (c *capacityController) watch(rt *ctrl.Runtime) {
	p := c.p
	sel := labels.Set{labelDriverName: p.name, labelManagedBy: p.managedBy()}.String()
	c.factory = informers.NewSharedInformerFactoryWithOptions(c.client, max(p.opts.ResyncPeriod, 0),
		informers.WithNamespace(c.opts.Namespace), informers.WithTransform(stripForCache),
		informers.WithTweakListOptions(func(o *metav1.ListOptions) { o.LabelSelector = sel }))
	inf := c.factory.Storage().V1().CSIStorageCapacities()
	c.objects, c.synced = inf.Lister(), inf.Informer().HasSynced
	poke := cache.ResourceEventHandlerFuncs{
		AddFunc:    func(any) { c.poke() },
		UpdateFunc: func(any, any) { c.poke() },
		DeleteFunc: func(any) { c.poke() },
	}
	// The informer is this Run's own, started and shut down by c.run:
	// its handler goes with it (rt.Watch would wait for its sync before
	// c.run could start it).
	_, _ = inf.Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{DeleteFunc: func(o any) {
		if t, ok := o.(cache.DeletedFinalStateUnknown); ok {
			o = t.Obj
		}
		if obj, ok := o.(*storagev1.CSIStorageCapacity); ok {
			c.forget(obj.Name)
		}
		c.poke()
	}})
	kube, resync := rt.Cache().Kube, p.opts.ResyncPeriod
	// A node deployment publishes its own node's segment only, read from
	// NodeGetInfo into static listers by setupNode (upstream: a fixed
	// topology): it watches no Node and no CSINode.
	if p.opts.NodeDeployment == nil {
		rt.Watch(kube.Core().V1().Nodes().Informer(), cache.ResourceEventHandlerFuncs{
			AddFunc: func(any) { c.poke() },
			UpdateFunc: func(o, n any) {
				if a, ok := o.(*v1.Node); ok {
					if b, ok := n.(*v1.Node); ok && labels.Equals(a.Labels, b.Labels) {
						return
					}
				}
				c.poke()
			},
			DeleteFunc: func(any) { c.poke() },
		}, resync)
		rt.Watch(kube.Storage().V1().CSINodes().Informer(), poke, resync)
	}
	rt.Watch(kube.Storage().V1().StorageClasses().Informer(), poke, resync)
}

func (c *capacityController) poke() {
	select {
	case c.trigger <- struct{}{}:
	default:
	}
}

// refreshForVolume asks for a pass after a volume came or went.
func (c *capacityController) refreshForVolume(*v1.PersistentVolume) { c.poke() }

func (c *capacityController) run(ctx context.Context) {
	logger := klog.FromContext(ctx).WithName("capacity")
	ctx = klog.NewContext(ctx, logger)
	c.factory.Start(ctx.Done())
	defer c.factory.Shutdown()
	if !cache.WaitForCacheSync(ctx.Done(), c.synced) {
		return
	}
	tick := c.p.opts.Clock.NewTicker(c.opts.PollInterval)
	defer tick.Stop()
	backoff := c.p.opts.RetryIntervalStart
	c.poke()
	for {
		select {
		case <-ctx.Done():
			return
		case <-c.trigger:
		case <-tick.C():
		}
		if err := c.sync(ctx); err != nil && ctx.Err() == nil {
			logger.Error(err, "Updating CSIStorageCapacity objects failed; will retry", "after", backoff)
			select {
			case <-ctx.Done():
				return
			case <-c.p.opts.Clock.After(backoff):
			}
			backoff = min(2*backoff, c.p.opts.RetryIntervalMax)
			c.poke()
			continue
		}
		backoff = c.p.opts.RetryIntervalStart
	}
}

// capacityItem is one (segment, class) pair.
type capacityItem struct {
	segment term
	class   *storagev1.StorageClass
}

func (i capacityItem) key() string { return i.segment.String() + "|" + i.class.Name }

// segments lists the driver's distinct topology segments.
func (c *capacityController) segments() ([]term, error) {
	cns, err := c.p.csiNodes.List(everything())
	if err != nil {
		return nil, err
	}
	var out []term
	for _, cn := range cns {
		found := false
		for _, d := range cn.Spec.Drivers {
			found = found || d.Name == c.p.name
		}
		if !found {
			continue
		}
		keys := append([]string{}, csiNodeKeys(cn, c.p.name)...)
		sort.Strings(keys)
		node, err := c.p.nodes.Get(cn.Name)
		if err != nil {
			continue
		}
		if t, err := nodeSegment(node, keys); err == nil {
			out = append(out, t)
		}
	}
	return dedupe(out), nil
}

func (c *capacityController) items() ([]capacityItem, error) {
	segs, err := c.segments()
	if err != nil {
		return nil, err
	}
	classes, err := c.p.classes.List(everything())
	if err != nil {
		return nil, err
	}
	var out []capacityItem
	for _, cl := range classes {
		if cl.Provisioner != c.p.name {
			continue
		}
		wffc := cl.VolumeBindingMode != nil && *cl.VolumeBindingMode == storagev1.VolumeBindingWaitForFirstConsumer
		if !wffc && !c.opts.ForImmediateBinding {
			continue
		}
		for _, s := range segs {
			out = append(out, capacityItem{segment: s, class: cl})
		}
	}
	return out, nil
}

// sync runs one full pass.
func (c *capacityController) sync(ctx context.Context) error {
	items, err := c.items()
	if err != nil {
		return err
	}
	cached, err := c.objects.CSIStorageCapacities(c.opts.Namespace).List(everything())
	if err != nil {
		return err
	}
	existing := c.merge(cached)
	byKey := map[string]*storagev1.CSIStorageCapacity{}
	var stale []*storagev1.CSIStorageCapacity
	dups := 0
	for _, o := range existing {
		k := objectKey(o)
		if _, dup := byKey[k]; dup || k == "" {
			dups++
			stale = append(stale, o)
			continue
		}
		byKey[k] = o
	}
	want := map[string]bool{}
	for _, it := range items {
		want[it.key()] = true
	}
	for k, o := range byKey {
		if !want[k] {
			stale = append(stale, o)
		}
	}
	c.goal.Set(float64(len(items)))
	c.current.Set(float64(len(byKey) - (len(stale) - dups)))
	c.obsolete.Set(float64(len(stale)))
	// Up to Workers items at once (upstream --capacity-threads): each is a
	// GetCapacity and at most one write. The pass returns when all are
	// done, so passes never overlap.
	var g errgroup.Group
	g.SetLimit(c.opts.Workers)
	for _, it := range items {
		obj := byKey[it.key()]
		g.Go(func() error { return c.syncItem(ctx, it, obj) })
	}
	for _, o := range stale {
		g.Go(func() error {
			err := c.client.StorageV1().CSIStorageCapacities(o.Namespace).Delete(ctx, o.Name, metav1.DeleteOptions{})
			if err == nil || apierrors.IsNotFound(err) {
				c.deleted(o.Name)
				return nil
			}
			return err
		})
	}
	return g.Wait()
}

func objectKey(o *storagev1.CSIStorageCapacity) string {
	seg := term{}
	if o.NodeTopology != nil {
		if len(o.NodeTopology.MatchExpressions) > 0 {
			return ""
		}
		for k, v := range o.NodeTopology.MatchLabels {
			seg[k] = v
		}
	}
	return seg.String() + "|" + o.StorageClassName
}

func (c *capacityController) syncItem(ctx context.Context, it capacityItem, obj *storagev1.CSIStorageCapacity) error {
	req := &csi.GetCapacityRequest{Parameters: it.class.Parameters}
	if len(it.segment) > 0 {
		req.AccessibleTopology = &csi.Topology{Segments: map[string]string(it.segment)}
	}
	callCtx, cancel := c.p.callCtx(ctx)
	resp, err := c.p.ctrl.GetCapacity(callCtx, req)
	cancel()
	if err != nil {
		return err
	}
	capacity := resource.NewQuantity(resp.AvailableCapacity, resource.BinarySI)
	var maxSize *resource.Quantity
	if resp.MaximumVolumeSize != nil {
		maxSize = resource.NewQuantity(resp.MaximumVolumeSize.Value, resource.BinarySI)
	}
	if obj == nil {
		o := &storagev1.CSIStorageCapacity{
			ObjectMeta: metav1.ObjectMeta{GenerateName: "csisc-", Namespace: c.opts.Namespace,
				Labels: map[string]string{labelDriverName: c.p.name, labelManagedBy: c.p.managedBy()}},
			StorageClassName:  it.class.Name,
			NodeTopology:      &metav1.LabelSelector{MatchLabels: map[string]string(it.segment)},
			Capacity:          capacity,
			MaximumVolumeSize: maxSize,
		}
		if c.opts.Owner != nil {
			o.OwnerReferences = []metav1.OwnerReference{*c.opts.Owner}
		}
		created, err := c.client.StorageV1().CSIStorageCapacities(c.opts.Namespace).Create(ctx, o, metav1.CreateOptions{})
		if err == nil {
			c.remember(created)
		}
		return err
	}
	sameMax := (obj.MaximumVolumeSize == nil) == (maxSize == nil) && (maxSize == nil || obj.MaximumVolumeSize.Cmp(*maxSize) == 0)
	ownerOK := c.opts.Owner == nil || hasOwner(obj, c.opts.Owner)
	if obj.Capacity != nil && obj.Capacity.Cmp(*capacity) == 0 && sameMax && ownerOK {
		return nil
	}
	o := obj.DeepCopy()
	o.Capacity, o.MaximumVolumeSize = capacity, maxSize
	if !ownerOK {
		o.OwnerReferences = append(o.OwnerReferences, *c.opts.Owner)
	}
	updated, err := c.client.StorageV1().CSIStorageCapacities(o.Namespace).Update(ctx, o, metav1.UpdateOptions{})
	switch {
	case err == nil:
		c.remember(updated)
	case apierrors.IsNotFound(err):
		c.forget(o.Name) // deleted meanwhile: the retry creates it again
	}
	return err
}

// merge overlays the cached objects with this process's own writes the
// informer has not shown yet: a remembered object wins while its resource
// version is newer, a deleted one is left out until the cache drops it.
func (c *capacityController) merge(cached []*storagev1.CSIStorageCapacity) []*storagev1.CSIStorageCapacity {
	c.mu.Lock()
	defer c.mu.Unlock()
	seen := make(map[string]bool, len(cached))
	out := make([]*storagev1.CSIStorageCapacity, 0, len(cached)+len(c.mine))
	for _, o := range cached {
		seen[o.Name] = true
		if c.gone[o.Name] {
			continue
		}
		if m, ok := c.mine[o.Name]; ok {
			if ctrl.Newer(m.ResourceVersion, o.ResourceVersion) {
				o = m
			} else {
				delete(c.mine, o.Name)
			}
		}
		out = append(out, o)
	}
	for name := range c.gone {
		if !seen[name] {
			delete(c.gone, name)
		}
	}
	for name, m := range c.mine {
		if !seen[name] {
			out = append(out, m)
		}
	}
	return out
}

func (c *capacityController) remember(o *storagev1.CSIStorageCapacity) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.mine[o.Name] = o
}

// deleted records this process's delete of the object name.
func (c *capacityController) deleted(name string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.mine, name)
	c.gone[name] = true
}

// forget drops what is remembered of name: the informer saw it deleted.
func (c *capacityController) forget(name string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.mine, name)
	delete(c.gone, name)
}

func hasOwner(o *storagev1.CSIStorageCapacity, owner *metav1.OwnerReference) bool {
	for _, r := range o.OwnerReferences {
		if r.UID == owner.UID {
			return true
		}
	}
	return false
}

package provisioner

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"sync/atomic"

	"github.com/container-storage-interface/spec/lib/go/csi"
	snapclient "github.com/kubernetes-csi/external-snapshotter/client/v8/clientset/versioned"
	snapinformers "github.com/kubernetes-csi/external-snapshotter/client/v8/informers/externalversions"
	snaplisters "github.com/kubernetes-csi/external-snapshotter/client/v8/listers/volumesnapshot/v1"
	v1 "k8s.io/api/core/v1"
	storagev1 "k8s.io/api/storage/v1"
	"k8s.io/client-go/kubernetes"
	corelisters "k8s.io/client-go/listers/core/v1"
	storagelisters "k8s.io/client-go/listers/storage/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/record"
	"k8s.io/client-go/util/workqueue"
	"k8s.io/klog/v2"

	"github.com/csi-kit/sidecars/csiconn"
	"github.com/csi-kit/sidecars/internal/kube"
	"github.com/csi-kit/sidecars/sharedcache"
)

// Driver is what the provisioner needs from a CSI driver connection;
// *csiconn.Conn satisfies it.
type Driver interface {
	DriverName() string
	Capabilities() csiconn.Capabilities
	Controller() csi.ControllerClient
}

// Provisioner creates and deletes volumes of one CSI driver for PVCs.
type Provisioner struct {
	opts     Options
	kube     kubernetes.Interface
	snaps    snapclient.Interface
	ctrl     csi.ControllerClient
	drv      Driver
	name     string
	caps     csiconn.Capabilities
	rec      record.EventRecorder
	met      *metrics
	identity string

	cache       *sharedcache.Cache // informers, shared or private (ownCache)
	ownCache    bool
	handlers    sharedcache.Handlers
	snapFactory snapinformers.SharedInformerFactory // private, without a shared Cache
	claims      corelisters.PersistentVolumeClaimLister
	volumes     corelisters.PersistentVolumeLister
	classes     storagelisters.StorageClassLister
	nodes       corelisters.NodeLister
	csiNodes    storagelisters.CSINodeLister
	attachments storagelisters.VolumeAttachmentLister
	snapshots   snaplisters.VolumeSnapshotLister
	contents    snaplisters.VolumeSnapshotContentLister
	synced      []cache.InformerSynced

	claimQueue  workqueue.TypedRateLimitingInterface[string]
	volumeQueue workqueue.TypedRateLimitingInterface[string]
	recordQueue workqueue.TypedRateLimitingInterface[string] // claim UIDs of provisioning records
	// snapshotQueue: namespace/name of snapshots whose source-protection
	// finalizer may have to go now (snapshot or restoring claim deleted).
	snapshotQueue workqueue.TypedRateLimitingInterface[string]
	records       *records
	recordsOff    bool // no RBAC for records (set by Run before the workers start)
	// deletedVolumes: PVs whose volume this process deleted (see uidSet).
	deletedVolumes uidSet
	// provisioned: claims whose PV this process created, until the claim
	// is seen bound or deleted (the PV informer may lag behind our write).
	provisioned uidSet
	// slow: claims refused as infeasible, waiting Options.InfeasibleRetryDelay.
	slow     slowSet
	started  atomic.Bool
	capacity *capacityController

	// topoCache keeps the requirement of a claim between attempts so that
	// retries send identical requests; keyed by claim UID.
	topoMu    sync.Mutex
	topoCache map[string]topoEntry
	takeAt    map[string]takeState // node deployment: next offer per claim UID
	node      *nodeInfo            // node deployment: this node, set by Run
}

// New checks opts and builds a Provisioner; nothing starts until Run.
// snaps may be nil: restores from VolumeSnapshots then fail with an event.
// rec may be nil: events are then discarded.
func New(opts Options, kubeClient kubernetes.Interface, snaps snapclient.Interface, drv Driver, rec record.EventRecorder) (*Provisioner, error) {
	opts = opts.withDefaults()
	if err := opts.Validate(); err != nil {
		return nil, fmt.Errorf("provisioner: %w", err)
	}
	if kubeClient == nil || drv == nil {
		return nil, errors.New("provisioner: a Kubernetes client and a driver are required")
	}
	caps := drv.Capabilities()
	if !caps.ControllerService || !caps.HasController(csi.ControllerServiceCapability_RPC_CREATE_DELETE_VOLUME) {
		return nil, fmt.Errorf("provisioner: driver %s lacks CONTROLLER_SERVICE with CREATE_DELETE_VOLUME", drv.DriverName())
	}
	if rec == nil {
		rec = &record.FakeRecorder{}
	}
	met, err := newMetrics(opts.Registerer)
	if err != nil {
		return nil, fmt.Errorf("provisioner: %w", err)
	}
	p := &Provisioner{
		opts: opts, kube: kubeClient, snaps: snaps, drv: drv, ctrl: drv.Controller(),
		name: drv.DriverName(), caps: caps, rec: rec, met: met, records: newRecords(),
		identity:  fmt.Sprintf("%d-%d-%s", opts.Clock.Now().UnixMilli(), rand.IntN(10000), drv.DriverName()),
		topoCache: map[string]topoEntry{},
		takeAt:    map[string]takeState{},
	}
	if err := p.setup(); err != nil {
		return nil, fmt.Errorf("provisioner: %w", err)
	}
	return p, nil
}

func (p *Provisioner) topology() bool {
	return p.caps.Topology && !p.opts.DisableTopology
}

func (p *Provisioner) rateLimiter() workqueue.TypedRateLimiter[string] {
	return workqueue.NewTypedItemExponentialFailureRateLimiter[string](p.opts.RetryIntervalStart, p.opts.RetryIntervalMax)
}

func (p *Provisioner) setup() error {
	p.cache = p.opts.Cache
	if p.cache == nil {
		p.cache, p.ownCache = sharedcache.NewWithTransform(p.kube, nil, stripForCache), true
	}
	p.claimQueue = workqueue.NewTypedRateLimitingQueueWithConfig(p.rateLimiter(), workqueue.TypedRateLimitingQueueConfig[string]{Name: "claims", Clock: p.opts.Clock})
	p.volumeQueue = workqueue.NewTypedRateLimitingQueueWithConfig(p.rateLimiter(), workqueue.TypedRateLimitingQueueConfig[string]{Name: "volumes", Clock: p.opts.Clock})
	p.recordQueue = workqueue.NewTypedRateLimitingQueueWithConfig(p.rateLimiter(), workqueue.TypedRateLimitingQueueConfig[string]{Name: "records", Clock: p.opts.Clock})
	p.snapshotQueue = workqueue.NewTypedRateLimitingQueueWithConfig(p.rateLimiter(), workqueue.TypedRateLimitingQueueConfig[string]{Name: "snapshots", Clock: p.opts.Clock})

	claimInf := p.cache.Kube.Core().V1().PersistentVolumeClaims()
	p.claims = claimInf.Lister()
	p.addHandler(claimInf.Informer(), cache.ResourceEventHandlerFuncs{
		AddFunc:    func(o any) { p.enqueueClaim(o) },
		UpdateFunc: func(_, o any) { p.enqueueClaim(o) },
		DeleteFunc: func(o any) { p.claimDeleted(o) },
	})
	volInf := p.cache.Kube.Core().V1().PersistentVolumes()
	p.volumes = volInf.Lister()
	p.addHandler(volInf.Informer(), cache.ResourceEventHandlerFuncs{
		AddFunc:    func(o any) { p.enqueueVolume(o) },
		UpdateFunc: func(_, o any) { p.enqueueVolume(o) },
		DeleteFunc: func(o any) { p.volumeDeleted(o) },
	})
	classInf := p.cache.Kube.Storage().V1().StorageClasses()
	p.classes = classInf.Lister()
	p.addHandler(classInf.Informer(), cache.ResourceEventHandlerFuncs{
		AddFunc:    func(o any) { p.classChanged(o) },
		UpdateFunc: func(_, o any) { p.classChanged(o) },
		DeleteFunc: func(o any) { p.classChanged(o) },
	})
	p.synced = append(p.synced, claimInf.Informer().HasSynced, volInf.Informer().HasSynced, classInf.Informer().HasSynced)
	if (p.topology() || p.opts.Capacity != nil) && p.opts.NodeDeployment == nil {
		nodeInf := p.cache.Kube.Core().V1().Nodes()
		csiNodeInf := p.cache.Kube.Storage().V1().CSINodes()
		p.nodes, p.csiNodes = nodeInf.Lister(), csiNodeInf.Lister()
		p.synced = append(p.synced, nodeInf.Informer().HasSynced, csiNodeInf.Informer().HasSynced)
	}
	if p.caps.HasController(csi.ControllerServiceCapability_RPC_PUBLISH_UNPUBLISH_VOLUME) {
		vaInf := p.cache.Kube.Storage().V1().VolumeAttachments()
		p.attachments = vaInf.Lister()
		p.synced = append(p.synced, vaInf.Informer().HasSynced)
	}
	if p.opts.Capacity != nil {
		var err error
		if p.capacity, err = newCapacityController(p); err != nil {
			return err
		}
	}
	return nil
}

// Run starts the informers and workers and blocks until ctx ends. It
// returns an error if the caches never sync, and, when the driver offers
// WatchLoss (as *csiconn.Conn does), an error wrapping
// csiconn.ErrConnectionLost when the driver goes away.
func (p *Provisioner) Run(ctx context.Context) error {
	if !p.started.CompareAndSwap(false, true) {
		return errors.New("provisioner: Run called twice; build a new Provisioner with New")
	}
	logger := klog.FromContext(ctx).WithValues("driver", p.name)
	ctx = klog.NewContext(ctx, logger)
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)

	synced := append([]cache.InformerSynced{}, p.synced...)
	defer p.handlers.RemoveAll()
	if p.snaps != nil {
		// Watch snapshots only where the API is served; without it restores
		// fail with an event instead of the whole provisioner waiting.
		if _, err := p.snaps.Discovery().ServerResourcesForGroupVersion(snapshotAPIGroup + "/v1"); err == nil {
			sf := p.cache.Snapshot
			if sf == nil {
				p.snapFactory = snapinformers.NewSharedInformerFactoryWithOptions(p.snaps, p.opts.Resync, snapinformers.WithTransform(kube.StripForCache))
				sf = p.snapFactory
				defer p.snapFactory.Shutdown()
				defer cancel(nil) // informers stop before Shutdown waits for them
			}
			vs := sf.Snapshot().V1().VolumeSnapshots()
			vsc := sf.Snapshot().V1().VolumeSnapshotContents()
			p.snapshots, p.contents = vs.Lister(), vsc.Lister()
			p.addHandler(vs.Informer(), cache.ResourceEventHandlerFuncs{
				AddFunc:    func(o any) { p.enqueueSnapshot(o) },
				UpdateFunc: func(_, o any) { p.enqueueSnapshot(o) },
			})
			synced = append(synced, vs.Informer().HasSynced, vsc.Informer().HasSynced)
			if p.snapFactory != nil {
				p.snapFactory.Start(ctx.Done())
			}
		} else {
			logger.Info("VolumeSnapshot API not served: restores from snapshots are disabled", "err", err)
		}
	}
	if p.ownCache {
		defer p.cache.Shutdown()
	}
	p.cache.Start()
	kube.LogCacheSync(ctx, "provisioner")
	synced = append(synced, p.handlers.HasSynced)
	if !cache.WaitForCacheSync(ctx.Done(), synced...) {
		if err := context.Cause(ctx); err != nil && ctx.Err() != nil {
			return nil
		}
		return errors.New("provisioner: informer caches did not sync")
	}
	if p.opts.NodeDeployment != nil {
		if err := p.setupNode(ctx); err != nil {
			return err
		}
	}
	if err := p.loadRecords(ctx); err != nil {
		return fmt.Errorf("provisioner: %w", err)
	}
	logger.Info("Provisioner started", "records", p.records.len(), "workers", p.opts.Workers, "topology", p.topology(), "capabilities", p.caps.String())

	var wg sync.WaitGroup
	defer func() {
		p.claimQueue.ShutDown()
		p.volumeQueue.ShutDown()
		p.recordQueue.ShutDown()
		p.snapshotQueue.ShutDown()
		wg.Wait()
	}()
	if w, ok := p.drv.(interface{ WatchLoss(context.Context) error }); ok {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := w.WatchLoss(ctx); err != nil && errors.Is(err, csiconn.ErrConnectionLost) {
				cancel(err)
			}
		}()
	}
	for i := 0; i < p.opts.Workers; i++ {
		wg.Add(2)
		go func() { defer wg.Done(); p.work(ctx, p.claimQueue, p.syncClaim) }()
		go func() { defer wg.Done(); p.work(ctx, p.volumeQueue, p.syncVolume) }()
	}
	p.records.mu.Lock()
	for uid := range p.records.m {
		p.recordQueue.Add(string(uid))
	}
	p.records.mu.Unlock()
	for range min(p.opts.Workers, 4) {
		wg.Add(1)
		go func() { defer wg.Done(); p.work(ctx, p.recordQueue, p.syncRecord) }()
	}
	wg.Add(2)
	go func() { defer wg.Done(); p.work(ctx, p.snapshotQueue, p.syncSnapshot) }()
	go func() { defer wg.Done(); p.sweepSnapshots(ctx) }()
	if p.capacity != nil {
		wg.Add(1)
		go func() { defer wg.Done(); p.capacity.run(ctx) }()
	}
	<-ctx.Done()
	if err := context.Cause(ctx); err != nil && errors.Is(err, csiconn.ErrConnectionLost) {
		return fmt.Errorf("provisioner: %w", err)
	}
	return nil
}

func (p *Provisioner) work(ctx context.Context, q workqueue.TypedRateLimitingInterface[string], sync func(context.Context, string) error) {
	go func() { <-ctx.Done(); q.ShutDown() }()
	for {
		key, quit := q.Get()
		if quit {
			return
		}
		func() {
			defer q.Done(key)
			err := sync(ctx, key)
			switch {
			case err == nil:
				q.Forget(key)
			case errors.Is(err, errRetryLater):
				q.AddRateLimited(key)
			default:
				if ctx.Err() == nil {
					klog.FromContext(ctx).V(2).Info("Will retry", "key", key, "err", err)
				}
				q.AddRateLimited(key)
			}
		}()
	}
}

// errRetryLater asks for a rate-limited retry without logging an error.
var errRetryLater = errors.New("retry later")

func (p *Provisioner) enqueueClaim(o any) {
	pvc, ok := o.(*v1.PersistentVolumeClaim)
	if !ok {
		return
	}
	if pvc.DeletionTimestamp != nil && p.records.get(pvc.UID) != nil {
		p.recordQueue.Add(string(pvc.UID))
	}
	if pvc.Spec.VolumeName != "" {
		p.provisioned.remove(pvc.UID)
	}
	// Bound claims need work only when deleted with one of our finalizers.
	if pvc.Spec.VolumeName != "" && (pvc.DeletionTimestamp == nil ||
		!hasFinalizer(pvc.Finalizers, FinalizerIntent) && !hasFinalizer(pvc.Finalizers, FinalizerCloneSource)) {
		return
	}
	if key, err := cache.MetaNamespaceKeyFunc(pvc); err == nil {
		p.claimQueue.Add(key)
	}
}

func (p *Provisioner) claimDeleted(o any) {
	o = kube.Unwrap(o)
	if pvc, ok := o.(*v1.PersistentVolumeClaim); ok {
		p.slow.remove(pvc.UID)
		p.forgetTopology(string(pvc.UID))
		p.forgetTake(string(pvc.UID))
		p.provisioned.remove(pvc.UID)
		p.enqueueSource(pvc)
		if p.records.get(pvc.UID) != nil {
			p.recordQueue.Add(string(pvc.UID))
		}
	}
}

// classChanged retries at once the claims refused as infeasible under an
// earlier class of this name (deleted, or replaced by a new one).
func (p *Provisioner) classChanged(o any) {
	o = kube.Unwrap(o)
	c, ok := o.(*storagev1.StorageClass)
	if !ok {
		return
	}
	current, err := p.classes.Get(c.Name)
	if err != nil {
		current = nil
	}
	for _, key := range p.slow.changed(c.Name, current) {
		p.claimQueue.Add(key)
	}
}

func (p *Provisioner) enqueueVolume(o any) {
	pv, ok := o.(*v1.PersistentVolume)
	if !ok || decideVolume(pv, p.name) == volumeIgnore {
		return
	}
	p.volumeQueue.Add(pv.Name)
}

func (p *Provisioner) volumeDeleted(o any) {
	o = kube.Unwrap(o)
	pv, ok := o.(*v1.PersistentVolume)
	if !ok {
		return
	}
	p.volumeQueue.Forget(pv.Name)
	p.deletedVolumes.remove(pv.UID)
	if p.capacity != nil {
		p.capacity.refreshForVolume(pv)
	}
	// A claim waiting to clean up may be waiting for this PV to go.
	if ref := pv.Spec.ClaimRef; ref != nil {
		p.claimQueue.Add(ref.Namespace + "/" + ref.Name)
	}
}

// callCtx bounds one CSI call by Options.Timeout.
// addHandler registers h on inf for this provisioner's lifetime (removed
// when Run returns, since a shared informer outlives it).
func (p *Provisioner) addHandler(inf cache.SharedIndexInformer, h cache.ResourceEventHandler) {
	if err := p.handlers.Add(inf, h, p.opts.Resync); err != nil {
		// Only a stopped informer refuses handlers: a shared Cache shut
		// down before New. Run then fails to sync and says so.
		klog.Background().Error(err, "Cannot watch", "driver", p.name)
	}
}

func (p *Provisioner) callCtx(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(ctx, p.opts.Timeout)
}

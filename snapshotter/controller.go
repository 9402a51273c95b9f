package snapshotter

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"

	crdv1 "github.com/kubernetes-csi/external-snapshotter/client/v8/apis/volumesnapshot/v1"
	snapclient "github.com/kubernetes-csi/external-snapshotter/client/v8/clientset/versioned"
	snaplisters "github.com/kubernetes-csi/external-snapshotter/client/v8/listers/volumesnapshot/v1"
	v1 "k8s.io/api/core/v1"
	"k8s.io/client-go/kubernetes"
	corelisters "k8s.io/client-go/listers/core/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/record"
	"k8s.io/klog/v2"

	"github.com/csi-kit/sidecars/internal/kube"
	"github.com/csi-kit/sidecars/sharedcache"
)

// Controller is the common snapshot controller: it binds VolumeSnapshots
// to VolumeSnapshotContents, creates contents for dynamic snapshots, keeps
// snapshot status, finalizers and the source PVC's protection, and deletes
// contents per their deletion policy. It never talks to a CSI driver.
type Controller struct {
	opts    ControllerOptions
	kube    kubernetes.Interface
	snap    snapclient.Interface
	rec     record.EventRecorder
	metrics *opMetrics

	vsLister    snaplisters.VolumeSnapshotLister
	vscLister   snaplisters.VolumeSnapshotContentLister
	classLister snaplisters.VolumeSnapshotClassLister
	pvcLister   corelisters.PersistentVolumeClaimLister
	pvLister    corelisters.PersistentVolumeLister
	vsIndex     cache.Indexer // snapshots by source PVC
	pvcIndex    cache.Indexer // PVCs by the snapshot they restore from

	nodeLister corelisters.NodeLister // with DistributedSnapshotting only

	groups *groupPart // volume group snapshots; nil when off (group_controller.go)

	vsQueue  *queue
	vscQueue *queue
	freshVS  *fresh[*crdv1.VolumeSnapshot]
	freshVSC *fresh[*crdv1.VolumeSnapshotContent]
	freshPVC *fresh[*v1.PersistentVolumeClaim]
	pvcLocks keyLocks

	running sync.Mutex
	synced  atomic.Bool // caches synced, workers starting
}

const (
	indexBySource  = "snapshotter/bySourcePVC"
	indexByRestore = "snapshotter/byRestoreSnapshot"
)

// NewController checks opts; nothing starts until Run.
func NewController(opts ControllerOptions, kube kubernetes.Interface, snap snapclient.Interface) (*Controller, error) {
	opts = opts.withDefaults()
	if err := opts.Validate(); err != nil {
		return nil, fmt.Errorf("snapshot controller: %w", err)
	}
	if kube == nil || snap == nil {
		return nil, errors.New("snapshot controller: kube and snapshot clients are required")
	}
	rec := opts.Recorder
	if rec == nil {
		rec = &record.FakeRecorder{}
	}
	met, err := newOpMetrics(opts.Registerer)
	if err != nil {
		return nil, fmt.Errorf("snapshot controller: %w", err)
	}
	c := &Controller{
		opts: opts, kube: kube, snap: snap, rec: rec,
		metrics:  met,
		freshVS:  newFresh[*crdv1.VolumeSnapshot](),
		freshVSC: newFresh[*crdv1.VolumeSnapshotContent](),
		freshPVC: newFresh[*v1.PersistentVolumeClaim](),
	}
	return c, nil
}

// Run checks that the CRDs are served, starts the informers and workers
// and blocks until ctx ends. It returns an error if the CRDs are missing
// or the caches never sync; a Controller runs once.
func (c *Controller) Run(ctx context.Context) error {
	if !c.running.TryLock() {
		return errors.New("snapshot controller: Run called twice")
	}
	logger := klog.FromContext(ctx).WithName(ControllerComponent)
	ctx = klog.NewContext(ctx, logger)
	if err := CheckCRDs(ctx, c.snap.Discovery(), c.opts.CRDWait); err != nil {
		return err
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	c.vsQueue = newQueue("snapshot-controller-snapshot", c.opts.RetryIntervalStart, c.opts.RetryIntervalMax, c.syncSnapshotKey)
	c.vscQueue = newQueue("snapshot-controller-content", c.opts.RetryIntervalStart, c.opts.RetryIntervalMax, c.syncContentKey)
	defer c.vsQueue.q.ShutDown()
	defer c.vscQueue.q.ShutDown()

	sc, release, err := snapshotCache(c.opts.Cache, c.kube, c.snap, stripCoreObject, "snapshot controller")
	if err != nil {
		return err
	}
	defer release()
	var handlers sharedcache.Handlers
	defer handlers.RemoveAll()
	defer cancel() // workers and informers stop before the deferred waits
	vsInf := sc.Snapshot.Snapshot().V1().VolumeSnapshots()
	vscInf := sc.Snapshot.Snapshot().V1().VolumeSnapshotContents()
	classInf := sc.Snapshot.Snapshot().V1().VolumeSnapshotClasses()
	pvcInf := sc.Kube.Core().V1().PersistentVolumeClaims()
	pvInf := sc.Kube.Core().V1().PersistentVolumes()

	if err := sharedcache.AddIndex(vsInf.Informer(), indexBySource, snapshotBySource); err != nil {
		return err
	}
	if err := sharedcache.AddIndex(pvcInf.Informer(), indexByRestore, pvcByRestore); err != nil {
		return err
	}
	c.vsLister, c.vscLister, c.classLister = vsInf.Lister(), vscInf.Lister(), classInf.Lister()
	c.pvcLister, c.pvLister = pvcInf.Lister(), pvInf.Lister()
	c.vsIndex, c.pvcIndex = vsInf.Informer().GetIndexer(), pvcInf.Informer().GetIndexer()

	if err := handlers.Add(vsInf.Informer(), cache.ResourceEventHandlerFuncs{
		AddFunc:    func(obj any) { c.enqueueSnapshot(obj) },
		UpdateFunc: func(_, obj any) { c.enqueueSnapshot(obj) },
		DeleteFunc: c.snapshotGone,
	}, c.opts.ResyncPeriod); err != nil {
		return err
	}
	if err := handlers.Add(vscInf.Informer(), cache.ResourceEventHandlerFuncs{
		AddFunc:    c.contentChanged,
		UpdateFunc: func(_, obj any) { c.contentChanged(obj) },
		DeleteFunc: c.contentDeleted,
	}, c.opts.ResyncPeriod); err != nil {
		return err
	}
	if err := handlers.Add(pvcInf.Informer(), cache.ResourceEventHandlerFuncs{
		AddFunc:    c.pvcChanged,
		UpdateFunc: func(_, obj any) { c.pvcChanged(obj) },
		DeleteFunc: c.pvcChanged,
	}, c.opts.ResyncPeriod); err != nil {
		return err
	}
	// classes and PVs are read from their listers only
	_ = classInf.Informer()
	_ = pvInf.Informer()
	if c.opts.DistributedSnapshotting {
		nodeInf := sc.Kube.Core().V1().Nodes()
		c.nodeLister = nodeInf.Lister()
		_ = nodeInf.Informer()
	}

	// Volume group snapshots (group_controller*.go) run on a ctrl.Runtime
	// of their own over the same cache, beside the queues below.
	groupRT, err := c.groupRuntime(ctx, sc)
	if err != nil {
		return err
	}
	// End of the group part's setup.

	sc.Start()
	logger.V(2).Info("Waiting for informer caches to sync")
	if !sc.WaitForSync(ctx) || !cache.WaitForCacheSync(ctx.Done(), handlers.HasSynced) {
		if ctx.Err() != nil {
			return nil
		}
		return errors.New("snapshot controller: informer caches did not sync")
	}
	c.synced.Store(true)
	logger.Info("Snapshot controller started", "workers", c.opts.Workers)
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); c.vsQueue.run(ctx, c.opts.Workers) }()
	go func() { defer wg.Done(); c.vscQueue.run(ctx, c.opts.Workers) }()
	var groupErr error // the group part's runtime; an error ends the controller
	if groupRT != nil {
		wg.Add(1)
		go func() { defer wg.Done(); groupErr = groupRT.Run(ctx, nil); cancel() }()
	}
	wg.Wait()
	logger.Info("Snapshot controller stopped")
	return groupErr
}

func (c *Controller) enqueueSnapshot(obj any) {
	if vs, ok := obj.(*crdv1.VolumeSnapshot); ok {
		c.vsQueue.add(vs.Namespace + "/" + vs.Name)
	}
}

// snapshotGone ends the snapshot's metrics, forgets it and lets its content
// see that it is gone.
func (c *Controller) snapshotGone(obj any) {
	obj = kube.Unwrap(obj)
	vs, ok := obj.(*crdv1.VolumeSnapshot)
	if !ok {
		return
	}
	c.metrics.gone(vs.UID, c.opts.Clock.Now())
	c.freshVS.forget(vs.Namespace + "/" + vs.Name)
	if name := contentNameOf(vs); name != "" {
		c.vscQueue.add(name)
	}
	if isDynamic(vs) {
		// its PVC may have been waiting for it
		c.vsQueue.add(pvcKeyPrefix + vs.Namespace + "/" + *vs.Spec.Source.PersistentVolumeClaimName)
	}
}

func (c *Controller) contentChanged(obj any) {
	obj = kube.Unwrap(obj)
	vsc, ok := obj.(*crdv1.VolumeSnapshotContent)
	if !ok {
		return
	}
	c.vscQueue.add(vsc.Name)
	if ref := vsc.Spec.VolumeSnapshotRef; ref.Name != "" && ref.Namespace != "" {
		c.vsQueue.add(ref.Namespace + "/" + ref.Name)
	}
}

func (c *Controller) contentDeleted(obj any) {
	obj = kube.Unwrap(obj)
	if vsc, ok := obj.(*crdv1.VolumeSnapshotContent); ok {
		c.freshVSC.forget(vsc.Name)
		c.contentChanged(vsc)
	}
}

// pvcChanged wakes the snapshots a PVC matters to: those cut from it
// (it may have appeared, been bound, or be waiting for its finalizer to go)
// and the one it restores from (its deletion may be waiting). A deleted
// PVC holding the pvc-as-source finalizer is re-checked on its own: no
// snapshot may need it (a user can write the finalizer), and it must not
// hang then.
func (c *Controller) pvcChanged(obj any) {
	obj = kube.Unwrap(obj)
	pvc, ok := obj.(*v1.PersistentVolumeClaim)
	if !ok {
		return
	}
	items, _ := c.vsIndex.ByIndex(indexBySource, pvc.Namespace+"/"+pvc.Name)
	for _, it := range items {
		c.enqueueSnapshot(it)
	}
	if pvc.DeletionTimestamp != nil && slices.Contains(pvc.Finalizers, FinalizerPVCAsSource) {
		c.vsQueue.add(pvcKeyPrefix + pvc.Namespace + "/" + pvc.Name)
	}
	for _, ds := range []*v1.TypedLocalObjectReference{pvc.Spec.DataSource, typedRef(pvc.Spec.DataSourceRef)} {
		if ds != nil && ds.Kind == "VolumeSnapshot" {
			c.vsQueue.add(pvc.Namespace + "/" + ds.Name)
		}
	}
}

func snapshotBySource(obj any) ([]string, error) {
	vs, ok := obj.(*crdv1.VolumeSnapshot)
	if !ok || !isDynamic(vs) || isGroupMember(vs) {
		return nil, nil
	}
	return []string{vs.Namespace + "/" + *vs.Spec.Source.PersistentVolumeClaimName}, nil
}

func pvcByRestore(obj any) ([]string, error) {
	pvc, ok := obj.(*v1.PersistentVolumeClaim)
	if !ok {
		return nil, nil
	}
	var out []string
	for _, ds := range []*v1.TypedLocalObjectReference{pvc.Spec.DataSource, typedRef(pvc.Spec.DataSourceRef)} {
		if ds != nil && ds.Kind == "VolumeSnapshot" {
			out = append(out, pvc.Namespace+"/"+ds.Name)
		}
	}
	return out, nil
}

// pending is the number of objects waiting in the queues, or -1 before the
// caches have synced.
func (c *Controller) pending() int {
	if !c.synced.Load() {
		return -1
	}
	return c.vsQueue.q.Len() + c.vscQueue.q.Len()
}

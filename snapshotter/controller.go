package snapshotter

import (
	"context"
	"errors"
	"fmt"
	"slices"
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

	"github.com/csi-kit/sidecars/internal/ctrl"
)

// Controller is the common snapshot controller: it binds VolumeSnapshots
// to VolumeSnapshotContents, creates contents for dynamic snapshots, keeps
// snapshot status, finalizers and the source PVC's protection, and deletes
// contents per their deletion policy. It never talks to a CSI driver.
type Controller struct {
	opts    ControllerOptions
	kube    kubernetes.Interface
	snap    snapclient.Interface
	metrics *opMetrics
	once    ctrl.Once

	// Set by Run before the workers start.
	rec         record.EventRecorder
	vsLister    snaplisters.VolumeSnapshotLister
	vscLister   snaplisters.VolumeSnapshotContentLister
	classLister snaplisters.VolumeSnapshotClassLister
	pvcLister   corelisters.PersistentVolumeClaimLister
	pvLister    corelisters.PersistentVolumeLister
	vsIndex     cache.Indexer          // snapshots by source PVC
	pvcIndex    cache.Indexer          // PVCs by the snapshot they restore from
	nodeLister  corelisters.NodeLister // with DistributedSnapshotting only
	vsQueue     *ctrl.Queue
	vscQueue    *ctrl.Queue
	rt          atomic.Pointer[ctrl.Runtime] // stored once the above are set

	// The fresh-write rule is ctrl.Fresh's: a copy this controller wrote
	// wins over the cached one while its resource version is newer.
	freshVS  *ctrl.Fresh[*crdv1.VolumeSnapshot]
	freshVSC *ctrl.Fresh[*crdv1.VolumeSnapshotContent]
	freshPVC *ctrl.Fresh[*v1.PersistentVolumeClaim]
	pvcLocks ctrl.KeyLocks

	groups *groupPart // volume group snapshots; nil when off (group_controller.go)
}

const (
	indexBySource  = "snapshotter/bySourcePVC"
	indexByRestore = "snapshotter/byRestoreSnapshot"
)

// NewController checks opts and the clients, reporting every problem at
// once; nothing starts until Run.
func NewController(opts ControllerOptions, kube kubernetes.Interface) (*Controller, error) {
	opts = opts.withDefaults()
	if err := errors.Join(opts.Validate(), checkClients(kube, opts.SnapshotClient)); err != nil {
		return nil, fmt.Errorf("snapshot controller: %w", err)
	}
	met, err := newOpMetrics(opts.Registerer)
	if err != nil {
		return nil, fmt.Errorf("snapshot controller: %w", err)
	}
	c := &Controller{
		opts: opts, kube: kube, snap: opts.SnapshotClient,
		metrics:  met,
		freshVS:  ctrl.NewFresh[*crdv1.VolumeSnapshot](),
		freshVSC: ctrl.NewFresh[*crdv1.VolumeSnapshotContent](),
		freshPVC: ctrl.NewFresh[*v1.PersistentVolumeClaim](),
	}
	return c, nil
}

// Run checks that the CRDs are served, starts the informers and workers
// and blocks until ctx ends. It returns an error if the CRDs are missing
// or the caches never sync; a Controller runs once.
func (c *Controller) Run(ctx context.Context) error {
	if err := c.once.Begin("snapshot controller"); err != nil {
		return err
	}
	logger := klog.FromContext(ctx).WithName(ControllerComponent)
	ctx = klog.NewContext(ctx, logger)
	if err := checkCRDs(ctx, c.snap.Discovery(), c.opts.CRDWait); err != nil {
		return err
	}
	rt, err := ctrl.New(ctrl.Config{Name: "snapshot controller", Kube: c.kube, Snapshot: c.snap, Cache: c.opts.Cache,
		Transform: stripCoreObject, Recorder: c.opts.Recorder, EventSource: ControllerComponent, Clock: c.opts.Clock})
	if err != nil {
		return err
	}
	c.rec = rt.Recorder()
	q := ctrl.QueueOptions{Workers: c.opts.Workers, RetryStart: c.opts.RetryIntervalStart, RetryMax: c.opts.RetryIntervalMax}
	q.Name = "snapshot-controller-snapshot"
	c.vsQueue = rt.Queue(q, ctrl.ReconcileFunc(c.syncSnapshotKey))
	q.Name = "snapshot-controller-content"
	c.vscQueue = rt.Queue(q, ctrl.ReconcileFunc(c.syncContentKey))
	c.wire(rt)
	if c.groupsEnabled(ctx) {
		if err := c.watchGroups(rt); err != nil {
			return err
		}
	}
	c.rt.Store(rt)
	err = rt.Run(ctx, func(context.Context) error {
		logger.Info("Snapshot controller started", "workers", c.opts.Workers)
		return nil
	})
	logger.Info("Snapshot controller stopped")
	return err
}

// wire takes the listers and indexes from rt's cache and registers the
// event handlers that feed the queues.
func (c *Controller) wire(rt *ctrl.Runtime) {
	sc := rt.Cache()
	vsInf := sc.Snapshot.Snapshot().V1().VolumeSnapshots()
	vscInf := sc.Snapshot.Snapshot().V1().VolumeSnapshotContents()
	classInf := sc.Snapshot.Snapshot().V1().VolumeSnapshotClasses()
	pvcInf := sc.Kube.Core().V1().PersistentVolumeClaims()
	pvInf := sc.Kube.Core().V1().PersistentVolumes()
	rt.Index(vsInf.Informer(), indexBySource, snapshotBySource)
	rt.Index(pvcInf.Informer(), indexByRestore, pvcByRestore)
	c.vsLister, c.vscLister, c.classLister = vsInf.Lister(), vscInf.Lister(), classInf.Lister()
	c.pvcLister, c.pvLister = pvcInf.Lister(), pvInf.Lister()
	c.vsIndex, c.pvcIndex = vsInf.Informer().GetIndexer(), pvcInf.Informer().GetIndexer()
	if c.opts.DistributedSnapshotting {
		c.nodeLister = sc.Kube.Core().V1().Nodes().Lister()
	}
	// classes, PVs and nodes are read from their listers only
	rt.Watch(vsInf.Informer(), ctrl.Typed(c.enqueueSnapshot, nil, c.snapshotGone), c.opts.ResyncPeriod)
	rt.Watch(vscInf.Informer(), ctrl.Typed(c.contentChanged, nil, c.contentDeleted), c.opts.ResyncPeriod)
	rt.Watch(pvcInf.Informer(), ctrl.Typed(c.pvcChanged, nil, c.pvcChanged), c.opts.ResyncPeriod)
}

func (c *Controller) enqueueSnapshot(vs *crdv1.VolumeSnapshot) { c.vsQueue.Add(key(vs)) }

// snapshotGone ends the snapshot's metrics, forgets it and lets its content
// see that it is gone.
func (c *Controller) snapshotGone(vs *crdv1.VolumeSnapshot) {
	c.metrics.gone(vs.UID, c.opts.Clock.Now())
	c.freshVS.Forget(vs.Namespace + "/" + vs.Name)
	if name := contentNameOf(vs); name != "" {
		c.vscQueue.Add(name)
	}
	if isDynamic(vs) {
		// its PVC may have been waiting for it
		c.vsQueue.Add(pvcKeyPrefix + vs.Namespace + "/" + *vs.Spec.Source.PersistentVolumeClaimName)
	}
}

func (c *Controller) contentChanged(vsc *crdv1.VolumeSnapshotContent) {
	c.vscQueue.Add(vsc.Name)
	if ref := vsc.Spec.VolumeSnapshotRef; ref.Name != "" && ref.Namespace != "" {
		c.vsQueue.Add(ref.Namespace + "/" + ref.Name)
	}
}

func (c *Controller) contentDeleted(vsc *crdv1.VolumeSnapshotContent) {
	c.freshVSC.Forget(vsc.Name)
	c.contentChanged(vsc)
}

// pvcChanged wakes the snapshots a PVC matters to: those cut from it
// (it may have appeared, been bound, or be waiting for its finalizer to go)
// and the one it restores from (its deletion may be waiting). A deleted
// PVC holding the pvc-as-source finalizer is re-checked on its own: no
// snapshot may need it (a user can write the finalizer), and it must not
// hang then.
func (c *Controller) pvcChanged(pvc *v1.PersistentVolumeClaim) {
	items, _ := c.vsIndex.ByIndex(indexBySource, pvc.Namespace+"/"+pvc.Name)
	for _, it := range items {
		if vs, ok := it.(*crdv1.VolumeSnapshot); ok {
			c.enqueueSnapshot(vs)
		}
	}
	if pvc.DeletionTimestamp != nil && slices.Contains(pvc.Finalizers, FinalizerPVCAsSource) {
		c.vsQueue.Add(pvcKeyPrefix + pvc.Namespace + "/" + pvc.Name)
	}
	for _, ds := range []*v1.TypedLocalObjectReference{pvc.Spec.DataSource, typedRef(pvc.Spec.DataSourceRef)} {
		if ds != nil && ds.Kind == "VolumeSnapshot" {
			c.vsQueue.Add(pvc.Namespace + "/" + ds.Name)
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
	if !started(c.rt.Load()) {
		return -1
	}
	return c.vsQueue.Len() + c.vscQueue.Len()
}

// started reports whether rt (nil before Run built it) has synced its
// caches and started its workers.
func started(rt *ctrl.Runtime) bool {
	if rt == nil {
		return false
	}
	select {
	case <-rt.Started():
		return true
	default:
		return false
	}
}

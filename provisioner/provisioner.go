package provisioner

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"

	"github.com/container-storage-interface/spec/lib/go/csi"
	snapclient "github.com/kubernetes-csi/external-snapshotter/client/v8/clientset/versioned"
	snaplisters "github.com/kubernetes-csi/external-snapshotter/client/v8/listers/volumesnapshot/v1"
	v1 "k8s.io/api/core/v1"
	storagev1 "k8s.io/api/storage/v1"
	"k8s.io/client-go/kubernetes"
	corelisters "k8s.io/client-go/listers/core/v1"
	storagelisters "k8s.io/client-go/listers/storage/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/record"
	"k8s.io/klog/v2"

	"github.com/csi-kit/sidecars/csiconn"
	"github.com/csi-kit/sidecars/internal/ctrl"
	"github.com/csi-kit/sidecars/internal/kube"
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
	met      *metrics
	identity string
	once     ctrl.Once

	// Set by Run before the workers start.
	rec         record.EventRecorder // the runtime's
	claims      corelisters.PersistentVolumeClaimLister
	volumes     corelisters.PersistentVolumeLister
	classes     storagelisters.StorageClassLister
	nodes       corelisters.NodeLister
	csiNodes    storagelisters.CSINodeLister
	attachments storagelisters.VolumeAttachmentLister
	snapshots   snaplisters.VolumeSnapshotLister // nil: no VolumeSnapshot API
	contents    snaplisters.VolumeSnapshotContentLister
	claimQueue  *ctrl.Queue
	volumeQueue *ctrl.Queue
	recordQueue *ctrl.Queue // claim UIDs of provisioning records
	// snapshotQueue: namespace/name of snapshots whose source-protection
	// finalizer may have to go now (snapshot or restoring claim deleted).
	snapshotQueue *ctrl.Queue
	// cloneQueue: namespace/name of deleted claims that hold the
	// clone-source finalizer (Options.CloneProtectionWorkers workers).
	cloneQueue *ctrl.Queue

	records    *records
	recordsOff bool // no RBAC for records (set by Run before the workers start)
	// deletedVolumes: PVs whose backend volume this process deleted (see
	// uidSet); a CSI-side write no informer shows.
	deletedVolumes uidSet
	// pvs holds the PVs this process created, by name, until the PV
	// informer shows them: every lookup of a claim's PV goes through
	// p.volume, which applies ctrl.Fresh's rule. An entry goes when the
	// cache catches up, or when the PV or its claim is deleted.
	pvs *ctrl.Fresh[*v1.PersistentVolume]
	// slow: claims refused as infeasible, waiting Options.InfeasibleRetryDelay.
	slow     slowSet
	capacity *capacityController

	// topoCache keeps the requirement of a claim between attempts so that
	// retries send identical requests; keyed by claim UID.
	topoMu    sync.Mutex
	topoCache map[string]topoEntry
	takeAt    map[string]takeState // node deployment: next offer per claim UID
	node      *nodeInfo            // node deployment: this node, set by Run
	// started is closed once Run has synced its caches and is about to
	// start the workers.
	started chan struct{}
}

// eventSource is the component of the events of a recorder Run builds.
const eventSource = "external-provisioner"

// New checks opts and builds a Provisioner; nothing starts until Run.
// Without Options.SnapshotClient, restores from VolumeSnapshots fail with
// an event.
func New(opts Options, kubeClient kubernetes.Interface, drv Driver) (*Provisioner, error) {
	opts = opts.withDefaults()
	err := opts.Validate()
	if kubeClient == nil || drv == nil {
		err = errors.Join(err, errors.New("a Kubernetes client and a driver are required"))
	}
	if err != nil {
		return nil, fmt.Errorf("provisioner: %w", err)
	}
	caps := drv.Capabilities()
	if !caps.ControllerService || !caps.HasController(csi.ControllerServiceCapability_RPC_CREATE_DELETE_VOLUME) {
		return nil, fmt.Errorf("provisioner: driver %s lacks CONTROLLER_SERVICE with CREATE_DELETE_VOLUME", drv.DriverName())
	}
	met, err := newMetrics(opts.Registerer)
	if err != nil {
		return nil, fmt.Errorf("provisioner: %w", err)
	}
	p := &Provisioner{
		opts: opts, kube: kubeClient, snaps: opts.SnapshotClient, drv: drv, ctrl: drv.Controller(),
		name: drv.DriverName(), caps: caps, met: met, records: newRecords(),
		identity:  fmt.Sprintf("%d-%d-%s", opts.Clock.Now().UnixMilli(), rand.IntN(10000), drv.DriverName()),
		pvs:       ctrl.NewFresh[*v1.PersistentVolume](),
		topoCache: map[string]topoEntry{},
		takeAt:    map[string]takeState{},
		started:   make(chan struct{}),
	}
	if opts.Capacity != nil {
		if p.capacity, err = newCapacityController(p); err != nil {
			return nil, fmt.Errorf("provisioner: %w", err)
		}
	}
	return p, nil
}

func (p *Provisioner) topology() bool {
	return p.caps.Topology && !p.opts.DisableTopology
}

// Run watches claims, volumes and classes and provisions until ctx ends.
// It returns an error if the caches never sync or the records cannot be
// read, and, when the driver offers WatchLoss (as *csiconn.Conn does), an
// error wrapping csiconn.ErrConnectionLost when the driver goes away. A
// Provisioner runs once.
func (p *Provisioner) Run(ctx context.Context) error {
	if err := p.once.Begin("provisioner"); err != nil {
		return err
	}
	ctx = klog.NewContext(ctx, klog.FromContext(ctx).WithValues("driver", p.name))
	snaps := p.snapshotAPI(ctx)
	p.checkVolumeAttributesClassAPI(ctx)
	rt, err := ctrl.New(ctrl.Config{Name: "provisioner", Kube: p.kube, Snapshot: snaps,
		Cache: p.opts.Cache, Transform: stripForCache, Recorder: p.opts.Recorder, EventSource: eventSource,
		Driver: p.drv, Clock: p.opts.Clock})
	if err != nil {
		return err
	}
	p.rec = rt.Recorder()
	queue := func(name, logKey string, workers int, sync ctrl.ReconcileFunc) *ctrl.Queue {
		return rt.Queue(ctrl.QueueOptions{Name: name, LogKey: logKey, Workers: workers,
			RetryStart: p.opts.RetryIntervalStart, RetryMax: p.opts.RetryIntervalMax}, sync)
	}
	p.claimQueue = queue("claims", "claim", p.opts.Workers, p.syncClaim)
	p.volumeQueue = queue("volumes", "pv", p.opts.Workers, noDelay(p.syncVolume))
	p.recordQueue = queue("records", "claimUID", min(p.opts.Workers, 4), p.syncRecord)
	p.snapshotQueue = queue("snapshots", "snapshot", 1, noDelay(p.syncSnapshot))
	p.cloneQueue = queue("clone-sources", "pvc", p.opts.CloneProtectionWorkers, noDelay(p.syncCloneSource))
	p.watch(rt, snaps != nil)
	if p.capacity != nil {
		p.capacity.watch(rt)
		rt.Go(p.capacity.run)
	}
	rt.Go(p.sweepSnapshots)
	return rt.Run(ctx, p.ready)
}

// snapshotAPI returns the snapshot client when the API server serves the
// VolumeSnapshot API; nil otherwise, so that restores fail with an event
// instead of the whole provisioner waiting for informers that never sync.
func (p *Provisioner) snapshotAPI(ctx context.Context) snapclient.Interface {
	if p.snaps == nil {
		return nil
	}
	if _, err := p.snaps.Discovery().ServerResourcesForGroupVersion(snapshotAPIGroup + "/v1"); err != nil {
		klog.FromContext(ctx).Info("VolumeSnapshot API not served: restores from snapshots are disabled", "err", err)
		return nil
	}
	return p.snaps
}

// checkVolumeAttributesClassAPI turns the VolumeAttributesClass support
// off, before any worker reads it, when the API server answers discovery
// without storage.k8s.io/v1 volumeattributesclasses: claims then provision
// as if they named no class, as upstream does with its gate auto-disabled.
// A discovery error leaves it on.
func (p *Provisioner) checkVolumeAttributesClassAPI(ctx context.Context) {
	if p.opts.DisableVolumeAttributesClass {
		return
	}
	ok, err := kube.VolumeAttributesClassServed(p.kube.Discovery())
	if err != nil {
		klog.FromContext(ctx).V(2).Info("Discovery failed; assuming VolumeAttributesClass is served", "err", err)
	}
	if !ok {
		klog.FromContext(ctx).Info("The apiserver does not serve storage.k8s.io/v1 VolumeAttributesClass; volumeAttributesClassName is ignored")
		p.opts.DisableVolumeAttributesClass = true
	}
}

// watch takes the informers from the runtime's cache and registers the
// handlers; the snapshot informers only when the API is served.
func (p *Provisioner) watch(rt *ctrl.Runtime, snapshots bool) {
	c, resync := rt.Cache(), p.opts.ResyncPeriod
	claimInf := c.Kube.Core().V1().PersistentVolumeClaims()
	p.claims = claimInf.Lister()
	rt.Watch(claimInf.Informer(), cache.ResourceEventHandlerFuncs{
		AddFunc:    func(o any) { p.enqueueClaim(o) },
		UpdateFunc: func(_, o any) { p.enqueueClaim(o) },
		DeleteFunc: func(o any) { p.claimDeleted(o) },
	}, resync)
	volInf := c.Kube.Core().V1().PersistentVolumes()
	p.volumes = volInf.Lister()
	rt.Watch(volInf.Informer(), cache.ResourceEventHandlerFuncs{
		AddFunc:    func(o any) { p.enqueueVolume(o) },
		UpdateFunc: func(_, o any) { p.enqueueVolume(o) },
		DeleteFunc: func(o any) { p.volumeDeleted(o) },
	}, resync)
	classInf := c.Kube.Storage().V1().StorageClasses()
	p.classes = classInf.Lister()
	rt.Watch(classInf.Informer(), cache.ResourceEventHandlerFuncs{
		AddFunc:    func(o any) { p.classChanged(o) },
		UpdateFunc: func(_, o any) { p.classChanged(o) },
		DeleteFunc: func(o any) { p.classChanged(o) },
	}, resync)
	if (p.topology() || p.opts.Capacity != nil) && p.opts.NodeDeployment == nil {
		nodeInf, csiNodeInf := c.Kube.Core().V1().Nodes(), c.Kube.Storage().V1().CSINodes()
		p.nodes, p.csiNodes = nodeInf.Lister(), csiNodeInf.Lister()
		rt.WaitFor(nodeInf.Informer().HasSynced, csiNodeInf.Informer().HasSynced)
	}
	if p.caps.HasController(csi.ControllerServiceCapability_RPC_PUBLISH_UNPUBLISH_VOLUME) {
		vaInf := c.Kube.Storage().V1().VolumeAttachments()
		p.attachments = vaInf.Lister()
		rt.WaitFor(vaInf.Informer().HasSynced)
	}
	if snapshots {
		vs, vsc := c.Snapshot.Snapshot().V1().VolumeSnapshots(), c.Snapshot.Snapshot().V1().VolumeSnapshotContents()
		p.snapshots, p.contents = vs.Lister(), vsc.Lister()
		rt.Watch(vs.Informer(), cache.ResourceEventHandlerFuncs{
			AddFunc:    func(o any) { p.enqueueSnapshot(o) },
			UpdateFunc: func(_, o any) { p.enqueueSnapshot(o) },
		}, resync)
		rt.WaitFor(vsc.Informer().HasSynced)
	}
}

// ready runs once the caches have synced, before the workers start: it
// reads this node's topology (node deployment) and the provisioning
// records, and queues every record.
func (p *Provisioner) ready(ctx context.Context) error {
	if p.opts.NodeDeployment != nil {
		if err := p.setupNode(ctx); err != nil {
			return err
		}
	}
	if err := p.loadRecords(ctx); err != nil {
		return err
	}
	for _, uid := range p.records.uids() {
		p.recordQueue.Add(string(uid))
	}
	klog.FromContext(ctx).Info("Provisioner started", "records", p.records.len(), "workers", p.opts.Workers,
		"topology", p.topology(), "capabilities", p.caps.String())
	close(p.started)
	return nil
}

// noDelay adapts a sync that never asks for a delay to a ReconcileFunc.
func noDelay(sync func(context.Context, string) error) ctrl.ReconcileFunc {
	return func(ctx context.Context, key string) (ctrl.Result, error) { return ctrl.Result{}, sync(ctx, key) }
}
func (p *Provisioner) enqueueClaim(o any) {
	pvc, ok := o.(*v1.PersistentVolumeClaim)
	if !ok {
		return
	}
	if pvc.DeletionTimestamp != nil && p.records.get(pvc.UID) != nil {
		p.recordQueue.Add(string(pvc.UID))
	}
	key, err := cache.MetaNamespaceKeyFunc(pvc)
	if err != nil {
		return
	}
	if pvc.DeletionTimestamp != nil && hasFinalizer(pvc.Finalizers, FinalizerCloneSource) {
		p.cloneQueue.Add(key)
	}
	if pvc.Status.Phase != v1.ClaimPending {
		p.enqueueCloneSource(pvc) // a clone that no longer waits may free its source
	}
	// Bound claims need work only when deleted with the intent finalizer.
	if pvc.Spec.VolumeName != "" && (pvc.DeletionTimestamp == nil || !hasFinalizer(pvc.Finalizers, FinalizerIntent)) {
		return
	}
	p.claimQueue.Add(key)
}

func (p *Provisioner) claimDeleted(o any) {
	o = kube.Unwrap(o)
	if pvc, ok := o.(*v1.PersistentVolumeClaim); ok {
		p.slow.remove(pvc.UID)
		p.forgetTopology(string(pvc.UID))
		p.forgetTake(string(pvc.UID))
		if name, err := volumeName(p.opts.VolumeNamePrefix, string(pvc.UID), p.opts.VolumeNameUUIDLength); err == nil {
			p.pvs.Forget(name)
		}
		p.enqueueSource(pvc)
		p.enqueueCloneSource(pvc)
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
	p.pvs.Forget(pv.Name)
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
func (p *Provisioner) callCtx(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(ctx, p.opts.Timeout)
}

package resizer

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
	corelisters "k8s.io/client-go/listers/core/v1"
	storagelisters "k8s.io/client-go/listers/storage/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/record"
	"k8s.io/klog/v2"

	"github.com/csi-kit/sidecars/internal/ctrl"
	"github.com/csi-kit/sidecars/internal/kube"
)

// Resizer is the resize and modify controller of one CSI driver.
type Resizer struct {
	opts Options
	kube kubernetes.Interface
	drv  Driver
	caps DriverCapabilities
	name string
	rt   *ctrl.Runtime
	once ctrl.Once

	// Set by Run before the runtime starts.
	recorder  record.EventRecorder
	queue     *ctrl.Queue
	pvcs      corelisters.PersistentVolumeClaimLister
	pvs       corelisters.PersistentVolumeLister
	vacs      storagelisters.VolumeAttributesClassLister
	pvcIndex  cache.Indexer
	pods      *podTracker // nil when in-use tracking is off
	modifying bool

	mu        sync.Mutex
	state     map[types.UID]*claimState
	freshPVCs *ctrl.Fresh[*v1.PersistentVolumeClaim] // keyed by UID
	freshPVs  *ctrl.Fresh[*v1.PersistentVolume]      // keyed by UID
}

// claimState is what the resizer remembers about one PVC between syncs.
type claimState struct {
	finalError      bool      // a final expansion error was seen
	infeasibleAt    time.Time // when the last infeasible answer came
	failedInUse     bool      // the driver answered FailedPrecondition
	blocked         bool      // waiting for the pods using it to go
	modifyUncertain bool      // a modify call ended without a final answer
	modifySeen      bool      // this process has handled the PVC's class
	// refusedSize is the last size refused as too large, so that its
	// warning is emitted once per size, not on every resync.
	refusedSize string
	// modifyInfeasibleAt is when the last infeasible modify answer came.
	modifyInfeasibleAt time.Time
}

var zeroTime time.Time

// resetResize forgets the resize history after a finished resize.
func (s *claimState) resetResize() {
	s.finalError, s.infeasibleAt, s.failedInUse, s.blocked = false, zeroTime, false, false
	s.refusedSize = ""
}

// New checks the options and prepares a Resizer; nothing starts until Run.
func New(opts Options, client kubernetes.Interface, drv Driver) (*Resizer, error) {
	opts = opts.withDefaults()
	var errs []error
	if err := opts.Validate(); err != nil {
		errs = append(errs, err)
	}
	if client == nil {
		errs = append(errs, errors.New("kubernetes client is nil"))
	}
	if drv == nil {
		errs = append(errs, errors.New("driver is nil"))
	} else if drv.Name() == "" {
		errs = append(errs, errors.New("driver name is empty"))
	}
	if err := errors.Join(errs...); err != nil {
		return nil, fmt.Errorf("resizer: %w", err)
	}
	caps := drv.Capabilities()
	if !caps.ControllerExpand && !caps.NodeExpand && !caps.Modify {
		return nil, fmt.Errorf("resizer: CSI driver %q supports neither controller nor node EXPAND_VOLUME nor MODIFY_VOLUME: nothing to do", drv.Name())
	}
	// The runtime starts nothing before Run; it exists here so that
	// Started can be waited on before Run is called.
	rt, err := ctrl.New(ctrl.Config{
		Name: "resizer", Kube: client, Cache: opts.Cache, Recorder: opts.Recorder,
		EventSource: "external-resizer " + drv.Name(), Driver: drv, Clock: opts.Clock,
	})
	if err != nil {
		return nil, err
	}
	r := &Resizer{
		opts: opts, kube: client, drv: drv, caps: caps, name: drv.Name(), rt: rt,
		recorder:  rt.Recorder(),
		state:     map[types.UID]*claimState{},
		freshPVCs: ctrl.NewFresh[*v1.PersistentVolumeClaim](),
		freshPVs:  ctrl.NewFresh[*v1.PersistentVolume](),
	}
	if r.trackPods() {
		r.pods = newPodTracker(r.claimFreed)
	}
	return r, nil
}

// trackPods says whether the pods using each PVC must be tracked.
func (r *Resizer) trackPods() bool {
	return !r.opts.DisableVolumeInUseHandling && r.caps.ControllerExpand && !r.caps.ExpandOnline
}

// Run starts the informers and workers and blocks until ctx ends (nil) or
// the driver connection is lost (an error wrapping
// csiconn.ErrConnectionLost), or the caches cannot sync. Run may be called
// once per Resizer.
func (r *Resizer) Run(ctx context.Context) error {
	if err := r.once.Begin("resizer"); err != nil {
		return err
	}
	logger := klog.FromContext(ctx).WithValues("driver", r.name)
	ctx = klog.NewContext(ctx, logger)
	sc := r.rt.Cache()
	pvcInf := sc.Kube.Core().V1().PersistentVolumeClaims()
	pvInf := sc.Kube.Core().V1().PersistentVolumes()
	r.pvcs, r.pvs, r.pvcIndex = pvcInf.Lister(), pvInf.Lister(), pvcInf.Informer().GetIndexer()
	r.queue = r.rt.Queue(ctrl.QueueOptions{
		Name: r.name + "-pvc", LogKey: "pvc", Workers: r.opts.Workers,
		RetryStart: r.opts.RetryIntervalStart, RetryMax: r.opts.RetryIntervalMax,
	}, ctrl.ReconcileFunc(r.sync))
	r.rt.Watch(pvcInf.Informer(), r.pvcHandlers(), r.opts.ResyncPeriod)
	r.rt.Watch(pvInf.Informer(), r.pvHandlers(), r.opts.ResyncPeriod)
	r.modifying = r.caps.Modify && !r.opts.DisableModify && r.vacServed(ctx)
	if r.modifying {
		vacInf := sc.Kube.Storage().V1().VolumeAttributesClasses()
		r.vacs = vacInf.Lister()
		r.rt.Index(pvcInf.Informer(), vacIndex, indexByVAC)
		r.rt.Watch(vacInf.Informer(), r.vacHandlers(), r.opts.ResyncPeriod)
	}
	var podsRV string // where the pod watch goes on from; "": list again
	if r.pods != nil {
		// Pods are not in the cache: they are listed page by page and
		// reduced to their claims, then watched.
		r.rt.Go(func(ctx context.Context) { runPodWatch(ctx, r.kube, r.pods, r.opts.Clock, podsRV) })
	}
	return r.rt.Run(ctx, func(ctx context.Context) error {
		if r.pods != nil {
			podsRV = r.listPodsOnce(ctx)
		}
		logger.Info("Resizer started", "workers", r.opts.Workers, "capabilities", fmt.Sprintf("%+v", r.caps),
			"podTracking", r.pods != nil, "modify", r.modifying)
		return nil
	})
}

// listPodsOnce lists the pods before the workers start, so that Started
// means the in-use check knows them, and returns the list's resource
// version. A failed list is retried by the pod watch; until one succeeds,
// inUseGate holds every decision that needs it.
func (r *Resizer) listPodsOnce(ctx context.Context) string {
	rv, err := listPods(ctx, r.kube, r.pods)
	if err != nil {
		klog.FromContext(ctx).Info("Listing pods failed; the pod watch lists again", "err", err)
		return ""
	}
	return rv
}

// Started is closed once Run has synced its caches, listed the pods when
// it tracks them, and starts its workers. A Resizer runs once.
func (r *Resizer) Started() <-chan struct{} { return r.rt.Started() }

// vacServed asks discovery whether storage.k8s.io/v1 serves
// VolumeAttributesClass; a discovery error counts as yes, as upstream.
func (r *Resizer) vacServed(ctx context.Context) bool {
	ok, err := kube.VolumeAttributesClassServed(r.kube.Discovery())
	if err != nil {
		klog.FromContext(ctx).V(2).Info("Discovery failed; assuming VolumeAttributesClass is served", "err", err)
	}
	if !ok {
		klog.FromContext(ctx).Info("The apiserver does not serve storage.k8s.io/v1 VolumeAttributesClass; modify is off")
	}
	return ok
}

func (r *Resizer) claimState(uid types.UID) *claimState {
	st := r.state[uid]
	if st == nil {
		st = &claimState{}
		r.state[uid] = st
	}
	return st
}

// withState runs f on the state of uid under the lock.
func (r *Resizer) withState(uid types.UID, f func(st *claimState)) {
	r.mu.Lock()
	defer r.mu.Unlock()
	f(r.claimState(uid))
}

// claimFreed is called when the last pod using a claim goes away: a claim
// held back for its pods is retried at once, its backoff reset.
func (r *Resizer) claimFreed(key string) {
	pvc, err := r.pvcs.PersistentVolumeClaims(namespaceOf(key)).Get(nameOf(key))
	if err != nil {
		return
	}
	r.mu.Lock()
	st := r.state[pvc.UID]
	blocked := st != nil && (st.blocked || st.failedInUse)
	r.mu.Unlock()
	if blocked {
		r.queue.Retry(key)
	}
}

// sync handles one PVC: resize, then modify. An error brings it back with
// backoff; a Result brings it back later without counting a failure.
func (r *Resizer) sync(ctx context.Context, key string) (ctrl.Result, error) {
	pvc, err := r.pvcs.PersistentVolumeClaims(namespaceOf(key)).Get(nameOf(key))
	if err != nil {
		return ctrl.Result{}, nil // deleted; the delete handler cleaned up
	}
	pvc = r.freshPVCs.Latest(string(pvc.UID), pvc)
	var pv *v1.PersistentVolume
	if pvc.Spec.VolumeName != "" {
		if got, err := r.pvs.Get(pvc.Spec.VolumeName); err == nil {
			pv = r.freshPVs.Latest(string(got.UID), got)
		}
	}
	inTree := pv
	pv, migrated, err := translateMigrated(ctx, pvc, pv, r.name)
	if err != nil {
		r.recorder.Event(pvc, v1.EventTypeWarning, EventResizeFailed, err.Error())
		return ctrl.Result{}, err
	}
	if migrated {
		ctx = markMigrated(ctx)
	}
	var res ctrl.Result
	var errs []error
	if r.caps.ControllerExpand || r.caps.NodeExpand {
		var err error
		if pvc, pv, res, err = r.syncResize(ctx, pvc, pv); err != nil {
			errs = append(errs, err)
		}
	}
	if migrated {
		pv = inTree // modifying migrated in-tree volumes is not supported
	}
	if r.modifying {
		modRes, err := r.syncModify(ctx, pvc, pv)
		if err != nil {
			errs = append(errs, err)
		}
		res = sooner(res, modRes)
	}
	if len(errs) == 1 {
		return res, errs[0]
	}
	return res, errors.Join(errs...)
}

// sooner is the Result that comes back first; the zero Result never does.
func sooner(a, b ctrl.Result) ctrl.Result {
	if a.RequeueAfter <= 0 || (b.RequeueAfter > 0 && b.RequeueAfter < a.RequeueAfter) {
		return b
	}
	return a
}

// requeue logs why a PVC comes back after d and asks for it.
func requeue(ctx context.Context, d time.Duration, why string) ctrl.Result {
	klog.FromContext(ctx).V(2).Info("Requeued", "after", d, "reason", why)
	return ctrl.Result{RequeueAfter: d}
}

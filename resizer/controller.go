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
	"k8s.io/client-go/util/workqueue"
	"k8s.io/klog/v2"

	"github.com/csi-kit/sidecars/internal/kube"
	"github.com/csi-kit/sidecars/sharedcache"
)

// Resizer is the resize and modify controller of one CSI driver.
type Resizer struct {
	opts     Options
	kube     kubernetes.Interface
	drv      Driver
	caps     DriverCapabilities
	name     string
	recorder record.EventRecorder

	queue     workqueue.TypedRateLimitingInterface[string]
	pvcs      corelisters.PersistentVolumeClaimLister
	pvs       corelisters.PersistentVolumeLister
	vacs      storagelisters.VolumeAttributesClassLister
	pvcIndex  cache.Indexer
	pods      *podTracker // nil when in-use tracking is off
	modifying bool

	mu      sync.Mutex
	state   map[types.UID]*claimState
	fresh   freshObjects
	started chan struct{}
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
	return &Resizer{
		opts:    opts,
		kube:    client,
		drv:     drv,
		caps:    caps,
		name:    drv.Name(),
		state:   map[types.UID]*claimState{},
		fresh:   newFreshObjects(),
		started: make(chan struct{}),
	}, nil
}

// trackPods says whether the pod informer is needed.
func (r *Resizer) trackPods() bool {
	return *r.opts.HandleVolumeInUseError && r.caps.ControllerExpand && !r.caps.ExpandOnline
}

// Run starts the informers and workers and blocks until ctx ends (nil) or
// the driver connection is lost (an error wrapping
// csiconn.ErrConnectionLost), or the caches cannot sync. Run may be called
// once per Resizer.
func (r *Resizer) Run(ctx context.Context) error {
	select {
	case <-r.started:
		return errors.New("resizer: Run called twice")
	default:
	}
	logger := klog.FromContext(ctx).WithValues("driver", r.name)
	ctx = klog.NewContext(ctx, logger)
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()

	if r.opts.Recorder != nil {
		r.recorder = r.opts.Recorder
	} else {
		rec, stop, err := kube.RecorderFor(r.kube, "external-resizer "+r.name)
		if err != nil {
			return fmt.Errorf("resizer: event recorder: %w", err)
		}
		defer stop()
		r.recorder = rec
	}

	r.queue = workqueue.NewTypedRateLimitingQueueWithConfig(
		workqueue.NewTypedItemExponentialFailureRateLimiter[string](r.opts.RetryIntervalStart, r.opts.RetryIntervalMax),
		workqueue.TypedRateLimitingQueueConfig[string]{Name: r.name + "-pvc", Clock: r.opts.Clock})
	defer r.queue.ShutDown()

	sc := r.opts.Cache
	if sc == nil {
		sc = sharedcache.NewWithTransform(r.kube, nil, kube.StripForCache)
		defer sc.Shutdown()
	}
	var handlers sharedcache.Handlers
	defer handlers.RemoveAll()
	defer cancel() // workers and informers stop before the deferred waits
	pvcInf := sc.Kube.Core().V1().PersistentVolumeClaims()
	pvInf := sc.Kube.Core().V1().PersistentVolumes()
	r.pvcs, r.pvs = pvcInf.Lister(), pvInf.Lister()
	r.pvcIndex = pvcInf.Informer().GetIndexer()
	if err := handlers.Add(pvcInf.Informer(), r.pvcHandlers(), r.opts.ResyncPeriod); err != nil {
		return fmt.Errorf("resizer: %w", err)
	}
	if err := handlers.Add(pvInf.Informer(), r.pvHandlers(), r.opts.ResyncPeriod); err != nil {
		return fmt.Errorf("resizer: %w", err)
	}
	r.modifying = r.caps.Modify && !r.opts.DisableModify && r.vacServed(ctx)
	if r.modifying {
		if err := sharedcache.AddIndex(pvcInf.Informer(), vacIndex, indexByVAC); err != nil {
			return fmt.Errorf("resizer: %w", err)
		}
		vacInf := sc.Kube.Storage().V1().VolumeAttributesClasses()
		r.vacs = vacInf.Lister()
		if err := handlers.Add(vacInf.Informer(), r.vacHandlers(), r.opts.ResyncPeriod); err != nil {
			return fmt.Errorf("resizer: %w", err)
		}
	}
	if r.trackPods() {
		r.pods = newPodTracker(r.claimFreed)
		reflected := make(chan struct{})
		go func() {
			defer close(reflected)
			runPodWatch(ctx, r.kube, r.pods, r.opts.Clock)
		}()
		defer func() { <-reflected }()
		defer cancel()
		select {
		case <-r.pods.synced:
		case <-ctx.Done():
			return nil
		}
	}
	sc.Start()
	kube.LogCacheSync(ctx, "PVC, PV")
	if !sc.WaitForSync(ctx) || !cache.WaitForCacheSync(ctx.Done(), handlers.HasSynced) {
		if ctx.Err() != nil {
			return nil
		}
		return errors.New("resizer: PVC and PV caches did not sync")
	}
	close(r.started)
	logger.Info("Resizer started", "workers", r.opts.Workers, "capabilities", fmt.Sprintf("%+v", r.caps),
		"podTracking", r.pods != nil, "modify", r.modifying)

	var wg sync.WaitGroup
	for range r.opts.Workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for r.processNext(ctx) {
			}
		}()
	}
	var runErr error
	if w, ok := r.drv.(connLoss); ok {
		runErr = w.WatchLoss(ctx)
	} else {
		<-ctx.Done()
	}
	cancel()
	r.queue.ShutDown()
	wg.Wait()
	return runErr
}

// Started is closed once Run has synced its caches and started its
// workers. A Resizer runs once.
func (r *Resizer) Started() <-chan struct{} { return r.started }

// vacServed asks discovery whether storage.k8s.io/v1 serves
// VolumeAttributesClass; a discovery error counts as yes.
func (r *Resizer) vacServed(ctx context.Context) bool {
	list, err := r.kube.Discovery().ServerResourcesForGroupVersion("storage.k8s.io/v1")
	if err != nil {
		klog.FromContext(ctx).V(2).Info("Discovery failed; assuming VolumeAttributesClass is served", "err", err)
		return true
	}
	for _, res := range list.APIResources {
		if res.Name == "volumeattributesclasses" {
			return true
		}
	}
	klog.FromContext(ctx).Info("The apiserver does not serve storage.k8s.io/v1 VolumeAttributesClass; modify is off")
	return false
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

// claimFreed is called when the last pod using a claim goes away.
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
		r.queue.Forget(key)
		r.queue.Add(key)
	}
}

func (r *Resizer) processNext(ctx context.Context) bool {
	key, quit := r.queue.Get()
	if quit {
		return false
	}
	defer r.queue.Done(key)
	logger := klog.FromContext(ctx).WithValues("pvc", key)
	err := r.sync(klog.NewContext(ctx, logger), key)
	var after *requeueAfter
	switch {
	case err == nil:
		r.queue.Forget(key)
	case errors.As(err, &after):
		r.queue.Forget(key)
		r.queue.AddAfter(key, after.d)
		logger.V(2).Info("Requeued", "after", after.d, "reason", after.why)
	default:
		logger.Error(err, "Sync failed; will retry", "retries", r.queue.NumRequeues(key))
		r.queue.AddRateLimited(key)
	}
	return true
}

// requeueAfter asks for the key to come back after d without counting as a
// failure.
type requeueAfter struct {
	d   time.Duration
	why string
}

func (e *requeueAfter) Error() string { return fmt.Sprintf("requeue after %v: %s", e.d, e.why) }

func (r *Resizer) sync(ctx context.Context, key string) error {
	pvc, err := r.pvcs.PersistentVolumeClaims(namespaceOf(key)).Get(nameOf(key))
	if err != nil {
		return nil // deleted; the delete handler cleaned up
	}
	pvc = r.fresh.pvc(pvc)
	var pv *v1.PersistentVolume
	if pvc.Spec.VolumeName != "" {
		if got, err := r.pvs.Get(pvc.Spec.VolumeName); err == nil {
			pv = r.fresh.pv(got)
		}
	}
	var errs []error
	inTree := pv
	pv, migrated, err := TranslateMigrated(ctx, pvc, pv, r.name)
	if err != nil {
		r.recorder.Event(pvc, v1.EventTypeWarning, EventResizeFailed, err.Error())
		return err
	}
	if migrated {
		ctx = markMigrated(ctx)
	}
	if r.caps.ControllerExpand || r.caps.NodeExpand {
		var err error
		if pvc, pv, err = r.syncResize(ctx, pvc, pv); err != nil {
			errs = append(errs, err)
		}
	}
	if migrated {
		pv = inTree // modifying migrated in-tree volumes is not supported
	}
	if r.modifying {
		if err := r.syncModify(ctx, pvc, pv); err != nil {
			errs = append(errs, err)
		}
	}
	if len(errs) == 1 {
		return errs[0]
	}
	return errors.Join(errs...)
}

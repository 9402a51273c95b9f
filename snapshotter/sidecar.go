package snapshotter

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	crdv1 "github.com/kubernetes-csi/external-snapshotter/client/v8/apis/volumesnapshot/v1"
	snapclient "github.com/kubernetes-csi/external-snapshotter/client/v8/clientset/versioned"
	snaplisters "github.com/kubernetes-csi/external-snapshotter/client/v8/listers/volumesnapshot/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/record"
	"k8s.io/klog/v2"

	"github.com/csi-kit/sidecars/internal/kube"
	"github.com/csi-kit/sidecars/sharedcache"
)

// Sidecar is the CSI snapshotter of one driver: for the contents of its
// driver it cuts snapshots (CreateSnapshot, polled until ready), reports
// them in the content's status, and deletes them under policy Delete once
// the common controller lets go of the content.
type Sidecar struct {
	opts SidecarOptions
	kube kubernetes.Interface
	snap snapclient.Interface
	drv  Driver
	rec  record.EventRecorder

	vscLister   snaplisters.VolumeSnapshotContentLister
	classLister snaplisters.VolumeSnapshotClassLister
	queue       *queue
	fresh       *fresh[*crdv1.VolumeSnapshotContent]

	pollMu sync.Mutex
	polls  map[string]int // readiness polls so far, per content

	running sync.Mutex
	synced  atomic.Bool
}

// NewSidecar checks opts; nothing starts until Run.
func NewSidecar(opts SidecarOptions, kube kubernetes.Interface, snap snapclient.Interface, drv Driver) (*Sidecar, error) {
	opts = opts.withDefaults()
	if err := opts.Validate(); err != nil {
		return nil, fmt.Errorf("csi-snapshotter: %w", err)
	}
	if kube == nil || snap == nil || drv == nil {
		return nil, errors.New("csi-snapshotter: kube client, snapshot client and driver are required")
	}
	rec := opts.Recorder
	if rec == nil {
		rec = &record.FakeRecorder{}
	}
	s := &Sidecar{
		opts: opts, kube: kube, snap: snap, drv: drv, rec: rec,
		fresh: newFresh[*crdv1.VolumeSnapshotContent](),
		polls: map[string]int{},
	}
	return s, nil
}

// Run checks the CRDs, starts the informers and workers and blocks until
// ctx ends.
func (s *Sidecar) Run(ctx context.Context) (err error) {
	if !s.running.TryLock() {
		return errors.New("csi-snapshotter: Run called twice")
	}
	logger := klog.FromContext(ctx).WithName(SidecarComponent).WithValues("driver", s.opts.DriverName)
	ctx = klog.NewContext(ctx, logger)
	if err := CheckCRDs(ctx, s.snap.Discovery(), 30*time.Second); err != nil {
		return err
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	s.queue = newQueue("csi-snapshotter-content", s.opts.RetryIntervalStart, s.opts.RetryIntervalMax, s.syncKey)
	defer s.queue.q.ShutDown()
	sc, release, err := snapshotCache(s.opts.Cache, s.kube, s.snap, kube.StripForCache, SidecarComponent)
	if err != nil {
		return err
	}
	defer release()
	var handlers sharedcache.Handlers
	defer handlers.RemoveAll()
	defer cancel() // workers and informers stop before the deferred waits
	vscFactory := sc.Snapshot
	if s.opts.NodeName != "" {
		vscFactory = nodeContentFactory(s.snap, s.opts.NodeName)
		defer func() { cancel(); vscFactory.Shutdown() }()
	}
	vscInf := vscFactory.Snapshot().V1().VolumeSnapshotContents()
	classInf := sc.Snapshot.Snapshot().V1().VolumeSnapshotClasses()
	s.vscLister, s.classLister = vscInf.Lister(), classInf.Lister()
	if err := handlers.Add(vscInf.Informer(), cache.ResourceEventHandlerFuncs{
		AddFunc: func(obj any) { s.enqueue(obj) },
		UpdateFunc: func(old, obj any) {
			o, ok1 := old.(*crdv1.VolumeSnapshotContent)
			n, ok2 := obj.(*crdv1.VolumeSnapshotContent)
			if ok1 && ok2 && shouldEnqueueContentChange(o, n) {
				s.enqueue(n)
			}
		},
		DeleteFunc: func(obj any) {
			obj = kube.Unwrap(obj)
			if vsc, ok := obj.(*crdv1.VolumeSnapshotContent); ok {
				s.fresh.forget(vsc.Name)
				s.resetPolls(vsc.Name)
			}
		},
	}, s.opts.ResyncPeriod); err != nil {
		return err
	}
	_ = classInf.Informer()
	// Volume group snapshots (group_sidecar.go): their own ctrl.Runtime on
	// the same cache, beside this loop, stopped before the cache.
	waitGroups, err := s.startGroups(ctx, sc, cancel)
	if err != nil {
		return err
	}
	defer func() { err = errors.Join(err, waitGroups()) }()
	sc.Start()
	if vscFactory != sc.Snapshot {
		vscFactory.Start(ctx.Done())
		if !cache.WaitForCacheSync(ctx.Done(), vscInf.Informer().HasSynced) && ctx.Err() == nil {
			return errors.New("csi-snapshotter: the node's content informer did not sync")
		}
	}
	if !sc.WaitForSync(ctx) || !cache.WaitForCacheSync(ctx.Done(), handlers.HasSynced) {
		if ctx.Err() != nil {
			return nil
		}
		return errors.New("csi-snapshotter: informer caches did not sync")
	}
	s.synced.Store(true)
	logger.Info("CSI snapshotter started", "workers", s.opts.Workers, "node", s.opts.NodeName)
	// A driver on a real connection reports its loss; Run then stops the
	// workers and returns the error, as the other controllers do. The
	// watcher hands its answer over a channel and is waited for: it may
	// answer while ctx ends for another reason.
	loss := make(chan error, 1)
	if w, ok := s.drv.(lossWatcher); ok {
		go func() {
			err := w.WatchLoss(ctx)
			if err != nil {
				cancel()
			}
			loss <- err
		}()
	} else {
		loss <- nil
	}
	s.queue.run(ctx, s.opts.Workers)
	cancel()
	lossErr := <-loss
	logger.Info("CSI snapshotter stopped")
	return lossErr
}

// lossWatcher is implemented by drivers that can report a lost connection.
type lossWatcher interface {
	WatchLoss(ctx context.Context) error
}

// handles reports whether vsc is for this sidecar's driver.
func (s *Sidecar) handles(vsc *crdv1.VolumeSnapshotContent) bool {
	if vsc.Spec.Driver != s.opts.DriverName {
		return false
	}
	if s.opts.NodeName != "" && vsc.Labels[LabelManagedBy] != s.opts.NodeName {
		return false
	}
	return vsc.Spec.Source.VolumeHandle != nil || vsc.Spec.Source.SnapshotHandle != nil
}

func (s *Sidecar) enqueue(obj any) {
	if vsc, ok := obj.(*crdv1.VolumeSnapshotContent); ok && s.handles(vsc) {
		s.queue.add(vsc.Name)
	}
}

// nextPoll returns the delay before the next readiness poll of name.
func (s *Sidecar) nextPoll(name string) time.Duration {
	s.pollMu.Lock()
	defer s.pollMu.Unlock()
	n := s.polls[name]
	s.polls[name] = n + 1
	d := s.opts.ReadyPollStart
	for i := 0; i < n && d < s.opts.ReadyPollMax; i++ {
		d *= 2
	}
	return min(d, s.opts.ReadyPollMax)
}

func (s *Sidecar) resetPolls(name string) {
	s.pollMu.Lock()
	defer s.pollMu.Unlock()
	delete(s.polls, name)
}

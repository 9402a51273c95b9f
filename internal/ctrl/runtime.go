package ctrl

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	snapclient "github.com/kubernetes-csi/external-snapshotter/client/v8/clientset/versioned"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/record"
	"k8s.io/klog/v2"
	"k8s.io/utils/clock"

	"github.com/csi-kit/sidecars/internal/kube"
	"github.com/csi-kit/sidecars/sharedcache"
)

// LossWatcher is a driver that can report a lost connection: WatchLoss
// blocks until ctx ends (nil) or the connection is lost (an error).
// *csiconn.Conn and the controllers' CSI drivers implement it.
type LossWatcher interface {
	WatchLoss(ctx context.Context) error
}

// Config describes one controller to the runtime.
type Config struct {
	// Name names the controller in logs and errors ("resizer").
	Name string
	// Kube is the controller's client; required.
	Kube kubernetes.Interface
	// Snapshot is the snapshot API client, for controllers that watch
	// snapshot objects; nil otherwise.
	Snapshot snapclient.Interface
	// Cache is a cache shared with other controllers. Nil: Run uses a
	// private one over Kube and Snapshot with Transform, and shuts it down
	// when it returns.
	Cache *sharedcache.Cache
	// Transform strips objects entering a private cache; nil means
	// kube.StripForCache. A shared Cache keeps its own transform.
	Transform cache.TransformFunc
	// Recorder receives the controller's events. Nil: Run builds one over
	// Kube, reporting as EventSource, and stops it when it returns.
	Recorder    record.EventRecorder
	EventSource string
	// Driver ends Run with its error when it is a LossWatcher and reports
	// a lost connection; nil or another type: Run ends with ctx only.
	Driver any
	// Clock drives the queues; nil means the real clock.
	Clock clock.WithTicker
}

// Runtime runs one controller: build it with New, ask for its cache,
// queues and handlers, then call Run.
type Runtime struct {
	cfg      Config
	cache    *sharedcache.Cache
	private  bool
	handlers sharedcache.Handlers
	queues   []*Queue
	loops    []func(ctx context.Context)
	synced   []cache.InformerSynced
	pending  []pendingHandler
	errs     []error
	events   forwardingRecorder
	started  chan struct{}
	once     Once
}

// New prepares a runtime; nothing starts until Run. A shared Cache that
// lacks snapshot informers while Config.Snapshot is set is an error.
func New(cfg Config) (*Runtime, error) {
	if cfg.Kube == nil {
		return nil, fmt.Errorf("%s: kubernetes client is nil", cfg.Name)
	}
	rt := &Runtime{cfg: cfg, started: make(chan struct{})}
	switch {
	case cfg.Cache != nil && cfg.Snapshot != nil && cfg.Cache.Snapshot == nil:
		return nil, fmt.Errorf("%s: Options.Cache has no snapshot informers: create it with a snapshot client", cfg.Name)
	case cfg.Cache != nil:
		rt.cache = cfg.Cache
	default:
		transform := cfg.Transform
		if transform == nil {
			transform = kube.StripForCache
		}
		rt.cache, rt.private = sharedcache.NewWithTransform(cfg.Kube, cfg.Snapshot, transform), true
	}
	return rt, nil
}

// Cache is the cache to take informers and listers from.
func (rt *Runtime) Cache() *sharedcache.Cache { return rt.cache }

// Queue returns a new queue drained by r while Run runs.
func (rt *Runtime) Queue(opts QueueOptions, r Reconciler) *Queue {
	if opts.Clock == nil {
		opts.Clock = rt.cfg.Clock
	}
	q := newQueue(opts, r)
	rt.queues = append(rt.queues, q)
	return q
}

// Watch registers h on inf when Run starts, resyncing every resync
// (0 or negative: never), and removes it when Run returns.
func (rt *Runtime) Watch(inf cache.SharedIndexInformer, h cache.ResourceEventHandler, resync time.Duration) {
	rt.pending = append(rt.pending, pendingHandler{inf, h, resync})
}

// Index adds an index to inf unless it has one of that name.
func (rt *Runtime) Index(inf cache.SharedIndexInformer, name string, fn cache.IndexFunc) {
	if err := sharedcache.AddIndex(inf, name, fn); err != nil {
		rt.errs = append(rt.errs, fmt.Errorf("index %s: %w", name, err))
	}
}

// WaitFor adds informers outside the cache (a private factory) that must
// sync before the workers start.
func (rt *Runtime) WaitFor(synced ...cache.InformerSynced) { rt.synced = append(rt.synced, synced...) }

// Go runs loop beside the workers while Run runs (a sweeper, a poller);
// loop returns when its ctx ends.
func (rt *Runtime) Go(loop func(ctx context.Context)) { rt.loops = append(rt.loops, loop) }

// Recorder is the controller's event recorder. Events sent before Run has
// built it, or after it returned, are dropped.
func (rt *Runtime) Recorder() record.EventRecorder { return &rt.events }

// Started is closed once the caches have synced and the workers start.
func (rt *Runtime) Started() <-chan struct{} { return rt.started }

// Run registers the handlers, starts the cache and waits for it to sync,
// calls ready (nil: none) and then runs the queues and loops until ctx ends
// or the driver is lost. It returns nil when ctx ended, the loss error
// (wrapped with the controller's name), or an error when the caches do not
// sync or ready fails. Handlers are removed and a private cache shut down
// before it returns. A Runtime runs once.
func (rt *Runtime) Run(ctx context.Context, ready func(ctx context.Context) error) error {
	if err := rt.once.Begin(rt.cfg.Name); err != nil {
		return err
	}
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	logger := klog.FromContext(ctx)
	stopped := func() {}
	defer func() {
		cancel(nil) // informers and workers stop before the waits below
		for _, q := range rt.queues {
			q.shutDown()
		}
		rt.handlers.RemoveAll()
		if rt.private {
			rt.cache.Shutdown()
		}
		stopped()
	}()
	if err := errors.Join(rt.errs...); err != nil {
		return fmt.Errorf("%s: %w", rt.cfg.Name, err)
	}
	rec := rt.cfg.Recorder
	if rec == nil {
		r, stop, err := kube.RecorderFor(rt.cfg.Kube, rt.cfg.EventSource)
		if err != nil {
			return fmt.Errorf("%s: event recorder: %w", rt.cfg.Name, err)
		}
		rec, stopped = r, stop
	}
	rt.events.set(rec)
	defer rt.events.set(nil)
	for _, p := range rt.pending {
		if err := rt.handlers.Add(p.inf, p.h, p.resync); err != nil {
			return fmt.Errorf("%s: watching: %w", rt.cfg.Name, err)
		}
	}
	rt.cache.Start()
	logger.V(2).Info("Waiting for informer caches to sync", "controller", rt.cfg.Name)
	synced := append([]cache.InformerSynced{rt.handlers.HasSynced}, rt.synced...)
	if !rt.cache.WaitForSync(ctx) || !cache.WaitForCacheSync(ctx.Done(), synced...) {
		if ctx.Err() != nil {
			return nil
		}
		return fmt.Errorf("%s: informer caches did not sync", rt.cfg.Name)
	}
	if ready != nil {
		if err := ready(ctx); err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return fmt.Errorf("%s: %w", rt.cfg.Name, err)
		}
	}
	close(rt.started)

	var wg sync.WaitGroup
	for _, q := range rt.queues {
		wg.Add(1)
		go func() { defer wg.Done(); q.run(ctx) }()
	}
	for _, loop := range rt.loops {
		wg.Add(1)
		go func() { defer wg.Done(); loop(ctx) }()
	}
	if w, ok := rt.cfg.Driver.(LossWatcher); ok {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := w.WatchLoss(ctx); err != nil && ctx.Err() == nil {
				logger.Error(err, "CSI driver connection lost; stopping", "controller", rt.cfg.Name)
				cancel(err)
			}
		}()
	}
	<-ctx.Done()
	wg.Wait()
	if err := context.Cause(ctx); err != nil && !errors.Is(err, context.Canceled) && !errors.Is(err, context.DeadlineExceeded) {
		return fmt.Errorf("%s: %w", rt.cfg.Name, err)
	}
	return nil
}

type pendingHandler struct {
	inf    cache.SharedIndexInformer
	h      cache.ResourceEventHandler
	resync time.Duration
}

// Once guards a Run that may be called once.
type Once struct{ done atomic.Bool }

// Begin returns nil the first time and an error naming component after.
func (o *Once) Begin(component string) error {
	if !o.done.CompareAndSwap(false, true) {
		return fmt.Errorf("%s: Run called twice; build a new one with New", component)
	}
	return nil
}

package ctrl

import (
	"context"
	"sync"
	"time"

	"k8s.io/client-go/util/workqueue"
	"k8s.io/klog/v2"
	"k8s.io/utils/clock"
)

// Result is what one reconcile asks of the queue. The zero Result means
// done: the key's backoff is reset and it comes back only when an event
// adds it again.
type Result struct {
	// RequeueAfter brings the key back after this delay without counting
	// a failure (a readiness poll, a wait on another object).
	RequeueAfter time.Duration
}

// Reconciler brings the object named by key towards what it should be.
// An error brings the key back with exponential backoff.
type Reconciler interface {
	Reconcile(ctx context.Context, key string) (Result, error)
}

// ReconcileFunc adapts a function to Reconciler.
type ReconcileFunc func(ctx context.Context, key string) (Result, error)

// Reconcile calls f.
func (f ReconcileFunc) Reconcile(ctx context.Context, key string) (Result, error) { return f(ctx, key) }

var _ Reconciler = ReconcileFunc(nil)

// QueueOptions configures one queue.
type QueueOptions struct {
	// Name names the queue in logs and workqueue metrics; the log key of
	// each reconcile is LogKey, or Name when LogKey is empty.
	Name   string
	LogKey string
	// Workers is how many keys are reconciled at once; at least 1.
	Workers int
	// RetryStart and RetryMax bound the exponential backoff after errors.
	RetryStart, RetryMax time.Duration
	// Clock drives delays and backoff; nil means the real clock.
	Clock clock.WithTicker
}

// Queue is a rate-limited work queue and the workers that drain it. Build
// it with Runtime.Queue; the runtime starts and stops the workers.
type Queue struct {
	opts QueueOptions
	q    workqueue.TypedRateLimitingInterface[string]
	r    Reconciler
}

func newQueue(opts QueueOptions, r Reconciler) *Queue {
	opts.Workers = max(opts.Workers, 1)
	if opts.LogKey == "" {
		opts.LogKey = opts.Name
	}
	if opts.RetryStart <= 0 {
		opts.RetryStart = time.Second
	}
	if opts.RetryMax < opts.RetryStart {
		opts.RetryMax = max(opts.RetryStart, 5*time.Minute)
	}
	cfg := workqueue.TypedRateLimitingQueueConfig[string]{Name: opts.Name}
	if opts.Clock != nil {
		cfg.Clock = opts.Clock
	}
	return &Queue{
		opts: opts,
		q: workqueue.NewTypedRateLimitingQueueWithConfig(
			workqueue.NewTypedItemExponentialFailureRateLimiter[string](opts.RetryStart, opts.RetryMax), cfg),
		r: r,
	}
}

// Add queues key now.
func (q *Queue) Add(key string) { q.q.Add(key) }

// AddAfter queues key after d.
func (q *Queue) AddAfter(key string, d time.Duration) { q.q.AddAfter(key, d) }

// Forget resets the backoff of key (a deleted object, a state that makes
// earlier failures irrelevant).
func (q *Queue) Forget(key string) { q.q.Forget(key) }

// Retry queues key now with its backoff reset: a change that may unblock it.
func (q *Queue) Retry(key string) {
	q.q.Forget(key)
	q.q.Add(key)
}

// Len is the number of keys waiting (not counting delayed ones).
func (q *Queue) Len() int { return q.q.Len() }

// Failures is how many times in a row key has failed.
func (q *Queue) Failures(key string) int { return q.q.NumRequeues(key) }

// run starts the workers and blocks until ctx ends and every worker has
// returned from its current reconcile.
func (q *Queue) run(ctx context.Context) {
	var wg sync.WaitGroup
	for range q.opts.Workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for q.next(ctx) {
			}
		}()
	}
	<-ctx.Done()
	q.q.ShutDown()
	wg.Wait()
}

// shutDown stops the queue of a runtime that never started its workers.
func (q *Queue) shutDown() { q.q.ShutDown() }

func (q *Queue) next(ctx context.Context) bool {
	key, quit := q.q.Get()
	if quit {
		return false
	}
	defer q.q.Done(key)
	logger := klog.FromContext(ctx).WithValues(q.opts.LogKey, key)
	res, err := q.r.Reconcile(klog.NewContext(ctx, logger), key)
	switch {
	case err != nil:
		if ctx.Err() == nil {
			logger.V(2).Info("Reconcile failed; will retry", "err", err, "failures", q.q.NumRequeues(key)+1)
		}
		q.q.AddRateLimited(key)
	case res.RequeueAfter > 0:
		q.q.Forget(key)
		q.q.AddAfter(key, res.RequeueAfter)
	default:
		q.q.Forget(key)
	}
	return true
}

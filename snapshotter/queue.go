package snapshotter

import (
	"context"
	"sync"
	"time"

	"k8s.io/client-go/util/workqueue"
	"k8s.io/klog/v2"
)

// result of one sync: requeue after a delay without counting a failure
// (readiness polls, waits), or done.
type result struct {
	after time.Duration
}

// queue is a rate-limited work queue with its workers.
type queue struct {
	name string
	q    workqueue.TypedRateLimitingInterface[string]
	sync func(ctx context.Context, key string) (result, error)
}

func newQueue(name string, start, max time.Duration, sync func(context.Context, string) (result, error)) *queue {
	return &queue{
		name: name,
		q: workqueue.NewTypedRateLimitingQueueWithConfig(
			workqueue.NewTypedItemExponentialFailureRateLimiter[string](start, max),
			workqueue.TypedRateLimitingQueueConfig[string]{Name: name}),
		sync: sync,
	}
}

func (q *queue) add(key string) { q.q.Add(key) }

// run starts n workers and blocks until ctx ends and they have returned.
func (q *queue) run(ctx context.Context, n int) {
	var wg sync.WaitGroup
	for range n {
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

func (q *queue) next(ctx context.Context) bool {
	key, quit := q.q.Get()
	if quit {
		return false
	}
	defer q.q.Done(key)
	logger := klog.FromContext(ctx).WithValues(q.name, key)
	res, err := q.sync(klog.NewContext(ctx, logger), key)
	switch {
	case err != nil:
		if ctx.Err() == nil {
			logger.V(2).Info("Sync failed, will retry", "err", err)
		}
		q.q.AddRateLimited(key)
	case res.after > 0:
		q.q.Forget(key)
		q.q.AddAfter(key, res.after)
	default:
		q.q.Forget(key)
	}
	return true
}

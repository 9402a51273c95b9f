package ctrl

import (
	"context"
	"errors"
	"slices"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"
	"k8s.io/utils/clock"
	clocktesting "k8s.io/utils/clock/testing"

	"github.com/csi-kit/sidecars/testkit/eventually"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// calls records the times of each reconcile of a key, by the fake clock.
type calls struct {
	mu  sync.Mutex
	clk *clocktesting.FakeClock
	at  []time.Time
}

func (c *calls) add() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.at = append(c.at, c.clk.Now())
	return len(c.at)
}

func (c *calls) last() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.at[len(c.at)-1]
}

func (c *calls) count() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.at)
}

// runQueue drains q until the test ends.
func runQueue(t *testing.T, q *Queue) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); q.run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
}

// timerClock is a fake clock that remembers when each timer set on it is due.
// The queue reads the clock when a reconcile returns and sets a timer for the
// key later, on another goroutine; a test that moved time in between would
// push the key back by that much. Waiting for the timer first removes the race.
// (The queue's heartbeat ticker is always waiting, so HasWaiters says nothing.)
// The tests keep every delay under the heartbeat's 10s: a heartbeat makes the
// queue set its timer again from a time it read before the test moved the
// clock, and that timer would then be due later than the key.
type timerClock struct {
	*clocktesting.FakeClock
	mu  sync.Mutex
	due []time.Time
}

func newTimerClock() *timerClock {
	return &timerClock{FakeClock: clocktesting.NewFakeClock(time.Unix(1000, 0))}
}

func (c *timerClock) NewTimer(d time.Duration) clock.Timer {
	c.mu.Lock()
	c.due = append(c.due, c.Now().Add(d))
	c.mu.Unlock()
	return c.FakeClock.NewTimer(d)
}

func (c *timerClock) timerAt(at time.Time) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.ContainsFunc(c.due, at.Equal)
}

// stepTo waits until the queue has set a timer due at due, then moves the
// clock to just before it, checks that no reconcile came early, and moves it
// on to due.
func stepTo(t *testing.T, clk *timerClock, c *calls, due time.Time) {
	t.Helper()
	eventually.Require(t, 10*time.Second, "a timer due at "+due.Sub(time.Unix(1000, 0)).String(),
		eventually.True("timer set", func() bool { return clk.timerAt(due) }))
	before := c.count()
	clk.SetTime(due.Add(-time.Millisecond))
	if n := c.count(); n != before {
		t.Fatalf("reconciled %d times 1ms before %v; want %d until then", n, due, before)
	}
	clk.SetTime(due)
}

func TestRequeueAfterComesBackAfterTheDelay(t *testing.T) {
	clk := newTimerClock()
	c := &calls{clk: clk.FakeClock}
	q := newQueue(QueueOptions{Name: "test", Clock: clk}, ReconcileFunc(func(context.Context, string) (Result, error) {
		if c.add() == 1 {
			return Result{RequeueAfter: 5 * time.Second}, nil
		}
		return Result{}, nil
	}))
	runQueue(t, q)
	q.Add("a")
	eventually.Require(t, 10*time.Second, "the first reconcile", eventually.True("1 call", func() bool { return c.count() == 1 }))
	stepTo(t, clk, c, c.last().Add(5*time.Second))
	eventually.Require(t, 10*time.Second, "the requeued reconcile", eventually.True("2 calls", func() bool { return c.count() == 2 }))
	if q.Failures("a") != 0 {
		t.Fatalf("a requeue counted %d failures; want 0", q.Failures("a"))
	}
}

func TestErrorsBackOffExponentiallyOnTheInjectedClock(t *testing.T) {
	clk := newTimerClock()
	c := &calls{clk: clk.FakeClock}
	q := newQueue(QueueOptions{Name: "test", Clock: clk, RetryStart: 500 * time.Millisecond, RetryMax: 2 * time.Second},
		ReconcileFunc(func(context.Context, string) (Result, error) {
			if c.add() <= 4 {
				return Result{}, errors.New("driver busy")
			}
			return Result{}, nil
		}))
	runQueue(t, q)
	q.Add("a")
	for i, d := range []time.Duration{500 * time.Millisecond, time.Second, 2 * time.Second, 2 * time.Second} {
		want := i + 1
		eventually.Require(t, 10*time.Second, "a reconcile", eventually.True("call", func() bool { return c.count() == want }))
		stepTo(t, clk, c, c.last().Add(d))
	}
	eventually.Require(t, 10*time.Second, "the fifth reconcile", eventually.True("5 calls", func() bool { return c.count() == 5 }))
	eventually.Require(t, 10*time.Second, "backoff reset after success", eventually.True("0 failures", func() bool { return q.Failures("a") == 0 }))
}

func TestShutdownWaitsForTheReconcileInFlight(t *testing.T) {
	entered, release := make(chan struct{}), make(chan struct{})
	var finished bool
	q := newQueue(QueueOptions{Name: "test", Workers: 2}, ReconcileFunc(func(ctx context.Context, _ string) (Result, error) {
		close(entered)
		<-release
		finished = true
		return Result{}, nil
	}))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); q.run(ctx) }()
	q.Add("a")
	<-entered
	cancel()
	select {
	case <-done:
		t.Fatal("run returned while a reconcile was in flight")
	case <-time.After(50 * time.Millisecond):
	}
	close(release)
	<-done
	if !finished {
		t.Fatal("the reconcile in flight did not finish")
	}
}

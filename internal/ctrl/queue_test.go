package ctrl

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"
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

// step advances clk by d once a timer waits on it.
func step(t *testing.T, clk *clocktesting.FakeClock, d time.Duration) {
	t.Helper()
	eventually.Require(t, 10*time.Second, "a timer on the fake clock", eventually.True("waiters", clk.HasWaiters))
	clk.Step(d)
}

func TestRequeueAfterComesBackAfterTheDelay(t *testing.T) {
	clk := clocktesting.NewFakeClock(time.Unix(1000, 0))
	c := &calls{clk: clk}
	q := newQueue(QueueOptions{Name: "test", Clock: clk}, ReconcileFunc(func(context.Context, string) (Result, error) {
		if c.add() == 1 {
			return Result{RequeueAfter: 10 * time.Second}, nil
		}
		return Result{}, nil
	}))
	runQueue(t, q)
	q.Add("a")
	eventually.Require(t, 10*time.Second, "the first reconcile", eventually.True("1 call", func() bool { return c.count() == 1 }))
	step(t, clk, 9*time.Second)
	if n := c.count(); n != 1 {
		t.Fatalf("reconciled %d times 9s in; want 1 until the 10s delay has passed", n)
	}
	clk.Step(time.Second)
	eventually.Require(t, 10*time.Second, "the requeued reconcile", eventually.True("2 calls", func() bool { return c.count() == 2 }))
	if q.Failures("a") != 0 {
		t.Fatalf("a requeue counted %d failures; want 0", q.Failures("a"))
	}
}

func TestErrorsBackOffExponentiallyOnTheInjectedClock(t *testing.T) {
	clk := clocktesting.NewFakeClock(time.Unix(1000, 0))
	c := &calls{clk: clk}
	q := newQueue(QueueOptions{Name: "test", Clock: clk, RetryStart: time.Second, RetryMax: 4 * time.Second},
		ReconcileFunc(func(context.Context, string) (Result, error) {
			if c.add() <= 4 {
				return Result{}, errors.New("driver busy")
			}
			return Result{}, nil
		}))
	runQueue(t, q)
	q.Add("a")
	for i, d := range []time.Duration{time.Second, 2 * time.Second, 4 * time.Second, 4 * time.Second} {
		want := i + 1
		eventually.Require(t, 10*time.Second, "a reconcile", eventually.True("call", func() bool { return c.count() == want }))
		step(t, clk, d-time.Millisecond)
		if c.count() != want {
			t.Fatalf("retry %d came before its backoff of %v", want, d)
		}
		clk.Step(time.Millisecond)
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

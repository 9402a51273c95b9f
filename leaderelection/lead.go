package leaderelection

import (
	"context"
	"sync"
	"time"

	"k8s.io/klog/v2"
)

// termGuard holds the leader's work deadline: renew deadline after the
// start of the last successful renewal. Once passed it stays passed, and a
// late renewal cannot revive the work.
type termGuard struct {
	mu       sync.Mutex
	deadline time.Time
	lost     bool
	lostCh   chan struct{}
}

func newTermGuard(deadline time.Time) *termGuard {
	return &termGuard{deadline: deadline, lostCh: make(chan struct{})}
}

// extend moves the deadline to d; false if the term was already lost.
func (g *termGuard) extend(d time.Time) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.lost {
		return false
	}
	if d.After(g.deadline) {
		g.deadline = d
	}
	return true
}

// left is the time until the deadline at now; it marks the term lost and
// returns zero when the deadline has passed.
func (g *termGuard) left(now time.Time) time.Duration {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.lost {
		return 0
	}
	if d := g.deadline.Sub(now); d > 0 {
		return d
	}
	g.lose()
	return 0
}

// end marks the term lost now.
func (g *termGuard) end() {
	g.mu.Lock()
	defer g.mu.Unlock()
	if !g.lost {
		g.lose()
	}
}

func (g *termGuard) lose() {
	g.lost = true
	close(g.lostCh)
}

// lead runs work while renewing the Lease acquired by the attempt that
// started at acquiredAt. The work context ends when ctx ends or, at the
// latest, renew deadline after the start of the last successful renewal,
// before anything else is tried: a standby cannot take over earlier than a
// lease duration after that renewal, and Validate keeps the lease duration
// at least stopMargin above the renew deadline. lead returns once work has
// returned; lost reports that the term ended under the work.
func (c *campaign) lead(ctx context.Context, acquiredAt time.Time, renewed func(time.Time),
	work func(context.Context) error) (lost bool, workErr error) {
	logger := klog.FromContext(ctx)
	o := c.opts
	guard := newTermGuard(acquiredAt.Add(o.RenewDeadline))
	renewed(acquiredAt)

	workCtx, stopWork := context.WithCancel(ctx)
	defer stopWork()
	// Renewals go on while a cancelled work winds down; they end when the
	// term is lost or lead returns.
	renewCtx, stopRenew := context.WithCancel(context.WithoutCancel(ctx))
	defer stopRenew()

	workDone := make(chan struct{})
	go func() {
		defer close(workDone)
		workErr = work(workCtx)
	}()

	guardDone := make(chan struct{})
	go func() {
		defer close(guardDone)
		for {
			left := guard.left(c.clock.Now())
			if left <= 0 {
				// Stop the work first; a hung renewal is abandoned with it.
				stopWork()
				stopRenew()
				return
			}
			t := c.clock.NewTimer(left)
			select {
			case <-t.C():
			case <-workDone:
				t.Stop()
				return
			}
		}
	}()

	renewAt := acquiredAt.Add(o.RetryPeriod)
	ctxDone := ctx.Done()
	for running := true; running; {
		t := c.clock.NewTimer(renewAt.Sub(c.clock.Now()))
		fired := false
		select {
		case <-t.C():
			fired = true
		case <-workDone:
			running = false
		case <-guard.lostCh:
			running = false
		case <-ctxDone:
			ctxDone = nil
			stopWork() // keep renewing until the work has returned
		}
		t.Stop()
		if !running || !fired {
			continue
		}
		start := c.clock.Now()
		// A renewal may take until the deadline, when the guard cancels
		// renewCtx: a slow API server then costs no term, and a retry over
		// a hung connection would not help.
		ok, err := c.tryTake(renewCtx, start, true)
		switch {
		case ok && guard.extend(start.Add(o.RenewDeadline)):
			renewed(start)
			renewAt = start.Add(o.RetryPeriod)
		case ok || err == nil:
			// Renewed too late, or someone else holds the Lease now.
			logger.Info("Lease taken over or renewed past the deadline, stopping work", "holder", holderOf(c.observedLease()))
			guard.end()
			stopWork()
		default:
			logger.Info("Failed to renew the lease, retrying until the renew deadline", "err", err)
			// Retry sooner than a full period, so one slow or failed
			// request does not end the term.
			renewAt = c.clock.Now().Add(max(o.RetryPeriod/4, 10*time.Millisecond))
		}
	}
	stopWork()
	<-workDone
	stopRenew()
	<-guardDone
	guard.mu.Lock()
	lost = guard.lost
	guard.mu.Unlock()
	return lost, workErr
}

package leaderelection

import (
	"context"
	"math/rand/v2"
	"sync"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/klog/v2"
	"k8s.io/utils/clock"
)

// campaign is one Run's view of the Lease.
//
// A standby decides that a holder's term is over the way every client-go
// elector does: a term lasts the holder's lease duration from the moment
// this candidate *saw* the Lease change, on its own clock. Seeing a change
// late only delays a takeover; a change is never seen before it was
// written, so the term never ends early. What this campaign adds is when it
// looks: a watch sees each renewal as it is written, and a timer fires when
// the observed term ends, so the takeover comes then and not at the next
// jittered poll.
type campaign struct {
	opts   Options
	leases leases
	clock  clock.Clock
	onNew  func(holder string)
	onSeen func(resourceVersion string) // every change seen; may be nil

	mu         sync.Mutex
	observed   *coordinationv1.Lease // nil: none seen, or deleted
	observedAt time.Time
	changed    chan struct{} // signalled (never blocks) when observed changes
}

func newCampaign(opts Options, l leases, onNew func(string)) *campaign {
	return &campaign{opts: opts, leases: l, clock: opts.Clock, onNew: onNew, changed: make(chan struct{}, 1)}
}

// observe records l as seen now if it differs from what was last seen;
// l nil means the Lease was deleted.
func (c *campaign) observe(l *coordinationv1.Lease) {
	c.mu.Lock()
	same := (l == nil && c.observed == nil) ||
		(l != nil && c.observed != nil && l.ResourceVersion == c.observed.ResourceVersion)
	before := holderOf(c.observed)
	if !same {
		c.observed, c.observedAt = l, c.clock.Now()
	}
	c.mu.Unlock()
	if same {
		return
	}
	if c.onSeen != nil && l != nil {
		c.onSeen(l.ResourceVersion)
	}
	if h := holderOf(l); h != before && c.onNew != nil {
		c.onNew(h)
	}
	select {
	case c.changed <- struct{}{}:
	default:
	}
}

// untilExpiry is how long the observed holder's term still runs; zero or
// less when it is over or there is no holder.
func (c *campaign) untilExpiry() time.Duration {
	c.mu.Lock()
	defer c.mu.Unlock()
	if holderOf(c.observed) == "" {
		return 0
	}
	return c.observedAt.Add(termOf(c.observed, c.opts.LeaseDuration)).Sub(c.clock.Now())
}

// requestTimeout bounds each request of a standby, so that one hung
// request does not hold up its campaign.
func (c *campaign) requestTimeout() time.Duration { return max(c.opts.RenewDeadline/2, time.Second) }

// acquire campaigns until this candidate holds the Lease (true, with the
// time the winning attempt started) or ctx ends (false).
func (c *campaign) acquire(ctx context.Context) (time.Time, bool) {
	logger := klog.FromContext(ctx)
	watchCtx, stopWatch := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		c.watch(watchCtx)
	}()
	defer wg.Wait()
	defer stopWatch()

	for {
		start := c.clock.Now()
		attemptCtx, cancel := context.WithTimeout(ctx, c.requestTimeout())
		ok, err := c.tryTake(attemptCtx, start, false)
		cancel()
		if ok {
			return start, true
		}
		if ctx.Err() != nil {
			return time.Time{}, false
		}
		poll := jittered(c.opts.RetryPeriod)
		switch {
		case apierrors.IsConflict(err) || apierrors.IsAlreadyExists(err):
			poll = 0 // another candidate wrote first: read the winner now
		case err != nil:
			logger.V(2).Info("Could not read or take the lease", "err", err)
		default:
			logger.V(5).Info("Lease is held", "holder", holderOf(c.observedLease()))
		}
		if !c.waitForChance(ctx, c.clock.Now().Add(poll)) {
			return time.Time{}, false
		}
	}
}

// waitForChance waits until pollAt, the end of the observed holder's term,
// or a change that frees the Lease, whichever comes first; false when ctx
// ends.
func (c *campaign) waitForChance(ctx context.Context, pollAt time.Time) bool {
	for {
		wait := pollAt.Sub(c.clock.Now())
		if holderOf(c.observedLease()) == "" {
			wait = 0 // released or deleted: try now
		} else if left := c.untilExpiry(); left < wait {
			wait = left
		}
		if wait <= 0 {
			return true
		}
		t := c.clock.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return false
		case <-t.C():
			return true
		case <-c.changed:
			// A renewal moves the end of the term; a release frees the
			// Lease at once. Recompute.
			t.Stop()
		}
	}
}

func (c *campaign) observedLease() *coordinationv1.Lease {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.observed
}

// watch feeds every change of the Lease to observe until ctx ends; it
// reconnects after errors and after the server ends the watch.
func (c *campaign) watch(ctx context.Context) {
	selector := fields.OneTermEqualSelector("metadata.name", c.opts.LockName).String()
	for ctx.Err() == nil {
		w, err := c.leases.Watch(ctx, metav1.ListOptions{FieldSelector: selector})
		if err != nil {
			t := c.clock.NewTimer(c.opts.RetryPeriod)
			select {
			case <-ctx.Done():
			case <-t.C():
			}
			t.Stop()
			continue
		}
		c.consume(ctx, w)
		w.Stop()
	}
}

func (c *campaign) consume(ctx context.Context, w watch.Interface) {
	for {
		select {
		case <-ctx.Done():
			return
		case ev, ok := <-w.ResultChan():
			if !ok {
				return
			}
			switch ev.Type {
			case watch.Added, watch.Modified:
				if l, ok := ev.Object.(*coordinationv1.Lease); ok {
					c.observe(l)
				}
			case watch.Deleted:
				c.observe(nil)
			case watch.Error:
				return
			}
		}
	}
}

// jittered spreads polls of several standbys: d to 1.2 d.
func jittered(d time.Duration) time.Duration {
	return d + time.Duration(rand.Int64N(int64(d)/5+1))
}

package leaderelection

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/klog/v2"
)

// ErrLeaseLost is wrapped by Run's error when this replica stopped leading
// while its work was still running.
var ErrLeaseLost = errors.New("leader election lost")

// Elector runs work while holding a Lease.
type Elector struct {
	opts   Options
	leases leases

	mu     sync.Mutex
	leader string

	seen      atomic.Value // resourceVersion of the last Lease change seen, for tests
	leading   atomic.Bool
	lastRenew atomic.Int64 // start of the last successful renewal, UnixNano on opts.Clock
}

// New validates opts and prepares an Elector; nothing starts until Run.
// client should be dedicated to the election (see NewClient).
func New(opts Options, client kubernetes.Interface) (*Elector, error) {
	if client == nil {
		return nil, errors.New("leader election: client is nil")
	}
	opts = opts.WithDefaults()
	return newElector(opts, client.CoordinationV1().Leases(opts.Namespace))
}

func newElector(opts Options, l leases) (*Elector, error) {
	opts = opts.WithDefaults()
	if err := opts.Validate(); err != nil {
		return nil, fmt.Errorf("leader election: %w", err)
	}
	return &Elector{opts: opts, leases: l}, nil
}

// NewClient builds a clientset for the election alone, from a copy of cfg
// with its own rate limiter (QPS 20, burst 40) and no client-wide timeout,
// which would also cut the standby's Lease watch. The election bounds its
// requests itself: a standby's by half the renew deadline (at least 1s), a
// leader's renewals by the end of its term.
func NewClient(cfg *rest.Config, opts Options) (kubernetes.Interface, error) {
	c := rest.CopyConfig(cfg)
	c.RateLimiter = nil
	c.QPS, c.Burst = 20, 40
	c.Timeout = 0
	c = rest.AddUserAgent(c, "leader-election")
	return kubernetes.NewForConfig(c)
}

// Options returns the effective options, defaults filled.
func (e *Elector) Options() Options { return e.opts }

// Identity is this candidate's identity in the Lease.
func (e *Elector) Identity() string { return e.opts.Identity }

// Leader is the last observed holder, or "".
func (e *Elector) Leader() string {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.leader
}

// HealthCheck is served at /healthz/leader-election. It fails while this
// replica leads and its last successful renewal started more than lease
// duration + HealthTimeout ago; standbys are always healthy.
func (e *Elector) HealthCheck() interface {
	Name() string
	Check(*http.Request) error
} {
	return healthCheck{e}
}

type healthCheck struct{ e *Elector }

func (h healthCheck) Name() string { return "leader-election" }

func (h healthCheck) Check(*http.Request) error {
	e := h.e
	if !e.leading.Load() {
		return nil
	}
	since := e.opts.Clock.Since(time.Unix(0, e.lastRenew.Load()))
	if limit := e.opts.LeaseDuration + e.opts.HealthTimeout; since > limit {
		return fmt.Errorf("leading without a successful renewal for %v (limit %v)", since.Truncate(time.Millisecond), limit)
	}
	return nil
}

// Run campaigns for the Lease until ctx ends, runs work while leading, and
// returns:
//   - nil when ctx ended (the Lease released unless KeepOnCancel);
//   - work's own result when work returned by itself (the Lease released
//     unless KeepOnCancel);
//   - an error wrapping ErrLeaseLost when leadership ended under running work.
//
// work gets a context that ends when ctx ends or, at the latest, renew
// deadline after the start of the last successful renewal. Run keeps
// renewing until work returns, and releases the Lease only after that,
// within a short bound (ReleaseTimeout).
func (e *Elector) Run(ctx context.Context, work func(ctx context.Context) error) error {
	logger := klog.FromContext(ctx).WithValues("lease", e.opts.Namespace+"/"+e.opts.LockName, "identity", e.opts.Identity)
	ctx = klog.NewContext(ctx, logger)
	c := newCampaign(e.opts, e.leases, func(holder string) {
		e.mu.Lock()
		e.leader = holder
		e.mu.Unlock()
		if holder != e.opts.Identity {
			logger.V(2).Info("New leader observed", "leader", holder)
		}
	})
	c.onSeen = func(rv string) { e.seen.Store(rv) }

	logger.Info("Waiting to acquire the lease")
	acquiredAt, ok := c.acquire(ctx)
	if !ok {
		return nil
	}
	logger.Info("Became leader, starting work")
	e.leading.Store(true)
	lost, workErr := c.lead(ctx, acquiredAt, func(t time.Time) { e.lastRenew.Store(t.UnixNano()) }, work)
	e.leading.Store(false)
	released := false
	if !e.opts.KeepOnCancel {
		// The work has returned: releasing now lets a standby start at
		// once. Bounded, since after a lost term the API may be unreachable.
		relCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), e.opts.ReleaseTimeout)
		var err error
		if released, err = c.release(relCtx); err != nil {
			logger.Info("Could not release the lease; standbys take over when it expires", "err", err)
		}
		cancel()
	}
	switch {
	case lost && ctx.Err() == nil:
		logger.Error(nil, "Lost the lease, work stopped", "released", released)
		return fmt.Errorf("%w: lease %s/%s was not renewed within %v", ErrLeaseLost, e.opts.Namespace, e.opts.LockName, e.opts.RenewDeadline)
	case ctx.Err() != nil:
		logger.Info("Stopped", "released", released)
		return nil
	default:
		return workErr
	}
}

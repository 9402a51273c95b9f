package leaderelection

import (
	"context"
	"time"

	"errors"
	"fmt"
	coordinationv1 "k8s.io/api/coordination/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/watch"
	"net/http"
	"sync"
	"sync/atomic"

	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/leaderelection"
	"k8s.io/client-go/tools/leaderelection/resourcelock"
	"k8s.io/klog/v2"
)

// ErrLeaseLost is wrapped by Run's error when this replica stopped leading
// while its work was still running.
var ErrLeaseLost = errors.New("leader election lost")

// Elector runs work while holding a Lease.
type Elector struct {
	opts   Options
	client kubernetes.Interface
	health *healthCheck

	mu     sync.Mutex
	leader string
}

// New validates opts and prepares an Elector; nothing starts until Run.
// client should be dedicated to the election (see NewClient).
func New(opts Options, client kubernetes.Interface) (*Elector, error) {
	if client == nil {
		return nil, errors.New("leader election: client is nil")
	}
	opts = opts.WithDefaults()
	if err := opts.Validate(); err != nil {
		return nil, fmt.Errorf("leader election: %w", err)
	}
	return &Elector{
		opts:   opts,
		client: client,
		health: &healthCheck{adaptor: leaderelection.NewLeaderHealthzAdaptor(opts.HealthTimeout)},
	}, nil
}

// NewClient builds a clientset for the election alone, from a copy of cfg
// with its own rate limiter (QPS 20, burst 40) and a per-request timeout of
// half the renew deadline, so one hung request cannot eat the deadline.
func NewClient(cfg *rest.Config, opts Options) (kubernetes.Interface, error) {
	opts = opts.WithDefaults()
	c := rest.CopyConfig(cfg)
	c.RateLimiter = nil
	c.QPS, c.Burst = 20, 40
	c.Timeout = max(opts.RenewDeadline/2, 1e9)
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
// replica leads and its last renewal is older than lease duration +
// HealthTimeout; standbys are always healthy.
func (e *Elector) HealthCheck() interface {
	Name() string
	Check(*http.Request) error
} {
	return e.health
}

type healthCheck struct {
	adaptor *leaderelection.HealthzAdaptor
}

func (h *healthCheck) Name() string                { return "leader-election" }
func (h *healthCheck) Check(r *http.Request) error { return h.adaptor.Check(r) }

// Run campaigns for the Lease until ctx ends, runs work while leading, and
// returns:
//   - nil when ctx ended (the Lease released unless KeepOnCancel);
//   - work's own result when work returned by itself (the Lease released);
//   - an error wrapping ErrLeaseLost when leadership ended under running work.
//
// work gets a context that ends when leadership or ctx ends; Run waits for
// work to return before it releases the Lease or returns.
func (e *Elector) Run(ctx context.Context, work func(ctx context.Context) error) error {
	logger := klog.FromContext(ctx).WithValues("lease", e.opts.Namespace+"/"+e.opts.LockName, "identity", e.opts.Identity)
	ctx = klog.NewContext(ctx, logger)

	inner, err := resourcelock.NewWithLabels(resourcelock.LeasesResourceLock,
		e.opts.Namespace, e.opts.LockName,
		e.client.CoreV1(), e.client.CoordinationV1(),
		resourcelock.ResourceLockConfig{Identity: e.opts.Identity},
		e.opts.Labels)
	if err != nil {
		return fmt.Errorf("leader election: creating lock: %w", err)
	}
	lock := &watchedLock{Interface: inner, identity: e.opts.Identity}

	// The election runs on its own context so that the Lease is released
	// only after the work has stopped.
	electionCtx, stopElection := context.WithCancel(klog.NewContext(context.WithoutCancel(ctx), logger))
	defer stopElection()

	var (
		workErr  error
		lost     bool
		workDone = make(chan struct{})
	)
	config := leaderelection.LeaderElectionConfig{
		Lock:            lock,
		LeaseDuration:   e.opts.LeaseDuration,
		RenewDeadline:   e.opts.RenewDeadline,
		RetryPeriod:     e.opts.RetryPeriod,
		ReleaseOnCancel: !e.opts.KeepOnCancel,
		Name:            e.opts.LockName,
		Callbacks: leaderelection.LeaderCallbacks{
			OnStartedLeading: func(leadCtx context.Context) {
				defer close(workDone)
				// Work finished or was stopped: end the election, which
				// releases the Lease.
				defer stopElection()
				workCtx, cancel := context.WithCancel(leadCtx)
				defer cancel()
				defer context.AfterFunc(ctx, cancel)()
				logger.Info("Became leader, starting work")
				workErr = work(workCtx)
				// leadCtx ends before work returns only when renewals failed:
				// we cancel the election ourselves only after this point.
				lost = leadCtx.Err() != nil && ctx.Err() == nil
			},
			OnStoppedLeading: func() {},
			OnNewLeader: func(id string) {
				e.mu.Lock()
				e.leader = id
				e.mu.Unlock()
				if id != e.opts.Identity {
					logger.V(2).Info("New leader elected", "leader", id)
				}
			},
		},
	}

	// A standby stops campaigning as soon as ctx ends; a leader's election
	// is stopped by OnStartedLeading once its work has returned.
	defer context.AfterFunc(ctx, func() {
		if !lock.acquired.Load() {
			stopElection()
		}
	})()

	logger.Info("Waiting to acquire the lease")
	for {
		lock.thaw()
		le, err := leaderelection.NewLeaderElector(config)
		if err != nil {
			return fmt.Errorf("leader election: %w", err)
		}
		e.health.adaptor.SetLeaderElection(le)
		// While standing by, a release of the Lease by its holder restarts
		// the campaign at once instead of at the next retry period, so a
		// planned handover takes milliseconds, not seconds.
		attemptCtx, cancelAttempt := context.WithCancel(electionCtx)
		released := make(chan struct{})
		watchDone := make(chan struct{})
		go func() {
			defer close(watchDone)
			if e.waitForRelease(attemptCtx, lock) && lock.freeze() {
				close(released)
				cancelAttempt()
			}
		}()
		le.Run(attemptCtx)
		cancelAttempt()
		<-watchDone
		if lock.acquired.Load() || electionCtx.Err() != nil {
			break
		}
		select {
		case <-released:
			logger.V(2).Info("Lease released by its holder, campaigning now")
			continue
		default:
		}
		break
	}

	// client-go starts OnStartedLeading in a goroutine once it has acquired
	// the Lease; the lock saw that write, so wait for the work to return.
	if !lock.acquired.Load() {
		if ctx.Err() != nil {
			return nil
		}
		return fmt.Errorf("%w: election for %s/%s ended before leading", ErrLeaseLost, e.opts.Namespace, e.opts.LockName)
	}
	<-workDone
	switch {
	case lost:
		logger.Error(nil, "Lost the lease, work stopped")
		return fmt.Errorf("%w: lease %s/%s was not renewed within %v", ErrLeaseLost, e.opts.Namespace, e.opts.LockName, e.opts.RenewDeadline)
	case ctx.Err() != nil:
		logger.Info("Stopped; lease released", "released", !e.opts.KeepOnCancel)
		return nil
	default:
		return workErr
	}
}

// watchedLock notes when this candidate wrote itself into the Lease, which
// client-go does just before starting OnStartedLeading. While frozen it
// refuses to acquire, so a campaign being restarted cannot win the race.
type watchedLock struct {
	resourcelock.Interface
	identity string

	mu       sync.Mutex
	acquired atomic.Bool
	frozen   bool
}

var errRestarting = errors.New("campaign restarting")

// freeze stops acquisition for the current campaign; false if already acquired.
func (l *watchedLock) freeze() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.acquired.Load() {
		return false
	}
	l.frozen = true
	return true
}

func (l *watchedLock) thaw() {
	l.mu.Lock()
	l.frozen = false
	l.mu.Unlock()
}

func (l *watchedLock) write(rec resourcelock.LeaderElectionRecord, do func() error) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	mine := rec.HolderIdentity == l.identity
	if mine && l.frozen {
		return errRestarting
	}
	err := do()
	if err == nil && mine {
		l.acquired.Store(true)
	}
	return err
}

func (l *watchedLock) Create(ctx context.Context, rec resourcelock.LeaderElectionRecord) error {
	return l.write(rec, func() error { return l.Interface.Create(ctx, rec) })
}

func (l *watchedLock) Update(ctx context.Context, rec resourcelock.LeaderElectionRecord) error {
	return l.write(rec, func() error { return l.Interface.Update(ctx, rec) })
}

// waitForRelease watches the Lease and returns true when its holder released
// it (empty holder) or it was deleted, as long as this candidate has not
// acquired it; false when ctx ends or after acquisition.
func (e *Elector) waitForRelease(ctx context.Context, lock *watchedLock) bool {
	leases := e.client.CoordinationV1().Leases(e.opts.Namespace)
	selector := fields.OneTermEqualSelector("metadata.name", e.opts.LockName).String()
	for ctx.Err() == nil && !lock.acquired.Load() {
		w, err := leases.Watch(ctx, metav1.ListOptions{FieldSelector: selector})
		if err != nil {
			// The elector's own polling still works; try the watch again.
			select {
			case <-ctx.Done():
			case <-time.After(e.opts.RetryPeriod):
			}
			continue
		}
		for ev := range w.ResultChan() {
			if lock.acquired.Load() {
				break
			}
			switch ev.Type {
			case watch.Deleted:
				w.Stop()
				return true
			case watch.Modified:
				if l, ok := ev.Object.(*coordinationv1.Lease); ok && (l.Spec.HolderIdentity == nil || *l.Spec.HolderIdentity == "") {
					w.Stop()
					return true
				}
			}
		}
		w.Stop()
	}
	return false
}

package leaderelection

import (
	"context"
	"errors"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/klog/v2/ktesting"
	clocktesting "k8s.io/utils/clock/testing"
)

const step = 100 * time.Millisecond

// running is one candidate under test.
type running struct {
	e       *Elector
	cancel  context.CancelFunc
	done    chan error
	started chan struct{} // closed when work starts
	stopped time.Time     // fake time at which work saw its context end
	mu      sync.Mutex
}

// start runs a candidate with default timings (15s/10s/5s) on the fake
// clock; work waits for its context, then for release (if not nil), and
// notes "work stopped" in the store's log.
func start(t *testing.T, s *store, id string, mut func(*Options), release <-chan struct{}) *running {
	t.Helper()
	o := Options{LockName: "lock", Namespace: "ns", Identity: id, Clock: s.clock, ReleaseTimeout: 50 * time.Millisecond}
	if mut != nil {
		mut(&o)
	}
	e, err := newElector(o, client{s: s, who: id})
	if err != nil {
		t.Fatal(err)
	}
	_, ctx := ktesting.NewTestContext(t)
	ctx, cancel := context.WithCancel(ctx)
	r := &running{e: e, cancel: cancel, done: make(chan error, 1), started: make(chan struct{})}
	go func() {
		r.done <- e.Run(ctx, func(ctx context.Context) error {
			close(r.started)
			<-ctx.Done()
			r.mu.Lock()
			r.stopped = s.clock.Now()
			r.mu.Unlock()
			if release != nil {
				<-release
			}
			s.note(id, "work stopped")
			return nil
		})
	}()
	return r
}

func (r *running) isStarted() bool {
	select {
	case <-r.started:
		return true
	default:
		return false
	}
}

func (r *running) returned() (error, bool) {
	select {
	case err := <-r.done:
		r.done <- err
		return err, true
	default:
		return nil, false
	}
}

func lastRenewal(t *testing.T, s *store) time.Time {
	t.Helper()
	l := s.current()
	if l == nil || l.Spec.RenewTime == nil {
		t.Fatal("no renewal in the store")
	}
	return l.Spec.RenewTime.Time
}

// TestWorkStopsAtRenewDeadlineBeforeRelease: the leader's requests hang.
// Its work must end renew deadline after the start of its last successful
// renewal (well before a standby could start, a lease duration after it),
// and the release must be tried only after the work has returned.
func TestWorkStopsAtRenewDeadlineBeforeRelease(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	clk := clocktesting.NewFakeClock(time.Unix(1_000_000, 0))
	s := newStore(clk)
	a := start(t, s, "a", nil, nil)
	stepUntil(t, clk, step, time.Minute, "a leads", a.isStarted)
	clk.Step(7 * time.Second) // past a renewal
	settle(clk)
	s.hang("a", true)
	renewed := lastRenewal(t, s)
	s.note("test", "partition")
	stepUntil(t, clk, step, time.Minute, "partitioned leader returns", func() bool { _, ok := a.returned(); return ok })
	if err, _ := a.returned(); !errors.Is(err, ErrLeaseLost) {
		t.Errorf("Run = %v, want ErrLeaseLost", err)
	}
	// The guard fires at renewal + renew deadline; the goroutines may
	// notice a few steps later, but never as late as a standby may start.
	if !a.stopped.Before(renewed.Add(DefaultLeaseDuration)) {
		t.Errorf("work ended at renewal+%v, want before a standby may start at +%v (renew deadline %v)",
			a.stopped.Sub(renewed), DefaultLeaseDuration, DefaultRenewDeadline)
	}
	t.Logf("work ended at renewal+%v (fake clock)", a.stopped.Sub(renewed))
	// After the work stopped: exactly one read (the release's, hung), and
	// nothing before it but hung renewal attempts.
	log := s.entries()
	stoppedAt := -1
	for i, en := range log {
		if en.what == "work stopped" {
			stoppedAt = i
		}
	}
	if stoppedAt < 0 {
		t.Fatalf("work never stopped: %v", log)
	}
	var after []string
	for _, en := range log[stoppedAt+1:] {
		after = append(after, en.what)
	}
	if strings.Join(after, ",") != "get" {
		t.Errorf("requests after the work stopped: %q, want the release's get alone", after)
	}
}

// TestStandbyTakesOverWhenObservedTermEnds: a holder renews every 5s for
// 30s, then stops. The standby never takes over while it renews, and takes
// over when the lease duration since the last renewal it saw has passed,
// not at its next poll.
func TestStandbyTakesOverWhenObservedTermEnds(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	clk := clocktesting.NewFakeClock(time.Unix(1_000_000, 0))
	s := newStore(clk)
	o := Options{LockName: "lock", Namespace: "ns", Identity: "gone", LeaseDuration: DefaultLeaseDuration}
	s.put("gone", take(nil, o, clk.Now()))
	b := start(t, s, "b", nil, nil)
	// renew writes a renewal by the holder and waits until b has seen it.
	renew := func() {
		s.put("gone", take(s.current(), o, clk.Now()))
		rv := s.current().ResourceVersion
		for b.e.seen.Load() != rv {
			runtime.Gosched()
		}
	}
	renew()
	for i := 0; i < 6; i++ {
		for j := 0; j < 50; j++ {
			settle(clk)
			clk.Step(step)
		}
		if b.isStarted() {
			t.Fatalf("standby took over a lease renewed %v ago", 5*time.Second)
		}
		renew()
	}
	last := clk.Now()
	settle(clk)
	clk.Step(DefaultLeaseDuration - time.Millisecond)
	settle(clk)
	if b.isStarted() {
		t.Fatalf("standby took over before the lease duration had passed")
	}
	// Exactly at the end of the observed term: polls alone would come
	// later (every 5-6s), and the clock does not move again.
	clk.Step(time.Millisecond)
	select {
	case <-b.started:
	case <-time.After(10 * time.Second):
		t.Fatalf("standby did not take over at the end of the observed term (fake clock held at last renewal + %v)", DefaultLeaseDuration)
	}
	for _, en := range s.entries() {
		if en.who == "b" && en.what == "updated holder=b" && !en.at.Equal(last.Add(DefaultLeaseDuration)) {
			t.Errorf("standby took over %v after the last renewal, want %v", en.at.Sub(last), DefaultLeaseDuration)
		}
	}
	b.cancel()
	stepUntil(t, clk, step, time.Minute, "standby returns", func() bool { _, ok := b.returned(); return ok })
}

// TestStopping: cancelling a leader stops its work, keeps renewing while
// the work winds down, then releases the Lease, unless KeepOnCancel (the
// ReleaseLeaderElectionOnExit=false gate).
func TestStopping(t *testing.T) {
	for _, keep := range []bool{false, true} {
		t.Run(map[bool]string{false: "release", true: "keep"}[keep], func(t *testing.T) {
			defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
			clk := clocktesting.NewFakeClock(time.Unix(1_000_000, 0))
			s := newStore(clk)
			windDown := make(chan struct{})
			a := start(t, s, "a", func(o *Options) { o.KeepOnCancel = keep }, windDown)
			stepUntil(t, clk, step, time.Minute, "a leads", a.isStarted)
			a.cancel()
			// The work takes 30s to return: the term must not lapse.
			for i := 0; i < 300; i++ {
				settle(clk)
				clk.Step(step)
			}
			if since := clk.Now().Sub(lastRenewal(t, s)); since > DefaultRenewDeadline {
				t.Errorf("no renewal for %v while the cancelled work wound down", since)
			}
			close(windDown)
			stepUntil(t, clk, step, time.Minute, "Run returns", func() bool { _, ok := a.returned(); return ok })
			if err, _ := a.returned(); err != nil {
				t.Errorf("Run = %v, want nil", err)
			}
			want := "a"
			if !keep {
				want = ""
			}
			if got := holderOf(s.current()); got != want {
				t.Errorf("holder after stop = %q, want %q", got, want)
			}
		})
	}
}

// TestTakenOver: when the Lease shows another holder at a renewal, the work
// stops at once, Run returns ErrLeaseLost, and the new holder's Lease is
// left alone.
func TestTakenOver(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	clk := clocktesting.NewFakeClock(time.Unix(1_000_000, 0))
	s := newStore(clk)
	a := start(t, s, "a", nil, nil)
	stepUntil(t, clk, step, time.Minute, "a leads", a.isStarted)
	other := s.current()
	id := "b"
	other.Spec.HolderIdentity = &id
	now := metav1.NewMicroTime(clk.Now())
	other.Spec.RenewTime = &now
	s.put("b", other)
	stepUntil(t, clk, step, time.Minute, "a returns", func() bool { _, ok := a.returned(); return ok })
	if err, _ := a.returned(); !errors.Is(err, ErrLeaseLost) {
		t.Errorf("Run = %v, want ErrLeaseLost", err)
	}
	if got := holderOf(s.current()); got != "b" {
		t.Errorf("holder = %q, want b", got)
	}
	// Between the takeover and the work's stop, a read the Lease once: its
	// next renewal attempt, which found b.
	var reads []string
	put := false
	for _, en := range s.entries() {
		switch {
		case en.what == "put holder=b":
			put = true
		case put && en.what == "work stopped":
			if len(reads) != 1 {
				t.Errorf("requests between the takeover and the work's stop: %q, want one get", reads)
			}
			return
		case put && en.who == "a":
			reads = append(reads, en.what)
		}
	}
	t.Errorf("work never stopped after the takeover")
}

// TestHealthCheckFake: healthy while renewing; failing once renewals have
// stopped for lease duration + HealthTimeout (here: a renew deadline that
// never passes is impossible, so the check is exercised on its own).
func TestHealthCheckFake(t *testing.T) {
	clk := clocktesting.NewFakeClock(time.Unix(1_000_000, 0))
	e, err := newElector(Options{LockName: "l", Namespace: "n", Identity: "a", Clock: clk, HealthTimeout: time.Second}, client{s: newStore(clk), who: "a"})
	if err != nil {
		t.Fatal(err)
	}
	h := e.HealthCheck()
	if err := h.Check(nil); err != nil {
		t.Errorf("standby unhealthy: %v", err)
	}
	e.leading.Store(true)
	e.lastRenew.Store(clk.Now().UnixNano())
	clk.Step(DefaultLeaseDuration)
	if err := h.Check(nil); err != nil {
		t.Errorf("leader unhealthy %v after renewing: %v", DefaultLeaseDuration, err)
	}
	clk.Step(2 * time.Second)
	if err := h.Check(nil); err == nil {
		t.Error("leader healthy 17s after its last renewal, want failing past 15s+1s")
	}
}

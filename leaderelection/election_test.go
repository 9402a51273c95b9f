package leaderelection_test

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net/http"
	"os"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"
	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/klog/v2/ktesting"

	"github.com/csi-kit/sidecars/leaderelection"
	"github.com/csi-kit/sidecars/testkit/controlplane"
	"github.com/csi-kit/sidecars/testkit/eventually"
)

var cp *controlplane.ControlPlane

func TestMain(m *testing.M) {
	flag.Parse()
	if testing.Short() {
		os.Exit(m.Run())
	}
	var err error
	cp, err = controlplane.Start(context.Background(), controlplane.Options{Progress: os.Stderr})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	code := m.Run()
	_ = cp.Stop()
	os.Exit(code)
}

// leakOptions ignores the idle keep-alive connections of the test's
// clientsets, which client-go caches per transport.
func leakOptions() []goleak.Option {
	return []goleak.Option{
		goleak.IgnoreCurrent(),
		goleak.IgnoreAnyFunction("golang.org/x/net/http2.(*ClientConn).readLoop"),
		goleak.IgnoreAnyFunction("net/http.(*persistConn).readLoop"),
		goleak.IgnoreAnyFunction("net/http.(*persistConn).writeLoop"),
	}
}

func needCluster(t *testing.T) {
	t.Helper()
	if cp == nil {
		t.Skip("integration test: needs the local control plane (not in -short mode)")
	}
}

// partition is a transport switch: while cut, every request of the client
// fails at once, as if the network to the apiserver were down.
type partition struct{ cut atomic.Bool }

func (p *partition) wrap(rt http.RoundTripper) http.RoundTripper {
	return roundTripFunc(func(r *http.Request) (*http.Response, error) {
		if p.cut.Load() {
			return nil, errors.New("partitioned by test")
		}
		return rt.RoundTrip(r)
	})
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

type candidate struct {
	name    string
	elector *leaderelection.Elector
	net     *partition
	cancel  context.CancelFunc
	done    chan error
	leading atomic.Bool
}

// fast timings keep the test short; the relations between them are upstream's.
func fastOptions(lock, ns string) leaderelection.Options {
	return leaderelection.Options{
		LockName:      lock,
		Namespace:     ns,
		LeaseDuration: 2 * time.Second,
		RenewDeadline: 1 * time.Second,
		RetryPeriod:   250 * time.Millisecond,
	}
}

func newNamespace(t *testing.T) string {
	t.Helper()
	client := kubernetes.NewForConfigOrDie(cp.Config())
	ns, err := client.CoreV1().Namespaces().Create(context.Background(),
		&v1.Namespace{ObjectMeta: metav1.ObjectMeta{GenerateName: "le-"}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return ns.Name
}

// tracker asserts that no two candidates ever work at the same time.
type tracker struct {
	mu      sync.Mutex
	working int
	maxSeen int
	starts  int
}

func (tr *tracker) work(c *candidate) func(ctx context.Context) error {
	return func(ctx context.Context) error {
		tr.mu.Lock()
		tr.working++
		tr.starts++
		tr.maxSeen = max(tr.maxSeen, tr.working)
		tr.mu.Unlock()
		c.leading.Store(true)
		<-ctx.Done()
		c.leading.Store(false)
		tr.mu.Lock()
		tr.working--
		tr.mu.Unlock()
		return nil
	}
}

func startCandidate(t *testing.T, ctx context.Context, name string, opts leaderelection.Options, tr *tracker) *candidate {
	t.Helper()
	c := &candidate{name: name, net: &partition{}, done: make(chan error, 1)}
	cfg := rest.CopyConfig(cp.Config())
	cfg.Wrap(c.net.wrap)
	client, err := leaderelection.NewClient(cfg, opts)
	if err != nil {
		t.Fatal(err)
	}
	opts.Identity = name + "_" + leaderelection.UniqueIdentity()
	c.elector, err = leaderelection.New(opts, client)
	if err != nil {
		t.Fatal(err)
	}
	runCtx, cancel := context.WithCancel(ctx)
	c.cancel = cancel
	go func() { c.done <- c.elector.Run(runCtx, tr.work(c)) }()
	return c
}

// waitLeader waits until one of cands works and returns it. The timeout
// only ends a hung test; no test judges how long the wait took.
func waitLeader(t *testing.T, timeout time.Duration, cands ...*candidate) *candidate {
	t.Helper()
	var leader *candidate
	eventually.Require(t, timeout, "a leader", eventually.True("a candidate works", func() bool {
		for _, c := range cands {
			if c.leading.Load() {
				leader = c
				return true
			}
		}
		return false
	}))
	return leader
}

// holder returns the Lease's holder identity ("" when released).
func holder(t *testing.T, ctx context.Context, ns, name string) string {
	t.Helper()
	lease, err := kubernetes.NewForConfigOrDie(cp.Config()).CoordinationV1().Leases(ns).Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if lease.Spec.HolderIdentity == nil {
		return ""
	}
	return *lease.Spec.HolderIdentity
}

// TestHandoverOnCancel: with upstream's default timings (a 15s lease), a
// cancelled leader releases the Lease as it returns, so the standby takes
// over from a released Lease instead of waiting for it to expire.
func TestHandoverOnCancel(t *testing.T) {
	needCluster(t)
	defer goleak.VerifyNone(t, leakOptions()...)
	_, ctx := ktesting.NewTestContext(t)
	ns := newNamespace(t)
	opts := leaderelection.Options{LockName: "handover", Namespace: ns}
	tr := &tracker{}
	a := startCandidate(t, ctx, "a", opts, tr)
	leader := waitLeader(t, 30*time.Second, a)
	standby := startCandidate(t, ctx, "b", opts, tr)

	for round := 0; round < 5; round++ {
		old := holder(t, ctx, ns, opts.LockName)
		leader.cancel()
		if err := <-leader.done; err != nil {
			t.Fatalf("round %d: cancelled leader %s returned %v, want nil", round, leader.name, err)
		}
		// Run has returned: the Lease is released (or already taken by
		// the standby), never still held by the cancelled leader.
		if h := holder(t, ctx, ns, opts.LockName); h == old {
			t.Fatalf("round %d: Lease still held by the cancelled leader %q after Run returned", round, h)
		}
		next := waitLeader(t, 30*time.Second, standby)
		// Restart the old leader as the new standby.
		restarted := startCandidate(t, ctx, leader.name, opts, tr)
		leader, standby = next, restarted
	}
	leader.cancel()
	standby.cancel()
	<-leader.done
	<-standby.done
	if tr.maxSeen != 1 {
		t.Errorf("at most %d candidates worked at once, want 1", tr.maxSeen)
	}
}

func TestHandoverWhenRenewalsFail(t *testing.T) {
	needCluster(t)
	defer goleak.VerifyNone(t, leakOptions()...)
	_, ctx := ktesting.NewTestContext(t)
	ns := newNamespace(t)
	opts := fastOptions("crash", ns)
	tr := &tracker{}
	cands := []*candidate{
		startCandidate(t, ctx, "a", opts, tr),
		startCandidate(t, ctx, "b", opts, tr),
		startCandidate(t, ctx, "c", opts, tr),
	}
	for round := 0; round < 6; round++ {
		leader := waitLeader(t, 20*time.Second, cands...)
		old := holder(t, ctx, ns, opts.LockName)
		leader.net.cut.Store(true)
		err := <-leader.done
		if !errors.Is(err, leaderelection.ErrLeaseLost) {
			t.Fatalf("round %d: partitioned leader returned %v, want ErrLeaseLost", round, err)
		}
		var others []*candidate
		for _, c := range cands {
			if c != leader {
				others = append(others, c)
			}
		}
		// A standby takes the Lease the partitioned leader could not renew.
		waitLeader(t, 20*time.Second, others...)
		if h := holder(t, ctx, ns, opts.LockName); h == old || h == "" {
			t.Errorf("round %d: a standby works but the Lease holder is %q (old leader %q)", round, h, old)
		}
		leader.net.cut.Store(false)
		cands = append(others, startCandidate(t, ctx, leader.name, opts, tr))
	}
	for _, c := range cands {
		c.cancel()
		<-c.done
	}
	if tr.maxSeen != 1 {
		t.Errorf("at most %d candidates worked at once, want 1", tr.maxSeen)
	}
}

func TestNeverTwoLeaders(t *testing.T) {
	needCluster(t)
	defer goleak.VerifyNone(t, leakOptions()...)
	_, ctx := ktesting.NewTestContext(t)
	ns := newNamespace(t)
	opts := fastOptions("many", ns)
	tr := &tracker{}
	var cands []*candidate
	for i := 0; i < 4; i++ {
		// The same host name for all: identities must still differ.
		cands = append(cands, startCandidate(t, ctx, "samehost", opts, tr))
	}
	for round := 0; round < 20; round++ {
		leader := waitLeader(t, 20*time.Second, cands...)
		leader.cancel()
		<-leader.done
		for i, c := range cands {
			if c == leader {
				cands[i] = startCandidate(t, ctx, "samehost", opts, tr)
			}
		}
	}
	for _, c := range cands {
		c.cancel()
		<-c.done
	}
	if tr.maxSeen != 1 {
		t.Errorf("at most %d candidates worked at once over %d leaderships, want 1", tr.maxSeen, tr.starts)
	}
	if tr.starts < 20 {
		t.Errorf("only %d leaderships over 20 rounds", tr.starts)
	}
}

func TestWorkErrorIsReturnedAndLeaseReleased(t *testing.T) {
	needCluster(t)
	_, ctx := ktesting.NewTestContext(t)
	ns := newNamespace(t)
	opts := fastOptions("workerr", ns)
	client := kubernetes.NewForConfigOrDie(cp.Config())
	el, err := leaderelection.New(opts, client)
	if err != nil {
		t.Fatal(err)
	}
	boom := errors.New("driver gone")
	if err := el.Run(ctx, func(ctx context.Context) error { return boom }); !errors.Is(err, boom) {
		t.Fatalf("Run = %v, want the work's error", err)
	}
	lease, err := client.CoordinationV1().Leases(ns).Get(ctx, "workerr", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if h := lease.Spec.HolderIdentity; h != nil && *h != "" {
		t.Errorf("lease still held by %q after work returned", *h)
	}
}

func TestHealthCheck(t *testing.T) {
	needCluster(t)
	_, ctx := ktesting.NewTestContext(t)
	ns := newNamespace(t)
	opts := fastOptions("health", ns)
	opts.HealthTimeout = time.Second
	tr := &tracker{}
	c := startCandidate(t, ctx, "h", opts, tr)
	waitLeader(t, 20*time.Second, c)
	check := c.elector.HealthCheck()
	if check.Name() != "leader-election" {
		t.Errorf("check name %q", check.Name())
	}
	if err := check.Check(nil); err != nil {
		t.Errorf("healthy leader reports %v", err)
	}
	c.cancel()
	<-c.done
}

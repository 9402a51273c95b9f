package faults

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sort"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/container-storage-interface/spec/lib/go/csi"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/protobuf/proto"
	"k8s.io/client-go/rest"

	"github.com/csi-kit/sidecars/leaderelection"
	"github.com/csi-kit/sidecars/testkit/fakedriver"
)

// hangingNet is a partition that hangs: while cut, every new request of the
// client blocks until its context ends (no error comes back at once), and
// open response bodies (watches) stop delivering.
type hangingNet struct{ cut atomic.Bool }

func (h *hangingNet) wrap(rt http.RoundTripper) http.RoundTripper {
	return partitionTripper{h: h, rt: rt}
}

type partitionTripper struct {
	h  *hangingNet
	rt http.RoundTripper
}

func (p partitionTripper) RoundTrip(r *http.Request) (*http.Response, error) {
	if p.h.cut.Load() {
		<-r.Context().Done()
		return nil, r.Context().Err()
	}
	resp, err := p.rt.RoundTrip(r)
	if err != nil {
		return nil, err
	}
	resp.Body = &stallingBody{ReadCloser: resp.Body, h: p.h, ctx: r.Context()}
	return resp, nil
}

type stallingBody struct {
	io.ReadCloser
	h   *hangingNet
	ctx context.Context
}

func (b *stallingBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	if b.h.cut.Load() {
		// What arrived after the cut is lost; the reader waits for its
		// context like a reader behind a silent network.
		<-b.ctx.Done()
		return 0, b.ctx.Err()
	}
	return n, err
}

// replica is one elected worker whose work issues CSI calls tagged with
// its name and leadership term.
type replica struct {
	name    string
	net     *hangingNet
	elector *leaderelection.Elector
	cancel  context.CancelFunc
	done    chan error
	terms   *atomic.Int32
	issued  atomic.Int64
}

// TestPartitionHangingLeaderStopsBeforeStandbyStarts: two replicas elect a
// leader whose work calls the driver back to back. The leader's API
// requests then hang (a partition that does not fail fast). The driver's
// own record of arriving calls must show every leadership term as one
// window, with no window overlapping another: the partitioned leader
// stopped calling the driver before the standby started.
func TestPartitionHangingLeaderStopsBeforeStandbyStarts(t *testing.T) {
	e := newEnv(t, "leader", fakedriver.Options{Capabilities: resizerCaps(), RequestHistory: 1 << 20})
	opts := leaderelection.Options{LockName: "partition", Namespace: e.ns,
		LeaseDuration: 2 * time.Second, RenewDeadline: time.Second, RetryPeriod: 250 * time.Millisecond}

	conn, err := grpc.NewClient(e.drv.Endpoint(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	ctl := csi.NewControllerClient(conn)
	terms := &atomic.Int32{}

	start := func(name string) *replica {
		r := &replica{name: name, net: &hangingNet{}, done: make(chan error, 1), terms: terms}
		cfg := rest.CopyConfig(cp.Config())
		cfg.Wrap(r.net.wrap)
		o := opts
		o.Identity = name
		client, err := leaderelection.NewClient(cfg, o)
		if err != nil {
			t.Fatal(err)
		}
		if r.elector, err = leaderelection.New(o, client); err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(e.ctx)
		r.cancel = cancel
		go func() { r.done <- r.elector.Run(ctx, r.work(ctl)) }()
		return r
	}

	reps := []*replica{start("a"), start("b")}
	const rounds = 3
	for round := range rounds {
		leader := e.waitWorking(reps)
		// Let the leader call the driver for a while before the cut.
		before := leader.issued.Load()
		e.eventually("leader calls the driver", 10*time.Second, func() (bool, string) {
			return leader.issued.Load() >= before+20, fmt.Sprintf("%d calls", leader.issued.Load()-before)
		})
		leader.net.cut.Store(true)
		e.fault(1)
		select {
		case err := <-leader.done:
			if !errors.Is(err, leaderelection.ErrLeaseLost) {
				t.Errorf("round %d: partitioned leader %s: Run = %v, want ErrLeaseLost", round, leader.name, err)
			}
		case <-time.After(30 * time.Second):
			t.Fatalf("round %d: partitioned leader %s still running after 30s", round, leader.name)
		}
		var next []*replica
		for _, r := range reps {
			if r != leader {
				next = append(next, r)
			}
		}
		newLeader := e.waitWorking(next)
		n := newLeader.issued.Load()
		e.eventually("new leader calls the driver", 10*time.Second, func() (bool, string) {
			return newLeader.issued.Load() >= n+20, "no calls"
		})
		leader.cancel()
		reps = append(next, start(leader.name+fmt.Sprint(round)))
	}
	for _, r := range reps {
		r.cancel()
		if err := <-r.done; err != nil {
			t.Errorf("%s: Run after cancel = %v", r.name, err)
		}
	}

	windows := termWindows(e.drv.Requests("ValidateVolumeCapabilities"))
	if len(windows) < rounds+1 {
		t.Errorf("driver saw %d leadership terms, want at least %d", len(windows), rounds+1)
	}
	for i := 1; i < len(windows); i++ {
		if prev, cur := windows[i-1], windows[i]; cur.first <= prev.last {
			t.Errorf("term %s called the driver (arrivals %d..%d) while term %s still did (%d..%d)",
				cur.term, cur.first, cur.last, prev.term, prev.first, prev.last)
		}
	}
	t.Logf("driver-side windows (arrival indexes): %v", windows)
}

// work calls the driver back to back until ctx ends; each call names the
// replica and its leadership term.
func (r *replica) work(ctl csi.ControllerClient) func(context.Context) error {
	return func(ctx context.Context) error {
		term := fmt.Sprintf("%s#%d", r.name, r.terms.Add(1))
		capability := &csi.VolumeCapability{
			AccessType: &csi.VolumeCapability_Mount{Mount: &csi.VolumeCapability_MountVolume{}},
			AccessMode: &csi.VolumeCapability_AccessMode{Mode: csi.VolumeCapability_AccessMode_SINGLE_NODE_WRITER},
		}
		for seq := 0; ctx.Err() == nil; seq++ {
			// Answers do not matter (the volume does not exist): the driver
			// records the call on arrival.
			_, _ = ctl.ValidateVolumeCapabilities(ctx, &csi.ValidateVolumeCapabilitiesRequest{
				VolumeId: fmt.Sprintf("%s/%d", term, seq), VolumeCapabilities: []*csi.VolumeCapability{capability}})
			r.issued.Add(1)
			select {
			case <-ctx.Done():
			case <-time.After(5 * time.Millisecond):
			}
		}
		return nil
	}
}

// waitWorking waits until one of reps calls the driver as leader.
func (e *env) waitWorking(reps []*replica) *replica {
	e.t.Helper()
	var leader *replica
	counts := make([]int64, len(reps))
	for i, r := range reps {
		counts[i] = r.issued.Load()
	}
	e.eventually("a replica calling the driver", 30*time.Second, func() (bool, string) {
		for i, r := range reps {
			if r.elector.Leader() == r.name && r.issued.Load() > counts[i] {
				leader = r
				return true, ""
			}
		}
		return false, "none leads"
	})
	return leader
}

type window struct {
	term        string
	first, last int
}

func (w window) String() string { return fmt.Sprintf("%s[%d..%d]", w.term, w.first, w.last) }

// termWindows returns, per leadership term, the first and last index at
// which the driver received its calls, ordered by first arrival.
func termWindows(reqs []proto.Message) []window {
	by := map[string]*window{}
	for i, r := range reqs {
		id := r.(*csi.ValidateVolumeCapabilitiesRequest).GetVolumeId()
		term, _, _ := strings.Cut(id, "/")
		w := by[term]
		if w == nil {
			w = &window{term: term, first: i}
			by[term] = w
		}
		w.last = i
	}
	var out []window
	for _, w := range by {
		out = append(out, *w)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].first < out[j].first })
	return out
}

package fakedriver_test

import (
	"context"
	"errors"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/container-storage-interface/spec/lib/go/csi"
	"go.uber.org/goleak"
	"google.golang.org/grpc"
	"google.golang.org/grpc/backoff"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/connectivity"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"

	"github.com/csi-kit/sidecars/testkit/fakedriver"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m,
		// Ginkgo (run by TestSanity) leaves its signal watcher running.
		goleak.IgnoreTopFunction("github.com/onsi/ginkgo/v2/internal/interrupt_handler.(*InterruptHandler).registerForInterrupts.func2"),
	)
}

const gi = int64(1) << 30

// client is a real gRPC client of a driver, over its socket.
type client struct {
	conn *grpc.ClientConn
	id   csi.IdentityClient
	ctl  csi.ControllerClient
	node csi.NodeClient
	grp  csi.GroupControllerClient
}

func dial(t *testing.T, d *fakedriver.Driver) client {
	t.Helper()
	conn, err := grpc.NewClient(d.Endpoint(),
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		// Reconnect quickly after Stop and Restart. MinConnectTimeout must be
		// set too: it defaults to the backoff delay, too short under -race.
		grpc.WithConnectParams(grpc.ConnectParams{
			Backoff: backoff.Config{
				BaseDelay: 10 * time.Millisecond, Multiplier: 1.6, MaxDelay: 100 * time.Millisecond,
			},
			MinConnectTimeout: 10 * time.Second,
		}))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	// Connect now, so that short client deadlines in tests are spent on
	// the call, not on dialing.
	conn.Connect()
	for c, s := ctx(t), conn.GetState(); s != connectivity.Ready; s = conn.GetState() {
		if !conn.WaitForStateChange(c, s) {
			t.Fatalf("connecting to %s: %v", d.Endpoint(), c.Err())
		}
	}
	return client{
		conn: conn,
		id:   csi.NewIdentityClient(conn),
		ctl:  csi.NewControllerClient(conn),
		node: csi.NewNodeClient(conn),
		grp:  csi.NewGroupControllerClient(conn),
	}
}

// start returns a driver and a client of it.
func start(t *testing.T, opts fakedriver.Options) (*fakedriver.Driver, client) {
	t.Helper()
	d := fakedriver.Start(t, opts)
	return d, dial(t, d)
}

func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return c
}

func mountCap(mode csi.VolumeCapability_AccessMode_Mode) *csi.VolumeCapability {
	return &csi.VolumeCapability{
		AccessMode: &csi.VolumeCapability_AccessMode{Mode: mode},
		AccessType: &csi.VolumeCapability_Mount{Mount: &csi.VolumeCapability_MountVolume{}},
	}
}

var rwo = mountCap(csi.VolumeCapability_AccessMode_SINGLE_NODE_WRITER)

func createReq(name string, size int64) *csi.CreateVolumeRequest {
	return &csi.CreateVolumeRequest{
		Name:               name,
		CapacityRange:      &csi.CapacityRange{RequiredBytes: size},
		VolumeCapabilities: []*csi.VolumeCapability{rwo},
	}
}

func mustCreate(t *testing.T, c client, req *csi.CreateVolumeRequest) *csi.Volume {
	t.Helper()
	rsp, err := c.ctl.CreateVolume(ctx(t), req)
	if err != nil {
		t.Fatalf("CreateVolume(%s): %v", req.GetName(), err)
	}
	return rsp.GetVolume()
}

func wantCode(t *testing.T, what string, err error, want codes.Code) {
	t.Helper()
	if got := status.Code(err); got != want {
		t.Errorf("%s: code %v (%v), want %v", what, got, err, want)
	}
}

// eventually polls cond until it holds or a deadline passes.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestIdentity(t *testing.T) {
	d, c := start(t, fakedriver.Options{Name: "test.csi.example.com", NotReadyProbes: 2})
	info, err := c.id.GetPluginInfo(ctx(t), &csi.GetPluginInfoRequest{})
	if err != nil || info.GetName() != "test.csi.example.com" {
		t.Errorf("GetPluginInfo = %v, %v", info, err)
	}
	var ready []bool
	for range 3 {
		rsp, err := c.id.Probe(ctx(t), &csi.ProbeRequest{})
		if err != nil {
			t.Fatal(err)
		}
		ready = append(ready, rsp.GetReady().GetValue())
	}
	if want := []bool{false, false, true}; !slices.Equal(ready, want) {
		t.Errorf("Probe ready = %v, want %v", ready, want)
	}
	if got := d.Calls("Probe"); got != 3 {
		t.Errorf("Calls(Probe) = %d, want 3", got)
	}
}

func TestCapabilities(t *testing.T) {
	for _, tc := range []struct {
		name       string
		caps       fakedriver.Capabilities
		wantPlugin []string
		wantCtl    []string
		wantNode   []string
	}{
		{
			name:       "resizer",
			caps:       fakedriver.Resizer,
			wantPlugin: []string{"CONTROLLER_SERVICE", "ONLINE"},
			wantCtl:    []string{"CREATE_DELETE_VOLUME", "EXPAND_VOLUME", "MODIFY_VOLUME"},
			wantNode:   []string{"EXPAND_VOLUME"},
		},
		{
			name:       "offline only",
			caps:       fakedriver.Capabilities{Controller: true, Expand: true, ExpandOffline: true},
			wantPlugin: []string{"CONTROLLER_SERVICE", "OFFLINE"},
			wantCtl:    []string{"EXPAND_VOLUME"},
		},
		{
			name:     "node only",
			caps:     fakedriver.NodeOnly,
			wantNode: []string{"STAGE_UNSTAGE_VOLUME", "EXPAND_VOLUME"},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, c := start(t, fakedriver.Options{Capabilities: tc.caps})
			pc, err := c.id.GetPluginCapabilities(ctx(t), &csi.GetPluginCapabilitiesRequest{})
			if err != nil {
				t.Fatal(err)
			}
			var plugin []string
			for _, cp := range pc.GetCapabilities() {
				if s := cp.GetService(); s != nil {
					plugin = append(plugin, s.GetType().String())
				} else {
					plugin = append(plugin, cp.GetVolumeExpansion().GetType().String())
				}
			}
			sameStrings(t, "plugin capabilities", plugin, tc.wantPlugin)

			cc, err := c.ctl.ControllerGetCapabilities(ctx(t), &csi.ControllerGetCapabilitiesRequest{})
			if !tc.caps.Controller {
				wantCode(t, "ControllerGetCapabilities without a Controller service", err, codes.Unimplemented)
			} else {
				var ctl []string
				for _, cp := range cc.GetCapabilities() {
					ctl = append(ctl, cp.GetRpc().GetType().String())
				}
				sameStrings(t, "controller capabilities", ctl, tc.wantCtl)
			}

			nc, err := c.node.NodeGetCapabilities(ctx(t), &csi.NodeGetCapabilitiesRequest{})
			if err != nil {
				t.Fatal(err)
			}
			var node []string
			for _, cp := range nc.GetCapabilities() {
				node = append(node, cp.GetRpc().GetType().String())
			}
			sameStrings(t, "node capabilities", node, tc.wantNode)
		})
	}
}

func sameStrings(t *testing.T, what string, got, want []string) {
	t.Helper()
	if strings.Join(got, ",") != strings.Join(want, ",") {
		t.Errorf("%s = %v, want %v", what, got, want)
	}
}

func TestUnadvertisedIsUnimplemented(t *testing.T) {
	_, c := start(t, fakedriver.Options{Capabilities: fakedriver.Capabilities{Controller: true, Expand: true}})
	_, err := c.ctl.CreateVolume(ctx(t), createReq("v", gi))
	wantCode(t, "CreateVolume without CREATE_DELETE_VOLUME", err, codes.Unimplemented)
	_, err = c.grp.GroupControllerGetCapabilities(ctx(t), &csi.GroupControllerGetCapabilitiesRequest{})
	wantCode(t, "GroupController without the service", err, codes.Unimplemented)
}

func TestFailNextAndSetError(t *testing.T) {
	d, c := start(t, fakedriver.Options{})
	d.FailNext("CreateVolume", codes.Unavailable, 2)
	d.FailNext("CreateVolume", codes.OK, 1)
	d.FailNext("CreateVolume", codes.ResourceExhausted, 1)
	var got []string
	for range 5 {
		_, err := c.ctl.CreateVolume(ctx(t), createReq("v", gi))
		got = append(got, status.Code(err).String())
	}
	sameStrings(t, "codes", got, []string{"Unavailable", "Unavailable", "OK", "ResourceExhausted", "OK"})
	if n := d.Calls("CreateVolume"); n != 5 {
		t.Errorf("Calls = %d, want 5", n)
	}

	d.SetError("DeleteVolume", codes.Internal)
	for range 2 {
		_, err := c.ctl.DeleteVolume(ctx(t), &csi.DeleteVolumeRequest{VolumeId: "x"})
		wantCode(t, "DeleteVolume with SetError", err, codes.Internal)
	}
	d.ClearErrors()
	_, err := c.ctl.DeleteVolume(ctx(t), &csi.DeleteVolumeRequest{VolumeId: "x"})
	wantCode(t, "DeleteVolume after ClearErrors", err, codes.OK)

	d.ResetCalls()
	if n := d.Calls("CreateVolume"); n != 0 {
		t.Errorf("Calls after ResetCalls = %d", n)
	}
	defer func() {
		if recover() == nil {
			t.Error("FailNext with an unknown method did not panic")
		}
	}()
	d.FailNext("CreateVolumes", codes.Internal, 1)
}

func TestRequests(t *testing.T) {
	d, c := start(t, fakedriver.Options{RequestHistory: 2})
	for _, name := range []string{"a", "b", "c"} {
		req := createReq(name, gi)
		req.Secrets = map[string]string{"token": name}
		mustCreate(t, c, req)
	}
	reqs := d.Requests("CreateVolume")
	var names []string
	for _, r := range reqs {
		cr := r.(*csi.CreateVolumeRequest)
		names = append(names, cr.GetName()+"/"+cr.GetSecrets()["token"])
	}
	sameStrings(t, "recorded requests", names, []string{"b/b", "c/c"})
}

func TestRequireSecrets(t *testing.T) {
	_, c := start(t, fakedriver.Options{RequireSecrets: map[string]map[string]string{
		"CreateVolume": {"user": "admin"},
	}})
	for _, tc := range []struct {
		secrets map[string]string
		want    codes.Code
	}{
		{nil, codes.InvalidArgument},
		{map[string]string{"user": "guest"}, codes.Unauthenticated},
		{map[string]string{"user": "admin"}, codes.OK},
	} {
		req := createReq("v", gi)
		req.Secrets = tc.secrets
		_, err := c.ctl.CreateVolume(ctx(t), req)
		wantCode(t, "CreateVolume with secrets "+strings.Join(keys(tc.secrets), ","), err, tc.want)
	}
}

func keys(m map[string]string) []string {
	var out []string
	for k, v := range m {
		out = append(out, k+"="+v)
	}
	return out
}

// TestHang: a hung call outlives its client, then takes effect on Unhang.
func TestHang(t *testing.T) {
	d, c := start(t, fakedriver.Options{})
	d.Hang("CreateVolume")
	short, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	_, err := c.ctl.CreateVolume(short, createReq("late", gi))
	wantCode(t, "hung CreateVolume", err, codes.DeadlineExceeded)
	if n := d.InFlight("CreateVolume"); n != 1 {
		t.Errorf("InFlight = %d, want 1", n)
	}
	if vs := d.Volumes(); len(vs) != 0 {
		t.Errorf("volumes while hung = %v", vs)
	}
	d.Unhang("CreateVolume")
	eventually(t, "the hung call to finish", func() bool { return d.InFlight("CreateVolume") == 0 })
	if vs := d.Volumes(); len(vs) != 1 || vs[0].Name != "late" {
		t.Errorf("volumes after Unhang = %v, want the late one", vs)
	}
}

// TestPeakInFlight: the peak counts the calls handled at once, survives
// their end and restarts from the calls in flight at ResetCalls.
func TestPeakInFlight(t *testing.T) {
	d, c := start(t, zoned)
	if n := d.PeakInFlight("GetCapacity"); n != 0 {
		t.Errorf("PeakInFlight before any call = %d, want 0", n)
	}
	d.Hang("GetCapacity")
	errc := make(chan error, 3)
	for range 3 {
		go func() {
			_, err := c.ctl.GetCapacity(ctx(t), &csi.GetCapacityRequest{})
			errc <- err
		}()
	}
	eventually(t, "three calls to hang", func() bool { return d.InFlight("GetCapacity") == 3 })
	d.Unhang("GetCapacity")
	for range 3 {
		if err := <-errc; err != nil {
			t.Fatal(err)
		}
	}
	if n := d.PeakInFlight("GetCapacity"); n != 3 {
		t.Errorf("PeakInFlight after three parallel calls = %d, want 3", n)
	}
	for range 2 { // one after the other
		if _, err := c.ctl.GetCapacity(ctx(t), &csi.GetCapacityRequest{}); err != nil {
			t.Fatal(err)
		}
	}
	if n := d.PeakInFlight("GetCapacity"); n != 3 {
		t.Errorf("PeakInFlight after sequential calls = %d, want it kept at 3", n)
	}
	d.ResetCalls()
	if n := d.PeakInFlight("GetCapacity"); n != 0 {
		t.Errorf("PeakInFlight after ResetCalls = %d, want 0", n)
	}
	if _, err := c.ctl.GetCapacity(ctx(t), &csi.GetCapacityRequest{}); err != nil {
		t.Fatal(err)
	}
	if n, other := d.PeakInFlight("GetCapacity"), d.PeakInFlight("CreateVolume"); n != 1 || other != 0 {
		t.Errorf("PeakInFlight after one call = %d (CreateVolume %d), want 1 (0)", n, other)
	}
}

func TestLatencyCompletesAfterClientGivesUp(t *testing.T) {
	d, c := start(t, fakedriver.Options{})
	d.SetLatency("CreateVolume", 100*time.Millisecond)
	cctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() {
		_, err := c.ctl.CreateVolume(cctx, createReq("slow", gi))
		errc <- err
	}()
	eventually(t, "the call to arrive", func() bool { return d.Calls("CreateVolume") == 1 })
	cancel()
	wantCode(t, "cancelled slow CreateVolume", <-errc, codes.Canceled)
	eventually(t, "the slow volume", func() bool { return len(d.Volumes()) == 1 })
	d.SetLatency("CreateVolume", 0)
	mustCreate(t, c, createReq("fast", gi))
}

func TestStopAbandonsHungCalls(t *testing.T) {
	d, c := start(t, fakedriver.Options{})
	d.Hang("CreateVolume")
	errc := make(chan error, 1)
	go func() {
		_, err := c.ctl.CreateVolume(context.Background(), createReq("never", gi))
		errc <- err
	}()
	eventually(t, "the call to hang", func() bool { return d.InFlight("CreateVolume") == 1 })
	d.Stop()
	wantCode(t, "CreateVolume cut by Stop", <-errc, codes.Unavailable)
	if vs := d.Volumes(); len(vs) != 0 {
		t.Errorf("abandoned call created %v", vs)
	}
	if _, err := os.Stat(d.SocketPath()); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("socket after Stop: %v, want it gone", err)
	}
}

// TestRestartKeepsBackend: a crash drops connections, not volumes.
func TestRestartKeepsBackend(t *testing.T) {
	d, c := start(t, fakedriver.Options{NotReadyProbes: 1})
	vol := mustCreate(t, c, createReq("keep", gi))
	probe := func() bool {
		t.Helper()
		rsp, err := c.id.Probe(ctx(t), &csi.ProbeRequest{}, grpc.WaitForReady(true))
		if err != nil {
			t.Fatal(err)
		}
		return rsp.GetReady().GetValue()
	}
	if probe() || !probe() {
		t.Error("Probe before restart: want not ready, then ready")
	}
	d.Stop()
	_, err := c.ctl.CreateVolume(ctx(t), createReq("while-down", gi), grpc.WaitForReady(false))
	wantCode(t, "CreateVolume while stopped", err, codes.Unavailable)
	if err := d.Restart(); err != nil {
		t.Fatal(err)
	}
	if err := d.Restart(); err != nil { // restart while serving: a crash
		t.Fatal(err)
	}
	rsp, err := c.ctl.ListVolumes(ctx(t), &csi.ListVolumesRequest{}, grpc.WaitForReady(true))
	if err != nil {
		t.Fatal(err)
	}
	if len(rsp.GetEntries()) != 1 || rsp.GetEntries()[0].GetVolume().GetVolumeId() != vol.GetVolumeId() {
		t.Errorf("volumes after restart = %v, want %s", rsp.GetEntries(), vol.GetVolumeId())
	}
	if probe() || !probe() {
		t.Error("Probe after restart: want not ready again, then ready")
	}
	if err := d.Serve(); err == nil {
		t.Error("Serve while serving succeeded")
	}
}

func TestConcurrentCalls(t *testing.T) {
	d, c := start(t, fakedriver.Options{})
	var wg sync.WaitGroup
	for i := range 20 {
		wg.Go(func() {
			// 5 names, 4 calls each: idempotent. A call that overlaps another
			// with the same name gets ABORTED and retries, as a sidecar does.
			name := "v" + string(rune('a'+i%5))
			for {
				_, err := c.ctl.CreateVolume(context.Background(), createReq(name, gi))
				if status.Code(err) == codes.Aborted {
					continue
				}
				if err != nil {
					t.Error(err)
				}
				break
			}
			d.FailNext("ListVolumes", codes.Aborted, 1)
			_ = d.Calls("CreateVolume")
		})
	}
	wg.Wait()
	if n := len(d.Volumes()); n != 5 {
		t.Errorf("volumes = %d, want 5", n)
	}
}

func TestNewRejectsBadOptions(t *testing.T) {
	_, err := fakedriver.New(fakedriver.Options{Capacity: -1, MinSize: -1})
	if err == nil || !strings.Contains(err.Error(), "Capacity") || !strings.Contains(err.Error(), "MinSize") {
		t.Errorf("New error = %v, want both fields named", err)
	}
}

package csiconn_test

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/container-storage-interface/spec/lib/go/csi"
	"go.uber.org/goleak"
	"google.golang.org/grpc/codes"
	"k8s.io/klog/v2"
	"k8s.io/klog/v2/ktesting"

	"github.com/csi-kit/sidecars/csiconn"
	"github.com/csi-kit/sidecars/testkit/fakedriver"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestConnectReadsNameAndCapabilities(t *testing.T) {
	_, ctx := ktesting.NewTestContext(t)
	drv := fakedriver.Start(t, fakedriver.Options{Name: "disk.csi.example.com", Capabilities: fakedriver.Resizer})
	for _, addr := range []string{drv.Endpoint(), drv.SocketPath()} {
		conn, err := csiconn.Connect(ctx, csiconn.Options{Address: addr, DriverName: "disk.csi.example.com"})
		if err != nil {
			t.Fatalf("Connect(%s): %v", addr, err)
		}
		caps := conn.Capabilities()
		if conn.DriverName() != "disk.csi.example.com" {
			t.Errorf("driver name %q", conn.DriverName())
		}
		if !caps.ControllerService || !caps.ExpandOnline || caps.ExpandOffline || caps.Topology {
			t.Errorf("plugin capabilities wrong: %s", caps)
		}
		if !caps.HasController(csi.ControllerServiceCapability_RPC_EXPAND_VOLUME) ||
			caps.HasController(csi.ControllerServiceCapability_RPC_CREATE_DELETE_SNAPSHOT) {
			t.Errorf("controller capabilities wrong: %s", caps)
		}
		conn.Close()
	}
}

func TestConnectWaitsForNotReadyDriver(t *testing.T) {
	_, ctx := ktesting.NewTestContext(t)
	drv := fakedriver.Start(t, fakedriver.Options{NotReadyProbes: 2})
	conn, err := csiconn.Connect(ctx, csiconn.Options{Address: drv.Endpoint()})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if got := drv.Calls("Probe"); got != 3 {
		t.Errorf("Probe called %d times, want 3 (2 not ready, then ready)", got)
	}
}

func TestConnectErrors(t *testing.T) {
	_, ctx := ktesting.NewTestContext(t)
	missing := filepath.Join(t.TempDir(), "nothing.sock")
	neverReady := fakedriver.Start(t, fakedriver.Options{NotReadyProbes: 1 << 30})
	named := fakedriver.Start(t, fakedriver.Options{Name: "other.csi.example.com"})
	for _, tc := range []struct {
		name    string
		opts    csiconn.Options
		wantErr string
		within  time.Duration
	}{
		{"empty address", csiconn.Options{}, "Address is empty", time.Second},
		{"unreachable socket", csiconn.Options{Address: missing, ConnectTimeout: 1500 * time.Millisecond},
			"did not accept a connection within 1.5s", 5 * time.Second},
		{"never ready", csiconn.Options{Address: neverReady.Endpoint(), ReadyTimeout: 1500 * time.Millisecond},
			"did not report ready within 1.5s", 5 * time.Second},
		{"name mismatch", csiconn.Options{Address: named.Endpoint(), DriverName: "disk.csi.example.com"},
			`is "other.csi.example.com", not the expected "disk.csi.example.com"`, 5 * time.Second},
		{"negative timeouts", csiconn.Options{Address: "/x", CallTimeout: -1, ReadyTimeout: -1},
			"CallTimeout -1ns must not be negative", time.Second},
	} {
		t.Run(tc.name, func(t *testing.T) {
			start := time.Now()
			conn, err := csiconn.Connect(ctx, tc.opts)
			if err == nil {
				conn.Close()
				t.Fatal("Connect succeeded, want an error")
			}
			if !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("error %q, want it to contain %q", err, tc.wantErr)
			}
			if took := time.Since(start); took > tc.within {
				t.Errorf("took %v, want at most %v", took, tc.within)
			}
		})
	}
}

func TestConnectionLossIsReported(t *testing.T) {
	_, ctx := ktesting.NewTestContext(t)
	drv := fakedriver.Start(t, fakedriver.Options{})
	conn, err := csiconn.Connect(ctx, csiconn.Options{Address: drv.Endpoint()})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	watchCtx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	errc := make(chan error, 1)
	go func() { errc <- conn.WatchLoss(watchCtx) }()
	// No call is made: the loss of an idle connection must be noticed too.
	drv.Stop()
	select {
	case err := <-errc:
		if !errors.Is(err, csiconn.ErrConnectionLost) {
			t.Fatalf("WatchLoss = %v, want ErrConnectionLost", err)
		}
	case <-watchCtx.Done():
		t.Fatal("loss of an idle connection not reported within 5s")
	}
	// Without Reconnect every later call fails with Unavailable.
	callCtx, callCancel := conn.CallContext(ctx)
	defer callCancel()
	if _, err := conn.Identity().Probe(callCtx, &csi.ProbeRequest{}); csiconn.Code(err) != codes.Unavailable {
		t.Errorf("call after loss: %v, want Unavailable", err)
	}
}

func TestHTTPServerServesMetricsAndHealth(t *testing.T) {
	_, ctx := ktesting.NewTestContext(t)
	drv := fakedriver.Start(t, fakedriver.Options{Name: "m.csi.example.com"})
	mgr := csiconn.NewMetricsManager()
	conn, err := csiconn.Connect(ctx, csiconn.Options{Address: drv.Endpoint(), Metrics: mgr})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	// Calls made during Connect are recorded before the driver's name is
	// known; this one is recorded with it.
	callCtx, cancel := conn.CallContext(ctx)
	defer cancel()
	if _, err := conn.Identity().Probe(callCtx, &csi.ProbeRequest{}); err != nil {
		t.Fatal(err)
	}
	failing := &check{name: "leader-election", err: errors.New("lease not renewed for 40s")}
	srv, err := csiconn.NewHTTPServer(csiconn.HTTPOptions{Address: "127.0.0.1:0", Checks: []csiconn.HealthChecker{failing}}, mgr)
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(srv.Handler())
	defer hs.Close()

	body, code := get(t, hs.URL+"/metrics")
	if code != 200 {
		t.Fatalf("/metrics: %d", code)
	}
	for _, want := range []string{
		`csi_sidecar_operations_seconds_count{driver_name="m.csi.example.com",grpc_status_code="OK",method_name="/csi.v1.Identity/Probe"}`,
		`csi_sidecar_operations_seconds_bucket`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
	if body, code := get(t, hs.URL+"/healthz/leader-election"); code != 500 || !strings.Contains(body, "lease not renewed") {
		t.Errorf("failing check: %d %q", code, body)
	}
	failing.err = nil
	if _, code := get(t, hs.URL+"/healthz"); code != 200 {
		t.Errorf("healthy: %d", code)
	}
}

type check struct {
	name string
	err  error
}

func (c *check) Name() string              { return c.name }
func (c *check) Check(*http.Request) error { return c.err }

func get(t *testing.T, url string) (string, int) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b), resp.StatusCode
}

func TestSecretsNeverLogged(t *testing.T) {
	logger := ktesting.NewLogger(t, ktesting.NewConfig(ktesting.BufferLogs(true), ktesting.Verbosity(5)))
	ctx := klog.NewContext(context.Background(), logger)
	drv := fakedriver.Start(t, fakedriver.Options{})
	conn, err := csiconn.Connect(ctx, csiconn.Options{Address: drv.Endpoint()})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	callCtx, cancel := conn.CallContext(ctx)
	defer cancel()
	const secret = "s3cr3t-planted-value"
	_, _ = conn.Controller().CreateVolume(callCtx, &csi.CreateVolumeRequest{
		Name:    "v1",
		Secrets: map[string]string{"password": secret},
		VolumeCapabilities: []*csi.VolumeCapability{{
			AccessType: &csi.VolumeCapability_Mount{Mount: &csi.VolumeCapability_MountVolume{}},
			AccessMode: &csi.VolumeCapability_AccessMode{Mode: csi.VolumeCapability_AccessMode_SINGLE_NODE_WRITER},
		}},
	})
	underlier, ok := logger.GetSink().(ktesting.Underlier)
	if !ok {
		t.Fatal("test logger has no buffer")
	}
	out := underlier.GetBuffer().String()
	if !strings.Contains(out, "CreateVolume") {
		t.Fatalf("the request was not logged at all; log:\n%s", out)
	}
	if strings.Contains(out, secret) {
		t.Errorf("secret value appears in the log")
	}
	if !strings.Contains(out, "***stripped***") {
		t.Errorf("log does not show the secret as stripped")
	}
}

// TestConnectProbesUntilReady: with no ReadyTimeout, a driver that is not
// ready is probed until the caller gives up, and the wait is logged once per
// ReadyLogInterval with what the last probe answered (not once per probe).
func TestConnectProbesUntilReady(t *testing.T) {
	logger := ktesting.NewLogger(t, ktesting.NewConfig(ktesting.BufferLogs(true)))
	drv := fakedriver.Start(t, fakedriver.Options{NotReadyProbes: 1 << 30})
	ctx, cancel := context.WithCancel(klog.NewContext(context.Background(), logger))
	defer cancel()
	errc := make(chan error, 1)
	go func() {
		conn, err := csiconn.Connect(ctx, csiconn.Options{Address: drv.Endpoint(), ReadyLogInterval: 1500 * time.Millisecond})
		if conn != nil {
			conn.Close()
		}
		errc <- err
	}()
	deadline := time.Now().Add(30 * time.Second)
	for drv.Calls("Probe") < 5 {
		select {
		case err := <-errc:
			t.Fatalf("Connect gave up after %d probes: %v", drv.Calls("Probe"), err)
		case <-time.After(100 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("only %d probes in 30s", drv.Calls("Probe"))
		}
	}
	cancel()
	err := <-errc
	if err == nil || !errors.Is(err, context.Canceled) || !strings.Contains(err.Error(), "waiting for CSI driver") {
		t.Fatalf("Connect = %v, want a cancelled wait for readiness", err)
	}
	probes := drv.Calls("Probe")
	logs := logger.GetSink().(ktesting.Underlier).GetBuffer().String()
	waits := strings.Count(logs, "Waiting for the CSI driver to report ready")
	if waits == 0 || !strings.Contains(logs, "Probe answered ready=false") {
		t.Errorf("no progress line saying what the probe answered after %d probes:\n%s", probes, logs)
	}
	if waits >= probes {
		t.Errorf("%d progress lines for %d probes: want one per interval, not per probe", waits, probes)
	}
}

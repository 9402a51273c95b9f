package main

import (
	"bytes"
	"context"
	"errors"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/container-storage-interface/spec/lib/go/csi"
	"go.uber.org/goleak"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
)

// childEnv makes the test binary act as something else in a child
// process: "main" runs the driver binary with the process's arguments,
// "sanity" runs one csi-sanity suite (see TestSanity).
const childEnv = "EXAMPLE_DRIVER_CHILD"

func TestMain(m *testing.M) {
	if os.Getenv(childEnv) == "main" {
		ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
		code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
		stop()
		os.Exit(code)
	}
	goleak.VerifyTestMain(m,
		// Ginkgo (run by the sanity child) leaves its signal watcher running.
		goleak.IgnoreTopFunction("github.com/onsi/ginkgo/v2/internal/interrupt_handler.(*InterruptHandler).registerForInterrupts.func2"),
	)
}

// binary is the driver binary running in a child process.
type binary struct {
	cmd            *exec.Cmd
	stdout, stderr lockedBuffer
	done           chan error
}

// lockedBuffer collects a child's output while the test reads it.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// startBinary runs the driver with args and waits for its socket and its
// startup summary.
func startBinary(t *testing.T, socket string, args ...string) *binary {
	t.Helper()
	b := &binary{cmd: exec.Command(os.Args[0], args...), done: make(chan error, 1)}
	b.cmd.Env = append(os.Environ(), childEnv+"=main")
	b.cmd.Stdout, b.cmd.Stderr = &b.stdout, &b.stderr
	if err := b.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { b.done <- b.cmd.Wait() }()
	t.Cleanup(func() {
		if b.cmd.ProcessState == nil {
			_ = b.cmd.Process.Kill()
			<-b.done
		}
	})
	deadline := time.Now().Add(30 * time.Second)
	for {
		if _, err := os.Stat(socket); err == nil && strings.Contains(b.stdout.String(), "\n") {
			return b
		}
		select {
		case err := <-b.done:
			t.Fatalf("driver exited before serving: %v\nstderr: %s", err, b.stderr.String())
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("driver socket %s did not appear; stderr: %s", socket, b.stderr.String())
		}
	}
}

// wait waits for the child to exit and returns its exit status.
func (b *binary) wait(t *testing.T) int {
	t.Helper()
	select {
	case err := <-b.done:
		var exit *exec.ExitError
		if err != nil && !errors.As(err, &exit) {
			t.Fatal(err)
		}
		return b.cmd.ProcessState.ExitCode()
	case <-time.After(30 * time.Second):
		t.Fatal("driver did not exit")
		return -1
	}
}

func dial(t *testing.T, socket string) (csi.ControllerClient, csi.IdentityClient) {
	t.Helper()
	conn, err := grpc.NewClient("unix://"+socket, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return csi.NewControllerClient(conn), csi.NewIdentityClient(conn)
}

func callCtx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel)
	return c
}

var rwo = &csi.VolumeCapability{
	AccessMode: &csi.VolumeCapability_AccessMode{Mode: csi.VolumeCapability_AccessMode_SINGLE_NODE_WRITER},
	AccessType: &csi.VolumeCapability_Mount{Mount: &csi.VolumeCapability_MountVolume{}},
}

// TestRestartKeepsVolumes: the binary, stopped by SIGTERM and started
// again on the same --state-dir, still has its volume, answers the same
// CreateVolume with the same volume, and counts the volume against the
// zone's capacity.
func TestRestartKeepsVolumes(t *testing.T) {
	dir := t.TempDir()
	socket := filepath.Join(dir, "csi.sock")
	args := []string{"--endpoint=unix://" + socket, "--driver=disk.csi.example.com", "--nodeid=node-a",
		"--mode=cloud-disk", "--zones=node-a=zone-a,node-b=zone-b", "--capacity=100Gi",
		"--state-dir=" + filepath.Join(dir, "state"), "--v=5"}
	req := &csi.CreateVolumeRequest{
		Name: "pvc-1", CapacityRange: &csi.CapacityRange{RequiredBytes: 10 << 30},
		VolumeCapabilities: []*csi.VolumeCapability{rwo},
		AccessibilityRequirements: &csi.TopologyRequirement{Preferred: []*csi.Topology{
			{Segments: map[string]string{"topology.disk.csi.example.com/zone": "zone-b"}}}},
	}

	b1 := startBinary(t, socket, args...)
	ctl, _ := dial(t, socket)
	first, err := ctl.CreateVolume(callCtx(t), req)
	if err != nil {
		t.Fatal(err)
	}
	v := first.GetVolume()
	if v.GetCapacityBytes() != 20<<30 {
		t.Errorf("size = %d, want the 20Gi minimum", v.GetCapacityBytes())
	}
	if z := v.GetAccessibleTopology()[0].GetSegments()["topology.disk.csi.example.com/zone"]; z != "zone-b" {
		t.Errorf("zone = %q, want the preferred zone-b", z)
	}
	if err := b1.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if code := b1.wait(t); code != 0 {
		t.Fatalf("exit status after SIGTERM = %d, want 0; stderr: %s", code, b1.stderr.String())
	}
	if _, err := os.Stat(socket); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("socket after SIGTERM: %v, want it removed", err)
	}
	if out := b1.stdout.String(); strings.Count(out, "\n") != 1 || !strings.Contains(out, "mode=cloud-disk") {
		t.Errorf("startup summary = %q, want one line naming the mode", out)
	}
	if !strings.Contains(b1.stderr.String(), "CreateVolume") {
		t.Errorf("--v=5 did not log the CreateVolume call; stderr: %s", b1.stderr.String())
	}

	b2 := startBinary(t, socket, args...)
	if !strings.Contains(b2.stdout.String(), "1 volumes") {
		t.Errorf("summary after restart = %q, want 1 volume loaded", b2.stdout.String())
	}
	ctl, _ = dial(t, socket)
	list, err := ctl.ListVolumes(callCtx(t), &csi.ListVolumesRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if n := len(list.GetEntries()); n != 1 || list.GetEntries()[0].GetVolume().GetVolumeId() != v.GetVolumeId() {
		t.Errorf("ListVolumes after restart = %v, want only %s", list.GetEntries(), v.GetVolumeId())
	}
	again, err := ctl.CreateVolume(callCtx(t), req)
	if err != nil {
		t.Fatal(err)
	}
	if again.GetVolume().GetVolumeId() != v.GetVolumeId() {
		t.Errorf("CreateVolume after restart = %s, want the same volume %s", again.GetVolume().GetVolumeId(), v.GetVolumeId())
	}
	capRsp, err := ctl.GetCapacity(callCtx(t), &csi.GetCapacityRequest{AccessibleTopology: &csi.Topology{
		Segments: map[string]string{"topology.disk.csi.example.com/zone": "zone-b"}}})
	if err != nil {
		t.Fatal(err)
	}
	if got := capRsp.GetAvailableCapacity(); got != 80<<30 {
		t.Errorf("zone-b capacity after restart = %d, want 80Gi", got)
	}
	if err := b2.cmd.Process.Signal(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	if code := b2.wait(t); code != 0 {
		t.Errorf("exit status after SIGINT = %d, want 0", code)
	}
}

// TestBadFlagsExit2: one line on stderr, status 2, nothing served.
func TestBadFlagsExit2(t *testing.T) {
	for _, args := range [][]string{
		{"--mode=nfs"},
		{"--bogus"},
		{"--endpoint=tcp://127.0.0.1:10000"},
		{"--driver=-bad-", "--endpoint=" + filepath.Join(t.TempDir(), "csi.sock")},
	} {
		b := &binary{cmd: exec.Command(os.Args[0], args...)}
		b.cmd.Env = append(os.Environ(), childEnv+"=main")
		b.cmd.Stdout, b.cmd.Stderr = &b.stdout, &b.stderr
		err := b.cmd.Run()
		var exit *exec.ExitError
		if !errors.As(err, &exit) || exit.ExitCode() != 2 {
			t.Errorf("%v: %v, want exit status 2", args, err)
		}
		if out := b.stderr.String(); strings.Count(out, "\n") != 1 || !strings.HasPrefix(out, "driver: ") {
			t.Errorf("%v: stderr %q, want one line starting with \"driver: \"", args, out)
		}
	}
}

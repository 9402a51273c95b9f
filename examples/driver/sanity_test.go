package main

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/kubernetes-csi/csi-test/v5/pkg/sanity"
)

// sanityModeEnv names the mode a sanity child process tests.
const sanityModeEnv = "EXAMPLE_DRIVER_SANITY_MODE"

// sanityArgs are the flags each mode is tested with, beyond endpoint and
// state directory. The pools are large enough for the volumes the suite
// keeps at once.
var sanityArgs = map[string][]string{
	"cloud-disk": {"--mode=cloud-disk", "--zones=node-a=zone-a,node-b=zone-b,node-c=zone-a", "--capacity=1Ti"},
	"local":      {"--mode=local", "--node-capacity=node-a=1Ti,node-b=10Gi"},
	"offline":    {"--mode=offline", "--zones=node-a=zone-a,node-b=zone-b"},
}

// TestSanity runs csi-sanity against the driver in every mode. Ginkgo
// allows one suite per process, so each mode runs in a child process
// (this test binary again, running TestSanityChild).
func TestSanity(t *testing.T) {
	if testing.Short() {
		t.Skip("csi-sanity takes a while; skipped with -short")
	}
	for _, mode := range modes {
		t.Run(mode, func(t *testing.T) {
			cmd := exec.Command(os.Args[0], "-test.run=^TestSanityChild$", "-test.v", "-test.timeout=5m")
			cmd.Env = append(os.Environ(), childEnv+"=sanity", sanityModeEnv+"="+mode)
			out, err := cmd.CombinedOutput()
			if err != nil {
				t.Errorf("csi-sanity in %s mode: %v\n%s", mode, err, out)
			} else if testing.Verbose() {
				t.Logf("%s", tail(out, 400))
			}
		})
	}
}

// TestSanityChild is one sanity suite, run by TestSanity in a child.
func TestSanityChild(t *testing.T) {
	mode := os.Getenv(sanityModeEnv)
	if os.Getenv(childEnv) != "sanity" || mode == "" {
		t.Skip("run by TestSanity in a child process")
	}
	dir := t.TempDir()
	socket := filepath.Join(dir, "csi.sock")
	args := append([]string{"--endpoint=" + socket, "--nodeid=node-a", "--state-dir=" + filepath.Join(dir, "state")},
		sanityArgs[mode]...)
	ctx, cancel := context.WithCancel(context.Background())
	exited := make(chan int, 1)
	go func() { exited <- run(ctx, args, os.Stdout, os.Stderr) }()
	defer func() {
		cancel()
		if code := <-exited; code != 0 {
			t.Errorf("driver exit status %d", code)
		}
		if _, err := os.Stat(socket); err == nil {
			t.Error("socket left behind after stop")
		}
	}()
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		if _, err := os.Stat(socket); err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("driver socket did not appear")
		}
	}

	cfg := sanity.NewTestConfig()
	cfg.Address = "unix://" + socket
	cfg.TargetPath = filepath.Join(dir, "target")
	cfg.StagingPath = filepath.Join(dir, "staging")
	if mode == "cloud-disk" {
		// Smaller volumes would be raised to the 20Gi minimum, and the
		// suite expects exactly the size it asked for.
		cfg.TestVolumeSize = 20 << 30
	}
	sanity.Test(t, cfg)
}

// tail returns the last n bytes of out.
func tail(out []byte, n int) []byte {
	if len(out) > n {
		return out[len(out)-n:]
	}
	return out
}

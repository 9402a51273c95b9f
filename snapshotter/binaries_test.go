package snapshotter

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	crdv1 "github.com/kubernetes-csi/external-snapshotter/client/v8/apis/volumesnapshot/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/csi-kit/sidecars/testkit/eventually"
)

// TestBinaries builds examples/snapshot-controller and
// examples/csi-snapshotter, runs them leader-elected against the control
// plane and the fake driver, and takes a snapshot through them. Building
// takes a minute, so it runs only with CSIKIT_TEST_BINARIES=1.
func TestBinaries(t *testing.T) {
	if os.Getenv("CSIKIT_TEST_BINARIES") == "" {
		t.Skip("set CSIKIT_TEST_BINARIES=1 to build and run the example binaries")
	}
	e := newEnv(t, envOptions{})
	e.class("gold", crdv1.VolumeSnapshotContentDelete, false, nil)
	e.volume("data")
	dir := t.TempDir()
	for _, name := range []string{"snapshot-controller", "csi-snapshotter"} {
		cmd := exec.Command("go", "build", "-o", filepath.Join(dir, name), "../examples/"+name)
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("building %s: %v\n%s", name, err, out)
		}
	}
	common := []string{"--kubeconfig", cp.KubeconfigPath(), "--leader-election", "--leader-election-namespace", e.ns, "-v", "2"}
	run := func(name string, args ...string) {
		ctx, cancel := context.WithCancel(context.Background())
		cmd := exec.CommandContext(ctx, filepath.Join(dir, name), append(common, args...)...)
		cmd.Cancel = func() error { return cmd.Process.Signal(os.Interrupt) }
		cmd.WaitDelay = 10 * time.Second
		log, err := os.Create(filepath.Join(dir, name+".log"))
		if err != nil {
			t.Fatal(err)
		}
		cmd.Stdout, cmd.Stderr = log, log
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			cancel()
			// After SIGINT the binaries exit 0; Wait still reports the
			// cancelled context, so the exit code is what counts.
			err := cmd.Wait()
			if code := cmd.ProcessState.ExitCode(); code != 0 {
				data, _ := os.ReadFile(log.Name())
				t.Errorf("%s exited %d (%v)\n%s", name, code, err, data)
			}
		})
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	run("snapshot-controller", "--http-endpoint", addr)
	run("csi-snapshotter", "--csi-address", e.drv.SocketPath(), "--extra-create-metadata")
	e.snapshot("snap", "data", "gold")
	e.waitReady("snap")
	eventually.Require(t, 10*time.Second, "controller metrics served", func(context.Context) error {
		resp, err := http.Get("http://" + addr + "/metrics")
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		if !strings.Contains(string(body), `snapshot_controller_operation_total_seconds_count{driver_name="`+e.driver+`",operation_name="CreateSnapshotAndReady",operation_status="success",snapshot_type="dynamic"} 1`) {
			return fmt.Errorf("metrics lack the CreateSnapshotAndReady observation")
		}
		return nil
	})
	for _, lease := range []string{"snapshot-controller-leader", "external-snapshotter-leader-" + sanitizeForTest(e.driver)} {
		if _, err := e.kube.CoordinationV1().Leases(e.ns).Get(e.ctx, lease, metav1.GetOptions{}); err != nil {
			t.Errorf("lease %s: %v", lease, err)
		}
	}
}

func sanitizeForTest(s string) string {
	out := []byte(s)
	for i, c := range out {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-') {
			out[i] = '-'
		}
	}
	return string(out)
}

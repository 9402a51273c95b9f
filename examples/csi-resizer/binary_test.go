package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/csi-kit/sidecars/leaderelection"
	"github.com/csi-kit/sidecars/testkit/controlplane"
	"github.com/csi-kit/sidecars/testkit/fakedriver"
)

// TestBinaryLeaderElectionIdentity runs the built csi-resizer against a
// real API server: --leader-election-identity is the holder identity the
// Lease shows.
func TestBinaryLeaderElectionIdentity(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary and starts a control plane")
	}
	bin := filepath.Join(t.TempDir(), "csi-resizer")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	cp := controlplane.StartT(t, controlplane.Options{})
	const driver = "identity.csi.test"
	drv := fakedriver.Start(t, fakedriver.Options{Name: driver, Capabilities: fakedriver.Resizer})
	client := kubernetes.NewForConfigOrDie(cp.Config())

	cmd := exec.Command(bin, "--csi-address="+drv.SocketPath(), "--kubeconfig="+cp.KubeconfigPath(),
		"--leader-election", "--leader-election-namespace=default", "--leader-election-identity=resizer-replica-a")
	logs, err := os.Create(filepath.Join(t.TempDir(), "log"))
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stdout, cmd.Stderr = logs, logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	defer func() {
		if cmd.ProcessState == nil {
			_ = cmd.Process.Kill()
			<-exited
		}
		if t.Failed() {
			data, _ := os.ReadFile(logs.Name())
			t.Logf("binary log:\n%s", data)
		}
	}()

	lease := leaderelection.LockName(leaderelection.ComponentResizer, driver)
	var holder string
	for deadline := time.Now().Add(60 * time.Second); time.Now().Before(deadline); time.Sleep(200 * time.Millisecond) {
		l, err := client.CoordinationV1().Leases("default").Get(t.Context(), lease, metav1.GetOptions{})
		if err == nil && l.Spec.HolderIdentity != nil && *l.Spec.HolderIdentity != "" {
			holder = *l.Spec.HolderIdentity
			break
		}
	}
	if holder != "resizer-replica-a" {
		t.Errorf("Lease %s holder %q, want resizer-replica-a", lease, holder)
	}
	_ = cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-exited:
		if err != nil {
			t.Errorf("binary exited with %v after SIGTERM", err)
		}
	case <-time.After(30 * time.Second):
		t.Errorf("binary did not stop within 30s of SIGTERM")
	}
}

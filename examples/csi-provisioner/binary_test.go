package main

import (
	"context"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	v1 "k8s.io/api/core/v1"
	storagev1 "k8s.io/api/storage/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/csi-kit/sidecars/testkit/controlplane"
	"github.com/csi-kit/sidecars/testkit/fakedriver"
)

// TestBinarySeedFlags runs the built binary with the flags of seed 001
// against a real control plane and a fake driver: a claim gets bound to a
// "local-" volume, and SIGTERM stops the binary cleanly. --http-endpoint
// with --enable-pprof (upstream's diagnostics flags) serve the profiles.
func TestBinarySeedFlags(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary and starts a control plane")
	}
	bin := filepath.Join(t.TempDir(), "csi-provisioner")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	cp := controlplane.StartT(t, controlplane.Options{ControllerManager: true})
	drv := fakedriver.Start(t, fakedriver.Options{Name: "seed.csi.test", Capabilities: fakedriver.Capabilities{Controller: true, CreateDelete: true}})
	ctx := t.Context()
	client := kubernetes.NewForConfigOrDie(cp.Config())
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	endpoint := l.Addr().String()
	l.Close()

	cmd := exec.Command(bin, "--http-endpoint="+endpoint, "--enable-pprof", "--csi-address="+drv.SocketPath(), "--kubeconfig="+cp.KubeconfigPath(),
		"--feature-gates=Topology=True", "--volume-name-prefix=local", "--strict-topology=true", "--timeout=150s",
		"--extra-create-metadata=true", "--enable-leader-election=true", "--leader-election-type=leases",
		"--leader-election-namespace=default", "--retry-interval-start=500ms", "--v=5")
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

	sc := "seed"
	if _, err := client.StorageV1().StorageClasses().Create(ctx, &storagev1.StorageClass{ObjectMeta: metav1.ObjectMeta{Name: sc},
		Provisioner: "seed.csi.test"}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := client.CoreV1().PersistentVolumeClaims("default").Create(ctx, &v1.PersistentVolumeClaim{
		ObjectMeta: metav1.ObjectMeta{Name: "data"},
		Spec: v1.PersistentVolumeClaimSpec{StorageClassName: &sc, AccessModes: []v1.PersistentVolumeAccessMode{v1.ReadWriteOnce},
			Resources: v1.VolumeResourceRequirements{Requests: v1.ResourceList{v1.ResourceStorage: resource.MustParse("1Gi")}}},
	}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(60 * time.Second)
	var pvc *v1.PersistentVolumeClaim
	for time.Now().Before(deadline) {
		pvc, err = client.CoreV1().PersistentVolumeClaims("default").Get(ctx, "data", metav1.GetOptions{})
		if err == nil && pvc.Status.Phase == v1.ClaimBound {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if pvc == nil || pvc.Status.Phase != v1.ClaimBound || !strings.HasPrefix(pvc.Spec.VolumeName, "local-") {
		t.Fatalf("claim not bound to a local- volume: %+v", pvc)
	}
	if _, err := client.CoordinationV1().Leases("default").Get(ctx, "seed-csi-test", metav1.GetOptions{}); err != nil {
		t.Errorf("lease: %v", err)
	}
	resp, err := http.Get("http://" + endpoint + "/debug/pprof/cmdline")
	if err != nil {
		t.Fatalf("pprof: %v", err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(body), "--enable-pprof") {
		t.Errorf("GET /debug/pprof/cmdline: %d %q, want 200 and the command line", resp.StatusCode, body)
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
	_ = context.Background
}

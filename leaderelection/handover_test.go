package leaderelection_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	v1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/csi-kit/sidecars/testkit/controlplane"
	"github.com/csi-kit/sidecars/testkit/fakedriver"
)

// TestHandoverFigures measures, for each example binary, how long a
// standby process takes to hold the Lease after the leader process is
// killed (SIGKILL: crash handover) or stopped (SIGTERM: planned handover),
// at the default timings (lease 15s, renew deadline 10s, retry period 5s).
// It asserts nothing: it prints the figures for docs/operations.md.
//
//	CSIKIT_HANDOVER=all CSIKIT_HANDOVER_RUNS=3 go test -run TestHandoverFigures -v -timeout 60m ./leaderelection/
//
// CSIKIT_HANDOVER may also list binaries (csi-resizer,csi-provisioner).
// Each binary runs as two processes with distinct identities (the default
// hostname_uuid) against a fresh control plane with the snapshot CRDs and
// an in-process fake driver.
func TestHandoverFigures(t *testing.T) {
	which := os.Getenv("CSIKIT_HANDOVER")
	if which == "" {
		t.Skip("measurement: set CSIKIT_HANDOVER=all (or a list of binaries)")
	}
	needCluster(t)
	runs := 3
	if n, err := strconv.Atoi(os.Getenv("CSIKIT_HANDOVER_RUNS")); err == nil && n > 0 {
		runs = n
	}
	binaries := []string{"csi-provisioner", "csi-resizer", "csi-snapshotter", "snapshot-controller", "csi-sidecars"}
	if which != "all" {
		binaries = strings.Split(which, ",")
	}
	cpl, err := controlplane.Start(context.Background(), controlplane.Options{SnapshotCRDs: true, Progress: os.Stderr})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = cpl.Stop() }()
	dir := t.TempDir()
	var table []string
	for _, bin := range binaries {
		path := filepath.Join(dir, bin)
		if out, err := exec.Command("go", "build", "-o", path, "../examples/"+bin).CombinedOutput(); err != nil {
			t.Errorf("building %s: %v\n%s", bin, err, out)
			continue
		}
		for _, kind := range []string{"crash", "planned"} {
			figures := measureHandover(t, cpl, path, kind, runs)
			table = append(table, fmt.Sprintf("| %s | %s | %s |", bin, kind, strings.Join(figures, ", ")))
		}
	}
	t.Logf("handover after the leader process was stopped, until the standby holds the Lease:\n| binary | handover | runs |\n|---|---|---|\n%s",
		strings.Join(table, "\n"))
}

// measureHandover runs one binary as leader and standby runs times, each
// time stopping the leader the given way, and returns the handover times.
func measureHandover(t *testing.T, cpl *controlplane.ControlPlane, path, kind string, runs int) []string {
	t.Helper()
	client := kubernetes.NewForConfigOrDie(cpl.Config())
	created, err := client.CoreV1().Namespaces().Create(context.Background(),
		&v1.Namespace{ObjectMeta: metav1.ObjectMeta{GenerateName: "handover-"}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	ns := created.Name
	drv := fakedriver.Start(t, fakedriver.Options{Name: "handover.csi.test", Capabilities: fakedriver.All})
	args := []string{"--kubeconfig=" + cpl.KubeconfigPath(), "--leader-election", "--leader-election-namespace=" + ns, "--v=2"}
	if !strings.HasSuffix(path, "snapshot-controller") {
		args = append(args, "--csi-address="+drv.Endpoint())
	}
	n := 0
	start := func() *exec.Cmd {
		n++
		log, err := os.Create(filepath.Join(t.TempDir(), fmt.Sprintf("%s-%d.log", filepath.Base(path), n)))
		if err != nil {
			t.Fatal(err)
		}
		cmd := exec.Command(path, args...)
		cmd.Stdout, cmd.Stderr = log, log
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
			_ = log.Close()
		})
		return cmd
	}
	holder := func() (string, string) {
		list, err := client.CoordinationV1().Leases(ns).List(context.Background(), metav1.ListOptions{})
		if err != nil && !apierrors.IsNotFound(err) {
			t.Fatal(err)
		}
		for _, l := range list.Items {
			if l.Spec.HolderIdentity != nil && *l.Spec.HolderIdentity != "" {
				return l.Name, *l.Spec.HolderIdentity
			}
		}
		return "", ""
	}
	waitHolder := func(not string, limit time.Duration) (string, time.Duration) {
		at := time.Now()
		for time.Since(at) < limit {
			if _, h := holder(); h != "" && h != not {
				return h, time.Since(at)
			}
			time.Sleep(10 * time.Millisecond)
		}
		t.Fatalf("%s: no new holder (other than %q) after %v", filepath.Base(path), not, limit)
		return "", 0
	}
	leader := start()
	id, _ := waitHolder("", 60*time.Second)
	var figures []string
	for range runs {
		standby := start()
		// Stop the leader at a random point of its renewal cycle, once
		// the standby stands by.
		time.Sleep(3*time.Second + rand.N(5*time.Second))
		if kind == "crash" {
			_ = leader.Process.Kill()
		} else {
			_ = leader.Process.Signal(syscall.SIGTERM)
		}
		var took time.Duration
		id, took = waitHolder(id, 60*time.Second)
		_ = leader.Wait()
		figures = append(figures, took.Round(10*time.Millisecond).String())
		t.Logf("%s %s handover: %v", filepath.Base(path), kind, took)
		leader = standby
	}
	_ = leader.Process.Signal(syscall.SIGTERM)
	_ = leader.Wait()
	return figures
}

package main

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/csi-kit/sidecars/csiconn"
	"github.com/csi-kit/sidecars/testkit/fakedriver"
)

// BenchmarkIdleFootprint compares, idle over CSIKIT_FOOTPRINT_PAIRS (default
// 1000) bound PVC/PV pairs of one driver, the all-in-one csi-sidecars with
// csi-provisioner + csi-resizer + csi-snapshotter run as three processes:
// resident memory (VmRSS of the processes, summed) and the API watches they
// hold (apiserver_longrunning_requests{verb="WATCH"}, after minus before).
// The binaries are built into a temporary directory and run with leader
// election against the test control plane.
func BenchmarkIdleFootprint(b *testing.B) {
	needCluster(b)
	ctx := b.Context()
	pairs := 1000
	if v, err := strconv.Atoi(os.Getenv("CSIKIT_FOOTPRINT_PAIRS")); err == nil {
		pairs = v
	}
	bin := b.TempDir()
	fmt.Fprintln(os.Stderr, "footprint: building binaries")
	build := exec.CommandContext(ctx, "go", "build", "-o", bin+"/", "../csi-sidecars", "../csi-provisioner", "../csi-resizer", "../csi-snapshotter")
	if out, err := build.CombinedOutput(); err != nil {
		b.Fatalf("building: %v\n%s", err, out)
	}
	admin := kubernetes.NewForConfigOrDie(cp.Config())
	nsObj, err := admin.CoreV1().Namespaces().Create(ctx, &v1.Namespace{ObjectMeta: metav1.ObjectMeta{GenerateName: "footprint-"}}, metav1.CreateOptions{})
	if err != nil {
		b.Fatal(err)
	}
	ns := nsObj.Name
	caps := fakedriver.All
	caps.Topology = false
	drv := fakedriver.Start(b, fakedriver.Options{Name: ns + ".csi.test", Capabilities: caps})
	conn, err := csiconn.Connect(ctx, csiconn.Options{Address: drv.Endpoint(), CallTimeout: time.Minute})
	if err != nil {
		b.Fatal(err)
	}
	defer conn.Close()
	for i := 0; i < pairs; i++ {
		if _, err := makeBoundClaim(ctx, admin, conn, ns, fmt.Sprintf("c%05d", i), ""); err != nil {
			b.Fatal(err)
		}
		if (i+1)%250 == 0 {
			fmt.Fprintf(os.Stderr, "footprint: %d/%d PVC/PV pairs\n", i+1, pairs)
		}
	}
	common := []string{"--kubeconfig=" + cp.KubeconfigPath(), "--csi-address=" + drv.Endpoint(), "--leader-election",
		"--leader-election-namespace=" + ns, "--v=1"}
	setups := []struct {
		name string
		cmds [][]string
	}{
		{"all-in-one", [][]string{{"csi-sidecars"}}},
		{"separate", [][]string{{"csi-provisioner"}, {"csi-resizer"}, {"csi-snapshotter"}}},
	}
	for _, s := range setups {
		before, err := watches(ctx, admin)
		if err != nil {
			b.Fatal(err)
		}
		var procs []*exec.Cmd
		for _, c := range s.cmds {
			cmd := exec.CommandContext(ctx, filepath.Join(bin, c[0]), append(common, c[1:]...)...)
			cmd.Stderr, _ = os.Create(filepath.Join(bin, c[0]+".log"))
			if err := cmd.Start(); err != nil {
				b.Fatal(err)
			}
			procs = append(procs, cmd)
		}
		// Idle: the watch count has stopped growing for 5 seconds.
		var watching, last float64
		stable := 0
		for deadline := time.Now().Add(2 * time.Minute); stable < 5 && time.Now().Before(deadline); time.Sleep(time.Second) {
			now, err := watches(ctx, admin)
			if err != nil {
				b.Fatal(err)
			}
			if watching = now - before; watching > 0 && watching == last {
				stable++
			} else {
				stable = 0
			}
			last = watching
		}
		for _, p := range procs {
			if err := p.Process.Signal(syscall.Signal(0)); err != nil {
				b.Fatalf("%s: %s exited before the measurement (log in %s): %v", s.name, p.Path, bin, err)
			}
		}
		leases, err := admin.CoordinationV1().Leases(ns).List(ctx, metav1.ListOptions{})
		if err != nil {
			b.Fatal(err)
		}
		held := 0
		for _, l := range leases.Items {
			if l.Spec.HolderIdentity != nil && *l.Spec.HolderIdentity != "" {
				held++
			}
		}
		if held != len(procs) {
			b.Fatalf("%s: %d Leases held, want one per process (%d)", s.name, held, len(procs))
		}
		var rss, hwm int64
		for _, p := range procs {
			r, h := procMemory(p.Process.Pid)
			rss, hwm = rss+r, hwm+h
			fmt.Fprintf(os.Stderr, "footprint: %s: %s VmRSS %.1f MiB\n", s.name, filepath.Base(p.Path), float64(r)/1024)
		}
		fmt.Fprintf(os.Stderr, "footprint: %s (%d processes): %d pairs, VmRSS %.1f MiB, VmHWM %.1f MiB, watches %.0f\n",
			s.name, len(procs), pairs, float64(rss)/1024, float64(hwm)/1024, watching)
		b.ReportMetric(float64(rss)/1024, s.name+"-RSS-MiB")
		b.ReportMetric(watching, s.name+"-watches")
		for _, p := range procs {
			_ = p.Process.Signal(syscall.SIGTERM)
			_ = p.Wait()
		}
		for deadline := time.Now().Add(time.Minute); time.Now().Before(deadline); time.Sleep(500 * time.Millisecond) {
			if now, _ := watches(ctx, admin); now <= before {
				break
			}
		}
	}
}

// watches sums apiserver_longrunning_requests{verb="WATCH"}.
func watches(ctx context.Context, c kubernetes.Interface) (float64, error) {
	raw, err := c.CoreV1().RESTClient().Get().AbsPath("/metrics").DoRaw(ctx)
	if err != nil {
		return 0, err
	}
	var sum float64
	sc := bufio.NewScanner(strings.NewReader(string(raw)))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		l := sc.Text()
		if !strings.HasPrefix(l, "apiserver_longrunning_requests{") || !strings.Contains(l, `verb="WATCH"`) {
			continue
		}
		v, err := strconv.ParseFloat(l[strings.LastIndexByte(l, ' ')+1:], 64)
		if err == nil {
			sum += v
		}
	}
	return sum, sc.Err()
}

// procMemory returns VmRSS and VmHWM of pid in KiB.
func procMemory(pid int) (rss, hwm int64) {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, 0
	}
	for _, l := range strings.Split(string(data), "\n") {
		f := strings.Fields(l)
		if len(f) < 2 {
			continue
		}
		n, _ := strconv.ParseInt(f[1], 10, 64)
		switch f[0] {
		case "VmRSS:":
			rss = n
		case "VmHWM:":
			hwm = n
		}
	}
	return rss, hwm
}

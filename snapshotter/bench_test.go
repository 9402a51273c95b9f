package snapshotter

import (
	"context"
	"fmt"
	"os"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	crdv1 "github.com/kubernetes-csi/external-snapshotter/client/v8/apis/volumesnapshot/v1"
	snapclient "github.com/kubernetes-csi/external-snapshotter/client/v8/clientset/versioned"
	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	_ "k8s.io/klog/v2"

	"github.com/csi-kit/sidecars/csiconn"
	"github.com/csi-kit/sidecars/internal/benchutil"
	"github.com/csi-kit/sidecars/internal/kube"
	"github.com/csi-kit/sidecars/testkit/eventually"
	"github.com/csi-kit/sidecars/testkit/fakedriver"
)

// BenchmarkSnapshot creates N VolumeSnapshots of N PVCs at once and times
// them to readyToUse, with the snapshot controller and the sidecar in this
// process and the fake driver answering at once. N is 1000 (env
// CSIKIT_BENCH_N); at QPS 5 it is N/20 (at least 10), since there the
// figure that counts is writes per snapshot. The -noevents case is
// --normal-events=false.
func BenchmarkSnapshot(b *testing.B) {
	needCluster(b)
	n, ok := benchutil.N(1000)
	if !ok {
		b.Fatalf("CSIKIT_BENCH_N=%q: want a positive integer", os.Getenv("CSIKIT_BENCH_N"))
	}
	for _, tc := range []struct {
		name     string
		qps      float32
		burst    int
		n        int
		noEvents bool
	}{
		{"qps5", 5, 10, max(n/20, 10), false},
		{"default", kube.DefaultQPS, kube.DefaultBurst, n, false},
		{"default-noevents", kube.DefaultQPS, kube.DefaultBurst, n, true},
		{"unthrottled", -1, 0, n, false},
	} {
		b.Run(tc.name, func(b *testing.B) {
			for range b.N {
				runSnapshotBench(b, tc.qps, tc.burst, tc.n, tc.noEvents)
			}
		})
	}
}

func runSnapshotBench(b *testing.B, qps float32, burst, n int, noEvents bool) {
	ctx := context.Background()
	admin := kube.WithBudget(cp.Config(), -1, 0)
	adminKube := kubernetes.NewForConfigOrDie(admin)
	adminSnap := snapclient.NewForConfigOrDie(admin)
	seq := envSeq.Add(1)
	ns := fmt.Sprintf("bench-%d-%d", seq, time.Now().UnixNano()%100000)
	driver := fmt.Sprintf("bench%d.csi.test", seq)
	if _, err := adminKube.CoreV1().Namespaces().Create(ctx, &v1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{}); err != nil {
		b.Fatal(err)
	}
	drv := fakedriver.Start(b, fakedriver.Options{Name: driver, Capabilities: fakedriver.Snapshotter, RequestHistory: 1})
	conn, err := csiconn.Connect(ctx, csiconn.Options{Address: drv.Endpoint(), CallTimeout: time.Minute})
	if err != nil {
		b.Fatal(err)
	}
	defer conn.Close()
	class := &crdv1.VolumeSnapshotClass{ObjectMeta: metav1.ObjectMeta{Name: ns}, Driver: driver, DeletionPolicy: crdv1.VolumeSnapshotContentDelete}
	if _, err := adminSnap.SnapshotV1().VolumeSnapshotClasses().Create(ctx, class, metav1.CreateOptions{}); err != nil {
		b.Fatal(err)
	}
	fmt.Fprintf(os.Stderr, "bench: creating %d bound PVCs in %s\n", n, ns)
	benchutil.Parallel(n, 32, func(i int) {
		resp, err := conn.Controller().CreateVolume(ctx, volumeRequest(fmt.Sprintf("%s-%d", ns, i)))
		if err != nil {
			b.Error(err)
			return
		}
		if _, err := makeBoundPVC(ctx, adminKube, ns, fmt.Sprintf("pvc-%d", i), driver, resp.GetVolume().GetVolumeId()); err != nil {
			b.Error(err)
		}
	})
	if b.Failed() {
		return
	}
	if withKCM {
		waitBinderSettled(ctx, b, adminKube, ns, n)
	}

	// The components under test, each with its own budget and counter.
	var writes benchutil.Writes
	cfg := writes.Wrap(kube.WithBudget(cp.Config(), qps, burst))
	ctrlKube := kubernetes.NewForConfigOrDie(cfg)
	ctrlSnap := snapclient.NewForConfigOrDie(cfg)
	sideKube := kubernetes.NewForConfigOrDie(cfg)
	sideSnap := snapclient.NewForConfigOrDie(cfg)
	ctrlRec, stopCtrlRec, _ := kube.NewRecorder(cfg, ControllerComponent)
	sideRec, stopSideRec, _ := kube.NewRecorder(cfg, SidecarComponent)
	ctl, err := NewController(ControllerOptions{SnapshotClient: ctrlSnap, Recorder: ctrlRec, Workers: benchutil.Workers(),
		DisableNormalEvents: noEvents}, ctrlKube)
	if err != nil {
		b.Fatal(err)
	}
	side, err := NewSidecar(SidecarOptions{SnapshotClient: sideSnap, DriverName: driver, Recorder: sideRec, Workers: benchutil.Workers()}, sideKube, mustDriver(b, conn))
	if err != nil {
		b.Fatal(err)
	}
	runCtx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	for _, run := range []func(context.Context) error{ctl.Run, side.Run} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := run(runCtx); err != nil {
				b.Error(err)
			}
		}()
	}
	defer func() {
		cancel()
		wg.Wait()
		stopCtrlRec()
		stopSideRec()
	}()

	eventually.Require(b, 5*time.Minute, "controller and sidecar started", eventually.True("caches synced", func() bool {
		return started(ctl.rt.Load()) && started(side.rt.Load())
	}))
	b.ResetTimer()
	start := time.Now()
	cn := class.Name
	benchutil.Parallel(n, 32, func(i int) {
		pvc := fmt.Sprintf("pvc-%d", i)
		vs := &crdv1.VolumeSnapshot{
			ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("snap-%d", i), Namespace: ns},
			Spec:       crdv1.VolumeSnapshotSpec{VolumeSnapshotClassName: &cn, Source: crdv1.VolumeSnapshotSource{PersistentVolumeClaimName: &pvc}},
		}
		if _, err := adminSnap.SnapshotV1().VolumeSnapshots(ns).Create(ctx, vs, metav1.CreateOptions{}); err != nil {
			b.Error(err)
		}
	})
	progress := benchutil.NewProgress(5 * time.Second)
	for {
		ready := readyCount(ctx, adminSnap, ns)
		if ready == n {
			break
		}
		progress.Printf("bench: %d/%d ready after %v", ready, n, time.Since(start).Round(time.Second))
		if time.Since(start) > 30*time.Minute {
			b.Fatalf("only %d/%d snapshots ready after 30m", ready, n)
		}
		// Two lists a second: cheap next to the work measured, and a
		// resolution of half a second on runs of many seconds.
		time.Sleep(500 * time.Millisecond)
	}
	elapsed := time.Since(start)
	b.StopTimer()
	// Let the PVC finalizers go and the events flush, then count.
	deadline := time.Now().Add(5 * time.Minute)
	for time.Now().Before(deadline) {
		list, err := adminKube.CoreV1().PersistentVolumeClaims(ns).List(ctx, metav1.ListOptions{ResourceVersion: "0"})
		if err != nil {
			b.Fatal(err)
		}
		held := 0
		for _, pvc := range list.Items {
			for _, f := range pvc.Finalizers {
				if f == FinalizerPVCAsSource {
					held++
				}
			}
		}
		if held == 0 {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	settle(&writes)
	total, by := writes.Total(), writes.By()
	if got := len(drv.Snapshots()); got != n {
		b.Errorf("backend has %d snapshots, want %d", got, n)
	}
	b.ReportMetric(float64(n)/elapsed.Seconds(), "snapshots/s")
	b.ReportMetric(float64(total)/float64(n), "writes/snapshot")
	events := 0
	for k, v := range by {
		if strings.HasSuffix(k, " events") {
			events += v
		}
	}
	b.ReportMetric(float64(events)/float64(n), "event-writes/snapshot")
	b.ReportMetric(float64(benchutil.PeakRSS())/(1<<20), "peak-RSS-MiB")
	keys := make([]string, 0, len(by))
	for k := range by {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var parts []string
	for _, k := range keys {
		parts = append(parts, fmt.Sprintf("%s=%.2f", k, float64(by[k])/float64(n)))
	}
	reads := writes.Reads()
	fmt.Fprintf(os.Stderr, "bench: qps=%v n=%d: %d ready in %v (%.1f/s), reads %d, writes per snapshot by request: %s\n",
		qps, n, n, elapsed.Round(time.Millisecond), float64(n)/elapsed.Seconds(), reads, strings.Join(parts, " "))
}

// settle waits until no write was counted for half a second.
func settle(w *benchutil.Writes) {
	last := w.Total()
	for range 40 {
		time.Sleep(500 * time.Millisecond)
		cur := w.Total()
		if cur == last {
			return
		}
		last = cur
	}
}

func mustDriver(b testing.TB, conn *csiconn.Conn) Driver {
	d, err := NewCSIDriver(conn)
	if err != nil {
		b.Fatal(err)
	}
	return d
}

// readyCount lists the namespace's snapshots (from the watch cache) and
// counts the ready ones.
func readyCount(ctx context.Context, snap snapclient.Interface, ns string) int {
	list, err := snap.SnapshotV1().VolumeSnapshots(ns).List(ctx, metav1.ListOptions{ResourceVersion: "0"})
	if err != nil {
		return -1
	}
	ready := 0
	for _, vs := range list.Items {
		if vs.Status != nil && vs.Status.ReadyToUse != nil && *vs.Status.ReadyToUse {
			ready++
		}
	}
	return ready
}

// waitBinderSettled waits until kube-controller-manager's binder has
// finished with the new PVCs (it annotates them bind-completed), so its
// writes do not compete with the measured ones.
func waitBinderSettled(ctx context.Context, b *testing.B, client kubernetes.Interface, ns string, n int) {
	deadline := time.Now().Add(3 * time.Minute)
	for time.Now().Before(deadline) {
		list, err := client.CoreV1().PersistentVolumeClaims(ns).List(ctx, metav1.ListOptions{ResourceVersion: "0"})
		if err != nil {
			b.Fatal(err)
		}
		done := 0
		for _, pvc := range list.Items {
			if pvc.Annotations["pv.kubernetes.io/bind-completed"] != "" {
				done++
			}
		}
		if done == n {
			return
		}
		time.Sleep(500 * time.Millisecond)
	}
	fmt.Fprintf(os.Stderr, "bench: the PV binder did not finish with %s in 3m; measuring anyway\n", ns)
}

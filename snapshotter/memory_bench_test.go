package snapshotter

import (
	"context"
	"fmt"
	"os"
	"runtime"
	"strconv"
	"time"

	crdv1 "github.com/kubernetes-csi/external-snapshotter/client/v8/apis/volumesnapshot/v1"
	snapclient "github.com/kubernetes-csi/external-snapshotter/client/v8/clientset/versioned"
	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
	"testing"

	"github.com/csi-kit/sidecars/internal/benchutil"
	"github.com/csi-kit/sidecars/internal/kube"
)

// BenchmarkControllerCache measures the memory a snapshot controller
// needs with 10,000 ready snapshots (and their contents) in the cluster
// (env CSIKIT_BENCH_CACHE_N): the Go heap and RSS growth of this process
// from before the controller starts to when it has synced and handled
// every snapshot once.
func BenchmarkControllerCache(b *testing.B) {
	needCluster(b)
	n := 10000
	if s := os.Getenv("CSIKIT_BENCH_CACHE_N"); s != "" {
		var err error
		if n, err = strconv.Atoi(s); err != nil || n <= 0 {
			b.Fatalf("CSIKIT_BENCH_CACHE_N=%q: want a positive integer", s)
		}
	}
	ctx := context.Background()
	admin := kube.WithBudget(cp.Config(), -1, 0)
	snap := snapclient.NewForConfigOrDie(admin)
	client := kubernetes.NewForConfigOrDie(admin)
	ns := fmt.Sprintf("cache-%d", time.Now().UnixNano()%100000)
	if _, err := client.CoreV1().Namespaces().Create(ctx, &v1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{}); err != nil {
		b.Fatal(err)
	}
	fmt.Fprintf(os.Stderr, "bench: creating %d ready snapshots and contents in %s\n", n, ns)
	start := time.Now()
	var done int64
	benchutil.Parallel(n, 48, func(i int) {
		if err := createReadyPair(ctx, snap, ns, i); err != nil {
			b.Error(err)
		}
		if d := atomicAdd(&done); d%2000 == 0 {
			fmt.Fprintf(os.Stderr, "bench: %d/%d pairs after %v\n", d, n, time.Since(start).Round(time.Second))
		}
	})
	if b.Failed() {
		return
	}
	for range b.N {
		heap0, rss0 := memNow()
		var writes benchutil.Writes
		cfg := writes.Wrap(kube.WithBudget(cp.Config(), kube.DefaultQPS, kube.DefaultBurst))
		c, err := NewController(ControllerOptions{SnapshotClient: snapclient.NewForConfigOrDie(cfg)}, kubernetes.NewForConfigOrDie(cfg))
		if err != nil {
			b.Fatal(err)
		}
		runCtx, cancel := context.WithCancel(ctx)
		errc := make(chan error, 1)
		t0 := time.Now()
		go func() { errc <- c.Run(runCtx) }()
		// Wait until the caches are filled and the queues drained.
		for c.pending() != 0 || time.Since(t0) < 2*time.Second {
			time.Sleep(100 * time.Millisecond)
		}
		settle(&writes)
		startup := time.Since(t0)
		heap1, rss1 := memNow()
		total, by := writes.Total(), writes.By()
		cancel()
		if err := <-errc; err != nil {
			b.Fatal(err)
		}
		b.ReportMetric(float64(heap1-heap0)/(1<<20), "controller-heap-MiB")
		b.ReportMetric(float64(rss1-rss0)/(1<<20), "controller-RSS-growth-MiB")
		b.ReportMetric(float64(total), "writes-at-start")
		fmt.Fprintf(os.Stderr, "bench: controller over %d ready snapshots: heap +%.1f MiB, RSS +%.1f MiB, started and idle in %v, writes %v\n",
			n, float64(heap1-heap0)/(1<<20), float64(rss1-rss0)/(1<<20), startup.Round(time.Millisecond), by)
	}
}

func atomicAdd(p *int64) int64 {
	benchMu.Lock()
	defer benchMu.Unlock()
	*p++
	return *p
}

// memNow returns the live Go heap after a collection, and VmRSS.
func memNow() (heap, rss int64) {
	runtime.GC()
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return int64(ms.HeapAlloc), benchutil.RSS()
}

// createReadyPair creates a pre-provisioned content and its snapshot, both
// already bound, finalized and ready, as the controller would leave them.
func createReadyPair(ctx context.Context, snap snapclient.Interface, ns string, i int) error {
	name := fmt.Sprintf("s-%d", i)
	content := ns + "-" + name
	vs := &crdv1.VolumeSnapshot{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns, Finalizers: []string{FinalizerSnapshotAsSource, FinalizerSnapshotBound}},
		Spec:       crdv1.VolumeSnapshotSpec{Source: crdv1.VolumeSnapshotSource{VolumeSnapshotContentName: &content}},
	}
	vs, err := snap.SnapshotV1().VolumeSnapshots(ns).Create(ctx, vs, metav1.CreateOptions{})
	if err != nil {
		return err
	}
	handle := "handle-" + content
	now := time.Now()
	vsc := &crdv1.VolumeSnapshotContent{
		ObjectMeta: metav1.ObjectMeta{Name: content, Finalizers: []string{FinalizerContentBound}},
		Spec: crdv1.VolumeSnapshotContentSpec{
			VolumeSnapshotRef: v1.ObjectReference{Kind: "VolumeSnapshot", APIVersion: "snapshot.storage.k8s.io/v1", Namespace: ns, Name: name, UID: vs.UID},
			DeletionPolicy:    crdv1.VolumeSnapshotContentDelete,
			Driver:            "cache.csi.test",
			Source:            crdv1.VolumeSnapshotContentSource{SnapshotHandle: &handle},
		},
	}
	if _, err := snap.SnapshotV1().VolumeSnapshotContents().Create(ctx, vsc, metav1.CreateOptions{}); err != nil {
		return err
	}
	size := int64(1 << 30)
	st := &crdv1.VolumeSnapshotContentStatus{SnapshotHandle: &handle, ReadyToUse: ptr(true), CreationTime: ptr(now.UnixNano()), RestoreSize: &size}
	if _, err := snap.SnapshotV1().VolumeSnapshotContents().Patch(ctx, content, types.MergePatchType, contentStatusPatch(st), metav1.PatchOptions{}, "status"); err != nil {
		return err
	}
	t := metav1.NewTime(now)
	vst := &crdv1.VolumeSnapshotStatus{BoundVolumeSnapshotContentName: &content, ReadyToUse: ptr(true), CreationTime: &t, RestoreSize: resource.NewQuantity(size, resource.BinarySI)}
	_, err = snap.SnapshotV1().VolumeSnapshots(ns).Patch(ctx, name, types.MergePatchType, snapshotStatusPatch(vst), metav1.PatchOptions{}, "status")
	return err
}

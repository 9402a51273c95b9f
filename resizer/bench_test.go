package resizer_test

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/container-storage-interface/spec/lib/go/csi"
	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
	"k8s.io/klog/v2"

	"github.com/csi-kit/sidecars/csiconn"
	"github.com/csi-kit/sidecars/internal/benchutil"
	"github.com/csi-kit/sidecars/internal/kube"
	"github.com/csi-kit/sidecars/resizer"
	"github.com/csi-kit/sidecars/testkit/fakedriver"
)

// BenchmarkResize raises N bound PVCs at once and measures until every one
// shows the new status capacity: resizes per second, API writes per resize
// (events included) and peak RSS. N = $CSIKIT_BENCH_N (default 1000); at
// QPS 5 at most 100 PVCs are used, or the run would take minutes. The
// -noevents case is --normal-events=false.
// $CSIKIT_BENCH_WORKERS overrides Options.Workers (default 10);
// $CSIKIT_BENCH_PROTOBUF=1 makes the resizer's client use protobuf.
func BenchmarkResize(b *testing.B) {
	if cp == nil {
		b.Skip("no control plane in -short mode")
	}
	n, _ := benchutil.N(1000)
	for _, bc := range []struct {
		name     string
		qps      float32
		burst    int
		n        int
		noEvents bool
	}{
		{"upstream-qps5", 5, 10, min(n, 100), false},
		{"default-qps200", kube.DefaultQPS, kube.DefaultBurst, n, false},
		{"default-qps200-noevents", kube.DefaultQPS, kube.DefaultBurst, n, true},
		{"unthrottled", -1, 0, n, false},
	} {
		b.Run(fmt.Sprintf("%s/N=%d", bc.name, bc.n), func(b *testing.B) {
			for range b.N {
				benchResize(b, bc.n, bc.qps, bc.burst, bc.noEvents)
			}
		})
	}
}

func benchResize(b *testing.B, n int, qps float32, burst int, noEvents bool) {
	b.StopTimer()
	ctx, cancel := context.WithCancel(klog.NewContext(context.Background(), klog.Background().V(1)))
	defer cancel()
	drvName := fmt.Sprintf("b%d.csi.test", driverSeq.Add(1))
	drv := fakedriver.Start(b, fakedriver.Options{Name: drvName, Capabilities: fakedriver.Resizer})
	admin := kubernetes.NewForConfigOrDie(kube.WithBudget(cp.Config(), -1, 0))
	ns := "bench-" + strings.ReplaceAll(drvName, ".", "-")
	if _, err := admin.CoreV1().Namespaces().Create(ctx, &v1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{}); err != nil {
		b.Fatal(err)
	}
	e := &env{t: b, ctx: ctx, kube: admin, ns: ns, drv: drv, name: drvName}
	e.ensureStorageClass()
	conn, err := csiconn.Connect(ctx, csiconn.Options{Address: drv.Endpoint()})
	if err != nil {
		b.Fatal(err)
	}
	defer conn.Close()
	e.conn = conn

	// Setup: N volumes, PVs and bound PVCs, 32 at a time.
	setupStart := time.Now()
	benchutil.Parallel(n, 32, func(i int) {
		resp, err := conn.Controller().CreateVolume(ctx, &csi.CreateVolumeRequest{
			Name: fmt.Sprintf("v%d", i), CapacityRange: &csi.CapacityRange{RequiredBytes: gi(1)},
			VolumeCapabilities: []*csi.VolumeCapability{{
				AccessType: &csi.VolumeCapability_Mount{Mount: &csi.VolumeCapability_MountVolume{}},
				AccessMode: &csi.VolumeCapability_AccessMode{Mode: csi.VolumeCapability_AccessMode_SINGLE_NODE_WRITER},
			}},
		})
		if err != nil {
			b.Error(err)
			return
		}
		createPair(ctx, b, admin, ns, drvName, fmt.Sprintf("c%d", i), resp.GetVolume().GetVolumeId())
	})
	if b.Failed() {
		return
	}
	benchutil.WaitBound(ctx, b, admin, ns, n)
	fmt.Fprintf(os.Stderr, "bench: %d bound PVCs set up in %v\n", n, time.Since(setupStart).Round(time.Millisecond))

	var writes benchutil.Writes
	cfg := kube.WithBudget(cp.Config(), qps, burst)
	if os.Getenv("CSIKIT_BENCH_PROTOBUF") != "" {
		cfg.AcceptContentTypes = "application/vnd.kubernetes.protobuf,application/json"
		cfg.ContentType = "application/vnd.kubernetes.protobuf"
	}
	client := kubernetes.NewForConfigOrDie(writes.Wrap(cfg))
	events := kubernetes.NewForConfigOrDie(writes.Wrap(kube.WithBudget(cp.Config(), 50, 100)))
	rec, stopRec, _ := kube.RecorderFor(events, "external-resizer "+drvName)
	d, err := resizer.NewCSIDriver(ctx, conn)
	if err != nil {
		b.Fatal(err)
	}
	workers := 0 // the default, 10
	if s := os.Getenv("CSIKIT_BENCH_WORKERS"); s != "" {
		workers, _ = strconv.Atoi(s)
	}
	// CSIKIT_BENCH_DISABLE_MARK=1 measures the cheaper order without the
	// PVC write before each call.
	disableMark := os.Getenv("CSIKIT_BENCH_DISABLE_MARK") != ""
	r, err := resizer.New(resizer.Options{Recorder: rec, Workers: workers, DisableMarkInProgress: disableMark,
		DisableNormalEvents: noEvents}, client, d)
	if err != nil {
		b.Fatal(err)
	}
	runErr := make(chan error, 1)
	go func() { runErr <- r.Run(ctx) }()
	defer func() {
		cancel()
		if err := <-runErr; err != nil {
			b.Errorf("Run: %v", err)
		}
		stopRec()
	}()
	<-r.Started()
	if w := writes.Total(); w != 0 {
		b.Logf("%d writes before any request changed: %s", w, writes.String())
	}

	b.StartTimer()
	start := time.Now()
	benchutil.Parallel(n, 32, func(i int) {
		patch := []byte(`{"spec":{"resources":{"requests":{"storage":"2Gi"}}}}`)
		for try := 1; ; try++ {
			_, err := admin.CoreV1().PersistentVolumeClaims(ns).Patch(ctx, fmt.Sprintf("c%d", i), types.MergePatchType, patch, metav1.PatchOptions{})
			if err == nil {
				return
			}
			fmt.Fprintf(os.Stderr, "bench: raising c%d (try %d): %v\n", i, try, err)
			if try == 20 {
				b.Error(err)
				return
			}
			time.Sleep(100 * time.Millisecond)
		}
	})
	raised := time.Since(start)
	fmt.Fprintf(os.Stderr, "bench: %d requests raised in %v\n", n, raised.Round(time.Millisecond))
	want := resource.MustParse("2Gi")
	progress := benchutil.NewProgress(5 * time.Second)
	for {
		list, err := admin.CoreV1().PersistentVolumeClaims(ns).List(ctx, metav1.ListOptions{ResourceVersion: "0"})
		if err != nil {
			b.Fatal(err)
		}
		done := 0
		for _, pvc := range list.Items {
			if q := pvc.Status.Capacity[v1.ResourceStorage]; q.Cmp(want) == 0 {
				done++
			}
		}
		if done == n {
			break
		}
		progress.Printf("bench: %d/%d resized after %v", done, n, time.Since(start).Round(time.Second))
		if time.Since(start) > 15*time.Minute {
			b.Fatalf("only %d of %d resized after 15m", done, n)
		}
		time.Sleep(100 * time.Millisecond)
	}
	elapsed := time.Since(start)
	b.StopTimer()
	// Events are written asynchronously: wait until one per resize was sent
	// (or the count stops moving) before counting.
	// The recorder's own budget is 50 events/s.
	wantEvents := 2 // Resizing and VolumeResizeSuccessful
	if disableMark {
		wantEvents = 1
	}
	for deadline := time.Now().Add(10*time.Second + time.Duration(n*wantEvents/50)*time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		if writes.Resource("events") >= n*wantEvents {
			break
		}
	}
	if calls := drv.Calls("ControllerExpandVolume"); calls != n {
		b.Errorf("ControllerExpandVolume called %d times for %d PVCs", calls, n)
	}
	b.ReportMetric(float64(n)/elapsed.Seconds(), "resizes/s")
	b.ReportMetric(float64(writes.Total())/float64(n), "writes/resize")
	b.ReportMetric(float64(benchutil.PeakRSS())/(1<<20), "peak-RSS-MiB")
	// For context: how fast this apiserver took the test's own PVC patches
	// (32 in flight, no limit) in the same run. A resize needs five writes
	// (PVC mark, PV, PVC, two events), three with DisableMarkInProgress.
	b.ReportMetric(float64(n)/raised.Seconds(), "apiserver-patches/s")
	fmt.Fprintf(os.Stderr, "bench: %d resizes in %v (QPS %v): writes %s\n", n, elapsed.Round(time.Millisecond), qps, writes.String())
}

func createPair(ctx context.Context, b testing.TB, client kubernetes.Interface, ns, driver, name, handle string) {
	sc := storageClass
	q := resource.MustParse("1Gi")
	pvName := ns + "-" + name
	pvc, err := client.CoreV1().PersistentVolumeClaims(ns).Create(ctx, &v1.PersistentVolumeClaim{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: v1.PersistentVolumeClaimSpec{
			AccessModes:      []v1.PersistentVolumeAccessMode{v1.ReadWriteOnce},
			Resources:        v1.VolumeResourceRequirements{Requests: v1.ResourceList{v1.ResourceStorage: q}},
			StorageClassName: &sc, VolumeName: pvName,
		},
	}, metav1.CreateOptions{})
	if err != nil {
		b.Error(err)
		return
	}
	_, err = client.CoreV1().PersistentVolumes().Create(ctx, &v1.PersistentVolume{
		ObjectMeta: metav1.ObjectMeta{Name: pvName},
		Spec: v1.PersistentVolumeSpec{
			Capacity:                      v1.ResourceList{v1.ResourceStorage: q},
			AccessModes:                   []v1.PersistentVolumeAccessMode{v1.ReadWriteOnce},
			PersistentVolumeReclaimPolicy: v1.PersistentVolumeReclaimRetain,
			StorageClassName:              sc,
			PersistentVolumeSource:        v1.PersistentVolumeSource{CSI: &v1.CSIPersistentVolumeSource{Driver: driver, VolumeHandle: handle}},
			ClaimRef:                      &v1.ObjectReference{Kind: "PersistentVolumeClaim", APIVersion: "v1", Namespace: ns, Name: name, UID: pvc.UID},
		},
	}, metav1.CreateOptions{})
	if err != nil {
		b.Error(err)
		return
	}
	pvc.Status.Phase = v1.ClaimBound
	pvc.Status.AccessModes = []v1.PersistentVolumeAccessMode{v1.ReadWriteOnce}
	pvc.Status.Capacity = v1.ResourceList{v1.ResourceStorage: q}
	if _, err := client.CoreV1().PersistentVolumeClaims(ns).UpdateStatus(ctx, pvc, metav1.UpdateOptions{}); err != nil {
		b.Error(err)
	}
}

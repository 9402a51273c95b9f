package provisioner

import (
	"context"
	"fmt"
	"os"
	"runtime"
	"testing"
	"time"

	"golang.org/x/sync/errgroup"
	v1 "k8s.io/api/core/v1"
	storagev1 "k8s.io/api/storage/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/record"

	"github.com/csi-kit/sidecars/csiconn"
	"github.com/csi-kit/sidecars/internal/benchutil"
	"github.com/csi-kit/sidecars/internal/kube"
	"github.com/csi-kit/sidecars/testkit/fakedriver"
)

// BenchmarkProvision provisions N claims (CSIKIT_BENCH_N, default 1000) of
// an Immediate class and reports provisions/s and API writes per
// provision, events included, at upstream's default client budget (QPS 5,
// burst 10), at ours (200/400), at ours without Normal events
// (--normal-events=false) and unthrottled.
func BenchmarkProvision(b *testing.B) {
	if cp == nil {
		b.Skip("needs the control plane (not in -short mode)")
	}
	for _, bc := range []struct {
		name     string
		qps      float32
		burst    int
		noEvents bool
	}{{"qps5", 5, 10, false}, {"default", kube.DefaultQPS, kube.DefaultBurst, false},
		{"default-noevents", kube.DefaultQPS, kube.DefaultBurst, true}, {"unthrottled", -1, 0, false}} {
		b.Run(bc.name, func(b *testing.B) {
			for i := 0; i < b.N; i++ {
				benchProvision(b, bc.qps, bc.burst, bc.noEvents)
			}
		})
	}
	b.Run("cache10k", benchCache)
}

func benchEnv(b *testing.B) (*env, *rest.Config) {
	ctx := context.Background()
	id := fmt.Sprintf("%x", time.Now().UnixNano())
	e := &env{ctx: ctx, ns: "b-" + id, driver: "b" + id + ".csi.test"}
	cfg := cp.Config()
	e.kube = kubernetes.NewForConfigOrDie(cfg)
	if _, err := e.kube.CoreV1().Namespaces().Create(ctx, &v1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: e.ns}}, metav1.CreateOptions{}); err != nil {
		b.Fatal(err)
	}
	e.drv = fakedriver.Start(b, fakedriver.Options{Name: e.driver, Capabilities: noTopology(), RequestHistory: 1})
	return e, cfg
}

// waitStarted waits until Run has set up p (listers included), or fails
// the benchmark when Run returned.
func waitStarted(b *testing.B, p *Provisioner, done chan error) {
	select {
	case <-p.started:
	case err := <-done:
		done <- err
		b.Fatalf("Run returned before starting: %v", err)
	}
}

func connectBench(b *testing.B, e *env) *csiconn.Conn {
	conn, err := csiconn.Connect(e.ctx, csiconn.Options{Address: e.drv.Endpoint()})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = conn.Close() })
	return conn
}

func createClaims(b *testing.B, e *env, class string, n int) {
	g := errgroup.Group{}
	g.SetLimit(32)
	for i := 0; i < n; i++ {
		g.Go(func() error {
			pvc := &v1.PersistentVolumeClaim{
				ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("c-%d", i), Namespace: e.ns},
				Spec: v1.PersistentVolumeClaimSpec{StorageClassName: &class, AccessModes: []v1.PersistentVolumeAccessMode{v1.ReadWriteOnce},
					Resources: v1.VolumeResourceRequirements{Requests: v1.ResourceList{v1.ResourceStorage: resource.MustParse("1Gi")}}},
			}
			_, err := e.kube.CoreV1().PersistentVolumeClaims(e.ns).Create(e.ctx, pvc, metav1.CreateOptions{})
			return err
		})
	}
	if err := g.Wait(); err != nil {
		b.Fatal(err)
	}
}

func benchProvision(b *testing.B, qps float32, burst int, noEvents bool) {
	n, _ := benchutil.N(1000)
	if qps > 0 && qps < 50 {
		n = max(1, n/5) // keep the throttled run within minutes
	}
	e, cfg := benchEnv(b)
	conn := connectBench(b, e)
	class := e.ns + "-std"
	if _, err := e.kube.StorageV1().StorageClasses().Create(e.ctx, &storagev1.StorageClass{
		ObjectMeta: metav1.ObjectMeta{Name: class}, Provisioner: e.driver}, metav1.CreateOptions{}); err != nil {
		b.Fatal(err)
	}
	wc := &benchutil.Writes{}
	pcfg := wc.Wrap(kube.WithBudget(cfg, qps, burst))
	client := kubernetes.NewForConfigOrDie(pcfg)
	rec, stopRec, _ := kube.RecorderFor(kubernetes.NewForConfigOrDie(wc.Wrap(kube.WithBudget(cfg, 50, 100))), "csi-provisioner")
	p, err := New(Options{Workers: benchutil.Workers(), Recorder: rec, DisableNormalEvents: noEvents}, client, conn)
	if err != nil {
		b.Fatal(err)
	}
	createClaims(b, e, class, n)
	wc.Reset()
	b.ResetTimer()
	start := time.Now()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- p.Run(ctx) }()
	defer func() { cancel(); <-done; stopRec() }()
	waitStarted(b, p, done)
	progress := benchutil.NewProgress(time.Second)
	for {
		got := len(e.drv.Volumes())
		pvs, _ := p.volumes.List(everything())
		created := 0
		for _, pv := range pvs {
			if pv.Spec.CSI != nil && pv.Spec.CSI.Driver == e.driver {
				created++
			}
		}
		if created >= n {
			break
		}
		progress.Printf("provision bench: %d/%d PVs (%d volumes, %d creates, %d writes) after %v", created, n, got, e.drv.Calls("CreateVolume"), wc.Total(), time.Since(start).Round(time.Second))
		if time.Since(start) > 15*time.Minute {
			b.Fatalf("only %d/%d PVs after 15m", created, n)
		}
		time.Sleep(20 * time.Millisecond)
	}
	elapsed := time.Since(start)
	b.StopTimer()
	time.Sleep(time.Second) // let trailing event writes land
	b.ReportMetric(float64(n)/elapsed.Seconds(), "provisions/s")
	b.ReportMetric(float64(wc.Total())/float64(n), "writes/op")
	b.ReportMetric(float64(benchutil.PeakRSS())/(1<<20), "peakRSS-MiB")
	b.ReportMetric(float64(n), "claims")
	fmt.Fprintf(os.Stderr, "provision bench qps=%v n=%d: %v, writes: %s\n", qps, n, elapsed.Round(time.Millisecond), wc)
	// The PV binder binds what was provisioned; let it finish so that its
	// writes do not share the API server with the next measurement.
	bindStart := time.Now()
	benchutil.WaitBound(e.ctx, b, e.kube, e.ns, n)
	fmt.Fprintf(os.Stderr, "provision bench: %d claims bound by the PV binder %v after the last PV\n", n, time.Since(bindStart).Round(time.Millisecond))
}

// benchCache measures memory per cached bound PVC+PV pair (10,000 pairs,
// or CSIKIT_BENCH_N*10).
func benchCache(b *testing.B) {
	n, _ := benchutil.N(1000)
	n *= 10
	e, cfg := benchEnv(b)
	conn := connectBench(b, e)
	class := e.ns + "-std"
	g := errgroup.Group{}
	g.SetLimit(32)
	for i := 0; i < n; i++ {
		g.Go(func() error {
			name := fmt.Sprintf("c-%d", i)
			pvName := fmt.Sprintf("%s-pv-%d", e.ns, i)
			pvc := &v1.PersistentVolumeClaim{
				ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: e.ns, Annotations: map[string]string{
					annStorageProvisioner: e.driver, "pv.kubernetes.io/bind-completed": "yes"}},
				Spec: v1.PersistentVolumeClaimSpec{StorageClassName: &class, VolumeName: pvName, AccessModes: []v1.PersistentVolumeAccessMode{v1.ReadWriteOnce},
					Resources: v1.VolumeResourceRequirements{Requests: v1.ResourceList{v1.ResourceStorage: resource.MustParse("1Gi")}}},
			}
			pvc, err := e.kube.CoreV1().PersistentVolumeClaims(e.ns).Create(e.ctx, pvc, metav1.CreateOptions{})
			if err != nil {
				return err
			}
			pv := &v1.PersistentVolume{
				ObjectMeta: metav1.ObjectMeta{Name: pvName, Finalizers: []string{FinalizerPV},
					Annotations: map[string]string{annProvisionedBy: e.driver, annDeletionSecretName: "", annDeletionSecretNamespace: ""}},
				Spec: v1.PersistentVolumeSpec{
					AccessModes: pvc.Spec.AccessModes, Capacity: v1.ResourceList{v1.ResourceStorage: resource.MustParse("1Gi")},
					ClaimRef:                      &v1.ObjectReference{Kind: "PersistentVolumeClaim", Namespace: e.ns, Name: name, UID: pvc.UID},
					PersistentVolumeReclaimPolicy: v1.PersistentVolumeReclaimDelete, StorageClassName: class,
					PersistentVolumeSource: v1.PersistentVolumeSource{CSI: &v1.CSIPersistentVolumeSource{Driver: e.driver,
						VolumeHandle: "vol-" + pvName, VolumeAttributes: map[string]string{provisionerIDKey: "1234-" + e.driver}}},
				},
			}
			_, err = e.kube.CoreV1().PersistentVolumes().Create(e.ctx, pv, metav1.CreateOptions{})
			return err
		})
		if i%2000 == 1999 {
			fmt.Fprintf(os.Stderr, "cache bench: created %d/%d pairs\n", i+1, n)
		}
	}
	if err := g.Wait(); err != nil {
		b.Fatal(err)
	}
	runtime.GC()
	time.Sleep(200 * time.Millisecond)
	rssBefore := benchutil.RSS()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	heapBefore := ms.HeapInuse
	p, err := New(Options{Recorder: &record.FakeRecorder{}}, kubernetes.NewForConfigOrDie(cfg), conn)
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- p.Run(ctx) }()
	defer func() { cancel(); <-done }()
	waitStarted(b, p, done)
	for {
		pvs, _ := p.volumes.List(everything())
		pvcs, _ := p.claims.List(everything())
		if len(pvs) >= n && len(pvcs) >= n {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	runtime.GC()
	time.Sleep(200 * time.Millisecond)
	runtime.ReadMemStats(&ms)
	rssAfter := benchutil.RSS()
	b.ReportMetric(float64(rssAfter-rssBefore)/float64(n)/1024, "RSS-KiB/pair")
	b.ReportMetric(float64(ms.HeapInuse-heapBefore)/float64(n)/1024, "heap-KiB/pair")
	b.ReportMetric(float64(n), "pairs")
}

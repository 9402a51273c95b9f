package resizer_test

import (
	"context"
	"fmt"
	"os"
	"runtime"
	"testing"
	"time"

	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/klog/v2"

	"github.com/csi-kit/sidecars/csiconn"
	"github.com/csi-kit/sidecars/internal/benchutil"
	"github.com/csi-kit/sidecars/internal/kube"
	"github.com/csi-kit/sidecars/resizer"
	"github.com/csi-kit/sidecars/testkit/fakedriver"
)

// BenchmarkPodTracking measures what in-use tracking costs with 10,000
// pods (CSIKIT_BENCH_N*10) that use no PVC of the driver: the heap and RSS
// a started resizer adds over the pods, for a driver that expands OFFLINE
// only (pods tracked) and one that expands ONLINE (no pod informer).
func BenchmarkPodTracking(b *testing.B) {
	if cp == nil {
		b.Skip("no control plane in -short mode")
	}
	n, _ := benchutil.N(1000)
	n *= 10
	ctx := klog.NewContext(context.Background(), klog.Background().V(1))
	admin := kubernetes.NewForConfigOrDie(kube.WithBudget(cp.Config(), -1, 0))
	ns := fmt.Sprintf("pods-%d", driverSeq.Add(1))
	if _, err := admin.CoreV1().Namespaces().Create(ctx, &v1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{}); err != nil {
		b.Fatal(err)
	}
	progress := benchutil.NewProgress(5 * time.Second)
	benchutil.Parallel(n, 32, func(i int) {
		if _, err := admin.CoreV1().Pods(ns).Create(ctx, unrelatedPod(i), metav1.CreateOptions{}); err != nil {
			b.Error(err)
		}
		progress.Printf("bench: %d/%d pods created", i+1, n)
	})
	if b.Failed() {
		return
	}
	measure := func(caps fakedriver.Capabilities) (heapMiB, rssMiB float64) {
		drv := fakedriver.Start(b, fakedriver.Options{Name: fmt.Sprintf("p%d.csi.test", driverSeq.Add(1)), Capabilities: caps})
		conn, err := csiconn.Connect(ctx, csiconn.Options{Address: drv.Endpoint()})
		if err != nil {
			b.Fatal(err)
		}
		defer conn.Close()
		d, err := resizer.NewCSIDriver(ctx, conn)
		if err != nil {
			b.Fatal(err)
		}
		heap0, rss0 := settledMemory()
		r, err := resizer.New(resizer.Options{}, kubernetes.NewForConfigOrDie(cp.Config()), d)
		if err != nil {
			b.Fatal(err)
		}
		rctx, cancel := context.WithCancel(ctx)
		done := make(chan error, 1)
		go func() { done <- r.Run(rctx) }()
		<-r.Started()
		heap1, rss1 := settledMemory()
		cancel()
		if err := <-done; err != nil {
			b.Fatal(err)
		}
		return float64(heap1-heap0) / (1 << 20), float64(rss1-rss0) / (1 << 20)
	}
	offline := fakedriver.Resizer
	offline.ExpandOnline, offline.ExpandOffline = false, true
	for b.Loop() {
		heapOff, rssOff := measure(fakedriver.Resizer)
		heapOn, rssOn := measure(offline)
		b.ReportMetric(heapOn-heapOff, "tracking-heap-MiB")
		b.ReportMetric(rssOn-rssOff, "tracking-RSS-MiB")
		b.ReportMetric(heapOn, "offline-driver-heap-MiB")
		b.ReportMetric(heapOff, "online-driver-heap-MiB")
		fmt.Fprintf(os.Stderr, "bench: %d unrelated pods: resizer heap +%.1f MiB with tracking (RSS +%.1f), +%.1f MiB without (RSS +%.1f)\n",
			n, heapOn, rssOn, heapOff, rssOff)
	}
}

// settledMemory is the heap in use and the RSS after two collections.
func settledMemory() (heap, rss int64) {
	var ms runtime.MemStats
	runtime.GC()
	runtime.GC()
	time.Sleep(200 * time.Millisecond)
	runtime.ReadMemStats(&ms)
	return int64(ms.HeapInuse), benchutil.RSS()
}

// unrelatedPod is a pod the size of a typical application pod, with no PVC.
func unrelatedPod(i int) *v1.Pod {
	return &v1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("app-%d", i), Labels: map[string]string{
			"app": "web", "tier": "frontend", "pod-template-hash": "5d8f7c9b6d"},
			Annotations: map[string]string{"prometheus.io/scrape": "true", "prometheus.io/port": "9090"}},
		Spec: v1.PodSpec{
			Containers: []v1.Container{{
				Name: "web", Image: "registry.example/team/web:1.2.3",
				Args:  []string{"--port=8080", "--log-level=info"},
				Env:   []v1.EnvVar{{Name: "MODE", Value: "production"}, {Name: "REGION", Value: "zone-a"}},
				Ports: []v1.ContainerPort{{ContainerPort: 8080, Name: "http"}},
				Resources: v1.ResourceRequirements{Requests: v1.ResourceList{
					v1.ResourceCPU: resource.MustParse("100m"), v1.ResourceMemory: resource.MustParse("128Mi")}},
				VolumeMounts: []v1.VolumeMount{{Name: "config", MountPath: "/etc/web"}},
			}},
			Volumes: []v1.Volume{{Name: "config", VolumeSource: v1.VolumeSource{
				ConfigMap: &v1.ConfigMapVolumeSource{LocalObjectReference: v1.LocalObjectReference{Name: "web-config"}}}}},
		},
	}
}

package controlplane_test

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/csi-kit/sidecars/internal/benchutil"
	"github.com/csi-kit/sidecars/internal/kube"
	"github.com/csi-kit/sidecars/testkit/controlplane"
)

// BenchmarkStart measures a warm start (binaries cached) until ready; Stop
// is not timed. Run with -benchtime=3x: one op takes seconds.
func BenchmarkStart(b *testing.B) {
	for _, bc := range []struct {
		name string
		opts controlplane.Options
	}{
		{"etcd+apiserver", controlplane.Options{}},
		{"with-kcm+scheduler", controlplane.Options{ControllerManager: true, Scheduler: true}},
		{"with-kcm+scheduler+snapshotCRDs", controlplane.Options{ControllerManager: true, Scheduler: true, SnapshotCRDs: true}},
	} {
		b.Run(bc.name, func(b *testing.B) {
			for b.Loop() {
				cp, err := controlplane.Start(b.Context(), bc.opts)
				if err != nil {
					b.Fatal(err)
				}
				b.StopTimer()
				if err := cp.Stop(); err != nil {
					b.Fatal(err)
				}
				b.StartTimer()
			}
		})
	}
}

// BenchmarkRawPVCreate is the ceiling every controller benchmark is read
// against: PersistentVolume creates from one unthrottled client with 32 in
// flight, on this machine's control plane (CSIKIT_BENCH_N creates, default
// 1000).
func BenchmarkRawPVCreate(b *testing.B) {
	n, _ := benchutil.N(1000)
	cp, err := controlplane.Start(b.Context(), controlplane.Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer func() { _ = cp.Stop() }()
	client := kubernetes.NewForConfigOrDie(kube.WithBudget(cp.Config(), -1, 0))
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		start := time.Now()
		var failed atomic.Int64
		benchutil.Parallel(n, 32, func(j int) {
			pv := &v1.PersistentVolume{
				ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("raw-%d-%d", i, j)},
				Spec: v1.PersistentVolumeSpec{
					AccessModes: []v1.PersistentVolumeAccessMode{v1.ReadWriteOnce},
					Capacity:    v1.ResourceList{v1.ResourceStorage: resource.MustParse("1Gi")},
					PersistentVolumeSource: v1.PersistentVolumeSource{CSI: &v1.CSIPersistentVolumeSource{
						Driver: "raw.csi.test", VolumeHandle: fmt.Sprintf("h-%d-%d", i, j)}},
				},
			}
			if _, err := client.CoreV1().PersistentVolumes().Create(context.Background(), pv, metav1.CreateOptions{}); err != nil {
				failed.Add(1)
			}
		})
		if f := failed.Load(); f > 0 {
			b.Fatalf("%d of %d creates failed", f, n)
		}
		b.ReportMetric(float64(n)/time.Since(start).Seconds(), "creates/s")
	}
}

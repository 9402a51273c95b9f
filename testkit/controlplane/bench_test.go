package controlplane_test

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	crdv1 "github.com/kubernetes-csi/external-snapshotter/client/v8/apis/volumesnapshot/v1"
	snapclient "github.com/kubernetes-csi/external-snapshotter/client/v8/clientset/versioned"
	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
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

// BenchmarkRawWrites is the ceiling every controller benchmark is read
// against: writes from one unthrottled client with 32 in flight on this
// machine's control plane (CSIKIT_BENCH_N per run, default 1000):
// PersistentVolume creates, merge patches of PVCs, and
// VolumeSnapshotContent creates (a custom resource, validated by its CEL
// rules).
func BenchmarkRawWrites(b *testing.B) {
	n, _ := benchutil.N(1000)
	cp, err := controlplane.Start(b.Context(), controlplane.Options{SnapshotCRDs: true})
	if err != nil {
		b.Fatal(err)
	}
	defer func() { _ = cp.Stop() }()
	cfg := kube.WithBudget(cp.Config(), -1, 0)
	client := kubernetes.NewForConfigOrDie(cfg)
	snap := snapclient.NewForConfigOrDie(cfg)
	ctx := context.Background()
	if _, err := client.CoreV1().Namespaces().Create(ctx, &v1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "raw"}}, metav1.CreateOptions{}); err != nil {
		b.Fatal(err)
	}
	run := 0
	measure := func(b *testing.B, what string, write func(i, j int) error) {
		for b.Loop() {
			run++
			start := time.Now()
			var failed atomic.Int64
			var firstErr atomic.Value
			benchutil.Parallel(n, 32, func(j int) {
				if err := write(run, j); err != nil {
					failed.Add(1)
					firstErr.CompareAndSwap(nil, err)
				}
			})
			if f := failed.Load(); f > 0 {
				b.Fatalf("%d of %d writes failed, first: %v", f, n, firstErr.Load())
			}
			b.ReportMetric(float64(n)/time.Since(start).Seconds(), what+"/s")
		}
	}
	b.Run("pv-create", func(b *testing.B) {
		measure(b, "creates", func(i, j int) error {
			_, err := client.CoreV1().PersistentVolumes().Create(ctx, &v1.PersistentVolume{
				ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("raw-%d-%d", i, j)},
				Spec: v1.PersistentVolumeSpec{
					AccessModes: []v1.PersistentVolumeAccessMode{v1.ReadWriteOnce},
					Capacity:    v1.ResourceList{v1.ResourceStorage: resource.MustParse("1Gi")},
					PersistentVolumeSource: v1.PersistentVolumeSource{CSI: &v1.CSIPersistentVolumeSource{
						Driver: "raw.csi.test", VolumeHandle: fmt.Sprintf("h-%d-%d", i, j)}},
				},
			}, metav1.CreateOptions{})
			return err
		})
	})
	b.Run("pvc-patch", func(b *testing.B) {
		benchutil.Parallel(n, 32, func(j int) {
			_, _ = client.CoreV1().PersistentVolumeClaims("raw").Create(ctx, &v1.PersistentVolumeClaim{
				ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("c-%d", j)},
				Spec: v1.PersistentVolumeClaimSpec{AccessModes: []v1.PersistentVolumeAccessMode{v1.ReadWriteOnce},
					Resources: v1.VolumeResourceRequirements{Requests: v1.ResourceList{v1.ResourceStorage: resource.MustParse("1Gi")}}},
			}, metav1.CreateOptions{})
		})
		measure(b, "patches", func(i, j int) error {
			patch := fmt.Sprintf(`{"metadata":{"annotations":{"raw":"%d"}}}`, i)
			_, err := client.CoreV1().PersistentVolumeClaims("raw").Patch(ctx, fmt.Sprintf("c-%d", j), types.MergePatchType, []byte(patch), metav1.PatchOptions{})
			return err
		})
	})
	b.Run("content-create", func(b *testing.B) {
		measure(b, "creates", func(i, j int) error {
			handle := fmt.Sprintf("snap-%d-%d", i, j)
			_, err := snap.SnapshotV1().VolumeSnapshotContents().Create(ctx, &crdv1.VolumeSnapshotContent{
				ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("raw-%d-%d", i, j)},
				Spec: crdv1.VolumeSnapshotContentSpec{
					Driver: "raw.csi.test", DeletionPolicy: crdv1.VolumeSnapshotContentRetain,
					Source:            crdv1.VolumeSnapshotContentSource{SnapshotHandle: &handle},
					VolumeSnapshotRef: v1.ObjectReference{Name: fmt.Sprintf("s-%d-%d", i, j), Namespace: "raw"},
				},
			}, metav1.CreateOptions{})
			return err
		})
	})
}

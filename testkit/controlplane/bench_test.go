package controlplane_test

import (
	"testing"

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

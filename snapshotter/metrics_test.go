package snapshotter

import (
	"fmt"
	"testing"
	"time"

	snapfake "github.com/kubernetes-csi/external-snapshotter/client/v8/clientset/versioned/fake"
	"github.com/prometheus/client_golang/prometheus"
	"k8s.io/apimachinery/pkg/types"
	kubefake "k8s.io/client-go/kubernetes/fake"

	"github.com/csi-kit/sidecars/internal/metricsutil"
)

// A second controller on the same registerer (a process that builds one
// again, or two in one binary) shares the metrics; it used to panic in
// MustRegister.
func TestControllerRegisteredTwice(t *testing.T) {
	reg := prometheus.NewRegistry()
	opts := ControllerOptions{Registerer: reg, SnapshotClient: snapfake.NewSimpleClientset()}
	c1, err := NewController(opts, kubefake.NewSimpleClientset())
	if err != nil {
		t.Fatal(err)
	}
	c2, err := NewController(opts, kubefake.NewSimpleClientset())
	if err != nil {
		t.Fatalf("second NewController: %v", err)
	}
	if c1.metrics.duration != c2.metrics.duration || c1.metrics.inFlight != c2.metrics.inFlight {
		t.Error("the second controller did not reuse the registered collectors")
	}
}

func TestControllerMetricConflictIsAnError(t *testing.T) {
	reg := prometheus.NewRegistry()
	reg.MustRegister(prometheus.NewGauge(prometheus.GaugeOpts{Name: "snapshot_controller_operations_in_flight", Help: "someone else's"}))
	if _, err := NewController(ControllerOptions{SnapshotClient: snapfake.NewSimpleClientset(), Registerer: reg}, kubefake.NewSimpleClientset()); err == nil {
		t.Fatal("NewController succeeded over a conflicting metric")
	}
}

// Driver names come from VolumeSnapshotClasses; made-up ones must not grow
// the histogram without bound.
func TestOpMetricsDriverLabelBounded(t *testing.T) {
	reg := prometheus.NewRegistry()
	m, err := newOpMetrics(reg)
	if err != nil {
		t.Fatal(err)
	}
	t0 := time.Unix(100, 0)
	for i := range 3 * maxDriverLabels {
		uid := types.UID(fmt.Sprint("u", i))
		m.start(opCreate, uid, fmt.Sprintf("drv-%d.example", i), typeDynamic, t0)
		m.finish(opCreate, uid, statusSuccess, t0.Add(time.Second))
	}
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	drivers := map[string]bool{}
	for _, f := range families {
		if f.GetName() != "snapshot_controller_operation_total_seconds" {
			continue
		}
		for _, s := range f.GetMetric() {
			for _, l := range s.GetLabel() {
				if l.GetName() == "driver_name" {
					drivers[l.GetValue()] = true
				}
			}
		}
	}
	if len(drivers) > maxDriverLabels+1 || !drivers[metricsutil.Other] {
		t.Errorf("%d driver_name values (other present: %v), want at most %d and %q", len(drivers), drivers[metricsutil.Other], maxDriverLabels+1, metricsutil.Other)
	}
}

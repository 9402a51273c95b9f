package snapshotter

import (
	"fmt"
	"testing"
	"time"

	snapfake "github.com/kubernetes-csi/external-snapshotter/client/v8/clientset/versioned/fake"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
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

func TestOpMetrics(t *testing.T) {
	reg := prometheus.NewRegistry()
	m, err := newOpMetrics(reg)
	if err != nil {
		t.Fatal(err)
	}
	t0 := time.Unix(100, 0)
	m.start(opCreate, "u1", "drv", typeDynamic, t0)
	m.start(opCreate, "u1", "drv", typeDynamic, t0.Add(time.Second)) // retries keep the first start
	m.start(opCreateAndReady, "u1", "drv", typeDynamic, t0)
	if got := gaugeValue(m.inFlight); got != 2 {
		t.Errorf("in flight = %v, want 2", got)
	}
	m.finish(opCreate, "u1", statusSuccess, t0.Add(2*time.Second))
	m.finish("Unknown", "u1", statusSuccess, t0) // never started: dropped
	m.gone("u1", t0.Add(3*time.Second))          // cancels the unfinished create-and-ready
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var series []string
	for _, f := range families {
		if f.GetName() != "snapshot_controller_operation_total_seconds" {
			continue
		}
		for _, m := range f.GetMetric() {
			var labels []string
			for _, l := range m.GetLabel() {
				labels = append(labels, l.GetValue())
			}
			series = append(series, fmt.Sprintf("%v count=%d", labels, m.GetHistogram().GetSampleCount()))
		}
	}
	want := []string{"[drv CreateSnapshot success dynamic] count=1", "[drv CreateSnapshotAndReady cancel dynamic] count=1"}
	if fmt.Sprint(series) != fmt.Sprint(want) {
		t.Errorf("series = %v, want %v", series, want)
	}
	if got := gaugeValue(m.inFlight); got != 0 {
		t.Errorf("in flight = %v, want 0", got)
	}
}

func gaugeValue(g prometheus.Gauge) float64 {
	var m dto.Metric
	_ = g.Write(&m)
	return m.GetGauge().GetValue()
}

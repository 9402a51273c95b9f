package snapshotter

import (
	"fmt"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/csi-kit/sidecars/internal/ctrl"
)

// TestFresh covers upstream's TestControllerCache: a newer copy wins,
// "10" is newer than "2", and an unparsable version lets the cache win.
func TestFresh(t *testing.T) {
	obj := func(rv string) *metav1.ObjectMeta { return &metav1.ObjectMeta{Name: "x", ResourceVersion: rv} }
	for _, tc := range []struct {
		name, mine, cached, want string
	}{
		{"mine newer", "10", "2", "10"},
		{"cache caught up", "5", "5", "5"},
		{"cache newer", "5", "7", "7"},
		{"unparsable", "abc", "3", "3"},
	} {
		f := ctrl.NewFresh[*metav1.ObjectMeta]()
		f.Remember("k", obj(tc.mine))
		if got := f.Latest("k", obj(tc.cached)).ResourceVersion; got != tc.want {
			t.Errorf("%s: latest = %s, want %s", tc.name, got, tc.want)
		}
	}
	f := ctrl.NewFresh[*metav1.ObjectMeta]()
	f.Remember("k", obj("3"))
	f.Latest("k", obj("4"))
	if _, ok := f.Get("k"); ok {
		t.Error("entry kept after the cache caught up")
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

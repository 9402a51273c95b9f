package metricsutil

import (
	"fmt"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
)

func counter(help string) *prometheus.CounterVec {
	return prometheus.NewCounterVec(prometheus.CounterOpts{Name: "things_total", Help: help}, []string{"class"})
}

func TestRegisterTwiceReusesTheFirst(t *testing.T) {
	reg := prometheus.NewRegistry()
	first, err := Register(reg, counter("h"))
	if err != nil {
		t.Fatal(err)
	}
	second, err := Register(reg, counter("h"))
	if err != nil {
		t.Fatalf("second Register: %v", err)
	}
	if second != first {
		t.Fatal("second Register did not return the registered collector")
	}
	second.WithLabelValues("gold").Inc()
	if n := testCount(t, reg); n != 1 {
		t.Errorf("series = %d, want the shared one", n)
	}
}

func TestRegisterConflictIsAnError(t *testing.T) {
	reg := prometheus.NewRegistry()
	if _, err := Register(reg, counter("h")); err != nil {
		t.Fatal(err)
	}
	if _, err := Register(reg, counter("other help")); err == nil {
		t.Fatal("conflicting Register succeeded")
	}
	// Same descriptor, other Go type.
	g := prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "g", Help: "h"}, func() float64 { return 1 })
	if _, err := Register[prometheus.Collector](reg, g); err != nil {
		t.Fatal(err)
	}
	g2 := prometheus.NewGauge(prometheus.GaugeOpts{Name: "g", Help: "h"})
	if _, err := Register(reg, g2); err == nil || !strings.Contains(err.Error(), "already registered") {
		t.Fatalf("Register of another type = %v, want an error", err)
	}
}

func TestRegisterNil(t *testing.T) {
	c := counter("h")
	if got, err := Register(nil, c); err != nil || got != c {
		t.Fatalf("Register(nil) = %v, %v", got, err)
	}
}

func TestBounded(t *testing.T) {
	b := NewBounded(3)
	for i := range 10 {
		v := fmt.Sprint("c", i)
		want := v
		if i >= 3 {
			want = Other
		}
		if got := b.Value(v); got != want {
			t.Errorf("Value(%q) = %q, want %q", v, got, want)
		}
	}
	if got := b.Value("c1"); got != "c1" {
		t.Errorf("admitted value now %q", got)
	}
}

func testCount(t *testing.T, g prometheus.Gatherer) int {
	t.Helper()
	mfs, err := g.Gather()
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, mf := range mfs {
		n += len(mf.GetMetric())
	}
	return n
}

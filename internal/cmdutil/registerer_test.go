package cmdutil

import (
	"errors"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/csi-kit/sidecars/internal/metricsutil"
)

func TestLegacyRegistererDuplicateIsAnError(t *testing.T) {
	opts := prometheus.GaugeOpts{Name: "csi_kit_cmdutil_test_gauge", Help: "test"}
	first := prometheus.NewGauge(opts)
	var reg LegacyRegisterer
	if err := reg.Register(first); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { reg.Unregister(first) })
	err := reg.Register(prometheus.NewGauge(opts)) // panicked before
	var are prometheus.AlreadyRegisteredError
	if !errors.As(err, &are) || are.ExistingCollector != first {
		t.Fatalf("duplicate Register = %v, want AlreadyRegisteredError holding the first gauge", err)
	}
	got, err := metricsutil.Register(prometheus.Registerer(reg), prometheus.NewGauge(opts))
	if err != nil || got != first {
		t.Fatalf("metricsutil.Register = %v, %v; want the first gauge", got, err)
	}
}

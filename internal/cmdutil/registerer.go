package cmdutil

import (
	"github.com/prometheus/client_golang/prometheus"
	"k8s.io/component-base/metrics/legacyregistry"
)

// LegacyRegisterer puts a controller's metrics on the registry that the
// metrics endpoint serves. Unregister is not supported.
type LegacyRegisterer struct{}

var _ prometheus.Registerer = LegacyRegisterer{}

// Register registers c, panicking on a duplicate as MustRegister does.
func (LegacyRegisterer) Register(c prometheus.Collector) error {
	legacyregistry.RawMustRegister(c)
	return nil
}

// MustRegister registers cs.
func (LegacyRegisterer) MustRegister(cs ...prometheus.Collector) {
	legacyregistry.RawMustRegister(cs...)
}

// Unregister does nothing and reports false.
func (LegacyRegisterer) Unregister(prometheus.Collector) bool { return false }

package cmdutil

import (
	"github.com/prometheus/client_golang/prometheus"
	"k8s.io/component-base/metrics/legacyregistry"
)

// LegacyRegisterer puts a controller's metrics on the registry that the
// metrics endpoint serves. Register returns an error, never panics: a
// duplicate comes back as prometheus.AlreadyRegisteredError holding the
// collector already there (metricsutil.Register reuses it).
type LegacyRegisterer struct{}

var _ prometheus.Registerer = LegacyRegisterer{}

// Register registers c.
func (LegacyRegisterer) Register(c prometheus.Collector) error {
	return legacyregistry.Registerer().Register(c)
}

// MustRegister registers cs and panics on an error, as the
// prometheus.Registerer contract says; library code calls Register.
func (LegacyRegisterer) MustRegister(cs ...prometheus.Collector) {
	legacyregistry.Registerer().MustRegister(cs...)
}

// Unregister removes c.
func (LegacyRegisterer) Unregister(c prometheus.Collector) bool {
	return legacyregistry.Registerer().Unregister(c)
}

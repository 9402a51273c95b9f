package provisioner

import (
	"errors"
	"fmt"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/csi-kit/sidecars/internal/metricsutil"
)

// metrics are upstream's provisioning library metrics.
type metrics struct {
	provTotal, provFailed *prometheus.CounterVec
	provDuration          *prometheus.HistogramVec
	delTotal, delFailed   *prometheus.CounterVec
	delDuration           *prometheus.HistogramVec

	// records is the number of provisioning records (volumes that may
	// exist without a PV); cleanupFailed counts failed cleanups of them.
	records       prometheus.Gauge
	cleanupFailed prometheus.Counter
	classes       *metricsutil.Bounded
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	buckets := []float64{0.1, 0.25, 0.5, 1, 2.5, 5, 10, 15, 25, 50, 120, 300, 600}
	m := &metrics{
		provTotal: prometheus.NewCounterVec(prometheus.CounterOpts{Subsystem: "controller", Name: "persistentvolumeclaim_provision_total",
			Help: "Total number of persistent volumes provisioned successfully."}, []string{"class", "source"}),
		provFailed: prometheus.NewCounterVec(prometheus.CounterOpts{Subsystem: "controller", Name: "persistentvolumeclaim_provision_failed_total",
			Help: "Total number of persistent volume provision failed attempts."}, []string{"class", "source"}),
		provDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{Subsystem: "controller", Name: "persistentvolumeclaim_provision_duration_seconds",
			Help: "Latency in seconds to provision persistent volumes.", Buckets: buckets}, []string{"class", "source"}),
		delTotal: prometheus.NewCounterVec(prometheus.CounterOpts{Subsystem: "controller", Name: "persistentvolume_delete_total",
			Help: "Total number of persistent volumes deleted successfully."}, []string{"class"}),
		delFailed: prometheus.NewCounterVec(prometheus.CounterOpts{Subsystem: "controller", Name: "persistentvolume_delete_failed_total",
			Help: "Total number of persistent volume delete failed attempts."}, []string{"class"}),
		delDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{Subsystem: "controller", Name: "persistentvolume_delete_duration_seconds",
			Help: "Latency in seconds to delete persistent volumes.", Buckets: buckets}, []string{"class"}),
		records: prometheus.NewGauge(prometheus.GaugeOpts{Namespace: "csi_kit", Subsystem: "provisioner", Name: "provisioning_records",
			Help: "Volumes that may exist on the backend without a PV, each held by a provisioning record."}),
		cleanupFailed: prometheus.NewCounter(prometheus.CounterOpts{Namespace: "csi_kit", Subsystem: "provisioner", Name: "record_cleanup_failures_total",
			Help: "Failed attempts to delete the volume of a claim deleted before its PV existed; each is retried with backoff."}),
		classes: metricsutil.NewBounded(maxLabelValues),
	}
	var errs [8]error
	m.provTotal, errs[0] = metricsutil.Register(reg, m.provTotal)
	m.provFailed, errs[1] = metricsutil.Register(reg, m.provFailed)
	m.provDuration, errs[2] = metricsutil.Register(reg, m.provDuration)
	m.delTotal, errs[3] = metricsutil.Register(reg, m.delTotal)
	m.delFailed, errs[4] = metricsutil.Register(reg, m.delFailed)
	m.delDuration, errs[5] = metricsutil.Register(reg, m.delDuration)
	m.records, errs[6] = metricsutil.Register(reg, m.records)
	m.cleanupFailed, errs[7] = metricsutil.Register(reg, m.cleanupFailed)
	if err := errors.Join(errs[:]...); err != nil {
		return nil, fmt.Errorf("registering provisioner metrics: %w", err)
	}
	return m, nil
}

func (m *metrics) provision(class, source string, d time.Duration, err error) {
	class, source = m.classes.Value(class), knownSource(source)
	if err != nil {
		m.provFailed.WithLabelValues(class, source).Inc()
		return
	}
	m.provTotal.WithLabelValues(class, source).Inc()
	m.provDuration.WithLabelValues(class, source).Observe(d.Seconds())
}

func (m *metrics) delete(class string, d time.Duration, err error) {
	class = m.classes.Value(class)
	if err != nil {
		m.delFailed.WithLabelValues(class).Inc()
		return
	}
	m.delTotal.WithLabelValues(class).Inc()
	m.delDuration.WithLabelValues(class).Observe(d.Seconds())
}

// maxLabelValues bounds the distinct class names in metric labels: a
// tenant creating claims of made-up classes must not grow the metrics
// without bound.
const maxLabelValues = 100

// knownSource keeps the data-source kinds the provisioner handles; any
// other (populators' kinds, written by users) is "other".
func knownSource(kind string) string {
	switch kind {
	case "", "VolumeSnapshot", "PersistentVolumeClaim":
		return kind
	}
	return metricsutil.Other
}

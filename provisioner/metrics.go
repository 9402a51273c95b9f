package provisioner

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// metrics are upstream's provisioning library metrics.
type metrics struct {
	provTotal, provFailed *prometheus.CounterVec
	provDuration          *prometheus.HistogramVec
	delTotal, delFailed   *prometheus.CounterVec
	delDuration           *prometheus.HistogramVec
}

func newMetrics(reg prometheus.Registerer) *metrics {
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
	}
	if reg != nil {
		reg.MustRegister(m.provTotal, m.provFailed, m.provDuration, m.delTotal, m.delFailed, m.delDuration)
	}
	return m
}

func (m *metrics) provision(class, source string, d time.Duration, err error) {
	if err != nil {
		m.provFailed.WithLabelValues(class, source).Inc()
		return
	}
	m.provTotal.WithLabelValues(class, source).Inc()
	m.provDuration.WithLabelValues(class, source).Observe(d.Seconds())
}

func (m *metrics) delete(class string, d time.Duration, err error) {
	if err != nil {
		m.delFailed.WithLabelValues(class).Inc()
		return
	}
	m.delTotal.WithLabelValues(class).Inc()
	m.delDuration.WithLabelValues(class).Observe(d.Seconds())
}

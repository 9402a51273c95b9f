package snapshotter

import (
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"k8s.io/apimachinery/pkg/types"
)

// Operation names of snapshot_controller_operation_total_seconds.
const (
	opCreate         = "CreateSnapshot"
	opCreateAndReady = "CreateSnapshotAndReady"
	opDelete         = "DeleteSnapshot"

	statusSuccess = "success"
	statusCancel  = "cancel"

	typeDynamic = "dynamic"
	typeStatic  = "pre-provisioned"
)

// opMetrics times snapshot operations from their first observation to
// their end, as upstream's snapshot_controller_operation_total_seconds
// does; a start survives retries.
type opMetrics struct {
	duration *prometheus.HistogramVec
	inFlight prometheus.Gauge

	mu      sync.Mutex
	pending map[opKey]opStart
}

type opKey struct {
	op  string
	uid types.UID
}

type opStart struct {
	at     time.Time
	driver string
	typ    string
}

func newOpMetrics(reg prometheus.Registerer) *opMetrics {
	m := &opMetrics{
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Subsystem: "snapshot_controller",
			Name:      "operation_total_seconds",
			Help:      "Total number of seconds spent by the controller on an operation from end to end",
			Buckets:   []float64{0.1, 0.25, 0.5, 1, 2.5, 5, 10, 15, 30, 60, 120, 300, 600},
		}, []string{"driver_name", "operation_name", "operation_status", "snapshot_type"}),
		inFlight: prometheus.NewGauge(prometheus.GaugeOpts{
			Subsystem: "snapshot_controller",
			Name:      "operations_in_flight",
			Help:      "Total number of operations in flight",
		}),
		pending: map[opKey]opStart{},
	}
	if reg != nil {
		reg.MustRegister(m.duration, m.inFlight)
	}
	return m
}

// start records the first observation of op on uid.
func (m *opMetrics) start(op string, uid types.UID, driver, typ string, now time.Time) {
	m.mu.Lock()
	defer m.mu.Unlock()
	k := opKey{op, uid}
	if s, ok := m.pending[k]; ok {
		if s.driver == "unknown" && driver != "unknown" {
			s.driver = driver
			m.pending[k] = s
		}
		return
	}
	m.pending[k] = opStart{at: now, driver: driver, typ: typ}
	m.inFlight.Set(float64(len(m.pending)))
}

// finish observes op on uid, if it was started.
func (m *opMetrics) finish(op string, uid types.UID, status string, now time.Time) {
	m.mu.Lock()
	defer m.mu.Unlock()
	k := opKey{op, uid}
	s, ok := m.pending[k]
	if !ok {
		return
	}
	delete(m.pending, k)
	m.inFlight.Set(float64(len(m.pending)))
	m.duration.WithLabelValues(s.driver, op, status, s.typ).Observe(now.Sub(s.at).Seconds())
}

// gone ends every operation of a snapshot that left the cluster: delete
// succeeds, unfinished creates are cancelled.
func (m *opMetrics) gone(uid types.UID, now time.Time) {
	m.finish(opDelete, uid, statusSuccess, now)
	m.finish(opCreate, uid, statusCancel, now)
	m.finish(opCreateAndReady, uid, statusCancel, now)
}

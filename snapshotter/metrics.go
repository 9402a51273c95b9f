package snapshotter

import (
	"fmt"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"k8s.io/apimachinery/pkg/types"

	"github.com/csi-kit/sidecars/internal/metricsutil"
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

	driverUnknown = "unknown"
)

// maxDriverLabels bounds the distinct driver_name values: driver names
// come from VolumeSnapshotClasses, and past the bound a new one is
// reported as "other".
const maxDriverLabels = 50

// opMetrics times snapshot operations from their first observation to
// their end, as upstream's snapshot_controller_operation_total_seconds
// does; a start survives retries.
type opMetrics struct {
	duration *prometheus.HistogramVec
	inFlight prometheus.Gauge
	drivers  *metricsutil.Bounded

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

// newOpMetrics registers the metrics on reg (nil: none). A controller
// built again in the same process shares the collectors of the first.
func newOpMetrics(reg prometheus.Registerer) (*opMetrics, error) {
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
		drivers: metricsutil.NewBounded(maxDriverLabels),
		pending: map[opKey]opStart{},
	}
	var err error
	if m.duration, err = metricsutil.Register(reg, m.duration); err != nil {
		return nil, fmt.Errorf("registering snapshot controller metrics: %w", err)
	}
	if m.inFlight, err = metricsutil.Register(reg, m.inFlight); err != nil {
		return nil, fmt.Errorf("registering snapshot controller metrics: %w", err)
	}
	return m, nil
}

// start records the first observation of op on uid.
func (m *opMetrics) start(op string, uid types.UID, driver, typ string, now time.Time) {
	m.mu.Lock()
	defer m.mu.Unlock()
	k := opKey{op, uid}
	if s, ok := m.pending[k]; ok {
		if s.driver == driverUnknown && driver != driverUnknown {
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
	m.duration.WithLabelValues(m.drivers.Value(s.driver), op, status, s.typ).Observe(now.Sub(s.at).Seconds())
}

// gone ends every operation of a snapshot that left the cluster: delete
// succeeds, unfinished creates are cancelled.
func (m *opMetrics) gone(uid types.UID, now time.Time) {
	m.finish(opDelete, uid, statusSuccess, now)
	m.finish(opCreate, uid, statusCancel, now)
	m.finish(opCreateAndReady, uid, statusCancel, now)
}

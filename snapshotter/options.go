package snapshotter

import (
	"errors"
	"fmt"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"k8s.io/client-go/tools/record"
	"k8s.io/utils/clock"

	"github.com/csi-kit/sidecars/sharedcache"
)

// ControllerOptions configures the common snapshot controller. A zero field
// means "use the default".
type ControllerOptions struct {
	// Workers is the number of snapshots (and, separately, contents)
	// handled in parallel; default 10 (upstream --worker-threads).
	Workers int
	// ResyncPeriod re-lists every object periodically; default 0 (off).
	// Upstream defaults to 15 minutes, which at tens of thousands of
	// snapshots delays new work behind the resync; every change is watched,
	// so it is not needed here.
	ResyncPeriod time.Duration
	// RetryIntervalStart and RetryIntervalMax bound the per-object failure
	// backoff; defaults 1s and 5m.
	RetryIntervalStart time.Duration
	RetryIntervalMax   time.Duration
	// PreventVolumeModeConversion stamps spec.sourceVolumeMode on new
	// contents (upstream default true). Nil means true.
	PreventVolumeModeConversion *bool
	// CRDWait is how long Run waits for the VolumeSnapshot CRDs to be
	// served before failing; default 30s (upstream --retry-crd-interval-max).
	CRDWait time.Duration
	// BindStatusDelay is how long a new snapshot's status waits for its
	// content to get a status from the sidecar before the binding alone is
	// written. A snapshot cut at once gets a single status write; default 5s.
	BindStatusDelay time.Duration
	// Recorder receives events; default: none are sent (Run logs that).
	// Give it a clientset of its own (the binaries build one from a copy
	// of the rest config with its own QPS and burst), so that event
	// writes never wait behind the controller's, nor it behind them.
	Recorder record.EventRecorder
	// DisableNormalEvents stops the Normal CreatingSnapshot,
	// SnapshotCreated and SnapshotReady events, which are emitted by
	// default as upstream always does (three event writes per snapshot).
	// Set, only Warning events are written: a successful snapshot then
	// costs no event write, but kubectl describe shows nothing of it.
	DisableNormalEvents bool
	// DistributedSnapshotting (upstream --enable-distributed-snapshotting)
	// labels each new dynamic content with LabelManagedBy set to the node
	// its source volume is pinned to, for sidecars run per node with
	// SidecarOptions.NodeName. The node is the one whose labels and name
	// match the PV's required node affinity; with several matches the
	// lowest name wins, and a PV without affinity or without a matching
	// node gets no label. The controller then watches Nodes: grant it get,
	// list and watch on them.
	DistributedSnapshotting bool
	// Cache, when set, holds the informers this controller shares with
	// other controllers of the process (see package sharedcache; it needs a
	// snapshot client). Nil: the controller keeps its own, with PVCs and PVs
	// reduced to the fields it reads.
	Cache *sharedcache.Cache
	// Registerer receives the snapshot_controller_* metrics; default none.
	Registerer prometheus.Registerer
	// Clock defaults to the real clock.
	Clock clock.Clock
	// DisableVolumeGroupSnapshots turns off VolumeGroupSnapshot handling
	// (upstream --feature-gates=CSIVolumeGroupSnapshot=false). On by
	// default; it is also off, with a warning, when the cluster does not
	// serve the groupsnapshot.storage.k8s.io/v1 CRDs. The group part
	// needs get, list, watch, update and patch on volumegroupsnapshots
	// (and their status), create, delete and the same on
	// volumegroupsnapshotcontents, and get, list and watch on
	// volumegroupsnapshotclasses.
	DisableVolumeGroupSnapshots bool
}

// SidecarOptions configures the CSI snapshotter sidecar of one driver.
type SidecarOptions struct {
	// DriverName is the CSI driver whose contents this sidecar handles;
	// required (take it from the connection).
	DriverName string
	// Workers is the number of contents handled in parallel; default 10.
	Workers int
	// ResyncPeriod; default 0 (off), see ControllerOptions.
	ResyncPeriod time.Duration
	// SnapshotNamePrefix names backend snapshots "<prefix>-<uid>"; default
	// "snapshot".
	SnapshotNamePrefix string
	// SnapshotNameUUIDLength keeps that many characters of the UID with
	// its dashes removed; -1 (the default, also for 0) keeps the UID as is.
	SnapshotNameUUIDLength int
	// ExtraCreateMetadata adds the snapshot and content names to the
	// CreateSnapshot parameters.
	ExtraCreateMetadata bool
	// RetryIntervalStart and RetryIntervalMax bound the failure backoff;
	// defaults 1s and 5m.
	RetryIntervalStart time.Duration
	RetryIntervalMax   time.Duration
	// ReadyPollStart and ReadyPollMax bound the readiness polling of a
	// snapshot the driver reports as not ready yet: the interval starts at
	// ReadyPollStart and doubles up to ReadyPollMax; defaults 1s and 30s.
	// Upstream polls on the failure backoff, up to 5 minutes apart.
	ReadyPollStart time.Duration
	ReadyPollMax   time.Duration
	// NodeName, when set, runs the sidecar for one node (upstream
	// --node-deployment, distributed snapshotting): it lists and handles
	// only the contents whose LabelManagedBy label is NodeName, which the
	// controller sets with ControllerOptions.DistributedSnapshotting. Run
	// one such sidecar next to the driver on every node, without leader
	// election. Empty: every content of the driver is handled.
	NodeName string
	// Recorder receives events; default: none are sent.
	Recorder record.EventRecorder
	// Cache, when set, holds the informers this sidecar shares with other
	// controllers of the process (see package sharedcache; it needs a
	// snapshot client). Nil: the sidecar keeps its own. With NodeName the
	// contents are still watched apart, through the node's label selector;
	// only classes come from the Cache.
	Cache *sharedcache.Cache
	// Clock defaults to the real clock.
	Clock clock.Clock
}

func (o ControllerOptions) withDefaults() ControllerOptions {
	if o.Workers == 0 {
		o.Workers = 10
	}
	if o.RetryIntervalStart == 0 {
		o.RetryIntervalStart = time.Second
	}
	if o.RetryIntervalMax == 0 {
		o.RetryIntervalMax = 5 * time.Minute
	}
	if o.PreventVolumeModeConversion == nil {
		t := true
		o.PreventVolumeModeConversion = &t
	}
	if o.CRDWait == 0 {
		o.CRDWait = 30 * time.Second
	}
	if o.BindStatusDelay == 0 {
		o.BindStatusDelay = 5 * time.Second
	}
	if o.Clock == nil {
		o.Clock = clock.RealClock{}
	}
	return o
}

// Validate reports every invalid field at once.
func (o ControllerOptions) Validate() error {
	var errs []error
	if o.Workers < 0 {
		errs = append(errs, fmt.Errorf("Workers %d must not be negative", o.Workers))
	}
	if o.ResyncPeriod < 0 {
		errs = append(errs, fmt.Errorf("ResyncPeriod %v must not be negative", o.ResyncPeriod))
	}
	errs = append(errs, checkRetry(o.RetryIntervalStart, o.RetryIntervalMax, "RetryInterval"))
	if o.CRDWait < 0 {
		errs = append(errs, fmt.Errorf("CRDWait %v must not be negative", o.CRDWait))
	}
	if o.BindStatusDelay < 0 {
		errs = append(errs, fmt.Errorf("BindStatusDelay %v must not be negative", o.BindStatusDelay))
	}
	return errors.Join(errs...)
}

func (o SidecarOptions) withDefaults() SidecarOptions {
	if o.Workers == 0 {
		o.Workers = 10
	}
	if o.SnapshotNamePrefix == "" {
		o.SnapshotNamePrefix = "snapshot"
	}
	if o.SnapshotNameUUIDLength == 0 {
		o.SnapshotNameUUIDLength = -1
	}
	if o.RetryIntervalStart == 0 {
		o.RetryIntervalStart = time.Second
	}
	if o.RetryIntervalMax == 0 {
		o.RetryIntervalMax = 5 * time.Minute
	}
	if o.ReadyPollStart == 0 {
		o.ReadyPollStart = time.Second
	}
	if o.ReadyPollMax == 0 {
		o.ReadyPollMax = 30 * time.Second
	}
	if o.Clock == nil {
		o.Clock = clock.RealClock{}
	}
	return o
}

// Validate reports every invalid field at once.
func (o SidecarOptions) Validate() error {
	var errs []error
	if o.DriverName == "" {
		errs = append(errs, errors.New("DriverName is empty: use the name the driver reports (csiconn.Conn.DriverName)"))
	}
	if o.Workers < 0 {
		errs = append(errs, fmt.Errorf("Workers %d must not be negative", o.Workers))
	}
	if o.ResyncPeriod < 0 {
		errs = append(errs, fmt.Errorf("ResyncPeriod %v must not be negative", o.ResyncPeriod))
	}
	if o.SnapshotNameUUIDLength < -1 || o.SnapshotNameUUIDLength > 32 {
		errs = append(errs, fmt.Errorf("SnapshotNameUUIDLength %d must be -1 or between 1 and 32 (a UID has 32 hex digits)", o.SnapshotNameUUIDLength))
	}
	errs = append(errs, checkRetry(o.RetryIntervalStart, o.RetryIntervalMax, "RetryInterval"),
		checkRetry(o.ReadyPollStart, o.ReadyPollMax, "ReadyPoll"), checkNodeName(o.NodeName))
	return errors.Join(errs...)
}

func checkRetry(start, max time.Duration, name string) error {
	switch {
	case start <= 0:
		return fmt.Errorf("%sStart %v must be positive", name, start)
	case max < start:
		return fmt.Errorf("%sMax %v must not be below %sStart %v", name, max, name, start)
	}
	return nil
}

package snapshotter

import (
	"errors"
	"fmt"
	"time"

	snapclient "github.com/kubernetes-csi/external-snapshotter/client/v8/clientset/versioned"
	"github.com/prometheus/client_golang/prometheus"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/record"
	"k8s.io/utils/clock"

	"github.com/csi-kit/sidecars/sharedcache"
)

// ControllerOptions configures the common snapshot controller. A zero field
// means "use the default".
type ControllerOptions struct {
	// SnapshotClient is the client of the VolumeSnapshot API
	// (github.com/kubernetes-csi/external-snapshotter/client/v8); required.
	SnapshotClient snapclient.Interface
	// Workers is the number of snapshots (and, separately, contents)
	// handled in parallel; default 10 (upstream --worker-threads).
	Workers int
	// ResyncPeriod is the informers' resync interval. 0 means the default,
	// which here is never; a negative value means never too. Upstream
	// defaults to 15 minutes, which at tens of thousands of snapshots delays
	// new work behind the resync; every change is watched, so it is not
	// needed.
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
	// Recorder receives events. Nil: Run builds one writing through the
	// kube client, reporting as ControllerComponent, for the time of Run;
	// events are on by default. A recorder on a clientset of its own (the
	// binaries build one from a copy of the rest config with its own QPS
	// and burst) keeps event writes from waiting behind the controller's,
	// and it behind them.
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
	// snapshot client). Nil: a private cache for the time of Run, with PVCs
	// and PVs reduced to the fields the controller reads.
	Cache *sharedcache.Cache
	// Registerer receives the snapshot_controller_* metrics; nil: no
	// metrics are registered.
	Registerer prometheus.Registerer
	// Clock drives status times, metrics, delays and backoff; nil means
	// the real clock.
	Clock clock.WithTicker
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
	// SnapshotClient is the client of the VolumeSnapshot API; required.
	SnapshotClient snapclient.Interface
	// DriverName is the CSI driver whose contents this sidecar handles;
	// required (take it from the connection).
	DriverName string
	// Workers is the number of contents handled in parallel; default 10.
	Workers int
	// Timeout bounds each driver call (CreateSnapshot, DeleteSnapshot,
	// ListSnapshots). 0: the driver's own bound only; a CSIDriver's is its
	// connection's call timeout.
	Timeout time.Duration
	// ResyncPeriod is the informers' resync interval; 0 and negative mean
	// never, as for ControllerOptions.
	ResyncPeriod time.Duration
	// SnapshotNamePrefix names backend snapshots "<prefix>-<uid>"; default
	// "snapshot".
	SnapshotNamePrefix string
	// SnapshotNameUUIDLength keeps that many characters of the UID with
	// its dashes removed; -1 (the default, also for 0) keeps the UID as is.
	SnapshotNameUUIDLength int
	// GroupSnapshotNamePrefix and GroupSnapshotNameUUIDLength name backend
	// group snapshots "<prefix>-<uid>" as SnapshotNamePrefix and
	// SnapshotNameUUIDLength do snapshots; defaults "groupsnapshot" and -1.
	GroupSnapshotNamePrefix     string
	GroupSnapshotNameUUIDLength int
	// DisableVolumeGroupSnapshots stops the handling of
	// VolumeGroupSnapshotContents (upstream --feature-gates
	// CSIVolumeGroupSnapshot=false). They are handled by default when the
	// driver has the GroupController capability
	// CREATE_DELETE_GET_VOLUME_GROUP_SNAPSHOT, the group snapshot CRDs are
	// served, the sidecar may list group contents and classes, and
	// NodeName is empty; otherwise Run logs why not and goes on without
	// them. The sidecar needs get, list, watch, update and patch on
	// volumegroupsnapshotcontents, update and patch on their status, and
	// get, list and watch on volumegroupsnapshotclasses.
	DisableVolumeGroupSnapshots bool
	// ExtraCreateMetadata adds the snapshot and content names to the
	// CreateSnapshot parameters (the group snapshot and group content
	// names to the CreateVolumeGroupSnapshot ones).
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
	// Recorder receives events. Nil: Run builds one writing through the
	// kube client, reporting as SidecarComponent and the driver's name,
	// for the time of Run; events are on by default.
	Recorder record.EventRecorder
	// Cache, when set, holds the informers this sidecar shares with other
	// controllers of the process (see package sharedcache; it needs a
	// snapshot client). Nil: a private cache for the time of Run. With
	// NodeName the contents are still watched apart, through the node's
	// label selector; only classes come from the Cache.
	Cache *sharedcache.Cache
	// Clock drives status times, readiness polls and backoff; nil means
	// the real clock.
	Clock clock.WithTicker
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
	if o.GroupSnapshotNamePrefix == "" {
		o.GroupSnapshotNamePrefix = "groupsnapshot"
	}
	if o.GroupSnapshotNameUUIDLength == 0 {
		o.GroupSnapshotNameUUIDLength = -1
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
	if o.Timeout < 0 {
		errs = append(errs, fmt.Errorf("Timeout %v must not be negative (0: the driver's own bound)", o.Timeout))
	}
	if o.SnapshotNameUUIDLength < -1 || o.SnapshotNameUUIDLength > 32 {
		errs = append(errs, fmt.Errorf("SnapshotNameUUIDLength %d must be -1 or between 1 and 32 (a UID has 32 hex digits)", o.SnapshotNameUUIDLength))
	}
	if o.GroupSnapshotNameUUIDLength < -1 || o.GroupSnapshotNameUUIDLength > 32 {
		errs = append(errs, fmt.Errorf("GroupSnapshotNameUUIDLength %d must be -1 or between 1 and 32 (a UID has 32 hex digits)", o.GroupSnapshotNameUUIDLength))
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

// checkClients reports the clients a constructor needs and lacks. They are
// not part of Validate, which the flag helpers call before any client
// exists.
func checkClients(kube kubernetes.Interface, snap snapclient.Interface) error {
	var errs []error
	if kube == nil {
		errs = append(errs, errors.New("kube client is nil"))
	}
	if snap == nil {
		errs = append(errs, errors.New("SnapshotClient is nil: build one with snapclient.NewForConfig from the module github.com/kubernetes-csi/external-snapshotter/client/v8"))
	}
	return errors.Join(errs...)
}

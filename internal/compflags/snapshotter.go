package compflags

import (
	"flag"
	"fmt"
	"os"
	"time"

	"github.com/csi-kit/sidecars/snapshotter"
)

// SnapshotController holds the snapshot-controller flags that are not
// common to every binary (those live in internal/cmdutil).
type SnapshotController struct {
	Options               snapshotter.ControllerOptions
	PreventModeConversion bool
	// NormalEvents is --normal-events; Check sets
	// Options.DisableNormalEvents to its negation.
	NormalEvents bool
	Gates        *Gates
}

// RegisterSnapshotController registers upstream's snapshot-controller
// flags on fs, filling f.
func RegisterSnapshotController(fs *flag.FlagSet, f *SnapshotController) {
	fs.DurationVar(&f.Options.ResyncPeriod, "resync-period", 0, "Resync interval of the informers; 0 (the default here, upstream 15m) relies on watches alone.")
	fs.IntVar(&f.Options.Workers, "worker-threads", 10, "Number of snapshots (and contents) handled in parallel.")
	fs.DurationVar(&f.Options.RetryIntervalStart, "retry-interval-start", time.Second, "Initial retry interval of a failed operation; it doubles on each failure.")
	fs.DurationVar(&f.Options.RetryIntervalMax, "retry-interval-max", 5*time.Minute, "Maximum retry interval of a failed operation.")
	fs.DurationVar(&f.Options.CRDWait, "retry-crd-interval-max", 30*time.Second, "How long to wait at start for the VolumeSnapshot CRDs to be served.")
	fs.BoolVar(&f.PreventModeConversion, "prevent-volume-mode-conversion", true, "Record the source volume mode in new contents, so a restore cannot change it unless allowed.")
	fs.BoolVar(&f.NormalEvents, "normal-events", true, "Emit the Normal CreatingSnapshot, SnapshotCreated and SnapshotReady events (upstream always does; three event writes per snapshot). =false writes only Warning events.")
	fs.BoolVar(&f.Options.DistributedSnapshotting, "enable-distributed-snapshotting", false, "Label each new content with the node its volume is pinned to (snapshot.storage.kubernetes.io/managed-by), for csi-snapshotters run per node with --node-deployment; watches Nodes.")
	registerSnapshotGates(fs, &f.Gates)
}

// Check validates the parsed flags and completes f.Options.
func (f *SnapshotController) Check() error {
	f.Options.PreventVolumeModeConversion = &f.PreventModeConversion
	f.Options.DisableNormalEvents = !f.NormalEvents
	f.Options.DisableVolumeGroupSnapshots = !f.Gates.On(GateCSIVolumeGroupSnapshot)
	return f.Options.Validate()
}

// SnapshotSidecar holds the csi-snapshotter flags that are not common to
// every binary.
type SnapshotSidecar struct {
	Options        snapshotter.SidecarOptions
	NodeDeployment bool
	Gates          *Gates
}

// RegisterSnapshotSidecar registers upstream's csi-snapshotter flags on fs,
// filling f.
func RegisterSnapshotSidecar(fs *flag.FlagSet, f *SnapshotSidecar) {
	fs.StringVar(&f.Options.SnapshotNamePrefix, "snapshot-name-prefix", "snapshot", "Prefix of backend snapshot names.")
	fs.IntVar(&f.Options.SnapshotNameUUIDLength, "snapshot-name-uuid-length", -1, "Length of the UID part of snapshot names, dashes removed; -1 keeps the whole UID.")
	fs.StringVar(&f.Options.GroupSnapshotNamePrefix, "groupsnapshot-name-prefix", "groupsnapshot", "Prefix of backend group snapshot names.")
	fs.IntVar(&f.Options.GroupSnapshotNameUUIDLength, "groupsnapshot-name-uuid-length", -1, "Length of the UID part of group snapshot names, dashes removed; -1 keeps the whole UID.")
	fs.IntVar(&f.Options.Workers, "worker-threads", 10, "Number of contents handled in parallel.")
	fs.BoolVar(&f.Options.ExtraCreateMetadata, "extra-create-metadata", false, "Pass the snapshot's and content's names to CreateSnapshot as parameters.")
	fs.DurationVar(&f.Options.RetryIntervalStart, "retry-interval-start", time.Second, "Initial retry interval of a failed operation; it doubles on each failure.")
	fs.DurationVar(&f.Options.RetryIntervalMax, "retry-interval-max", 5*time.Minute, "Maximum retry interval of a failed operation.")
	fs.DurationVar(&f.Options.ResyncPeriod, "resync-period", 0, "Resync interval of the informers; 0 (the default here, upstream 15m) relies on watches alone.")
	fs.BoolVar(&f.NodeDeployment, "node-deployment", false, "Run one sidecar per node (distributed snapshotting): handle only the contents labelled for the node named by env NODE_NAME; needs the controller's --enable-distributed-snapshotting and no --leader-election.")
	registerSnapshotGates(fs, &f.Gates)
}

// NodeNameEnv names the environment variable that gives a
// --node-deployment sidecar its node.
const NodeNameEnv = "NODE_NAME"

// Check validates the parsed flags and completes f.Options; leaderElection
// tells whether --leader-election is on (it cannot be with
// --node-deployment: every node's sidecar must run).
func (f *SnapshotSidecar) Check(leaderElection bool) error {
	if f.NodeDeployment {
		if leaderElection {
			return fmt.Errorf("--node-deployment cannot be combined with --leader-election: every node runs its own sidecar for its own contents; drop --leader-election")
		}
		node := os.Getenv(NodeNameEnv)
		if node == "" {
			return fmt.Errorf("--node-deployment needs the node's name in env %s: set it from spec.nodeName with the downward API (env: - name: %s, valueFrom: fieldRef: fieldPath: spec.nodeName)", NodeNameEnv, NodeNameEnv)
		}
		f.Options.NodeName = node
	}
	if f.Options.SnapshotNamePrefix == "" {
		return fmt.Errorf("--snapshot-name-prefix must not be empty")
	}
	if f.Options.GroupSnapshotNamePrefix == "" {
		return fmt.Errorf("--groupsnapshot-name-prefix must not be empty")
	}
	f.Options.DisableVolumeGroupSnapshots = !f.Gates.On(GateCSIVolumeGroupSnapshot)
	// Fields no flag sets get valid stand-ins, so that only what the flags
	// set is judged here; the constructor validates the rest.
	o := f.Options
	o.DriverName = "check"
	if o.ReadyPollStart == 0 && o.ReadyPollMax == 0 {
		o.ReadyPollStart, o.ReadyPollMax = time.Second, time.Second
	}
	return o.Validate()
}

// registerSnapshotGates registers the snapshot binaries' --feature-gates.
func registerSnapshotGates(fs *flag.FlagSet, g **Gates) {
	*g = SnapshotterGates()
	fs.Var(*g, "feature-gates", "Comma-separated Gate=true|false pairs. Known: CSIVolumeGroupSnapshot (default true; =false turns volume group snapshots off), ReleaseLeaderElectionOnExit.")
}

package snapshotter

import (
	"flag"
	"fmt"
	"os"
	"sort"
	"strconv"
	"strings"
	"time"
)

// ControllerFlags are the snapshot-controller flags that are not common to
// every binary (those live in internal/cmdutil).
type ControllerFlags struct {
	Options               ControllerOptions
	PreventModeConversion bool
	// NormalEvents is --normal-events; Check sets
	// Options.DisableNormalEvents to its negation.
	NormalEvents bool
	FeatureGates FeatureGates
}

// RegisterControllerFlags registers upstream's snapshot-controller flags on
// fs, filling f.
func RegisterControllerFlags(fs *flag.FlagSet, f *ControllerFlags) {
	fs.DurationVar(&f.Options.ResyncPeriod, "resync-period", 0, "Resync interval of the informers; 0 (the default here, upstream 15m) relies on watches alone.")
	fs.IntVar(&f.Options.Workers, "worker-threads", 10, "Number of snapshots (and contents) handled in parallel.")
	fs.DurationVar(&f.Options.RetryIntervalStart, "retry-interval-start", time.Second, "Initial retry interval of a failed operation; it doubles on each failure.")
	fs.DurationVar(&f.Options.RetryIntervalMax, "retry-interval-max", 5*time.Minute, "Maximum retry interval of a failed operation.")
	fs.DurationVar(&f.Options.CRDWait, "retry-crd-interval-max", 30*time.Second, "How long to wait at start for the VolumeSnapshot CRDs to be served.")
	fs.BoolVar(&f.PreventModeConversion, "prevent-volume-mode-conversion", true, "Record the source volume mode in new contents, so a restore cannot change it unless allowed.")
	fs.BoolVar(&f.NormalEvents, "normal-events", true, "Emit the Normal CreatingSnapshot, SnapshotCreated and SnapshotReady events (upstream always does; three event writes per snapshot). =false writes only Warning events.")
	fs.BoolVar(&f.Options.DistributedSnapshotting, "enable-distributed-snapshotting", false, "Label each new content with the node its volume is pinned to (snapshot.storage.kubernetes.io/managed-by), for csi-snapshotters run per node with --node-deployment; watches Nodes.")
	registerFeatureGates(fs, &f.FeatureGates, " CSIVolumeGroupSnapshot (default true): =false leaves VolumeGroupSnapshots alone.")
}

// Check validates the parsed flags and completes f.Options.
func (f *ControllerFlags) Check() error {
	f.Options.PreventVolumeModeConversion = &f.PreventModeConversion
	f.Options.DisableNormalEvents = !f.NormalEvents
	if on, set := f.FeatureGates["CSIVolumeGroupSnapshot"]; set { // GA upstream: on unless turned off
		f.Options.DisableVolumeGroupSnapshots = !on
	}
	return f.Options.withDefaults().Validate()
}

// SidecarFlags are the csi-snapshotter flags that are not common to every
// binary.
type SidecarFlags struct {
	Options        SidecarOptions
	NodeDeployment bool
	FeatureGates   FeatureGates
}

// RegisterSidecarFlags registers upstream's csi-snapshotter flags on fs.
func RegisterSidecarFlags(fs *flag.FlagSet, f *SidecarFlags) {
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
	registerFeatureGates(fs, &f.FeatureGates, "")
}

// NodeNameEnv names the environment variable that gives a
// --node-deployment sidecar its node.
const NodeNameEnv = "NODE_NAME"

// Check validates the parsed flags and completes f.Options; leaderElection
// tells whether --leader-election is on (it cannot be with
// --node-deployment: every node's sidecar must run).
func (f *SidecarFlags) Check(leaderElection bool) error {
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
	if on, set := f.FeatureGates["CSIVolumeGroupSnapshot"]; set && !on {
		f.Options.DisableVolumeGroupSnapshots = true
	}
	o := f.Options
	o.DriverName = "check"
	return o.withDefaults().Validate()
}

// FeatureGates holds --feature-gates. Known gates: CSIVolumeGroupSnapshot
// (default true; =false sets ControllerOptions.DisableVolumeGroupSnapshots
// in the snapshot-controller and SidecarOptions.DisableVolumeGroupSnapshots
// in the csi-snapshotter) and
// ReleaseLeaderElectionOnExit (accepted; the lease is always released on
// shutdown here).
type FeatureGates map[string]bool

var knownGates = []string{"CSIVolumeGroupSnapshot", "ReleaseLeaderElectionOnExit"}

func registerFeatureGates(fs *flag.FlagSet, g *FeatureGates, note string) {
	fs.Var(g, "feature-gates", "Comma-separated Gate=true|false pairs. Known: "+strings.Join(knownGates, ", ")+"."+note)
}

func (g *FeatureGates) String() string {
	if g == nil || *g == nil {
		return ""
	}
	var parts []string
	for k, v := range *g {
		parts = append(parts, k+"="+strconv.FormatBool(v))
	}
	sort.Strings(parts)
	return strings.Join(parts, ",")
}

func (g *FeatureGates) Set(s string) error {
	if *g == nil {
		*g = FeatureGates{}
	}
	for _, kv := range strings.Split(s, ",") {
		kv = strings.TrimSpace(kv)
		if kv == "" {
			continue
		}
		k, v, ok := strings.Cut(kv, "=")
		if !ok {
			return fmt.Errorf("feature gate %q: want Name=true|false", kv)
		}
		b, err := strconv.ParseBool(v)
		if err != nil {
			return fmt.Errorf("feature gate %q: %v", kv, err)
		}
		known := false
		for _, n := range knownGates {
			known = known || n == k
		}
		if !known {
			return fmt.Errorf("unrecognized feature gate %q (known: %s)", k, strings.Join(knownGates, ", "))
		}
		(*g)[k] = b
	}
	return nil
}

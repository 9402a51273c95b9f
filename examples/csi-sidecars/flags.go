package main

import (
	"flag"
	"fmt"
	"strings"
	"time"

	"github.com/csi-kit/sidecars/internal/cmdutil"
	"github.com/csi-kit/sidecars/internal/compflags"
	"github.com/csi-kit/sidecars/provisioner"
	"github.com/csi-kit/sidecars/snapshotter"
)

// flags holds the union of the separate binaries' own flags. A name that
// two binaries share with the same meaning and default is registered once
// and applies to each; where defaults differ the rule is:
//
//   - --timeout (10s) bounds provisioner and resizer calls; snapshot calls
//     use --snapshot-timeout (1m, the csi-snapshotter's --timeout default).
//   - --worker-threads (100) is the provisioner's; the resizer keeps
//     --workers (10); the snapshot sidecar and controller use
//     --snapshot-worker-threads (10).
//   - --resync-period (10m) is the resizer's; the snapshot sidecar and
//     controller run without resync (their default here), the provisioner
//     with its 15m.
type flags struct {
	common cmdutil.Common

	enableProvisioner, enableResizer, enableSnapshotter, enableController bool

	snapshotTimeout      time.Duration
	retryStart, retryMax time.Duration
	gates                *compflags.Gates
	extraCreateMetadata  bool
	preventModeChange    bool
	nodeDeployment       bool
	// warnings are printed at start (filled by check).
	warnings []string

	prov compflags.Provisioner
	res  compflags.Resizer

	side        snapshotter.SidecarOptions
	ctl         snapshotter.ControllerOptions
	snapWorkers int
}

func registerFlags(fs *flag.FlagSet) *flags {
	f := &flags{gates: compflags.AllGates()}
	cmdutil.Register(fs, &f.common, cmdutil.Defaults{Timeout: provisioner.DefaultTimeout})

	fs.BoolVar(&f.enableProvisioner, "enable-provisioner", true, "Run the provisioner when the driver has CREATE_DELETE_VOLUME.")
	fs.BoolVar(&f.enableResizer, "enable-resizer", true, "Run the resizer when the driver has EXPAND_VOLUME, MODIFY_VOLUME or node EXPAND_VOLUME.")
	fs.BoolVar(&f.enableSnapshotter, "enable-snapshotter", true, "Run the snapshot sidecar when the driver has CREATE_DELETE_SNAPSHOT.")
	fs.BoolVar(&f.enableController, "enable-snapshot-controller", false, "Also run the cluster-wide snapshot controller (run it in one process per cluster only).")

	// Shared names.
	fs.DurationVar(&f.snapshotTimeout, "snapshot-timeout", time.Minute, "Timeout of each snapshot call to the CSI driver (csi-snapshotter's --timeout).")
	fs.DurationVar(&f.retryStart, "retry-interval-start", time.Second, "Initial retry interval of a failed operation, every controller; doubles per failure.")
	fs.DurationVar(&f.retryMax, "retry-interval-max", 5*time.Minute, "Maximum retry interval, every controller.")
	fs.Var(f.gates, "feature-gates", "Comma-separated Gate=true|false: "+strings.Join(f.gates.Names(), ", ")+".")
	fs.BoolVar(&f.extraCreateMetadata, "extra-create-metadata", false, "Add object names to CreateVolume and CreateSnapshot parameters.")
	fs.BoolVar(&f.preventModeChange, "prevent-volume-mode-conversion", true, "Refuse restores that change the volume mode without permission.")
	fs.BoolVar(&f.nodeDeployment, "node-deployment", false, "Not supported here (it would apply to the provisioner too): for distributed snapshotting run csi-snapshotter --node-deployment on each node.")

	// Provisioner.
	compflags.RegisterProvisioner(fs, &f.prov)
	compflags.SetUsage(fs, "worker-threads", "Claims and volumes the provisioner handles in parallel, each.")
	compflags.SetUsage(fs, "normal-events", "Emit the Normal events of progress and success, as upstream always does: Provisioning and ProvisioningSucceeded (provisioner), Resizing, VolumeResizeSuccessful, VolumeModify and VolumeModifySuccessful (resizer), CreatingSnapshot, SnapshotCreated and SnapshotReady (snapshot controller). =false writes only Warning events (and FileSystemResizeRequired, VolumeModifyCanceled).")
	for _, n := range []string{"node-deployment-base-delay", "node-deployment-max-delay", "node-deployment-immediate-binding"} {
		cmdutil.Removed(fs, n, noNodeDeployment+": this csi-provisioner flag only tunes --node-deployment")
	}
	compflags.RegisterRemovedProvisioner(fs)
	cmdutil.RegisterPprof(fs, &f.common)

	// Resizer.
	compflags.RegisterResizer(fs, &f.res, &f.common.Timeout, &f.common.LeaderElection)
	compflags.SetUsage(fs, "workers", "PVCs the resizer handles in parallel.")
	compflags.SetUsage(fs, "resync-period", "Resync period of the resizer's informers.")
	compflags.SetUsage(fs, "handle-volume-inuse-error", "Track pods using PVCs so offline-only drivers are not asked to expand a volume in use.")
	compflags.SetUsage(fs, "extra-modify-metadata", "Add PVC/PV names to ControllerModifyVolume parameters.")
	compflags.SetUsage(fs, "mark-in-progress-before-call", "Write ControllerResizeInProgress before each ControllerExpandVolume, as upstream does.")
	compflags.SetUsage(fs, "csiTimeout", "Deprecated: use --timeout.")
	compflags.SetUsage(fs, "leader-election-identity", "Holder identity written in the csi-sidecars Lease, unique per replica (default: the hostname with a random suffix). Used with --leader-election.")

	// Snapshots.
	fs.IntVar(&f.snapWorkers, "snapshot-worker-threads", 10, "Contents (sidecar) and snapshots (controller) handled in parallel.")
	fs.StringVar(&f.side.SnapshotNamePrefix, "snapshot-name-prefix", "snapshot", "Prefix of backend snapshot names.")
	fs.IntVar(&f.side.SnapshotNameUUIDLength, "snapshot-name-uuid-length", -1, "Length of the UID part of snapshot names; -1 keeps the whole UID.")
	fs.StringVar(&f.side.GroupSnapshotNamePrefix, "groupsnapshot-name-prefix", "groupsnapshot", "Prefix of backend group snapshot names (with --feature-gates=CSIVolumeGroupSnapshot=true).")
	fs.IntVar(&f.side.GroupSnapshotNameUUIDLength, "groupsnapshot-name-uuid-length", -1, "Length of the UID part of group snapshot names; -1 keeps the whole UID.")
	fs.DurationVar(&f.ctl.CRDWait, "retry-crd-interval-max", 30*time.Second, "How long the snapshot controller waits for the VolumeSnapshot CRDs.")
	fs.BoolVar(&f.ctl.DistributedSnapshotting, "enable-distributed-snapshotting", false, "With --enable-snapshot-controller: label each new content with the node its volume is pinned to, for csi-snapshotters run per node with --node-deployment; watches Nodes.")
	return f
}

// noNodeDeployment is why --node-deployment and the flags that tune it are
// refused.
const noNodeDeployment = "--node-deployment is not supported by csi-sidecars: run one csi-sidecars per driver, or csi-provisioner and csi-snapshotter with --node-deployment on each node"

// check validates the flags and fills the controllers' options.
func (f *flags) check() error {
	var errs []string
	if f.nodeDeployment {
		errs = append(errs, noNodeDeployment)
	}
	if f.snapshotTimeout <= 0 {
		errs = append(errs, fmt.Sprintf("--snapshot-timeout=%v must be positive", f.snapshotTimeout))
	}
	p := &f.prov.Options
	p.Timeout = f.common.Timeout
	p.RetryIntervalStart, p.RetryIntervalMax = f.retryStart, f.retryMax
	p.DisableImmediateTopology, p.ExtraCreateMetadata = !f.prov.ImmediateTopology, f.extraCreateMetadata
	p.AllowVolumeModeConversion = !f.preventModeChange
	p.DisableTopology, p.DisableVolumeAttributesClass = !f.gates.On("Topology"), !f.gates.On("VolumeAttributesClass")
	p.CrossNamespaceDataSources = f.gates.On("CrossNamespaceVolumeDataSource")

	r := &f.res.Options
	r.Timeout, r.RetryIntervalStart, r.RetryIntervalMax = f.common.Timeout, f.retryStart, f.retryMax
	r.DisableModify = !f.gates.On("VolumeAttributesClass")
	r.DisablePreResizeAnnotation = !f.gates.On("AnnotateFsResize")
	r.DisableNormalEvents = p.DisableNormalEvents // one --normal-events for every controller

	s := &f.side
	s.Workers, s.ExtraCreateMetadata = f.snapWorkers, f.extraCreateMetadata
	s.RetryIntervalStart, s.RetryIntervalMax = f.retryStart, f.retryMax
	// Volume group snapshots are off in the all-in-one unless
	// --feature-gates=CSIVolumeGroupSnapshot=true: its shipped RBAC has no
	// group rules, and the single binary never ran them before.
	groupsOn, _ := f.gates.Explicit(compflags.GateCSIVolumeGroupSnapshot)
	s.DisableVolumeGroupSnapshots = !groupsOn
	c := &f.ctl
	c.Workers, c.RetryIntervalStart, c.RetryIntervalMax = f.snapWorkers, f.retryStart, f.retryMax
	c.PreventVolumeModeConversion = &f.preventModeChange
	c.DisableNormalEvents = p.DisableNormalEvents
	c.DisableVolumeGroupSnapshots = !groupsOn
	f.warnings = f.gates.Warnings()
	if s.SnapshotNamePrefix == "" {
		errs = append(errs, "--snapshot-name-prefix must not be empty")
	}
	if len(errs) > 0 {
		return fmt.Errorf("%s", strings.Join(errs, "; "))
	}
	return nil
}

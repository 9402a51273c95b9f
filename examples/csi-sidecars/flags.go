package main

import (
	"flag"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/csi-kit/sidecars/internal/cmdutil"
	"github.com/csi-kit/sidecars/provisioner"
	"github.com/csi-kit/sidecars/resizer"
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
	gates                gates
	extraCreateMetadata  bool
	preventModeChange    bool
	nodeDeployment       bool

	prov        provisioner.Options
	uuidLength  int
	immediate   bool
	publishRO   bool
	capacity    bool
	capacityImm bool
	capacityPol time.Duration
	ownerLevel  int

	res   resizer.Options
	inUse bool

	side            snapshotter.SidecarOptions
	ctl             snapshotter.ControllerOptions
	snapWorkers     int
	distributedSnap bool
}

func registerFlags(fs *flag.FlagSet) *flags {
	f := &flags{gates: gates{}}
	cmdutil.Register(fs, &f.common, cmdutil.Defaults{Timeout: provisioner.DefaultTimeout})

	fs.BoolVar(&f.enableProvisioner, "enable-provisioner", true, "Run the provisioner when the driver has CREATE_DELETE_VOLUME.")
	fs.BoolVar(&f.enableResizer, "enable-resizer", true, "Run the resizer when the driver has EXPAND_VOLUME, MODIFY_VOLUME or node EXPAND_VOLUME.")
	fs.BoolVar(&f.enableSnapshotter, "enable-snapshotter", true, "Run the snapshot sidecar when the driver has CREATE_DELETE_SNAPSHOT.")
	fs.BoolVar(&f.enableController, "enable-snapshot-controller", false, "Also run the cluster-wide snapshot controller (run it in one process per cluster only).")

	// Shared names.
	fs.DurationVar(&f.snapshotTimeout, "snapshot-timeout", time.Minute, "Timeout of each snapshot call to the CSI driver (csi-snapshotter's --timeout).")
	fs.DurationVar(&f.retryStart, "retry-interval-start", time.Second, "Initial retry interval of a failed operation, every controller; doubles per failure.")
	fs.DurationVar(&f.retryMax, "retry-interval-max", 5*time.Minute, "Maximum retry interval, every controller.")
	fs.Var(f.gates, "feature-gates", "Comma-separated Gate=true|false: "+strings.Join(gateNames(), ", ")+".")
	fs.BoolVar(&f.extraCreateMetadata, "extra-create-metadata", false, "Add object names to CreateVolume and CreateSnapshot parameters.")
	fs.BoolVar(&f.preventModeChange, "prevent-volume-mode-conversion", true, "Refuse restores that change the volume mode without permission.")
	fs.BoolVar(&f.nodeDeployment, "node-deployment", false, "Not supported: run one csi-sidecars per driver.")

	// Provisioner.
	fs.StringVar(&f.prov.VolumeNamePrefix, "volume-name-prefix", provisioner.DefaultVolumeNamePrefix, "Prefix of volume and PV names.")
	fs.IntVar(&f.uuidLength, "volume-name-uuid-length", -1, "Length of the claim UID in names, dashes removed (-1: whole UID).")
	fs.IntVar(&f.prov.Workers, "worker-threads", provisioner.DefaultWorkers, "Claims and volumes the provisioner handles in parallel, each.")
	fs.BoolVar(&f.prov.StrictTopology, "strict-topology", false, "Send only the selected node's topology.")
	fs.BoolVar(&f.immediate, "immediate-topology", true, "Send cluster topology for Immediate claims without allowedTopologies.")
	fs.StringVar(&f.prov.DefaultFSType, "default-fstype", "", "fsType when the class names none.")
	fs.BoolVar(&f.publishRO, "controller-publish-readonly", false, "Mark ReadOnlyMany-only PVs read-only.")
	fs.BoolVar(&f.capacity, "enable-capacity", false, "Publish CSIStorageCapacity objects (needs env NAMESPACE, POD_NAME).")
	fs.BoolVar(&f.capacityImm, "capacity-for-immediate-binding", false, "Also publish capacity for Immediate classes.")
	fs.DurationVar(&f.capacityPol, "capacity-poll-interval", provisioner.DefaultCapacityPollInterval, "Capacity refresh period.")
	fs.IntVar(&f.ownerLevel, "capacity-ownerref-level", 1, "Owner of capacity objects: -1 none, 0 the pod, 1 its controller, 2 the controller's controller...")
	for _, n := range []string{"kube-api-capacity-qps", "kube-api-capacity-burst", "cloning-protection-threads", "capacity-threads",
		"snapshot-orphan-sweep-interval", "node-deployment-base-delay", "node-deployment-max-delay", "provisioner", "capacity-controller-deployment-mode"} {
		cmdutil.DeprecatedString(fs, n, "accepted for compatibility with csi-provisioner; no effect here.")
	}
	cmdutil.DeprecatedBool(fs, "node-deployment-immediate-binding", "--node-deployment is not supported.")
	cmdutil.DeprecatedBool(fs, "enable-pprof", "accepted for compatibility.")

	// Resizer.
	fs.IntVar(&f.res.Workers, "workers", resizer.DefaultWorkers, "PVCs the resizer handles in parallel.")
	fs.DurationVar(&f.res.ResyncPeriod, "resync-period", resizer.DefaultResyncPeriod, "Resync period of the resizer's informers.")
	fs.BoolVar(&f.inUse, "handle-volume-inuse-error", true, "Track pods using PVCs so offline-only drivers are not asked to expand a volume in use.")
	fs.BoolVar(&f.res.ExtraModifyMetadata, "extra-modify-metadata", false, "Add PVC/PV names to ControllerModifyVolume parameters.")
	fs.BoolVar(&f.res.MarkInProgressBeforeCall, "mark-in-progress-before-call", false, "Write ControllerResizeInProgress before each ControllerExpandVolume, as upstream does.")
	fs.Var(&durationAlias{target: &f.common.Timeout}, "csiTimeout", "Deprecated: use --timeout.")
	cmdutil.DeprecatedString(fs, "leader-election-identity", "the identity is the hostname.")

	// Snapshots.
	fs.IntVar(&f.snapWorkers, "snapshot-worker-threads", 10, "Contents (sidecar) and snapshots (controller) handled in parallel.")
	fs.StringVar(&f.side.SnapshotNamePrefix, "snapshot-name-prefix", "snapshot", "Prefix of backend snapshot names.")
	fs.IntVar(&f.side.SnapshotNameUUIDLength, "snapshot-name-uuid-length", -1, "Length of the UID part of snapshot names; -1 keeps the whole UID.")
	cmdutil.DeprecatedString(fs, "groupsnapshot-name-prefix", "group snapshots are not supported yet.")
	cmdutil.DeprecatedString(fs, "groupsnapshot-name-uuid-length", "group snapshots are not supported yet.")
	fs.DurationVar(&f.ctl.CRDWait, "retry-crd-interval-max", 30*time.Second, "How long the snapshot controller waits for the VolumeSnapshot CRDs.")
	fs.BoolVar(&f.distributedSnap, "enable-distributed-snapshotting", false, "Not supported.")
	for _, n := range []string{"log-text-split-stream", "log-json-split-stream"} {
		cmdutil.DeprecatedBool(fs, n, "logs go to stderr.")
	}
	for _, n := range []string{"log-text-info-buffer-size", "log-json-info-buffer-size"} {
		cmdutil.DeprecatedString(fs, n, "logs are not buffered.")
	}
	return f
}

// check validates the flags and fills the controllers' options.
func (f *flags) check() error {
	var errs []string
	if f.nodeDeployment {
		errs = append(errs, "--node-deployment is not supported: run one csi-sidecars per driver")
	}
	if f.distributedSnap {
		errs = append(errs, "--enable-distributed-snapshotting is not supported")
	}
	if f.gates["CrossNamespaceVolumeDataSource"] {
		errs = append(errs, "--feature-gates=CrossNamespaceVolumeDataSource=true is not supported")
	}
	if f.snapshotTimeout <= 0 {
		errs = append(errs, fmt.Sprintf("--snapshot-timeout=%v must be positive", f.snapshotTimeout))
	}
	p := &f.prov
	p.VolumeNameUUIDLength, p.Timeout = f.uuidLength, f.common.Timeout
	p.RetryIntervalStart, p.RetryIntervalMax = f.retryStart, f.retryMax
	p.NoImmediateTopology, p.ExtraCreateMetadata, p.ControllerPublishReadOnly = !f.immediate, f.extraCreateMetadata, f.publishRO
	p.AllowVolumeModeConversion = !f.preventModeChange
	p.DisableTopology, p.DisableVolumeAttributesClass = !f.gates.on("Topology"), !f.gates.on("VolumeAttributesClass")

	r := &f.res
	r.Timeout, r.RetryIntervalStart, r.RetryIntervalMax = f.common.Timeout, f.retryStart, f.retryMax
	r.HandleVolumeInUseError = &f.inUse
	r.DisableModify = !f.gates.on("VolumeAttributesClass")
	r.DisablePreResizeAnnotation = !f.gates.on("AnnotateFsResize")

	s := &f.side
	s.Workers, s.ExtraCreateMetadata = f.snapWorkers, f.extraCreateMetadata
	s.RetryIntervalStart, s.RetryIntervalMax = f.retryStart, f.retryMax
	c := &f.ctl
	c.Workers, c.RetryIntervalStart, c.RetryIntervalMax = f.snapWorkers, f.retryStart, f.retryMax
	c.PreventVolumeModeConversion = &f.preventModeChange
	if s.SnapshotNamePrefix == "" {
		errs = append(errs, "--snapshot-name-prefix must not be empty")
	}
	if len(errs) > 0 {
		return fmt.Errorf("%s", strings.Join(errs, "; "))
	}
	return nil
}

// gates is --feature-gates over the union of the binaries' gates; the
// value is each gate's default.
type gates map[string]bool

var knownGates = map[string]bool{
	"Topology": true, "VolumeAttributesClass": true, "CrossNamespaceVolumeDataSource": false,
	"ReleaseLeaderElectionOnExit": true, "AnnotateFsResize": true, "RecoverVolumeExpansionFailure": true,
	"CSIVolumeGroupSnapshot": false,
}

func gateNames() []string {
	var n []string
	for k := range knownGates {
		n = append(n, k)
	}
	sort.Strings(n)
	return n
}

func (g gates) String() string { return "" }

func (g gates) Set(s string) error {
	for _, kv := range strings.Split(s, ",") {
		kv = strings.TrimSpace(kv)
		if kv == "" {
			continue
		}
		k, v, ok := strings.Cut(kv, "=")
		if !ok {
			return fmt.Errorf("feature gate %q: want Name=true|false", kv)
		}
		if _, known := knownGates[k]; !known {
			return fmt.Errorf("unknown feature gate %q (known: %s)", k, strings.Join(gateNames(), ", "))
		}
		b, err := strconv.ParseBool(v)
		if err != nil {
			return fmt.Errorf("feature gate %s=%q: %w", k, v, err)
		}
		g[k] = b
	}
	return nil
}

func (g gates) on(name string) bool {
	if v, ok := g[name]; ok {
		return v
	}
	return knownGates[name]
}

// durationAlias is a deprecated spelling of --timeout.
type durationAlias struct{ target *time.Duration }

func (d *durationAlias) String() string {
	if d.target == nil {
		return ""
	}
	return d.target.String()
}

func (d *durationAlias) Set(s string) error {
	v, err := time.ParseDuration(s)
	if err != nil {
		return err
	}
	*d.target = v
	return nil
}

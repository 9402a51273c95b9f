package compflags

import (
	"flag"
	"time"

	"github.com/csi-kit/sidecars/internal/cmdutil"
	"github.com/csi-kit/sidecars/provisioner"
)

// Provisioner holds the provisioner's own flags. Options receives the
// flags that map onto a field one to one; the rest are kept here for the
// binary to translate.
type Provisioner struct {
	Options           provisioner.Options
	ImmediateTopology bool
	Capacity          Capacity
	// SweepInterval is --snapshot-orphan-sweep-interval (0 disables).
	SweepInterval time.Duration
}

// Finish folds the flags kept apart into Options. recordNamespace is the
// namespace of the provisioning records: the leader election namespace
// when set (the Lease and the records then live together), else the
// provisioner's default (its own namespace).
func (p *Provisioner) Finish(recordNamespace string) provisioner.Options {
	o := p.Options
	o.DisableImmediateTopology = !p.ImmediateTopology
	o.SnapshotSweepInterval = p.SweepInterval
	if p.SweepInterval == 0 {
		o.SnapshotSweepInterval = -1 // upstream: 0 disables; ours: negative
	}
	o.RecordNamespace = recordNamespace
	return o
}

// Capacity holds the --enable-capacity flags.
type Capacity struct {
	Enable       bool
	ForImmediate bool
	PollInterval time.Duration
	// OwnerLevel is --capacity-ownerref-level: -1 no owner, 0 this pod,
	// 1 its controller, and so on up.
	OwnerLevel int
	// Workers is --capacity-threads: the (segment, class) pairs a
	// refresh pass handles at once.
	Workers int
	// QPS and Burst are --kube-api-capacity-qps and -burst: the budget of
	// the client of the CSIStorageCapacity objects, apart from the main
	// client's.
	QPS   float64
	Burst int
}

// RegisterProvisioner registers the flags that only the provisioner reads
// on fs, filling p: --volume-name-prefix, --volume-name-uuid-length,
// --worker-threads, --cloning-protection-threads, --strict-topology, --immediate-topology,
// --default-fstype, --controller-publish-readonly, --normal-events,
// --provisioning-intent-delay, --snapshot-orphan-sweep-interval and the
// capacity flags.
func RegisterProvisioner(fs *flag.FlagSet, p *Provisioner) {
	o := &p.Options
	fs.StringVar(&o.VolumeNamePrefix, "volume-name-prefix", provisioner.DefaultVolumeNamePrefix, "Prefix of volume and PV names.")
	fs.IntVar(&o.VolumeNameUUIDLength, "volume-name-uuid-length", -1, "Length of the claim UID in names, dashes removed (-1: whole UID).")
	fs.IntVar(&o.Workers, "worker-threads", provisioner.DefaultWorkers, "Claims and volumes handled in parallel, each.")
	fs.IntVar(&o.CloneProtectionWorkers, "cloning-protection-threads", provisioner.DefaultCloneProtectionWorkers, "Deleted clone-source claims handled in parallel: each loses its clone-protection finalizer once no pending claim clones from it.")
	fs.BoolVar(&o.StrictTopology, "strict-topology", false, "Send only the selected node's topology.")
	fs.BoolVar(&p.ImmediateTopology, "immediate-topology", true, "Send cluster topology for Immediate claims without allowedTopologies.")
	fs.StringVar(&o.DefaultFSType, "default-fstype", "", "fsType when the class names none.")
	fs.BoolVar(&o.ControllerPublishReadOnly, "controller-publish-readonly", false, "Mark ReadOnlyMany-only PVs read-only.")
	RegisterNormalEvents(fs, &o.DisableNormalEvents, "Emit the Normal Provisioning and ProvisioningSucceeded events (upstream always does; two event writes per volume). =false writes only Warning events.")
	fs.DurationVar(&o.IntentDelay, "provisioning-intent-delay", 0, "How long a CreateVolume runs before the claim records that its volume may exist, so that a claim deleted meanwhile never leaks it (0: 1s, or half of --timeout if shorter; negative: record before every call, one more PVC write per volume).")
	fs.DurationVar(&p.SweepInterval, "snapshot-orphan-sweep-interval", provisioner.DefaultSnapshotSweepInterval, "How often the source-protection finalizer is removed from VolumeSnapshots that no restore needs any more (0 disables).")
	c := &p.Capacity
	fs.BoolVar(&c.Enable, "enable-capacity", false, "Publish CSIStorageCapacity objects (needs env NAMESPACE, POD_NAME).")
	fs.BoolVar(&c.ForImmediate, "capacity-for-immediate-binding", false, "Also publish capacity for Immediate classes.")
	fs.DurationVar(&c.PollInterval, "capacity-poll-interval", provisioner.DefaultCapacityPollInterval, "Capacity refresh period.")
	fs.IntVar(&c.OwnerLevel, "capacity-ownerref-level", 1, "Owner of capacity objects: -1 none, 0 the pod, 1 its controller, 2 the controller's controller...")
	fs.IntVar(&c.Workers, "capacity-threads", 1, "Capacity objects refreshed in parallel (a GetCapacity call and at most one write each).")
	fs.Float64Var(&c.QPS, "kube-api-capacity-qps", 1, "QPS of the client of the CSIStorageCapacity objects, apart from the main client's (negative: no limit).")
	fs.IntVar(&c.Burst, "kube-api-capacity-burst", 5, "Burst of the client of the CSIStorageCapacity objects.")
}

// RegisterNormalEvents registers --normal-events on fs. It defaults to
// true, as the upstream sidecars always emit their Normal events;
// --normal-events=false sets *disable, a DisableNormalEvents option.
func RegisterNormalEvents(fs *flag.FlagSet, disable *bool, usage string) {
	fs.Var(&notBool{target: disable}, "normal-events", usage)
}

// SetUsage replaces the help text of the registered flag name.
func SetUsage(fs *flag.FlagSet, name, usage string) {
	fs.Lookup(name).Usage = usage
}

// RegisterRemovedProvisioner registers the external-provisioner flags that
// upstream removed, so that a manifest still passing one fails at start
// with the reason and the replacement (cmdutil.Removed) rather than
// running without what it asked for: --provisioner (removed in v2.0; the
// provisioner name is the driver's GetPluginInfo name) and
// --capacity-controller-deployment-mode (removed in v2.1; replaced by
// --enable-capacity).
func RegisterRemovedProvisioner(fs *flag.FlagSet) {
	cmdutil.Removed(fs, "provisioner", "removed upstream in v2.0: the provisioner name is the driver's name from GetPluginInfo; delete the flag")
	cmdutil.Removed(fs, "capacity-controller-deployment-mode", "removed upstream in v2.1: use --enable-capacity (with env NAMESPACE and POD_NAME)")
}

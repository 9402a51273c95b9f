// Command csi-provisioner is the provisioner sidecar: it accepts the
// upstream external-provisioner flags and runs provisioner.Provisioner
// for the driver at --csi-address.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"time"

	snapclient "github.com/kubernetes-csi/external-snapshotter/client/v8/clientset/versioned"

	"github.com/csi-kit/sidecars/internal/cmdutil"
	"github.com/csi-kit/sidecars/internal/kube"
	"github.com/csi-kit/sidecars/leaderelection"
	"github.com/csi-kit/sidecars/provisioner"
)

func main() {
	fs := flag.NewFlagSet("csi-provisioner", flag.ExitOnError)
	var c cmdutil.Common
	cmdutil.Register(fs, &c, cmdutil.Defaults{Timeout: provisioner.DefaultTimeout})
	f := registerFlags(fs)
	cmdutil.Parse(fs, os.Args[1:])
	opts, err := f.options()
	if err != nil {
		fmt.Fprintf(os.Stderr, "csi-provisioner: %v\n", err)
		os.Exit(2)
	}
	os.Exit(cmdutil.Main(cmdutil.Program{
		Name:          "csi-provisioner",
		LockComponent: leaderelection.ComponentProvisioner,
		Common:        &c,
		Run: func(ctx context.Context, env *cmdutil.Env) error {
			opts.Timeout = c.Timeout
			if f.enableCapacity {
				capOpts, err := f.capacityOptions(ctx, env)
				if err != nil {
					return err
				}
				opts.Capacity = capOpts
			}
			rec, stop, err := kube.NewRecorder(env.Config, "external-provisioner")
			if err != nil {
				return err
			}
			defer stop()
			snaps, err := snapclient.NewForConfig(env.Config)
			if err != nil {
				return err
			}
			opts.Registerer = legacyRegisterer{}
			p, err := provisioner.New(opts, env.Kube, snaps, env.Conn, rec)
			if err != nil {
				return err
			}
			return p.Run(ctx)
		},
	}))
}

// flags are the provisioner's own flags.
type flags struct {
	prefix                                string
	uuidLength, workers                   int
	retryStart, retryMax                  time.Duration
	strict, immediate, extraMetadata      bool
	defaultFS                             string
	publishRO, preventModeConversion      bool
	enableCapacity, capacityImmediate     bool
	capacityPoll                          time.Duration
	ownerLevel                            int
	capacityQPS                           float64
	capacityBurst                         int
	nodeDeployment                        bool
	gates                                 gateFlag
	cloneThreads, capacityThreads         int
	sweepInterval, nodeBaseDelay, nodeMax time.Duration
	nodeImmediate, pprof                  bool
}

func registerFlags(fs *flag.FlagSet) *flags {
	f := &flags{gates: gateFlag{}}
	fs.StringVar(&f.prefix, "volume-name-prefix", provisioner.DefaultVolumeNamePrefix, "Prefix of volume and PV names.")
	fs.IntVar(&f.uuidLength, "volume-name-uuid-length", -1, "Length of the claim UID in names, dashes removed (-1: whole UID).")
	fs.IntVar(&f.workers, "worker-threads", provisioner.DefaultWorkers, "Claims and volumes handled in parallel, each.")
	fs.DurationVar(&f.retryStart, "retry-interval-start", provisioner.DefaultRetryIntervalStart, "First retry delay; doubles per failure.")
	fs.DurationVar(&f.retryMax, "retry-interval-max", provisioner.DefaultRetryIntervalMax, "Longest retry delay.")
	fs.BoolVar(&f.strict, "strict-topology", false, "Send only the selected node's topology.")
	fs.BoolVar(&f.immediate, "immediate-topology", true, "Send cluster topology for Immediate claims without allowedTopologies.")
	fs.BoolVar(&f.extraMetadata, "extra-create-metadata", false, "Add PVC/PV name and namespace to CreateVolume parameters.")
	fs.StringVar(&f.defaultFS, "default-fstype", "", "fsType when the class names none.")
	fs.BoolVar(&f.publishRO, "controller-publish-readonly", false, "Mark ReadOnlyMany-only PVs read-only.")
	fs.BoolVar(&f.preventModeConversion, "prevent-volume-mode-conversion", true, "Refuse restores that change the volume mode without permission.")
	fs.BoolVar(&f.enableCapacity, "enable-capacity", false, "Publish CSIStorageCapacity objects (needs env NAMESPACE, POD_NAME).")
	fs.BoolVar(&f.capacityImmediate, "capacity-for-immediate-binding", false, "Also publish capacity for Immediate classes.")
	fs.DurationVar(&f.capacityPoll, "capacity-poll-interval", provisioner.DefaultCapacityPollInterval, "Capacity refresh period.")
	fs.IntVar(&f.ownerLevel, "capacity-ownerref-level", 1, "Owner of capacity objects: -1 none, 0 the pod, 1 its controller, 2 the controller's controller...")
	fs.Float64Var(&f.capacityQPS, "kube-api-capacity-qps", 1, "Accepted for compatibility: capacity writes share the main client.")
	fs.IntVar(&f.capacityBurst, "kube-api-capacity-burst", 5, "Accepted for compatibility: capacity writes share the main client.")
	fs.IntVar(&f.cloneThreads, "cloning-protection-threads", 1, "Accepted for compatibility: clone finalizers are handled by the claim workers.")
	fs.IntVar(&f.capacityThreads, "capacity-threads", 1, "Accepted for compatibility: one capacity loop runs.")
	fs.DurationVar(&f.sweepInterval, "snapshot-orphan-sweep-interval", 5*time.Minute, "Accepted for compatibility: orphaned snapshot finalizers are not swept.")
	fs.BoolVar(&f.nodeDeployment, "node-deployment", false, "Not supported: run one provisioner per cluster.")
	fs.BoolVar(&f.nodeImmediate, "node-deployment-immediate-binding", true, "Not supported (see --node-deployment).")
	fs.DurationVar(&f.nodeBaseDelay, "node-deployment-base-delay", 20*time.Second, "Not supported (see --node-deployment).")
	fs.DurationVar(&f.nodeMax, "node-deployment-max-delay", 60*time.Second, "Not supported (see --node-deployment).")
	fs.BoolVar(&f.pprof, "enable-pprof", false, "Accepted for compatibility.")
	fs.Var(f.gates, "feature-gates", "Comma-separated Gate=bool: Topology, VolumeAttributesClass, CrossNamespaceVolumeDataSource, ReleaseLeaderElectionOnExit.")
	cmdutil.DeprecatedString(fs, "provisioner", "the driver name comes from the driver.")
	cmdutil.DeprecatedString(fs, "capacity-controller-deployment-mode", "use --enable-capacity.")
	return f
}

func (f *flags) options() (provisioner.Options, error) {
	if f.nodeDeployment {
		return provisioner.Options{}, fmt.Errorf("--node-deployment is not supported by this provisioner")
	}
	if f.gates["CrossNamespaceVolumeDataSource"] {
		return provisioner.Options{}, fmt.Errorf("--feature-gates=CrossNamespaceVolumeDataSource=true is not supported")
	}
	o := provisioner.Options{
		VolumeNamePrefix: f.prefix, VolumeNameUUIDLength: f.uuidLength, Workers: f.workers,
		RetryIntervalStart: f.retryStart, RetryIntervalMax: f.retryMax,
		StrictTopology: f.strict, NoImmediateTopology: !f.immediate, ExtraCreateMetadata: f.extraMetadata,
		DefaultFSType: f.defaultFS, ControllerPublishReadOnly: f.publishRO, AllowVolumeModeConversion: !f.preventModeConversion,
		DisableTopology: !f.gates.on("Topology"), DisableVolumeAttributesClass: !f.gates.on("VolumeAttributesClass"),
	}
	return o, nil
}

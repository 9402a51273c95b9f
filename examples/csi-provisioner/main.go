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
	"k8s.io/client-go/dynamic"

	"github.com/csi-kit/sidecars/internal/cmdutil"
	"github.com/csi-kit/sidecars/internal/compflags"
	"github.com/csi-kit/sidecars/internal/kube"
	"github.com/csi-kit/sidecars/leaderelection"
	"github.com/csi-kit/sidecars/provisioner"
)

// programName names the binary: its flag set, its client's user agent
// and, with "-capacity", the capacity client's.
const programName = "csi-provisioner"

func main() {
	fs := flag.NewFlagSet(programName, flag.ExitOnError)
	var c cmdutil.Common
	cmdutil.Register(fs, &c, cmdutil.Defaults{Timeout: provisioner.DefaultTimeout})
	cmdutil.RegisterPprof(fs, &c)
	f := registerFlags(fs)
	cmdutil.Parse(fs, os.Args[1:])
	opts, err := f.options(c.LeaderElection.Options.Namespace)
	if err != nil {
		fmt.Fprintf(os.Stderr, "csi-provisioner: %v\n", err)
		os.Exit(2)
	}
	os.Exit(cmdutil.Main(cmdutil.Program{
		Name:             programName,
		LockComponent:    leaderelection.ComponentProvisioner,
		Common:           &c,
		MigrationMetrics: true,
		Run: func(ctx context.Context, env *cmdutil.Env) error {
			opts.Timeout = c.Timeout
			if f.Capacity.Enable {
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
			if opts.CrossNamespaceDataSources {
				if opts.DynamicClient, err = dynamic.NewForConfig(env.Config); err != nil {
					return err
				}
			}
			opts.Registerer, opts.SnapshotClient, opts.Recorder = cmdutil.LegacyRegisterer{}, snaps, rec
			p, err := provisioner.New(opts, env.Kube, env.Conn)
			if err != nil {
				return err
			}
			return p.Run(ctx)
		},
	}))
}

// flags are the provisioner's own flags; those it shares with the
// all-in-one csi-sidecars are in compflags.Provisioner.
type flags struct {
	compflags.Provisioner
	retryStart, retryMax                 time.Duration
	extraMetadata, preventModeConversion bool
	nodeDeployment                       bool
	gates                                *compflags.Gates
	nodeBaseDelay, nodeMax               time.Duration
	nodeImmediate                        bool
}

func registerFlags(fs *flag.FlagSet) *flags {
	f := &flags{gates: newGates()}
	compflags.RegisterProvisioner(fs, &f.Provisioner)
	fs.DurationVar(&f.retryStart, "retry-interval-start", provisioner.DefaultRetryIntervalStart, "First retry delay; doubles per failure.")
	fs.DurationVar(&f.retryMax, "retry-interval-max", provisioner.DefaultRetryIntervalMax, "Longest retry delay.")
	fs.BoolVar(&f.extraMetadata, "extra-create-metadata", false, "Add PVC/PV name and namespace to CreateVolume parameters.")
	fs.BoolVar(&f.preventModeConversion, "prevent-volume-mode-conversion", true, "Refuse restores that change the volume mode without permission.")
	fs.BoolVar(&f.nodeDeployment, "node-deployment", false, "Run on every node, serving only the claims of this node (env NODE_NAME); run without leader election.")
	fs.BoolVar(&f.nodeImmediate, "node-deployment-immediate-binding", true, "With --node-deployment, let nodes take Immediate claims that have no selected node (first node with room wins).")
	fs.DurationVar(&f.nodeBaseDelay, "node-deployment-base-delay", provisioner.DefaultNodeBaseDelay, "With --node-deployment, the random wait before a node offers itself for an Immediate claim.")
	fs.DurationVar(&f.nodeMax, "node-deployment-max-delay", provisioner.DefaultNodeMaxDelay, "With --node-deployment, the longest wait between two offers.")
	fs.Var(f.gates, "feature-gates", "Comma-separated Gate=bool: Topology, VolumeAttributesClass, CrossNamespaceVolumeDataSource, ReleaseLeaderElectionOnExit.")
	compflags.RegisterRemovedProvisioner(fs)
	return f
}

// capacityOptions builds the capacity options of --enable-capacity, with
// the client of --kube-api-capacity-qps/-burst.
func (f *flags) capacityOptions(ctx context.Context, env *cmdutil.Env) (*provisioner.CapacityOptions, error) {
	return compflags.CapacityOptions(ctx, env.Kube, env.Config, f.Capacity, programName)
}

func (f *flags) options(recordNamespace string) (provisioner.Options, error) {
	o := f.Finish(recordNamespace)
	o.RetryIntervalStart, o.RetryIntervalMax = f.retryStart, f.retryMax
	o.ExtraCreateMetadata = f.extraMetadata
	o.AllowVolumeModeConversion = !f.preventModeConversion
	o.DisableTopology, o.DisableVolumeAttributesClass = !f.gates.On("Topology"), !f.gates.On("VolumeAttributesClass")
	o.CrossNamespaceDataSources = f.gates.On("CrossNamespaceVolumeDataSource")
	if f.nodeDeployment {
		node := os.Getenv("NODE_NAME")
		if node == "" {
			return provisioner.Options{}, fmt.Errorf("--node-deployment needs the node's name in env NODE_NAME (set it from spec.nodeName with the downward API)")
		}
		o.NodeDeployment = &provisioner.NodeDeployment{NodeName: node, ImmediateBinding: f.nodeImmediate,
			BaseDelay: f.nodeBaseDelay, MaxDelay: f.nodeMax}
	}
	return o, nil
}

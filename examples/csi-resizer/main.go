// Command csi-resizer expands and modifies the PersistentVolumes of one CSI
// driver. It accepts the flags of the upstream external-resizer.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"

	"github.com/csi-kit/sidecars/internal/cmdutil"
	"github.com/csi-kit/sidecars/internal/compflags"
	"github.com/csi-kit/sidecars/internal/kube"
	"github.com/csi-kit/sidecars/leaderelection"
	"github.com/csi-kit/sidecars/resizer"
)

func main() {
	fs := flag.NewFlagSet("csi-resizer", flag.ExitOnError)
	var c cmdutil.Common
	cmdutil.Register(fs, &c, cmdutil.Defaults{Timeout: resizer.DefaultTimeout})
	var (
		rf    = compflags.Resizer{WarnCSITimeout: true}
		opts  = &rf.Options
		gates = compflags.ResizerGates()
	)
	compflags.RegisterResizer(fs, &rf, &c.Timeout, &c.LeaderElection)
	fs.DurationVar(&opts.RetryIntervalStart, "retry-interval-start", resizer.DefaultRetryIntervalStart, "Initial retry interval of a failed resize or modify; doubles on each failure.")
	fs.DurationVar(&opts.RetryIntervalMax, "retry-interval-max", resizer.DefaultRetryIntervalMax, "Maximum retry interval; also how long an infeasible size or class waits before it is tried again unchanged.")
	compflags.RegisterNormalEvents(fs, &opts.DisableNormalEvents, "Emit the Normal Resizing, VolumeResizeSuccessful, VolumeModify and VolumeModifySuccessful events (upstream always does; two event writes per resize or modify). =false writes only Warning events, FileSystemResizeRequired and VolumeModifyCanceled.")
	fs.Var(gates, "feature-gates", "Comma-separated Gate=true|false: AnnotateFsResize, RecoverVolumeExpansionFailure, VolumeAttributesClass, ReleaseLeaderElectionOnExit.")
	cmdutil.Parse(fs, os.Args[1:])

	opts.Timeout = c.Timeout
	opts.DisablePreResizeAnnotation = !gates.On(compflags.GateAnnotateFsResize)
	opts.DisableModify = !gates.On(compflags.GateVolumeAttributesClass)
	for _, w := range gates.Warnings() {
		fmt.Fprintln(os.Stderr, "Warning: "+w)
	}

	os.Exit(cmdutil.Main(cmdutil.Program{
		Name:             "csi-resizer",
		LockComponent:    leaderelection.ComponentResizer,
		Common:           &c,
		MigrationMetrics: true,
		Run: func(ctx context.Context, env *cmdutil.Env) error {
			drv, err := resizer.NewCSIDriver(ctx, env.Conn)
			if err != nil {
				return err
			}
			rec, stop, err := kube.NewRecorder(env.Config, "external-resizer "+drv.Name())
			if err != nil {
				return err
			}
			defer stop()
			o := *opts
			o.Recorder = rec
			r, err := resizer.New(o, env.Kube, drv)
			if err != nil {
				return err
			}
			return r.Run(ctx)
		},
	}))
}

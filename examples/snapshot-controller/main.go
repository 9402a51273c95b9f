// Command snapshot-controller is the common VolumeSnapshot controller: it
// binds VolumeSnapshots and VolumeSnapshotContents, creates contents for
// new snapshots, and protects and releases their source PVCs. It talks to
// no CSI driver. It accepts the upstream snapshot-controller's flags.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"

	snapclient "github.com/kubernetes-csi/external-snapshotter/client/v8/clientset/versioned"

	"github.com/csi-kit/sidecars/internal/cmdutil"
	"github.com/csi-kit/sidecars/internal/compflags"
	"github.com/csi-kit/sidecars/internal/kube"
	"github.com/csi-kit/sidecars/leaderelection"
	"github.com/csi-kit/sidecars/snapshotter"
)

func main() {
	fs := flag.NewFlagSet("snapshot-controller", flag.ExitOnError)
	var common cmdutil.Common
	cmdutil.Register(fs, &common, cmdutil.Defaults{NoCSI: true})
	var f compflags.SnapshotController
	compflags.RegisterSnapshotController(fs, &f)
	cmdutil.Parse(fs, os.Args[1:])
	if err := f.Check(); err != nil {
		fmt.Fprintf(os.Stderr, "snapshot-controller: %v\n", err)
		os.Exit(2)
	}
	os.Exit(cmdutil.Main(cmdutil.Program{
		Name:     "snapshot-controller",
		LockName: leaderelection.LockName(leaderelection.ComponentSnapshotCtl, ""),
		Common:   &common,
		Run: func(ctx context.Context, env *cmdutil.Env) error {
			snap, err := snapclient.NewForConfig(env.Config)
			if err != nil {
				return err
			}
			rec, stop, err := kube.NewRecorder(env.Config, snapshotter.ControllerComponent)
			if err != nil {
				return err
			}
			defer stop()
			opts := f.Options
			opts.Recorder = rec
			opts.Registerer = cmdutil.LegacyRegisterer{}
			opts.SnapshotClient = snap
			c, err := snapshotter.NewController(opts, env.Kube)
			if err != nil {
				return err
			}
			return c.Run(ctx)
		},
	}))
}

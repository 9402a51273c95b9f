// Command csi-snapshotter is the CSI snapshotter sidecar: it cuts and
// deletes the snapshots of one CSI driver for the VolumeSnapshotContents of
// that driver. It accepts the upstream csi-snapshotter's flags.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"time"

	snapclient "github.com/kubernetes-csi/external-snapshotter/client/v8/clientset/versioned"

	"github.com/csi-kit/sidecars/internal/cmdutil"
	"github.com/csi-kit/sidecars/internal/compflags"
	"github.com/csi-kit/sidecars/internal/kube"
	"github.com/csi-kit/sidecars/leaderelection"
	"github.com/csi-kit/sidecars/snapshotter"
)

func main() {
	fs := flag.NewFlagSet("csi-snapshotter", flag.ExitOnError)
	var common cmdutil.Common
	cmdutil.Register(fs, &common, cmdutil.Defaults{Timeout: time.Minute})
	var f compflags.SnapshotSidecar
	compflags.RegisterSnapshotSidecar(fs, &f)
	cmdutil.Parse(fs, os.Args[1:])
	if err := f.Check(common.LeaderElection.Enabled); err != nil {
		fmt.Fprintf(os.Stderr, "csi-snapshotter: %v\n", err)
		os.Exit(2)
	}
	os.Exit(cmdutil.Main(cmdutil.Program{
		Name:          "csi-snapshotter",
		LockComponent: leaderelection.ComponentSnapshotter,
		Common:        &common,
		Run: func(ctx context.Context, env *cmdutil.Env) error {
			drv, err := snapshotter.NewCSIDriver(env.Conn)
			if err != nil {
				return err
			}
			snap, err := snapclient.NewForConfig(env.Config)
			if err != nil {
				return err
			}
			name := env.Conn.DriverName()
			rec, stop, err := kube.NewRecorder(env.Config, snapshotter.SidecarComponent+" "+name)
			if err != nil {
				return err
			}
			defer stop()
			opts := f.Options
			opts.DriverName = name
			opts.Recorder = rec
			opts.SnapshotClient = snap
			s, err := snapshotter.NewSidecar(opts, env.Kube, drv)
			if err != nil {
				return err
			}
			// Run returns an error wrapping csiconn.ErrConnectionLost when
			// the driver goes away: the process exits and, restarted,
			// re-reads the driver's capabilities.
			return s.Run(ctx)
		},
	}))
}

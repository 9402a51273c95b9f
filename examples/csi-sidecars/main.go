// Command csi-sidecars runs the provisioner, the resizer, the snapshot
// sidecar and, optionally, the snapshot controller of one CSI driver in one
// process: one CSI connection, one Kubernetes client budget and one Lease,
// "csi-sidecars-<driver>" (leaderelection.LockName("csi-sidecars", driver)).
// It accepts the union of the separate binaries' flags; see flags.go for
// the names whose defaults differ between them.
//
//	csi-sidecars [flags]
//	csi-sidecars explain pvc|pv|volumesnapshot|volumesnapshotcontent NAME [-n NAMESPACE] [-o json] [--kubeconfig FILE] [--context NAME]
//	csi-sidecars explain pvc|volumesnapshot --all [-n NAMESPACE]
//
// "csi-sidecars explain" is the same command as "kubectl csi explain"
// (examples/kubectl-csi); see internal/explaincmd.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"

	"github.com/csi-kit/sidecars/internal/cmdutil"
	"github.com/csi-kit/sidecars/internal/explaincmd"
)

// component is the Lease component: the Lease is "csi-sidecars-<driver>".
const component = "csi-sidecars"

func main() {
	if len(os.Args) > 1 && os.Args[1] == "explain" {
		os.Exit(explaincmd.Run(context.Background(), "csi-sidecars explain", os.Args[2:], os.Stdout, os.Stderr))
	}
	fs := flag.NewFlagSet("csi-sidecars", flag.ExitOnError)
	f := registerFlags(fs)
	cmdutil.Parse(fs, os.Args[1:])
	if err := f.check(); err != nil {
		fmt.Fprintf(os.Stderr, "csi-sidecars: %v\n", err)
		os.Exit(2)
	}
	for _, w := range f.warnings {
		fmt.Fprintln(os.Stderr, "Warning: "+w)
	}
	// The connection's call timeout is the snapshot calls' timeout; the
	// provisioner and resizer bound their calls with --timeout themselves.
	f.common.Timeout = f.snapshotTimeout
	os.Exit(cmdutil.Main(cmdutil.Program{
		Name:             "csi-sidecars",
		LockComponent:    component,
		Common:           &f.common,
		MigrationMetrics: true,
		Run: func(ctx context.Context, env *cmdutil.Env) error {
			return run(ctx, env, f)
		},
	}))
}

// Command kubectl-csi is a kubectl plugin: on the PATH, it runs as
// "kubectl csi". Its one command says why a claim, volume or snapshot is
// stuck and what to do about it:
//
//	kubectl csi explain pvc data
//	kubectl csi explain volumesnapshot nightly -n backup -o json
//	kubectl csi explain pvc --all --context prod
//
// It reads the kubeconfig as kubectl does (--kubeconfig, KUBECONFIG,
// --context, -n, the context's namespace) and only reads from the cluster.
// Exit status: 0 the reports were printed, 1 the cluster could not be
// read, 2 bad arguments or an unusable kubeconfig. "csi-sidecars explain"
// is the same command.
package main

import (
	"context"
	"fmt"
	"io"
	"os"

	"github.com/csi-kit/sidecars/internal/cmdutil"
	"github.com/csi-kit/sidecars/internal/explaincmd"
)

const usage = `kubectl csi: explain CSI volumes and snapshots.

Usage:
  kubectl csi explain pvc|pv|volumesnapshot|volumesnapshotcontent NAME [flags]
  kubectl csi explain pvc|volumesnapshot --all [flags]

Commands:
  explain   say why an object is not bound, not resized or not ready, and what to do

Run 'kubectl csi explain --help' for the flags.
`

func main() {
	os.Exit(run(cmdutil.SignalContext(), os.Args[1:], os.Stdout, os.Stderr))
}

// run runs one command line (without the program name) and returns the
// exit code.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return explaincmd.ExitUsage
	}
	switch args[0] {
	case "explain":
		return explaincmd.Run(ctx, "kubectl csi explain", args[1:], stdout, stderr)
	case "-h", "--help", "help":
		fmt.Fprint(stdout, usage)
		return explaincmd.ExitOK
	}
	fmt.Fprintf(stderr, "kubectl csi: unknown command %q: the one command is 'explain'.\nRun 'kubectl csi --help' for usage.\n", args[0])
	return explaincmd.ExitUsage
}

package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"

	snapclient "github.com/kubernetes-csi/external-snapshotter/client/v8/clientset/versioned"
	"k8s.io/client-go/kubernetes"

	"github.com/csi-kit/sidecars/explain"
	"github.com/csi-kit/sidecars/internal/kube"
)

const explainUsage = "usage: csi-sidecars explain [--kubeconfig FILE] pvc|pv|volumesnapshot|volumesnapshotcontent NAME [-n NAMESPACE]"

type explainArgs struct {
	kubeconfig, master, namespace, kind, name string
}

// parseExplain reads the explain subcommand's arguments; flags may come
// before or after the kind and name, as with kubectl.
func parseExplain(args []string, stderr io.Writer) (explainArgs, error) {
	var a explainArgs
	fs := flag.NewFlagSet("csi-sidecars explain", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&a.kubeconfig, "kubeconfig", "", "Path to a kubeconfig; empty: $KUBECONFIG, then the in-cluster config.")
	fs.StringVar(&a.master, "master", "", "Address of the Kubernetes API server.")
	fs.StringVar(&a.namespace, "n", "default", "Namespace of a PVC or VolumeSnapshot.")
	fs.StringVar(&a.namespace, "namespace", "default", "Same as -n.")
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			return a, err
		}
		if fs.NArg() == 0 {
			break
		}
		pos = append(pos, fs.Arg(0))
		args = fs.Args()[1:]
	}
	if len(pos) != 2 {
		return a, fmt.Errorf("want a kind and a name, got %q", pos)
	}
	a.kind, a.name = pos[0], pos[1]
	return a, nil
}

// explainMain runs "csi-sidecars explain" and returns the exit code: 0 when
// the report was printed, 1 when it could not be made, 2 on bad arguments.
func explainMain(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	a, err := parseExplain(args, stderr)
	if err != nil {
		fmt.Fprintf(stderr, "%v\n%s\n", err, explainUsage)
		return 2
	}
	if a.kubeconfig == "" {
		a.kubeconfig = kubeconfigFromEnv()
	}
	cfg, err := kube.RestConfig(a.kubeconfig, a.master, 50, 100)
	if err != nil {
		fmt.Fprintf(stderr, "csi-sidecars explain: %v\n", err)
		return 1
	}
	kc, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		fmt.Fprintf(stderr, "csi-sidecars explain: %v\n", err)
		return 1
	}
	sc, err := snapclient.NewForConfig(cfg)
	if err != nil {
		fmt.Fprintf(stderr, "csi-sidecars explain: %v\n", err)
		return 1
	}
	r, err := explain.Explain(ctx, kc, sc, a.kind, a.namespace, a.name)
	if err != nil {
		fmt.Fprintf(stderr, "csi-sidecars explain: %v\n", err)
		return 1
	}
	fmt.Fprint(stdout, r.String())
	return 0
}

func kubeconfigFromEnv() string { return os.Getenv("KUBECONFIG") }

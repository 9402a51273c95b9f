package explaincmd

import (
	"fmt"
	"io"
	"strings"

	"github.com/spf13/pflag"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/csi-kit/sidecars/explain"
)

// options is one parsed command line.
type options struct {
	name string
	own  *pflag.FlagSet // --all, -o
	kube *pflag.FlagSet // the kubeconfig flags, named as kubectl names them

	// Where the kubeconfig is read from (--kubeconfig, else KUBECONFIG,
	// else ~/.kube/config) and what the flags override in it.
	loading   *clientcmd.ClientConfigLoadingRules
	overrides clientcmd.ConfigOverrides

	all    bool
	output string
	kind   explain.Kind
	target string // the object's name; empty with --all
}

// parse reads the words after "explain". Flags may come before or after
// the kind and name, as with kubectl. It returns pflag.ErrHelp for -h and
// --help; the options are then still usable for usage().
func parse(name string, args []string) (*options, error) {
	o := &options{name: name, loading: clientcmd.NewDefaultClientConfigLoadingRules()}
	o.own = pflag.NewFlagSet(name, pflag.ContinueOnError)
	o.own.BoolVar(&o.all, "all", false, "Explain every object of the kind in the namespace (pvc or volumesnapshot): problems first, then a summary table.")
	o.own.StringVarP(&o.output, "output", "o", "text", "Output format: text or json.")
	o.kube = kubeFlags(o.loading, &o.overrides)

	fs := pflag.NewFlagSet(name, pflag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.Usage = func() {}
	fs.AddFlagSet(o.own)
	fs.AddFlagSet(o.kube)
	// --master is what "csi-sidecars explain" and the sidecars call --server.
	fs.SetNormalizeFunc(func(_ *pflag.FlagSet, n string) pflag.NormalizedName {
		if n == "master" {
			n = "server"
		}
		return pflag.NormalizedName(n)
	})
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	if o.output != "text" && o.output != "json" {
		return o, fmt.Errorf("unknown output format %q: use -o text or -o json", o.output)
	}
	pos := fs.Args()
	if len(pos) == 0 {
		return o, fmt.Errorf("name a kind (%s) and an object", kinds)
	}
	k, ok := explain.ParseKind(pos[0])
	if !ok {
		return o, fmt.Errorf("unknown kind %q: use one of %s", pos[0], kinds)
	}
	o.kind = k
	switch {
	case o.all && k != explain.KindPVC && k != explain.KindSnapshot:
		return o, fmt.Errorf("--all sweeps PersistentVolumeClaims or VolumeSnapshots of a namespace, not %ss: name the %s to explain", k, k)
	case o.all && len(pos) > 1:
		return o, fmt.Errorf("--all explains every %s of the namespace: drop the name %q, or drop --all", k, pos[1])
	case o.all:
	case len(pos) == 1:
		return o, fmt.Errorf("name the %s to explain, or pass --all to sweep the namespace", k)
	case len(pos) > 2:
		return o, fmt.Errorf("one object at a time: got %q; pass --all to sweep the namespace", pos[1:])
	default:
		o.target = pos[1]
	}
	return o, nil
}

// usage is the --help text.
func (o *options) usage() string {
	var b strings.Builder
	fmt.Fprintf(&b, `Explain why a PersistentVolumeClaim, PersistentVolume, VolumeSnapshot or
VolumeSnapshotContent is not bound, not resized or not ready, and what to do.

Usage:
  %[1]s pvc|pv|volumesnapshot|volumesnapshotcontent NAME [flags]
  %[1]s pvc|volumesnapshot --all [flags]

Examples:
  %[1]s pvc data
  %[1]s volumesnapshot nightly -n backup -o json
  %[1]s pvc --all --context prod

The namespace is --namespace, else the namespace of the kubeconfig context,
else "default".
Exit status: 0 the reports were printed, 1 the cluster could not be read,
2 bad arguments or an unusable kubeconfig.

Flags:
%[2]s
Kubeconfig flags (as kubectl's):
%[3]s`, o.name, o.own.FlagUsages(), o.kube.FlagUsages())
	return b.String()
}

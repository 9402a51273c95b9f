// Package explaincmd is the command line of "kubectl csi explain" and
// "csi-sidecars explain": one parser and one runner, so both binaries take
// the same flags, read the kubeconfig the way kubectl does and print the
// same reports.
package explaincmd

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"

	snapclient "github.com/kubernetes-csi/external-snapshotter/client/v8/clientset/versioned"
	"github.com/spf13/pflag"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/csi-kit/sidecars/explain"
	"github.com/csi-kit/sidecars/internal/kube"
)

// Exit codes of Run.
const (
	// ExitOK: the reports were printed, whatever they say.
	ExitOK = 0
	// ExitFetch: the cluster could not be read.
	ExitFetch = 1
	// ExitUsage: bad arguments or an unusable kubeconfig.
	ExitUsage = 2
)

// Client budget: a report takes a dozen reads, a sweep a dozen per object.
const (
	qps   = 50
	burst = 100
)

// List is the JSON form of a sweep (--all -o json).
type List struct {
	Items []explain.Report `json:"items"`
}

// Run runs one explain command line; args are the words after "explain".
// name is the command as the user types it ("kubectl csi explain"), used in
// the usage text and in errors. It returns the exit code, one of the Exit*
// constants; the reports go to stdout, errors and what to do about them to
// stderr.
func Run(ctx context.Context, name string, args []string, stdout, stderr io.Writer) int {
	o, err := parse(name, args)
	if errors.Is(err, pflag.ErrHelp) {
		fmt.Fprint(stdout, o.usage())
		return ExitOK
	}
	if err != nil {
		fmt.Fprintf(stderr, "%s: %v\nRun '%s --help' for usage.\n", name, err, name)
		return ExitUsage
	}
	kc, sc, ns, err := o.clients()
	if err != nil {
		fmt.Fprintf(stderr, "%s: %v\n", name, err)
		return ExitUsage
	}
	if o.all {
		reps, err := explain.ExplainAll(ctx, kc, sc, string(o.kind), ns)
		if err != nil {
			fmt.Fprintf(stderr, "%s: %v\n%s\n", name, err, advice(err, o.kind, ns))
			return ExitFetch
		}
		if err := printAll(stdout, o.output, o.kind, ns, reps); err != nil {
			fmt.Fprintf(stderr, "%s: %v\n", name, err)
			return ExitFetch
		}
		return ExitOK
	}
	rep, err := explain.Explain(ctx, kc, sc, string(o.kind), ns, o.target)
	if err != nil {
		fmt.Fprintf(stderr, "%s: %v\n%s\n", name, err, advice(err, o.kind, ns))
		return ExitFetch
	}
	if err := printOne(stdout, o.output, rep); err != nil {
		fmt.Fprintf(stderr, "%s: %v\n", name, err)
		return ExitFetch
	}
	return ExitOK
}

// clients builds the Kubernetes and snapshot clients and picks the
// namespace: --namespace, else the context's, else "default".
func (o *options) clients() (kubernetes.Interface, snapclient.Interface, string, error) {
	cfg, ns, err := o.restConfig()
	if err != nil {
		return nil, nil, "", err
	}
	kc, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return nil, nil, "", fmt.Errorf("building a client from the kubeconfig: %w (%s)", err, kubeconfigNext)
	}
	sc, err := snapclient.NewForConfig(cfg)
	if err != nil {
		return nil, nil, "", fmt.Errorf("building a client from the kubeconfig: %w (%s)", err, kubeconfigNext)
	}
	return kc, sc, ns, nil
}

const kubeconfigNext = "pass --kubeconfig FILE or set KUBECONFIG, and pick a context listed by 'kubectl config get-contexts'"

// restConfig reads the kubeconfig with the flags on top and returns the
// client config, with this command's request budget, and the namespace.
func (o *options) restConfig() (*rest.Config, string, error) {
	cc := o.clientConfig()
	ns, _, err := cc.Namespace()
	if err != nil {
		return nil, "", fmt.Errorf("reading the kubeconfig: %w (%s)", err, kubeconfigNext)
	}
	cfg, err := cc.ClientConfig()
	if err != nil {
		return nil, "", fmt.Errorf("reading the kubeconfig: %w (%s)", err, kubeconfigNext)
	}
	return kube.WithBudget(cfg, qps, burst), ns, nil
}

// advice says what to do after a failed read.
func advice(err error, kind explain.Kind, ns string) string {
	resource := map[explain.Kind]string{
		explain.KindPVC: "persistentvolumeclaims", explain.KindPV: "persistentvolumes",
		explain.KindSnapshot: "volumesnapshots", explain.KindSnapshotContent: "volumesnapshotcontents",
	}[kind]
	scope := " -n " + ns
	if kind == explain.KindPV || kind == explain.KindSnapshotContent {
		scope = ""
	}
	switch {
	case apierrors.IsForbidden(err):
		return fmt.Sprintf("Your user may not read it: check with 'kubectl auth can-i list %s%s' and ask for read access.", resource, scope)
	case apierrors.IsUnauthorized(err):
		return "The cluster rejected your credentials: log in again, or pick another context with --context."
	case apierrors.IsNotFound(err) && (kind == explain.KindSnapshot || kind == explain.KindSnapshotContent):
		return "The cluster does not serve VolumeSnapshots: install the snapshot CRDs and the snapshot controller."
	}
	return "Check that the cluster is reachable with the same flags ('kubectl cluster-info --kubeconfig ... --context ...') and retry."
}

func printOne(w io.Writer, output string, rep explain.Report) error {
	if output == "json" {
		return writeJSON(w, rep)
	}
	_, err := fmt.Fprint(w, rep.String())
	return err
}

// printAll prints one report per object, problems first, then a summary
// table: name, state, worst severity, first reason.
func printAll(w io.Writer, output string, kind explain.Kind, ns string, reps []explain.Report) error {
	if output == "json" {
		return writeJSON(w, List{Items: reps})
	}
	if len(reps) == 0 {
		_, err := fmt.Fprintf(w, "No %ss in namespace %s.\n", kind, ns)
		return err
	}
	for _, r := range reps {
		if _, err := fmt.Fprintln(w, r.String()); err != nil {
			return err
		}
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "NAME\tSTATE\tSEVERITY\tREASON")
	for _, r := range reps {
		reason := ""
		if len(r.Findings) > 0 {
			reason = r.Findings[0].Reason
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", r.Name, r.State, r.Worst(), reason)
	}
	return tw.Flush()
}

func writeJSON(w io.Writer, v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	_, err = w.Write(append(b, '\n'))
	return err
}

// kinds lists the accepted kinds for messages.
var kinds = strings.Join([]string{"pvc", "pv", "volumesnapshot (vs)", "volumesnapshotcontent (vsc)"}, ", ")

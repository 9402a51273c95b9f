package explaincmd

import (
	"bytes"
	"context"
	"errors"
	"path/filepath"
	"strings"
	"testing"

	"github.com/spf13/pflag"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"

	"github.com/csi-kit/sidecars/explain"
)

func TestParse(t *testing.T) {
	for _, tc := range []struct {
		args                []string
		kind                explain.Kind
		target, ns, kc, ctx string
		server, output      string
		all                 bool
		wantErr             string
	}{
		{args: []string{"pvc", "data", "-n", "apps"}, kind: explain.KindPVC, target: "data", ns: "apps", output: "text"},
		{args: []string{"--kubeconfig", "/k", "pv", "pv-1"}, kind: explain.KindPV, target: "pv-1", kc: "/k", output: "text"},
		{args: []string{"-n=x", "vs", "s1", "-o", "json"}, kind: explain.KindSnapshot, target: "s1", ns: "x", output: "json"},
		{args: []string{"vsc", "c1", "--context", "prod", "--namespace", "y"}, kind: explain.KindSnapshotContent, target: "c1", ctx: "prod", ns: "y", output: "text"},
		{args: []string{"--all", "volumesnapshots", "--output=json"}, kind: explain.KindSnapshot, all: true, output: "json"},
		{args: []string{"--master", "https://h:6443", "pvc", "d"}, kind: explain.KindPVC, target: "d", server: "https://h:6443", output: "text"},
		{args: []string{}, wantErr: "name a kind"},
		{args: []string{"pod", "x"}, wantErr: `unknown kind "pod"`},
		{args: []string{"pvc"}, wantErr: "or pass --all"},
		{args: []string{"pvc", "a", "b"}, wantErr: "one object at a time"},
		{args: []string{"pvc", "a", "--all"}, wantErr: `drop the name "a"`},
		{args: []string{"pv", "--all"}, wantErr: "name the PersistentVolume"},
		{args: []string{"pvc", "a", "-o", "yaml"}, wantErr: "use -o text or -o json"},
		{args: []string{"pvc", "a", "--bogus"}, wantErr: "unknown flag: --bogus"},
	} {
		o, err := parse("x explain", tc.args)
		if tc.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("%q: err %v, want one containing %q", tc.args, err, tc.wantErr)
			}
			continue
		}
		if err != nil {
			t.Errorf("%q: %v", tc.args, err)
			continue
		}
		got := []string{string(o.kind), o.target, o.overrides.Context.Namespace, o.loading.ExplicitPath, o.overrides.CurrentContext, o.overrides.ClusterInfo.Server, o.output}
		want := []string{string(tc.kind), tc.target, tc.ns, tc.kc, tc.ctx, tc.server, tc.output}
		if strings.Join(got, "|") != strings.Join(want, "|") || o.all != tc.all {
			t.Errorf("%q: got %q all=%v, want %q all=%v", tc.args, got, o.all, want, tc.all)
		}
	}
	if _, err := parse("x explain", []string{"pvc", "a", "--cache-dir", "/c"}); err == nil {
		t.Error("--cache-dir accepted, but nothing uses a cache")
	}
	if _, err := parse("x explain", []string{"--help"}); !errors.Is(err, pflag.ErrHelp) {
		t.Errorf("--help: err %v, want pflag.ErrHelp", err)
	}
}

func TestRunUsage(t *testing.T) {
	var out, errOut bytes.Buffer
	if code := Run(context.Background(), "kubectl csi explain", []string{"--help"}, &out, &errOut); code != ExitOK {
		t.Errorf("--help: code %d", code)
	}
	for _, s := range []string{"kubectl csi explain pvc|pv|volumesnapshot|volumesnapshotcontent NAME", "--all", "--output", "--kubeconfig", "--context", "-n, --namespace", "Exit status"} {
		if !strings.Contains(out.String(), s) {
			t.Errorf("usage lacks %q:\n%s", s, out.String())
		}
	}
	out.Reset()
	if code := Run(context.Background(), "csi-sidecars explain", []string{"pvc"}, &out, &errOut); code != ExitUsage ||
		!strings.Contains(errOut.String(), "Run 'csi-sidecars explain --help' for usage.") || out.Len() != 0 {
		t.Errorf("bad arguments: code %d, stdout %q, stderr %q", code, out.String(), errOut.String())
	}
}

// kubeconfig writes a kubeconfig whose one context points at server.
func kubeconfig(t *testing.T, server string) string {
	t.Helper()
	kc := clientcmdapi.NewConfig()
	kc.Clusters["c"] = &clientcmdapi.Cluster{Server: server}
	kc.AuthInfos["u"] = &clientcmdapi.AuthInfo{Token: "t"}
	kc.Contexts["only"] = &clientcmdapi.Context{Cluster: "c", AuthInfo: "u", Namespace: "apps"}
	kc.CurrentContext = "only"
	path := filepath.Join(t.TempDir(), "kubeconfig")
	if err := clientcmd.WriteToFile(*kc, path); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestRunConfigErrors(t *testing.T) {
	// Port 1 on loopback: nothing listens, the connection is refused.
	path := kubeconfig(t, "http://127.0.0.1:1")
	for _, tc := range []struct {
		args []string
		code int
		want []string
	}{
		{[]string{"--kubeconfig", path, "--context", "nope", "pvc", "data"}, ExitUsage, []string{"context was not found for specified context: nope", "kubectl config get-contexts"}},
		{[]string{"--kubeconfig", filepath.Join(t.TempDir(), "absent"), "pvc", "data"}, ExitUsage, []string{"absent", "pass --kubeconfig FILE"}},
		{[]string{"--kubeconfig", path, "pvc", "data"}, ExitFetch, []string{"apps", "kubectl cluster-info"}},
		{[]string{"--kubeconfig", path, "vs", "--all", "-n", "other"}, ExitFetch, []string{"listing VolumeSnapshots in other", "kubectl cluster-info"}},
	} {
		var out, errOut bytes.Buffer
		code := Run(context.Background(), "kubectl csi explain", tc.args, &out, &errOut)
		if code != tc.code || out.Len() != 0 {
			t.Errorf("%q: code %d, stdout %q, stderr %q; want code %d", tc.args, code, out.String(), errOut.String(), tc.code)
		}
		for _, s := range tc.want {
			if !strings.Contains(errOut.String(), s) {
				t.Errorf("%q: stderr lacks %q: %s", tc.args, s, errOut.String())
			}
		}
	}
}

func TestAdvice(t *testing.T) {
	gr := schema.GroupResource{Resource: "persistentvolumeclaims"}
	if a := advice(apierrors.NewForbidden(gr, "data", errors.New("no")), explain.KindPVC, "apps"); !strings.Contains(a, "kubectl auth can-i list persistentvolumeclaims -n apps") {
		t.Errorf("forbidden: %s", a)
	}
	if a := advice(apierrors.NewForbidden(gr, "pv", errors.New("no")), explain.KindPV, "apps"); !strings.Contains(a, "can-i list persistentvolumes'") {
		t.Errorf("forbidden, cluster-scoped: %s", a)
	}
	if a := advice(apierrors.NewUnauthorized("who"), explain.KindPVC, "apps"); !strings.Contains(a, "log in again") {
		t.Errorf("unauthorized: %s", a)
	}
	if a := advice(apierrors.NewNotFound(schema.GroupResource{Resource: "volumesnapshots"}, ""), explain.KindSnapshot, "apps"); !strings.Contains(a, "install the snapshot CRDs") {
		t.Errorf("no CRDs: %s", a)
	}
}

package main

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	snapv1 "github.com/kubernetes-csi/external-snapshotter/client/v8/apis/volumesnapshot/v1"
	snapclient "github.com/kubernetes-csi/external-snapshotter/client/v8/clientset/versioned"
	v1 "k8s.io/api/core/v1"
	storagev1 "k8s.io/api/storage/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
	"k8s.io/utils/ptr"

	"github.com/csi-kit/sidecars/explain"
	"github.com/csi-kit/sidecars/internal/explaincmd"
	"github.com/csi-kit/sidecars/testkit/controlplane"
)

// cp is the package's control plane, with kube-controller-manager to bind
// claims; nil in -short mode.
var cp *controlplane.ControlPlane

func TestMain(m *testing.M) {
	flag.Parse()
	os.Exit(controlplane.RunTests(m, controlplane.Options{ControllerManager: true, SnapshotCRDs: true, Progress: os.Stderr}, &cp))
}

func TestUsage(t *testing.T) {
	for _, tc := range []struct {
		args     []string
		code     int
		out, err string
	}{
		{[]string{"--help"}, 0, "kubectl csi explain pvc|pv|volumesnapshot|volumesnapshotcontent NAME", ""},
		{[]string{"help"}, 0, "Run 'kubectl csi explain --help'", ""},
		{[]string{"explain", "--help"}, 0, "-o, --output", ""},
		{[]string{"explain", "-h"}, 0, "--context", ""},
		{nil, 2, "", "Commands:"},
		{[]string{"describe", "pvc", "x"}, 2, "", `unknown command "describe"`},
		{[]string{"explain", "pod", "x"}, 2, "", "Run 'kubectl csi explain --help' for usage."},
	} {
		var out, errOut bytes.Buffer
		code := run(context.Background(), tc.args, &out, &errOut)
		if code != tc.code || !strings.Contains(out.String(), tc.out) || !strings.Contains(errOut.String(), tc.err) ||
			(tc.out == "") != (out.Len() == 0) {
			t.Errorf("%q: code %d, stdout %q, stderr %q; want code %d, stdout with %q, stderr with %q",
				tc.args, code, out.String(), errOut.String(), tc.code, tc.out, tc.err)
		}
	}
}

var seq atomic.Int32

// fixture is one namespace of a test and its clients.
type fixture struct {
	t    *testing.T
	ctx  context.Context
	kube kubernetes.Interface
	snap snapclient.Interface
	ns   string
	id   string
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	if cp == nil {
		t.Skip("needs the control plane (not in -short mode)")
	}
	f := &fixture{t: t, ctx: t.Context(), kube: kubernetes.NewForConfigOrDie(cp.Config()), snap: snapclient.NewForConfigOrDie(cp.Config()),
		id: fmt.Sprintf("%d-%d", seq.Add(1), time.Now().UnixNano()%100000)}
	f.ns = f.namespace()
	return f
}

func (f *fixture) must(_ any, err error) {
	f.t.Helper()
	if err != nil {
		f.t.Fatal(err)
	}
}

func (f *fixture) namespace() string {
	ns, err := f.kube.CoreV1().Namespaces().Create(f.ctx, &v1.Namespace{ObjectMeta: metav1.ObjectMeta{GenerateName: "kubectl-csi-"}}, metav1.CreateOptions{})
	if err != nil {
		f.t.Fatal(err)
	}
	return ns.Name
}

// lonelyClass is an Immediate class whose provisioner nobody runs.
func (f *fixture) lonelyClass() string {
	name := "nobody-" + f.id
	f.must(f.kube.StorageV1().StorageClasses().Create(f.ctx, &storagev1.StorageClass{ObjectMeta: metav1.ObjectMeta{Name: name},
		Provisioner: name + ".csi.example.com", VolumeBindingMode: ptr.To(storagev1.VolumeBindingImmediate)}, metav1.CreateOptions{}))
	f.t.Cleanup(func() {
		_ = f.kube.StorageV1().StorageClasses().Delete(context.Background(), name, metav1.DeleteOptions{})
	})
	return name
}

func (f *fixture) claim(ns, name, class, volume string) *v1.PersistentVolumeClaim {
	pvc, err := f.kube.CoreV1().PersistentVolumeClaims(ns).Create(f.ctx, &v1.PersistentVolumeClaim{ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: v1.PersistentVolumeClaimSpec{StorageClassName: &class, VolumeName: volume, AccessModes: []v1.PersistentVolumeAccessMode{v1.ReadWriteOnce},
			Resources: v1.VolumeResourceRequirements{Requests: v1.ResourceList{v1.ResourceStorage: resource.MustParse("1Gi")}}},
	}, metav1.CreateOptions{})
	if err != nil {
		f.t.Fatal(err)
	}
	return pvc
}

// boundClaim creates a claim and a PV of class naming each other;
// kube-controller-manager's binder then binds them.
func (f *fixture) boundClaim(name, class string) {
	pvName := f.ns + "-" + name
	pvc := f.claim(f.ns, name, class, pvName)
	f.must(f.kube.CoreV1().PersistentVolumes().Create(f.ctx, &v1.PersistentVolume{ObjectMeta: metav1.ObjectMeta{Name: pvName},
		Spec: v1.PersistentVolumeSpec{Capacity: v1.ResourceList{v1.ResourceStorage: resource.MustParse("1Gi")},
			AccessModes: []v1.PersistentVolumeAccessMode{v1.ReadWriteOnce}, PersistentVolumeReclaimPolicy: v1.PersistentVolumeReclaimRetain, StorageClassName: class,
			PersistentVolumeSource: v1.PersistentVolumeSource{CSI: &v1.CSIPersistentVolumeSource{Driver: "static.csi.example.com", VolumeHandle: pvName}},
			ClaimRef:               &v1.ObjectReference{Kind: "PersistentVolumeClaim", APIVersion: "v1", Namespace: f.ns, Name: name, UID: pvc.UID}}},
		metav1.CreateOptions{}))
	f.t.Cleanup(func() {
		_ = f.kube.CoreV1().PersistentVolumes().Delete(context.Background(), pvName, metav1.DeleteOptions{})
	})
}

// stuckSnapshot snapshots claim with a VolumeSnapshotClass that does not exist.
func (f *fixture) stuckSnapshot(name, claim string) {
	f.must(f.snap.SnapshotV1().VolumeSnapshots(f.ns).Create(f.ctx, &snapv1.VolumeSnapshot{ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: snapv1.VolumeSnapshotSpec{Source: snapv1.VolumeSnapshotSource{PersistentVolumeClaimName: &claim},
			VolumeSnapshotClassName: ptr.To("missing-" + f.id)}}, metav1.CreateOptions{}))
}

// eventually runs the command line until it exits 0 and check accepts its
// output, or fails the test after 30s.
func (f *fixture) eventually(args []string, check func(stdout string) error) string {
	f.t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		var out, errOut bytes.Buffer
		code := run(f.ctx, args, &out, &errOut)
		err := fmt.Errorf("exit code %d, stderr %q", code, errOut.String())
		if code == 0 {
			err = check(out.String())
		}
		if err == nil {
			return out.String()
		}
		if time.Now().After(deadline) {
			f.t.Fatalf("%q: %v; last output:\n%s", args, err, out.String())
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func contains(subs ...string) func(string) error {
	return func(s string) error {
		for _, sub := range subs {
			if !strings.Contains(s, sub) {
				return fmt.Errorf("output lacks %q", sub)
			}
		}
		return nil
	}
}

// report checks a single report in JSON: its object, and the reasons it
// must have, the first one first.
func report(kind explain.Kind, ns, name string, reasons ...string) func(string) error {
	return func(s string) error {
		var r explain.Report
		if err := json.Unmarshal([]byte(s), &r); err != nil {
			return fmt.Errorf("not a JSON report: %v", err)
		}
		return checkReport(r, kind, ns, name, reasons...)
	}
}

func checkReport(r explain.Report, kind explain.Kind, ns, name string, reasons ...string) error {
	if r.Kind != kind || r.Namespace != ns || r.Name != name || r.State == "" {
		return fmt.Errorf("report of %s %s/%s, state %q; want %s %s/%s", r.Kind, r.Namespace, r.Name, r.State, kind, ns, name)
	}
	if len(r.Findings) == 0 || r.Findings[0].Reason != reasons[0] || r.Findings[0].Message == "" {
		return fmt.Errorf("findings %+v, want %s first", r.Findings, reasons[0])
	}
	for _, reason := range reasons {
		if !r.Has(reason) {
			return fmt.Errorf("findings %+v lack %s", r.Findings, reason)
		}
	}
	for _, fd := range r.Findings {
		if fd.Severity > explain.Info && fd.Action == "" {
			return fmt.Errorf("finding %s (%s) says not what to do", fd.Reason, fd.Severity)
		}
	}
	return nil
}

// A claim stuck on a provisioner nobody runs, a healthy bound claim and a
// snapshot stuck on a missing class: one at a time in text and JSON, then
// swept with --all.
func TestExplain(t *testing.T) {
	f := newFixture(t)
	kc := []string{"explain", "--kubeconfig", cp.KubeconfigPath()}
	args := func(a ...string) []string { return append(append([]string{}, kc...), a...) }
	class := f.lonelyClass()
	f.claim(f.ns, "stuck", class, "")
	f.boundClaim("healthy", class)
	f.stuckSnapshot("snap", "stuck")

	out := f.eventually(args("pvc", "stuck", "-n", f.ns), contains(
		"PersistentVolumeClaim "+f.ns+"/stuck: Pending, class nobody-"+f.id, "Warning "+explain.ReasonNoProvisionerLeader, "why: ", "do:  "))
	t.Logf("stuck claim:\n%s", out)
	f.eventually(args("pvc", "stuck", "-n", f.ns, "-o", "json"), report(explain.KindPVC, f.ns, "stuck", explain.ReasonNoProvisionerLeader))

	out = f.eventually(args("-n", f.ns, "pvc", "healthy"), contains("PersistentVolumeClaim "+f.ns+"/healthy: Bound, class "+class+", capacity 1Gi", "Info "+explain.ReasonBoundOK))
	t.Logf("healthy claim:\n%s", out)
	f.eventually(args("-n", f.ns, "-o", "json", "persistentvolumeclaim", "healthy"), report(explain.KindPVC, f.ns, "healthy", explain.ReasonBoundOK))
	// The bound volume, by its cluster-scoped name.
	f.eventually(args("pv", f.ns+"-healthy", "-o", "json"), report(explain.KindPV, "", f.ns+"-healthy", explain.ReasonBoundOK))

	out = f.eventually(args("volumesnapshot", "snap", "-n", f.ns), contains(
		"VolumeSnapshot "+f.ns+"/snap: not ready to use", explain.ReasonSnapshotClassMissing, explain.ReasonSourcePVCNotBound))
	t.Logf("stuck snapshot:\n%s", out)
	f.eventually(args("vs", "snap", "-n", f.ns, "-o", "json"), func(s string) error {
		var r explain.Report
		if err := json.Unmarshal([]byte(s), &r); err != nil {
			return err
		}
		first := ""
		if len(r.Findings) > 0 {
			first = r.Findings[0].Reason
		}
		return checkReport(r, explain.KindSnapshot, f.ns, "snap", first, explain.ReasonSnapshotClassMissing, explain.ReasonSourcePVCNotBound)
	})

	// A name that does not exist is a report too, not a failure.
	f.eventually(args("pvc", "absent", "-n", f.ns, "-o", "json"), report(explain.KindPVC, f.ns, "absent", explain.ReasonNotFound))

	// The sweep: the stuck claim before the healthy one, then the table.
	out = f.eventually(args("pvc", "--all", "-n", f.ns), func(s string) error {
		stuck, healthy := strings.Index(s, f.ns+"/stuck: "), strings.Index(s, f.ns+"/healthy: ")
		if stuck < 0 || healthy < 0 || stuck > healthy {
			return fmt.Errorf("want the report of stuck, then of healthy")
		}
		table := s[strings.Index(s, "NAME "):]
		for _, re := range []string{
			`(?m)^NAME +STATE +SEVERITY +REASON$`,
			`(?m)^stuck +Pending, class ` + class + `, request 1Gi +Warning +` + explain.ReasonNoProvisionerLeader + `$`,
			`(?m)^healthy +Bound, class ` + class + `, capacity 1Gi +Info +` + explain.ReasonBoundOK + `$`,
		} {
			if !regexp.MustCompile(re).MatchString(table) {
				return fmt.Errorf("summary table lacks a line matching %s:\n%s", re, table)
			}
		}
		if strings.Contains(s, "snap") {
			return fmt.Errorf("a sweep of claims shows the snapshot")
		}
		return nil
	})
	t.Logf("sweep:\n%s", out)
	f.eventually(args("pvc", "--all", "-n", f.ns, "-o", "json"), func(s string) error {
		var l explaincmd.List
		if err := json.Unmarshal([]byte(s), &l); err != nil {
			return err
		}
		if len(l.Items) != 2 {
			return fmt.Errorf("%d items, want 2", len(l.Items))
		}
		if err := checkReport(l.Items[0], explain.KindPVC, f.ns, "stuck", explain.ReasonNoProvisionerLeader); err != nil {
			return err
		}
		return checkReport(l.Items[1], explain.KindPVC, f.ns, "healthy", explain.ReasonBoundOK)
	})
	f.eventually(args("vs", "--all", "-n", f.ns, "-o", "json"), func(s string) error {
		var l explaincmd.List
		if err := json.Unmarshal([]byte(s), &l); err != nil {
			return err
		}
		if len(l.Items) != 1 || l.Items[0].Name != "snap" || !l.Items[0].Has(explain.ReasonSnapshotClassMissing) {
			return fmt.Errorf("items %+v, want the one stuck snapshot", l.Items)
		}
		return nil
	})
	empty := f.namespace()
	f.eventually(args("vs", "--all", "-n", empty), contains("No VolumeSnapshots in namespace "+empty+"."))
}

// A kubeconfig with two contexts in two namespaces: the context's namespace
// is used when -n is absent, --context picks the other one, -n wins over
// both, and KUBECONFIG is read as kubectl reads it.
func TestContexts(t *testing.T) {
	f := newFixture(t)
	one, two := f.ns, f.namespace()
	f.claim(two, "only-in-two", f.lonelyClass(), "")

	cfg, err := clientcmd.LoadFromFile(cp.KubeconfigPath())
	if err != nil {
		t.Fatal(err)
	}
	first := cfg.Contexts[cfg.CurrentContext]
	first.Namespace = one
	second := first.DeepCopy()
	second.Namespace = two
	cfg.Contexts["second"] = second
	path := filepath.Join(t.TempDir(), "kubeconfig")
	if err := clientcmd.WriteToFile(*cfg, path); err != nil {
		t.Fatal(err)
	}

	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--kubeconfig", path}, "PersistentVolumeClaim " + one + "/only-in-two: not found"},
		{[]string{"--kubeconfig", path, "--context", "second"}, "PersistentVolumeClaim " + two + "/only-in-two: Pending"},
		{[]string{"--kubeconfig", path, "--context", "second", "-n", one}, "PersistentVolumeClaim " + one + "/only-in-two: not found"},
		{[]string{"--kubeconfig", path, "--namespace", two}, "PersistentVolumeClaim " + two + "/only-in-two: Pending"},
	} {
		f.eventually(append([]string{"explain", "pvc", "only-in-two"}, tc.args...), contains(tc.want))
	}
	f.eventually([]string{"explain", "--kubeconfig", path, "--context", "second", "pvc", "--all"}, contains("\nonly-in-two "))

	t.Setenv("KUBECONFIG", path)
	f.eventually([]string{"explain", "--context=second", "pvc", "only-in-two"}, contains("PersistentVolumeClaim "+two+"/only-in-two: Pending"))
	var out, errOut bytes.Buffer
	if code := run(f.ctx, []string{"explain", "--context", "third", "pvc", "only-in-two"}, &out, &errOut); code != 2 ||
		!strings.Contains(errOut.String(), "kubectl config get-contexts") {
		t.Errorf("unknown context: code %d, stderr %q", code, errOut.String())
	}
}

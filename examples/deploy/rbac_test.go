package deploy

import (
	"slices"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/yaml"
)

var validVerbs = []string{"get", "list", "watch", "create", "update", "patch", "delete"}

// object is one rendered document.
type object struct {
	kustomization string
	meta          metav1.TypeMeta
	name          string
	doc           []byte
}

func (o object) String() string { return o.kustomization + ": " + o.meta.Kind + "/" + o.name }

func parse(t *testing.T, where string, docs [][]byte) []object {
	t.Helper()
	var out []object
	for _, d := range docs {
		var m metav1.PartialObjectMetadata
		if err := yaml.Unmarshal(d, &m); err != nil {
			t.Fatalf("%s: %v", where, err)
		}
		out = append(out, object{kustomization: where, meta: m.TypeMeta, name: m.Name, doc: d})
	}
	return out
}

// renderAll renders every shipped kustomization with its own namespace.
func renderAll(t *testing.T) []object {
	t.Helper()
	var out []object
	for _, dir := range Kustomizations {
		docs, err := Render(dir, "")
		if err != nil {
			t.Fatal(err)
		}
		if len(docs) == 0 {
			t.Fatalf("%s renders nothing", dir)
		}
		out = append(out, parse(t, dir, docs)...)
	}
	return out
}

// TestManifestsWellFormed decodes every rendered object strictly into its
// typed object (an unknown or misspelt field fails) and checks names and
// verbs.
func TestManifestsWellFormed(t *testing.T) {
	for _, o := range renderAll(t) {
		var into any
		switch o.meta.Kind {
		case "ServiceAccount", "Role", "RoleBinding", "ClusterRole", "ClusterRoleBinding":
			into = map[string]any{}
		case "Deployment":
			into = &appsv1.Deployment{}
		default:
			t.Errorf("%s: unexpected kind", o)
			continue
		}
		if err := yaml.UnmarshalStrict(o.doc, into); err != nil {
			t.Errorf("%s: %v", o, err)
		}
		var r rbacv1.ClusterRole // rules of Role and ClusterRole have the same shape
		if o.meta.Kind == "Role" || o.meta.Kind == "ClusterRole" {
			if err := yaml.UnmarshalStrict(o.doc, &r); err != nil {
				t.Errorf("%s: %v", o, err)
			}
			if r.Name == "" || len(r.Rules) == 0 {
				t.Errorf("%s: no name or no rules", o)
			}
			for _, rule := range r.Rules {
				for _, v := range rule.Verbs {
					if !slices.Contains(validVerbs, v) {
						t.Errorf("%s: verb %q (no wildcards, no escalate/bind)", o, v)
					}
				}
				if slices.Contains(rule.Resources, "*") || slices.Contains(rule.APIGroups, "*") {
					t.Errorf("%s: wildcard resource or group", o)
				}
			}
		}
	}
}

// rbacFiles maps each component's RBAC file to its ServiceAccount.
var rbacFiles = map[string]string{
	"rbac-csi-provisioner.yaml": "csi-provisioner", "rbac-csi-resizer.yaml": "csi-resizer",
	"rbac-csi-snapshotter.yaml": "csi-snapshotter", "rbac-snapshot-controller.yaml": "snapshot-controller",
	"rbac-csi-sidecars.yaml": "csi-sidecars",
}

// TestRBACFilesComplete checks that each component's rendered RBAC has its
// ServiceAccount, a Role granting Leases, and bindings that point at roles
// and the ServiceAccount of the same file, in the rendered namespace.
func TestRBACFilesComplete(t *testing.T) {
	const ns = "rbac-ns"
	for file, sa := range rbacFiles {
		docs, err := FileObjects(file, ns)
		if err != nil {
			t.Fatal(err)
		}
		roles := map[string]bool{}
		var sas []string
		var leases bool
		var bindings []rbacv1.RoleBinding
		for _, o := range parse(t, file, docs) {
			switch o.meta.Kind {
			case "ServiceAccount":
				sas = append(sas, o.name)
			case "Role", "ClusterRole":
				var r rbacv1.Role
				if err := yaml.Unmarshal(o.doc, &r); err != nil {
					t.Fatal(err)
				}
				roles[o.meta.Kind+"/"+r.Name] = true
				for _, rule := range r.Rules {
					if o.meta.Kind == "Role" && slices.Contains(rule.Resources, "leases") &&
						slices.Contains(rule.APIGroups, "coordination.k8s.io") &&
						!slices.ContainsFunc([]string{"get", "create", "update"}, func(v string) bool { return !slices.Contains(rule.Verbs, v) }) {
						leases = true
					}
				}
			case "RoleBinding", "ClusterRoleBinding":
				var b rbacv1.RoleBinding
				if err := yaml.Unmarshal(o.doc, &b); err != nil {
					t.Fatal(err)
				}
				bindings = append(bindings, b)
			}
		}
		if !slices.Equal(sas, []string{sa}) {
			t.Errorf("%s: ServiceAccounts %v, want [%s]", file, sas, sa)
		}
		if !leases {
			t.Errorf("%s: no Role grants get/create/update on coordination.k8s.io leases", file)
		}
		if len(bindings) < 2 {
			t.Errorf("%s: %d bindings, want a ClusterRoleBinding and a RoleBinding at least", file, len(bindings))
		}
		for _, b := range bindings {
			if !roles[b.RoleRef.Kind+"/"+b.RoleRef.Name] {
				t.Errorf("%s: binding %s refers to %s/%s, not defined in the file", file, b.Name, b.RoleRef.Kind, b.RoleRef.Name)
			}
			if len(b.Subjects) != 1 || b.Subjects[0].Kind != "ServiceAccount" || b.Subjects[0].Name != sa || b.Subjects[0].Namespace != ns {
				t.Errorf("%s: binding %s subjects %+v, want ServiceAccount %s/%s", file, b.Name, b.Subjects, ns, sa)
			}
		}
	}
}

// TestRulesTheCodeNeeds spot-checks rules whose absence only shows on rare
// paths: the provisioner's update of VolumeSnapshots (source-protection
// finalizer on restores), its PV create/delete, and the namespaced Secrets
// of provisioning records.
func TestRulesTheCodeNeeds(t *testing.T) {
	for _, c := range []struct {
		file, kind, group, resource string
		verbs                       []string
	}{
		{"rbac-csi-provisioner.yaml", "ClusterRole", "snapshot.storage.k8s.io", "volumesnapshots", []string{"get", "list", "watch", "update"}},
		{"rbac-csi-provisioner.yaml", "ClusterRole", "", "persistentvolumes", []string{"create", "patch", "delete"}},
		{"rbac-csi-provisioner.yaml", "Role", "", "secrets", []string{"get", "list", "create", "update", "delete"}},
		{"rbac-csi-resizer.yaml", "ClusterRole", "", "persistentvolumeclaims/status", []string{"patch"}},
		{"rbac-csi-snapshotter.yaml", "ClusterRole", "snapshot.storage.k8s.io", "volumesnapshotcontents/status", []string{"patch"}},
		{"rbac-csi-snapshotter.yaml", "ClusterRole", "groupsnapshot.storage.k8s.io", "volumegroupsnapshotcontents", []string{"get", "list", "watch", "patch"}},
		{"rbac-csi-snapshotter.yaml", "ClusterRole", "groupsnapshot.storage.k8s.io", "volumegroupsnapshotcontents/status", []string{"patch"}},
		{"rbac-csi-snapshotter.yaml", "ClusterRole", "groupsnapshot.storage.k8s.io", "volumegroupsnapshotclasses", []string{"get", "list", "watch"}},
		{"rbac-snapshot-controller.yaml", "ClusterRole", "snapshot.storage.k8s.io", "volumesnapshotcontents", []string{"create", "delete"}},
		{"rbac-snapshot-controller.yaml", "ClusterRole", "snapshot.storage.k8s.io", "volumesnapshots", []string{"create", "delete"}},
		{"rbac-snapshot-controller.yaml", "ClusterRole", "snapshot.storage.k8s.io", "volumesnapshotcontents/status", []string{"patch"}},
		{"rbac-snapshot-controller.yaml", "ClusterRole", "groupsnapshot.storage.k8s.io", "volumegroupsnapshotcontents", []string{"create", "patch", "delete"}},
		{"rbac-snapshot-controller.yaml", "ClusterRole", "groupsnapshot.storage.k8s.io", "volumegroupsnapshots/status", []string{"patch"}},
		{"rbac-csi-sidecars.yaml", "ClusterRole", "groupsnapshot.storage.k8s.io", "volumegroupsnapshots", []string{"get", "list", "watch", "patch"}},
		{"rbac-csi-sidecars.yaml", "ClusterRole", "snapshot.storage.k8s.io", "volumesnapshots", []string{"update"}},
		{"rbac-csi-sidecars.yaml", "Role", "", "secrets", []string{"get", "list", "create", "update", "delete"}},
		{"rbac-csi-provisioner.yaml", "ClusterRole", "gateway.networking.k8s.io", "referencegrants", []string{"get", "list", "watch"}},
		{"rbac-csi-sidecars.yaml", "ClusterRole", "gateway.networking.k8s.io", "referencegrants", []string{"get", "list", "watch"}},
	} {
		docs, err := FileObjects(c.file, "")
		if err != nil {
			t.Fatal(err)
		}
		var granted []string
		for _, o := range parse(t, c.file, docs) {
			if o.meta.Kind != c.kind {
				continue
			}
			var r rbacv1.Role
			if err := yaml.Unmarshal(o.doc, &r); err != nil {
				t.Fatal(err)
			}
			for _, rule := range r.Rules {
				if slices.Contains(rule.APIGroups, c.group) && slices.Contains(rule.Resources, c.resource) {
					granted = append(granted, rule.Verbs...)
				}
			}
		}
		for _, v := range c.verbs {
			if !slices.Contains(granted, v) {
				t.Errorf("%s %s: %s %q/%s not granted (have %v)", c.file, c.kind, v, c.group, c.resource, granted)
			}
		}
	}
}

// TestDeploymentsMatchSeeds checks the rendered Deployments against the
// seeds: the resizer's and provisioner's arguments (plus only the HTTP
// endpoint the probes need), and the replica counts of the snapshot
// components.
func TestDeploymentsMatchSeeds(t *testing.T) {
	docs, err := Render(".", "")
	if err != nil {
		t.Fatal(err)
	}
	deps := map[string]*appsv1.Deployment{}
	for _, o := range parse(t, ".", docs) {
		if o.meta.Kind != "Deployment" {
			continue
		}
		d := &appsv1.Deployment{}
		if err := yaml.UnmarshalStrict(o.doc, d); err != nil {
			t.Fatal(err)
		}
		deps[o.name] = d
	}
	args := func(dep, container string) []string {
		d := deps[dep]
		if d == nil {
			t.Fatalf("no Deployment %s", dep)
		}
		for _, c := range d.Spec.Template.Spec.Containers {
			if c.Name == container {
				return c.Args
			}
		}
		t.Fatalf("%s: no container %s", dep, container)
		return nil
	}
	seed000 := []string{"--v=5", "--csi-address=$(ADDRESS)", "--leader-election"}
	if got, want := args("csi-driver-controller", "csi-resizer"), append(seed000, "--http-endpoint=:8081"); !slices.Equal(got, want) {
		t.Errorf("resizer args %q, want seed 000's %q and the HTTP endpoint", got, want)
	}
	prov := args("csi-driver-controller", "csi-provisioner")
	for _, a := range []string{"--feature-gates=Topology=True", "--volume-name-prefix=local", "--strict-topology=true", "--timeout=150s",
		"--extra-create-metadata=true", "--enable-leader-election=true", "--leader-election-type=leases", "--retry-interval-start=500ms"} {
		if !slices.Contains(prov, a) {
			t.Errorf("provisioner args lack seed 001's %s", a)
		}
	}
	for dep, want := range map[string]int32{"csi-driver-controller": 2, "csi-snapshotter": 3, "snapshot-controller": 2} {
		if d := deps[dep]; d == nil || d.Spec.Replicas == nil || *d.Spec.Replicas != want {
			t.Errorf("%s: replicas want %d (seed 004)", dep, want)
		}
	}
	for name, d := range deps {
		for _, c := range d.Spec.Template.Spec.Containers {
			if c.Name != "csi-driver" && !slices.ContainsFunc(c.Args, func(a string) bool {
				return strings.HasPrefix(a, "--leader-election") || strings.HasPrefix(a, "--enable-leader-election")
			}) {
				t.Errorf("%s: container %s runs without leader election but has %d replicas", name, c.Name, *d.Spec.Replicas)
			}
		}
	}
}

package deploy

import (
	"io/fs"
	"slices"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/yaml"
)

var validVerbs = []string{"get", "list", "watch", "create", "update", "patch", "delete"}

// object is one parsed document.
type object struct {
	file string
	meta metav1.TypeMeta
	doc  []byte
}

func loadAll(t *testing.T) []object {
	t.Helper()
	files, err := fs.Glob(Manifests, "*.yaml")
	if err != nil || len(files) == 0 {
		t.Fatalf("no manifests: %v", err)
	}
	var out []object
	for _, f := range files {
		docs, err := Docs(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, d := range docs {
			var o object
			o.file, o.doc = f, d
			if err := yaml.Unmarshal(d, &o.meta); err != nil {
				t.Fatalf("%s: %v", f, err)
			}
			out = append(out, o)
		}
	}
	return out
}

// TestManifestsWellFormed decodes every document strictly into its typed
// object (an unknown or misspelt field fails) and checks names and verbs.
func TestManifestsWellFormed(t *testing.T) {
	for _, o := range loadAll(t) {
		var into any
		switch o.meta.Kind {
		case "ServiceAccount", "Role", "RoleBinding", "ClusterRole", "ClusterRoleBinding":
			into = map[string]any{}
		case "Deployment":
			into = &appsv1.Deployment{}
		default:
			t.Errorf("%s: unexpected kind %q", o.file, o.meta.Kind)
			continue
		}
		if err := yaml.UnmarshalStrict(o.doc, into); err != nil {
			t.Errorf("%s %s: %v", o.file, o.meta.Kind, err)
		}
		var r rbacv1.ClusterRole // rules of Role and ClusterRole have the same shape
		if o.meta.Kind == "Role" || o.meta.Kind == "ClusterRole" {
			if err := yaml.UnmarshalStrict(o.doc, &r); err != nil {
				t.Errorf("%s %s: %v", o.file, o.meta.Kind, err)
			}
			if r.Name == "" || len(r.Rules) == 0 {
				t.Errorf("%s %s: no name or no rules", o.file, o.meta.Kind)
			}
			for _, rule := range r.Rules {
				for _, v := range rule.Verbs {
					if !slices.Contains(validVerbs, v) {
						t.Errorf("%s %s %s: verb %q (no wildcards, no escalate/bind)", o.file, o.meta.Kind, r.Name, v)
					}
				}
				if slices.Contains(rule.Resources, "*") || slices.Contains(rule.APIGroups, "*") {
					t.Errorf("%s %s %s: wildcard resource or group", o.file, o.meta.Kind, r.Name)
				}
			}
		}
	}
}

// TestRBACFilesComplete checks that each component's file has its
// ServiceAccount, a ClusterRole, a Role granting Leases, and bindings that
// point at roles and a ServiceAccount defined in the same file.
func TestRBACFilesComplete(t *testing.T) {
	for file, sa := range map[string]string{
		"rbac-csi-provisioner.yaml": "csi-provisioner", "rbac-csi-resizer.yaml": "csi-resizer",
		"rbac-csi-snapshotter.yaml": "csi-snapshotter", "rbac-snapshot-controller.yaml": "snapshot-controller",
		"rbac-csi-sidecars.yaml": "csi-sidecars",
	} {
		docs, err := Docs(file)
		if err != nil {
			t.Fatal(err)
		}
		roles := map[string]bool{}
		var sas []string
		var leases bool
		var bindings []rbacv1.RoleBinding
		for _, d := range docs {
			var tm metav1.TypeMeta
			_ = yaml.Unmarshal(d, &tm)
			switch tm.Kind {
			case "ServiceAccount":
				var m metav1.PartialObjectMetadata
				_ = yaml.Unmarshal(d, &m)
				sas = append(sas, m.Name)
			case "Role", "ClusterRole":
				var r rbacv1.Role
				_ = yaml.Unmarshal(d, &r)
				roles[tm.Kind+"/"+r.Name] = true
				for _, rule := range r.Rules {
					if tm.Kind == "Role" && slices.Contains(rule.Resources, "leases") &&
						slices.Contains(rule.APIGroups, "coordination.k8s.io") &&
						!slices.ContainsFunc([]string{"get", "create", "update"}, func(v string) bool { return !slices.Contains(rule.Verbs, v) }) {
						leases = true
					}
				}
			case "RoleBinding", "ClusterRoleBinding":
				var b rbacv1.RoleBinding
				_ = yaml.Unmarshal(d, &b)
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
			if len(b.Subjects) != 1 || b.Subjects[0].Kind != "ServiceAccount" || b.Subjects[0].Name != sa {
				t.Errorf("%s: binding %s subjects %+v, want ServiceAccount %s", file, b.Name, b.Subjects, sa)
			}
		}
	}
}

// TestDeploymentsMatchSeeds checks the example Deployments against the
// seeds: the resizer's and provisioner's arguments, and the replica counts
// of the snapshot components.
func TestDeploymentsMatchSeeds(t *testing.T) {
	deps := map[string]*appsv1.Deployment{}
	for _, o := range loadAll(t) {
		if o.meta.Kind != "Deployment" {
			continue
		}
		d := &appsv1.Deployment{}
		if err := yaml.UnmarshalStrict(o.doc, d); err != nil {
			t.Fatal(err)
		}
		deps[o.file] = d
	}
	args := func(file, container string) []string {
		d := deps[file]
		if d == nil {
			t.Fatalf("%s: no Deployment", file)
		}
		for _, c := range d.Spec.Template.Spec.Containers {
			if c.Name == container {
				return c.Args
			}
		}
		t.Fatalf("%s: no container %s", file, container)
		return nil
	}
	if got, want := args("csi-driver-controller.yaml", "csi-resizer"), []string{"--v=5", "--csi-address=$(ADDRESS)", "--leader-election"}; !slices.Equal(got, want) {
		t.Errorf("resizer args %q, want seed 000's %q", got, want)
	}
	prov := strings.Join(args("csi-driver-controller.yaml", "csi-provisioner"), " ")
	for _, a := range []string{"--feature-gates=Topology=True", "--volume-name-prefix=local", "--strict-topology=true", "--timeout=150s",
		"--extra-create-metadata=true", "--enable-leader-election=true", "--leader-election-type=leases", "--retry-interval-start=500ms"} {
		if !strings.Contains(prov, a) {
			t.Errorf("provisioner args lack seed 001's %s", a)
		}
	}
	for file, want := range map[string]int32{"csi-snapshotter.yaml": 3, "snapshot-controller.yaml": 2} {
		if d := deps[file]; d == nil || d.Spec.Replicas == nil || *d.Spec.Replicas != want {
			t.Errorf("%s: replicas want %d (seed 004)", file, want)
		}
	}
	for file, d := range deps {
		for _, c := range d.Spec.Template.Spec.Containers {
			if c.Name != "csi-driver" && !slices.ContainsFunc(c.Args, func(a string) bool {
				return strings.HasPrefix(a, "--leader-election") || strings.HasPrefix(a, "--enable-leader-election")
			}) {
				t.Errorf("%s: container %s runs without leader election but has %d replicas", file, c.Name, *d.Spec.Replicas)
			}
		}
	}
}

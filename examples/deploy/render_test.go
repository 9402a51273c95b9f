package deploy

import (
	"bytes"
	"io/fs"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"sigs.k8s.io/yaml"
)

// TestNamespaceSetOnce checks that only components/release names the
// namespace, that every namespaced object and every binding subject of
// every kustomization lands in it, and that another namespace given to
// Render leaves no trace of the default.
func TestNamespaceSetOnce(t *testing.T) {
	var mention []string
	err := fs.WalkDir(Manifests, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		data, err := Manifests.ReadFile(p)
		if bytes.Contains(data, []byte("kube-system")) {
			mention = append(mention, p)
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"components/release/kustomization.yaml"}; !slices.Equal(mention, want) {
		t.Errorf("files naming kube-system: %v, want only %v", mention, want)
	}
	for _, ns := range []string{"", "csi-kit-test"} {
		want := ns
		if ns == "" {
			want = "kube-system"
		}
		for _, dir := range Kustomizations {
			docs, err := Render(dir, ns)
			if err != nil {
				t.Fatal(err)
			}
			for _, o := range parse(t, dir, docs) {
				if ns != "" && bytes.Contains(o.doc, []byte("kube-system")) {
					t.Errorf("%s rendered in %s still names kube-system:\n%s", o, ns, o.doc)
				}
				var m struct {
					Metadata struct{ Namespace string }
					Subjects []rbacv1.Subject
				}
				if err := yaml.Unmarshal(o.doc, &m); err != nil {
					t.Fatal(err)
				}
				clusterScoped := strings.HasPrefix(o.meta.Kind, "Cluster")
				if got := m.Metadata.Namespace; clusterScoped && got != "" || !clusterScoped && got != want {
					t.Errorf("%s: namespace %q, want %q", o, got, map[bool]string{true: "", false: want}[clusterScoped])
				}
				for _, s := range m.Subjects {
					if s.Namespace != want {
						t.Errorf("%s: subject %s in namespace %q, want %q", o, s.Name, s.Namespace, want)
					}
				}
			}
		}
	}
}

var images = []string{"csi-kit/csi-provisioner", "csi-kit/csi-resizer", "csi-kit/csi-snapshotter",
	"csi-kit/snapshot-controller", "csi-kit/csi-sidecars", "csi-kit/example-driver"}

// TestContainersHardened checks every container of every rendered
// Deployment: a released image, requests and limits, the restricted
// security context; and for the sidecars (every container but the example
// driver, which serves no HTTP) an HTTP endpoint on a port of its own in
// the pod, probed for liveness at /healthz/leader-election and for
// readiness.
func TestContainersHardened(t *testing.T) {
	seenImages := map[string]bool{}
	for _, o := range renderAll(t) {
		if o.meta.Kind != "Deployment" {
			continue
		}
		var d appsv1.Deployment
		if err := yaml.UnmarshalStrict(o.doc, &d); err != nil {
			t.Fatal(err)
		}
		ports := map[int32]string{}
		for _, c := range d.Spec.Template.Spec.Containers {
			where := o.String() + " container " + c.Name
			name, tag, _ := strings.Cut(c.Image, ":")
			if !slices.Contains(images, name) || tag != "v0.1.0" {
				t.Errorf("%s: image %q, want one of %v at v0.1.0", where, c.Image, images)
			}
			seenImages[name] = true
			checkResources(t, where, c.Resources)
			checkSecurity(t, where, c.SecurityContext)
			if c.Name == "csi-driver" {
				continue
			}
			port := httpEndpoint(t, where, c.Args)
			if other, dup := ports[port]; dup {
				t.Errorf("%s: --http-endpoint port %d also used by %s", where, port, other)
			}
			ports[port] = c.Name
			if !slices.ContainsFunc(c.Ports, func(p corev1.ContainerPort) bool { return p.ContainerPort == port }) {
				t.Errorf("%s: port %d not declared in ports %+v", where, port, c.Ports)
			}
			checkProbe(t, where+" liveness", c.LivenessProbe, c.Ports, port, "/healthz/leader-election")
			checkProbe(t, where+" readiness", c.ReadinessProbe, c.Ports, port, "/healthz/leader-election", "/healthz", "/metrics")
		}
	}
	for _, img := range images {
		if !seenImages[img] {
			t.Errorf("image %s used by no container: its images: entry is dead", img)
		}
	}
}

func checkResources(t *testing.T, where string, r corev1.ResourceRequirements) {
	t.Helper()
	for _, name := range []corev1.ResourceName{corev1.ResourceCPU, corev1.ResourceMemory} {
		req, okReq := r.Requests[name]
		lim, okLim := r.Limits[name]
		if !okReq || !okLim || req.IsZero() || lim.Cmp(req) < 0 {
			t.Errorf("%s: %s request %v limit %v, want both, limit >= request", where, name, r.Requests[name], r.Limits[name])
		}
	}
}

func checkSecurity(t *testing.T, where string, s *corev1.SecurityContext) {
	t.Helper()
	if s == nil {
		t.Errorf("%s: no securityContext", where)
		return
	}
	ok := s.RunAsNonRoot != nil && *s.RunAsNonRoot &&
		s.RunAsUser != nil && *s.RunAsUser == 65532 &&
		s.ReadOnlyRootFilesystem != nil && *s.ReadOnlyRootFilesystem &&
		s.AllowPrivilegeEscalation != nil && !*s.AllowPrivilegeEscalation &&
		s.Privileged == nil &&
		s.Capabilities != nil && slices.Equal(s.Capabilities.Drop, []corev1.Capability{"ALL"}) && len(s.Capabilities.Add) == 0 &&
		s.SeccompProfile != nil && s.SeccompProfile.Type == corev1.SeccompProfileTypeRuntimeDefault
	if !ok {
		out, _ := yaml.Marshal(s)
		t.Errorf("%s: securityContext not restricted (runAsNonRoot, runAsUser 65532, readOnlyRootFilesystem, "+
			"no privilege escalation, drop ALL, seccomp RuntimeDefault):\n%s", where, out)
	}
}

// httpEndpoint returns the port of the one --http-endpoint=:<port> flag.
func httpEndpoint(t *testing.T, where string, args []string) int32 {
	t.Helper()
	var ports []int32
	for _, a := range args {
		if v, ok := strings.CutPrefix(a, "--http-endpoint=:"); ok {
			p, err := strconv.ParseInt(v, 10, 32)
			if err != nil {
				t.Errorf("%s: %s: %v", where, a, err)
			}
			ports = append(ports, int32(p))
		}
	}
	if len(ports) != 1 {
		t.Errorf("%s: want one --http-endpoint=:<port> in %q", where, args)
		return 0
	}
	return ports[0]
}

func checkProbe(t *testing.T, where string, p *corev1.Probe, ports []corev1.ContainerPort, port int32, paths ...string) {
	t.Helper()
	if p == nil || p.HTTPGet == nil {
		t.Errorf("%s: no HTTP probe", where)
		return
	}
	got := p.HTTPGet.Port
	if got.Type == intstr.String {
		i := slices.IndexFunc(ports, func(cp corev1.ContainerPort) bool { return cp.Name == got.StrVal })
		if i < 0 {
			t.Errorf("%s: probe port %q is not a declared port", where, got.StrVal)
			return
		}
		got = intstr.FromInt32(ports[i].ContainerPort)
	}
	if got.IntVal != port {
		t.Errorf("%s: probes port %d, the endpoint listens on %d", where, got.IntVal, port)
	}
	if !slices.Contains(paths, p.HTTPGet.Path) {
		t.Errorf("%s: path %q, want one of %q", where, p.HTTPGet.Path, paths)
	}
}

// secretsRule is the one rule components/secrets adds.
var secretsRule = rbacv1.PolicyRule{APIGroups: []string{""}, Resources: []string{"secrets"}, Verbs: []string{"get"}}

// TestSecretsOptIn checks that no shipped kustomization but the secrets
// overlay lets anything read Secrets cluster-wide, and that the overlay
// (and the component added to the all-in-one) differs from its base only
// by secretsRule at the end of the ClusterRoles of the components that
// read class secrets.
func TestSecretsOptIn(t *testing.T) {
	for _, dir := range []string{".", "all-in-one"} {
		docs, err := Render(dir, "")
		if err != nil {
			t.Fatal(err)
		}
		for _, o := range parse(t, dir, docs) {
			if o.meta.Kind != "ClusterRole" {
				continue
			}
			var r rbacv1.ClusterRole
			if err := yaml.Unmarshal(o.doc, &r); err != nil {
				t.Fatal(err)
			}
			for _, rule := range r.Rules {
				if slices.Contains(rule.Resources, "secrets") {
					t.Errorf("%s: cluster-wide %v on secrets; that belongs in components/secrets", o, rule.Verbs)
				}
			}
		}
	}
	aioSecrets := map[string]string{"test-aio-secrets/kustomization.yaml": `
apiVersion: kustomize.config.k8s.io/v1beta1
kind: Kustomization
resources: [../all-in-one]
components: [../components/secrets]
`}
	for _, c := range []struct {
		base, overlay string
		extra         map[string]string
		want          []string
	}{
		{".", "overlays/secrets", nil, []string{"csi-kit-provisioner", "csi-kit-resizer", "csi-kit-snapshotter"}},
		{"all-in-one", "test-aio-secrets", aioSecrets, []string{"csi-kit-sidecars"}},
	} {
		baseDocs, err := Render(c.base, "")
		if err != nil {
			t.Fatal(err)
		}
		overDocs, err := render(c.overlay, "", c.extra)
		if err != nil {
			t.Fatal(err)
		}
		base := map[string][]byte{}
		for _, o := range parse(t, c.base, baseDocs) {
			base[o.meta.Kind+"/"+o.name] = o.doc
		}
		over := parse(t, c.overlay, overDocs)
		if len(over) != len(base) {
			t.Errorf("%s: %d objects, base %s has %d", c.overlay, len(over), c.base, len(base))
		}
		var changed []string
		for _, o := range over {
			b, ok := base[o.meta.Kind+"/"+o.name]
			if !ok {
				t.Errorf("%s: not in %s", o, c.base)
				continue
			}
			if bytes.Equal(b, o.doc) {
				continue
			}
			changed = append(changed, o.name)
			if o.meta.Kind != "ClusterRole" {
				t.Errorf("%s differs from %s's:\n%s\nvs\n%s", o, c.base, o.doc, b)
				continue
			}
			var br, or rbacv1.ClusterRole
			if err := yaml.Unmarshal(b, &br); err != nil {
				t.Fatal(err)
			}
			if err := yaml.Unmarshal(o.doc, &or); err != nil {
				t.Fatal(err)
			}
			if want := append(slices.Clone(br.Rules), secretsRule); !reflect.DeepEqual(or.Rules, want) {
				t.Errorf("%s: rules\n%+v\nwant the base's plus %+v", o, or.Rules, secretsRule)
			}
			br.Rules, or.Rules = nil, nil
			if !reflect.DeepEqual(br, or) {
				t.Errorf("%s: differs from %s's beyond the rules", o, c.base)
			}
		}
		slices.Sort(changed)
		if !slices.Equal(changed, c.want) {
			t.Errorf("%s changes %v, want exactly the ClusterRoles %v", c.overlay, changed, c.want)
		}
	}
}

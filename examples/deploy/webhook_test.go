package deploy

import (
	"slices"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/yaml"
)

// TestConversionWebhookComponent renders the base with
// components/conversion-webhook added: the base is unchanged, and the
// webhook comes as a hardened Deployment in the release's namespace and tag,
// probed over HTTPS on the port it serves, with its certificates mounted
// where its flags say, behind a Service on 443.
func TestConversionWebhookComponent(t *testing.T) {
	overlay := map[string]string{"test-webhook/kustomization.yaml": `
apiVersion: kustomize.config.k8s.io/v1beta1
kind: Kustomization
resources: [../base]
components: [../components/conversion-webhook]
`}
	for _, ns := range []string{"", "csi-kit-test"} {
		want := ns
		if ns == "" {
			want = "kube-system"
		}
		baseDocs, err := Render(".", ns)
		if err != nil {
			t.Fatal(err)
		}
		docs, err := render("test-webhook", ns, overlay)
		if err != nil {
			t.Fatal(err)
		}
		base := map[string]string{}
		for _, o := range parse(t, ".", baseDocs) {
			base[o.meta.Kind+"/"+o.name] = string(o.doc)
		}
		var deploy, svc []byte
		for _, o := range parse(t, "test-webhook", docs) {
			key := o.meta.Kind + "/" + o.name
			switch key {
			case "Deployment/snapshot-conversion-webhook":
				deploy = o.doc
			case "Service/snapshot-conversion-webhook":
				svc = o.doc
			default:
				if base[key] != string(o.doc) {
					t.Errorf("%s: the component changed %s", ns, key)
				}
				delete(base, key)
			}
		}
		for key := range base {
			t.Errorf("%s: the component dropped %s", ns, key)
		}
		if deploy == nil || svc == nil {
			t.Fatalf("%s: rendered no webhook Deployment and Service", ns)
		}

		var d appsv1.Deployment
		if err := yaml.UnmarshalStrict(deploy, &d); err != nil {
			t.Fatal(err)
		}
		if d.Namespace != want {
			t.Errorf("Deployment namespace %q, want %q", d.Namespace, want)
		}
		if d.Spec.Replicas == nil || *d.Spec.Replicas < 2 {
			t.Errorf("replicas %v, want at least 2: every v1beta1 request needs the webhook", d.Spec.Replicas)
		}
		pod := d.Spec.Template.Spec
		if pod.AutomountServiceAccountToken == nil || *pod.AutomountServiceAccountToken {
			t.Errorf("automountServiceAccountToken not false: the webhook calls no API")
		}
		if len(pod.Containers) != 1 {
			t.Fatalf("%d containers, want 1", len(pod.Containers))
		}
		c := pod.Containers[0]
		if c.Image != "csi-kit/snapshot-conversion-webhook:v0.1.0" {
			t.Errorf("image %q, want csi-kit/snapshot-conversion-webhook:v0.1.0", c.Image)
		}
		checkResources(t, "webhook", c.Resources)
		checkSecurity(t, "webhook", c.SecurityContext)
		flags := map[string]string{}
		for _, a := range c.Args {
			k, v, _ := strings.Cut(strings.TrimPrefix(a, "--"), "=")
			flags[k] = v
		}
		if flags["port"] != "8443" || len(c.Ports) != 1 || c.Ports[0].ContainerPort != 8443 {
			t.Errorf("args %q ports %+v, want --port=8443 declared", c.Args, c.Ports)
		}
		for _, p := range []*corev1.Probe{c.LivenessProbe, c.ReadinessProbe} {
			if p == nil || p.HTTPGet == nil || p.HTTPGet.Scheme != corev1.URISchemeHTTPS || p.HTTPGet.Port.StrVal != c.Ports[0].Name ||
				!slices.Contains([]string{"/readyz", "/healthz"}, p.HTTPGet.Path) {
				t.Errorf("probe %+v, want HTTPS /readyz or /healthz on the served port", p)
			}
		}
		if len(c.VolumeMounts) != 1 || len(pod.Volumes) != 1 || pod.Volumes[0].Secret == nil ||
			!strings.HasPrefix(flags["tls-cert-file"], c.VolumeMounts[0].MountPath+"/") ||
			!strings.HasPrefix(flags["tls-private-key-file"], c.VolumeMounts[0].MountPath+"/") {
			t.Errorf("certificate flags %q not under the mounted Secret %+v", c.Args, c.VolumeMounts)
		}

		var s corev1.Service
		if err := yaml.UnmarshalStrict(svc, &s); err != nil {
			t.Fatal(err)
		}
		if s.Namespace != want || len(s.Spec.Ports) != 1 || s.Spec.Ports[0].Port != 443 || s.Spec.Ports[0].TargetPort.StrVal != c.Ports[0].Name ||
			s.Spec.Selector["app"] != d.Spec.Template.Labels["app"] {
			t.Errorf("Service %+v, want port 443 to %q in %s selecting the pods", s.Spec, c.Ports[0].Name, want)
		}
	}
}

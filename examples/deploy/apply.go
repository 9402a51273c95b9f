package deploy

import (
	"context"
	"fmt"
	"io/fs"
	"net/http"
	"path"
	"strings"
	"sync"
	"time"

	authv1 "k8s.io/api/authorization/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/kustomize/api/krusty"
	"sigs.k8s.io/kustomize/api/types"
	"sigs.k8s.io/kustomize/kyaml/filesys"
	"sigs.k8s.io/kustomize/kyaml/kio"
	"sigs.k8s.io/yaml"
)

// Kustomizations are the directories of Manifests holding a kustomization
// that can be applied on its own.
var Kustomizations = []string{".", "overlays/secrets", "all-in-one"}

// Render builds the kustomization in dir of Manifests (one of
// Kustomizations) with the kustomize API and returns its objects, one YAML
// document each, in kustomize's order. A non-empty namespace replaces the
// kustomization's, as an overlay setting namespace: would; empty keeps it.
func Render(dir, namespace string) ([][]byte, error) {
	return render(dir, namespace, nil)
}

// render is Render with extra files (path under Manifests → content) added
// to the tree first, for kustomizations built on top of the shipped ones.
func render(dir, namespace string, extra map[string]string) ([][]byte, error) {
	mem := filesys.MakeFsInMemory()
	err := fs.WalkDir(Manifests, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		data, err := Manifests.ReadFile(p)
		if err != nil {
			return err
		}
		return mem.WriteFile(path.Join(renderRoot, p), data)
	})
	if err != nil {
		return nil, fmt.Errorf("copying the embedded manifests: %w", err)
	}
	for p, data := range extra {
		if err := mem.WriteFile(path.Join(renderRoot, p), []byte(data)); err != nil {
			return nil, err
		}
	}
	target := path.Join(renderRoot, dir)
	if namespace != "" {
		// An overlay beside renderRoot: kustomize wants relative paths.
		k := types.Kustomization{Namespace: namespace, Resources: []string{path.Join("..", target)}}
		k.FixKustomization()
		data, err := yaml.Marshal(k)
		if err != nil {
			return nil, err
		}
		target = "/namespaced"
		if err := mem.WriteFile(path.Join(target, "kustomization.yaml"), data); err != nil {
			return nil, err
		}
	}
	m, err := krusty.MakeKustomizer(krusty.MakeDefaultOptions()).Run(mem, target)
	if err != nil {
		return nil, fmt.Errorf("kustomize build %s: %w", dir, err)
	}
	var out [][]byte
	for _, r := range m.Resources() {
		d, err := r.AsYAML()
		if err != nil {
			return nil, fmt.Errorf("kustomize build %s: %s: %w", dir, r.CurId(), err)
		}
		out = append(out, d)
	}
	return out, nil
}

// renderRoot is where Render puts Manifests in its in-memory file system.
const renderRoot = "/deploy"

// FileObjects renders the kustomization that lists file (a resource of
// the base, or of all-in-one/ for rbac-csi-sidecars.yaml and
// csi-sidecars.yaml) in namespace and returns the rendered objects that
// came from file, so that callers get the shipped objects, namespace and
// all, of one component.
func FileObjects(file, namespace string) ([][]byte, error) {
	for _, dir := range []string{"base", "all-in-one"} {
		src, err := Manifests.ReadFile(path.Join(dir, file))
		if err != nil {
			continue
		}
		nodes, err := kio.FromBytes(src)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", file, err)
		}
		want := map[string]bool{}
		for _, n := range nodes {
			want[n.GetKind()+"/"+n.GetName()] = true
		}
		docs, err := Render(dir, namespace)
		if err != nil {
			return nil, err
		}
		var out [][]byte
		for _, d := range docs {
			var m metav1.PartialObjectMetadata
			if err := yaml.Unmarshal(d, &m); err != nil {
				return nil, fmt.Errorf("%s: rendered object: %w", file, err)
			}
			if want[m.Kind+"/"+m.Name] {
				out = append(out, d)
			}
		}
		if len(out) != len(want) {
			return nil, fmt.Errorf("%s: %d objects, %d of them rendered by %s/kustomization.yaml; list the file under its resources", file, len(want), len(out), dir)
		}
		return out, nil
	}
	return nil, fmt.Errorf("%s: not a manifest of examples/deploy/base or examples/deploy/all-in-one", file)
}

// ApplyRBAC creates the ServiceAccounts, Roles, RoleBindings, ClusterRoles
// and ClusterRoleBindings of file as the kustomization renders them in
// namespace, with suffix appended to the names of cluster-scoped objects
// (and to the references to them) so that several copies can live in one
// cluster. Other kinds are skipped; rules and subjects are applied as
// rendered.
func ApplyRBAC(ctx context.Context, c kubernetes.Interface, file, namespace, suffix string) error {
	docs, err := FileObjects(file, namespace)
	if err != nil {
		return err
	}
	for _, d := range docs {
		var tm metav1.TypeMeta
		if err := yaml.Unmarshal(d, &tm); err != nil {
			return fmt.Errorf("%s: %w", file, err)
		}
		if err := applyOne(ctx, c, tm.Kind, d, namespace, suffix); err != nil {
			return fmt.Errorf("%s: %s: %w", file, tm.Kind, err)
		}
	}
	return nil
}

// applyOne creates one rendered object. Namespaced objects must already be
// in ns: the kustomization, not this function, places them.
func applyOne(ctx context.Context, c kubernetes.Interface, kind string, d []byte, ns, suffix string) error {
	inNS := func(m metav1.ObjectMeta) error {
		if m.Namespace != ns {
			return fmt.Errorf("%s rendered in namespace %q, want %q", m.Name, m.Namespace, ns)
		}
		return nil
	}
	var err error
	switch kind {
	case "ServiceAccount":
		var o corev1.ServiceAccount
		if err = yaml.UnmarshalStrict(d, &o); err == nil {
			if err = inNS(o.ObjectMeta); err == nil {
				_, err = c.CoreV1().ServiceAccounts(ns).Create(ctx, &o, metav1.CreateOptions{})
			}
		}
	case "Role":
		var o rbacv1.Role
		if err = yaml.UnmarshalStrict(d, &o); err == nil {
			if err = inNS(o.ObjectMeta); err == nil {
				_, err = c.RbacV1().Roles(ns).Create(ctx, &o, metav1.CreateOptions{})
			}
		}
	case "RoleBinding":
		var o rbacv1.RoleBinding
		if err = yaml.UnmarshalStrict(d, &o); err == nil {
			if o.RoleRef.Kind == "ClusterRole" {
				o.RoleRef.Name += suffix
			}
			if err = inNS(o.ObjectMeta); err == nil {
				_, err = c.RbacV1().RoleBindings(ns).Create(ctx, &o, metav1.CreateOptions{})
			}
		}
	case "ClusterRole":
		var o rbacv1.ClusterRole
		if err = yaml.UnmarshalStrict(d, &o); err == nil {
			o.Name += suffix
			_, err = c.RbacV1().ClusterRoles().Create(ctx, &o, metav1.CreateOptions{})
		}
	case "ClusterRoleBinding":
		var o rbacv1.ClusterRoleBinding
		if err = yaml.UnmarshalStrict(d, &o); err == nil {
			o.Name += suffix
			o.RoleRef.Name += suffix
			_, err = c.RbacV1().ClusterRoleBindings().Create(ctx, &o, metav1.CreateOptions{})
		}
	}
	if apierrors.IsAlreadyExists(err) {
		return nil
	}
	return err
}

// Forbidden records the requests an apiserver refused with 403.
type Forbidden struct {
	mu   sync.Mutex
	reqs []string
}

// Watch makes cfg's clients record their forbidden requests in f.
func (f *Forbidden) Watch(cfg *rest.Config) *rest.Config {
	cfg = rest.CopyConfig(cfg)
	cfg.Wrap(func(rt http.RoundTripper) http.RoundTripper {
		return roundTripFunc(func(r *http.Request) (*http.Response, error) {
			resp, err := rt.RoundTrip(r)
			if err == nil && resp.StatusCode == http.StatusForbidden {
				f.mu.Lock()
				f.reqs = append(f.reqs, r.Method+" "+r.URL.Path)
				f.mu.Unlock()
			}
			return resp, err
		})
	})
	return cfg
}

// Requests returns the forbidden requests so far, as "METHOD path".
func (f *Forbidden) Requests() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.reqs...)
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// WaitGranted polls SelfSubjectAccessReviews with client (the
// ServiceAccount's) until the first verb of every rule of file's rendered
// Roles and ClusterRoles is allowed, so that later refusals mean missing rules, not
// an authorizer cache still catching up.
func WaitGranted(ctx context.Context, client kubernetes.Interface, file, namespace string, timeout time.Duration) error {
	docs, err := FileObjects(file, namespace)
	if err != nil {
		return err
	}
	deadline := time.Now().Add(timeout)
	for _, d := range docs {
		var r rbacv1.Role
		if yaml.Unmarshal(d, &r) != nil || (r.Kind != "Role" && r.Kind != "ClusterRole") {
			continue
		}
		ns := ""
		if r.Kind == "Role" {
			ns = namespace
		}
		for _, rule := range r.Rules {
			res, sub, _ := strings.Cut(rule.Resources[0], "/")
			attr := &authv1.ResourceAttributes{Namespace: ns, Verb: rule.Verbs[0], Group: rule.APIGroups[0], Resource: res, Subresource: sub}
			for {
				rev, err := client.AuthorizationV1().SelfSubjectAccessReviews().Create(ctx,
					&authv1.SelfSubjectAccessReview{Spec: authv1.SelfSubjectAccessReviewSpec{ResourceAttributes: attr}}, metav1.CreateOptions{})
				if err == nil && rev.Status.Allowed {
					break
				}
				if time.Now().After(deadline) {
					return fmt.Errorf("%s: %s %s/%s not granted within %v (err %v)", file, attr.Verb, res, sub, timeout, err)
				}
				select {
				case <-ctx.Done():
					return ctx.Err()
				case <-time.After(100 * time.Millisecond):
				}
			}
		}
	}
	return nil
}

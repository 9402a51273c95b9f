package deploy

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
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
	"sigs.k8s.io/yaml"
)

// Docs splits a manifest file into its YAML documents, dropping empty ones.
func Docs(file string) ([][]byte, error) {
	data, err := Manifests.ReadFile(file)
	if err != nil {
		return nil, err
	}
	var out [][]byte
	for _, d := range bytes.Split(data, []byte("\n---\n")) {
		if len(bytes.TrimSpace(stripComments(d))) > 0 {
			out = append(out, d)
		}
	}
	return out, nil
}

func stripComments(d []byte) []byte {
	var b bytes.Buffer
	for _, l := range strings.Split(string(d), "\n") {
		if !strings.HasPrefix(strings.TrimSpace(l), "#") {
			b.WriteString(l + "\n")
		}
	}
	return b.Bytes()
}

// ApplyRBAC creates the ServiceAccounts, Roles, RoleBindings, ClusterRoles
// and ClusterRoleBindings of file, moved from kube-system to namespace, with
// suffix appended to the names of cluster-scoped objects (and to the
// references to them) so that several copies can live in one cluster.
// Other kinds are skipped.
func ApplyRBAC(ctx context.Context, c kubernetes.Interface, file, namespace, suffix string) error {
	docs, err := Docs(file)
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

func applyOne(ctx context.Context, c kubernetes.Interface, kind string, d []byte, ns, suffix string) error {
	subjects := func(s []rbacv1.Subject) {
		for i := range s {
			if s[i].Namespace != "" {
				s[i].Namespace = ns
			}
		}
	}
	var err error
	switch kind {
	case "ServiceAccount":
		var o corev1.ServiceAccount
		if err = yaml.UnmarshalStrict(d, &o); err == nil {
			o.Namespace = ns
			_, err = c.CoreV1().ServiceAccounts(ns).Create(ctx, &o, metav1.CreateOptions{})
		}
	case "Role":
		var o rbacv1.Role
		if err = yaml.UnmarshalStrict(d, &o); err == nil {
			o.Namespace = ns
			_, err = c.RbacV1().Roles(ns).Create(ctx, &o, metav1.CreateOptions{})
		}
	case "RoleBinding":
		var o rbacv1.RoleBinding
		if err = yaml.UnmarshalStrict(d, &o); err == nil {
			o.Namespace = ns
			subjects(o.Subjects)
			if o.RoleRef.Kind == "ClusterRole" {
				o.RoleRef.Name += suffix
			}
			_, err = c.RbacV1().RoleBindings(ns).Create(ctx, &o, metav1.CreateOptions{})
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
			subjects(o.Subjects)
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
// ServiceAccount's) until the first verb of every rule of file's Roles and
// ClusterRoles is allowed, so that later refusals mean missing rules, not
// an authorizer cache still catching up.
func WaitGranted(ctx context.Context, client kubernetes.Interface, file, namespace string, timeout time.Duration) error {
	docs, err := Docs(file)
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

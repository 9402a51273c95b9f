package provisioner

import (
	"context"
	"fmt"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

// ReferenceGrants (gateway.networking.k8s.io) let the owner of a namespace
// allow objects of other namespaces to refer to its objects. The
// provisioner reads them only with Options.CrossNamespaceDataSources: a
// claim's dataSourceRef may name a PVC or VolumeSnapshot of another
// namespace only when a grant in that namespace allows it.
//
// Grants are read with one List in the source's namespace per provisioning
// attempt, not through an informer:
//   - only claims whose dataSourceRef names another namespace pay for it,
//     once per attempt, and attempts are spaced by the claim's backoff;
//   - the answer is never stale, so a grant removed before provisioning
//     refuses the next attempt, which a cache would let through until its
//     watch caught up (this check guards another tenant's data);
//   - nothing at start depends on the CRD: where it is not served, only
//     cross-namespace claims fail, with an event saying so, and the
//     provisioner starts and serves every other claim.
//
// The price: a claim refused for want of a grant is not retried the moment
// the grant appears, but at its next backoff step (at most
// Options.RetryIntervalMax later).

// referenceGrantResource is the API resource of ReferenceGrants.
var referenceGrantResource = schema.GroupVersionResource{Group: "gateway.networking.k8s.io", Version: "v1beta1", Resource: "referencegrants"}

// referenceGrant is the part of a ReferenceGrant the provisioner reads.
type referenceGrant struct {
	Spec struct {
		From []grantFrom `json:"from"`
		To   []grantTo   `json:"to"`
	} `json:"spec"`
}

type grantFrom struct {
	Group     string `json:"group"`
	Kind      string `json:"kind"`
	Namespace string `json:"namespace"`
}

type grantTo struct {
	Group string  `json:"group"`
	Kind  string  `json:"kind"`
	Name  *string `json:"name,omitempty"`
}

// sourceRef names a cross-namespace data source: its API group ("" for
// the core group), kind, namespace and name.
type sourceRef struct {
	group, kind, namespace, name string
}

func (s sourceRef) String() string {
	if s.group == "" {
		return fmt.Sprintf("%s %s/%s", s.kind, s.namespace, s.name)
	}
	return fmt.Sprintf("%s.%s %s/%s", s.kind, s.group, s.namespace, s.name)
}

// grantAllows reports whether grant g lets PersistentVolumeClaims of
// namespace claimNS use src: one "from" entry must be {group "", kind
// PersistentVolumeClaim, namespace claimNS} and one "to" entry {src's
// group, src's kind, no name or src's name}.
func grantAllows(g *referenceGrant, claimNS string, src sourceRef) bool {
	from := false
	for _, f := range g.Spec.From {
		if f.Group == "" && f.Kind == "PersistentVolumeClaim" && f.Namespace == claimNS {
			from = true
			break
		}
	}
	if !from {
		return false
	}
	for _, t := range g.Spec.To {
		if t.Group == src.group && t.Kind == src.kind && (t.Name == nil || *t.Name == "" || *t.Name == src.name) {
			return true
		}
	}
	return false
}

// checkGrant returns nil when a ReferenceGrant in src's namespace lets
// claims of claimNS use src, and otherwise an error that says what to do.
func (p *Provisioner) checkGrant(ctx context.Context, claimNS string, src sourceRef) error {
	list, err := p.opts.DynamicClient.Resource(referenceGrantResource).Namespace(src.namespace).List(ctx, metav1.ListOptions{})
	switch {
	case apierrors.IsNotFound(err):
		return final(fmt.Errorf("cannot use %s from namespace %s: ReferenceGrant API not installed (%s); install the ReferenceGrant CRD, then a ReferenceGrant in namespace %s",
			src, claimNS, referenceGrantResource.GroupVersion(), src.namespace))
	case apierrors.IsForbidden(err):
		return fmt.Errorf("cannot use %s from namespace %s: the provisioner may not list referencegrants in namespace %s; grant it get, list and watch on referencegrants.%s: %w",
			src, claimNS, src.namespace, referenceGrantResource.Group, err)
	case err != nil:
		return fmt.Errorf("listing ReferenceGrants in namespace %s: %w", src.namespace, err)
	}
	for i := range list.Items {
		var g referenceGrant
		if err := runtime.DefaultUnstructuredConverter.FromUnstructured(list.Items[i].Object, &g); err != nil {
			continue // malformed: grants nothing
		}
		if grantAllows(&g, claimNS, src) {
			return nil
		}
	}
	return final(fmt.Errorf("no ReferenceGrant in namespace %s allows claims of namespace %s to use %s; create one in namespace %s with from [{group: \"\", kind: PersistentVolumeClaim, namespace: %s}] and to [{group: %q, kind: %s, name: %s}]",
		src.namespace, claimNS, src, src.namespace, claimNS, src.group, src.kind, src.name))
}

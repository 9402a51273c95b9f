package snapshotter

import (
	"context"
	"fmt"
	"strings"

	crdv1 "github.com/kubernetes-csi/external-snapshotter/client/v8/apis/volumesnapshot/v1"
	snapclient "github.com/kubernetes-csi/external-snapshotter/client/v8/clientset/versioned"
	snapinformers "github.com/kubernetes-csi/external-snapshotter/client/v8/informers/externalversions"
	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/validation"
	corev1helpers "k8s.io/component-helpers/scheduling/corev1"
	"k8s.io/klog/v2"

	"github.com/csi-kit/sidecars/internal/kube"
	"github.com/csi-kit/sidecars/sharedcache"
)

// managedByNode returns the node a PV is pinned to for distributed
// snapshotting: the node among nodes that matches the PV's required node
// affinity (labels and metadata.name fields), or "" when the PV has no
// required affinity or no node matches. When several nodes match, the
// lowest name is returned, so the answer does not depend on list order.
func managedByNode(pv *v1.PersistentVolume, nodes []*v1.Node) string {
	if pv.Spec.NodeAffinity == nil || pv.Spec.NodeAffinity.Required == nil {
		return ""
	}
	best := ""
	for _, n := range nodes {
		if best != "" && n.Name >= best {
			continue
		}
		// An invalid term matches nothing; the PV's affinity was
		// validated by the API server, so this is not expected.
		if ok, _ := corev1helpers.MatchNodeSelectorTerms(n, pv.Spec.NodeAffinity.Required); ok {
			best = n.Name
		}
	}
	return best
}

// labelManagedBy sets LabelManagedBy on a new content when distributed
// snapshotting is on and the source PV is pinned to a known node.
func (c *Controller) labelManagedBy(ctx context.Context, vsc *crdv1.VolumeSnapshotContent, pv *v1.PersistentVolume) error {
	if !c.opts.DistributedSnapshotting {
		return nil
	}
	nodes, err := c.nodeLister.List(labels.Everything())
	if err != nil {
		return fmt.Errorf("listing nodes for distributed snapshotting: %w", err)
	}
	node := managedByNode(pv, nodes)
	logger := klog.FromContext(ctx)
	if node == "" {
		logger.V(2).Info("No node matches the volume's node affinity: the content gets no managed-by label and only a sidecar without NodeName will handle it", "pv", pv.Name, "content", vsc.Name)
		return nil
	}
	if vsc.Labels == nil {
		vsc.Labels = map[string]string{}
	}
	vsc.Labels[LabelManagedBy] = node
	logger.V(4).Info("Content managed by node", "content", vsc.Name, "node", node)
	return nil
}

// managedBySelector is the label selector of a node's contents.
func managedBySelector(node string) string {
	return labels.Set{LabelManagedBy: node}.AsSelector().String()
}

// checkNodeName reports a NodeName that cannot select contents by label.
func checkNodeName(node string) error {
	if node == "" {
		return nil
	}
	if errs := validation.IsValidLabelValue(node); len(errs) > 0 {
		return fmt.Errorf("NodeName %q cannot be the value of label %s: %s; distributed snapshotting needs node names of at most 63 characters", node, LabelManagedBy, strings.Join(errs, "; "))
	}
	return nil
}

// nodeContentFactory is the private informer factory of a node-mode
// sidecar's contents: only those labelled for node are listed and watched,
// so a node never holds the others' contents.
func nodeContentFactory(snap snapclient.Interface, node string) snapinformers.SharedInformerFactory {
	return snapinformers.NewSharedInformerFactoryWithOptions(snap, sharedcache.ResyncCheck,
		snapinformers.WithTransform(kube.StripForCache),
		snapinformers.WithTweakListOptions(func(o *metav1.ListOptions) { o.LabelSelector = managedBySelector(node) }))
}

package provisioner

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"math/rand/v2"
	"sort"
	"time"

	"github.com/container-storage-interface/spec/lib/go/csi"
	v1 "k8s.io/api/core/v1"
	storagev1 "k8s.io/api/storage/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	corelisters "k8s.io/client-go/listers/core/v1"
	storagelisters "k8s.io/client-go/listers/storage/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/component-helpers/scheduling/corev1/nodeaffinity"
	"k8s.io/klog/v2"

	"github.com/csi-kit/sidecars/internal/ctrl"
)

// NodeDeployment runs the provisioner on every node, each serving only the
// claims of its node (upstream --node-deployment), for drivers of node-local
// storage.
type NodeDeployment struct {
	// NodeName is this node (upstream env NODE_NAME). Required.
	NodeName string
	// ImmediateBinding lets nodes take Immediate claims that have no
	// selected node: after a random delay, a node whose topology the class
	// allows and whose capacity fits sets the selected-node annotation to
	// itself; the first to do so provisions (upstream default true).
	ImmediateBinding bool
	// BaseDelay and MaxDelay bound that delay: the first try comes after a
	// random wait below BaseDelay, each further try (capacity too small,
	// another node's write first) after up to twice as long, at most
	// MaxDelay. Defaults 20s and 60s.
	BaseDelay, MaxDelay time.Duration
}

// Defaults of NodeDeployment.
const (
	DefaultNodeBaseDelay = 20 * time.Second
	DefaultNodeMaxDelay  = 60 * time.Second
)

// decideNodeClaim narrows an action of decideClaim to the claims of node:
// a claim selected for another node is ignored, one without a selected
// node is taken (Immediate classes, when immediate is true) or left to the
// scheduler.
func decideNodeClaim(action claimAction, why string, pvc *v1.PersistentVolumeClaim, class *storagev1.StorageClass, node string, immediate bool) (claimAction, string) {
	if action != claimProvision && action != claimWait {
		return action, why
	}
	selected := pvc.Annotations[annSelectedNode]
	switch {
	case selected == node:
		return action, why
	case selected != "":
		return claimIgnore, fmt.Sprintf("claim is for node %q", selected)
	case action == claimWait:
		return claimWait, why
	case class == nil:
		return claimIgnore, "no class: left to a node that can read it"
	case !immediate:
		return claimIgnore, "Immediate claims are not taken by nodes (node-deployment-immediate-binding=false)"
	}
	return claimTake, "no node selected: offer this node"
}

// nodeInfo is this node's topology, read once from NodeGetInfo.
type nodeInfo struct {
	name    string
	segment term // nil without topology
}

// setupNode reads the node's topology from the driver and stands in
// static Node and CSINode listers for the watched ones, as upstream does:
// in node mode the provisioner watches neither.
func (p *Provisioner) setupNode(ctx context.Context) error {
	nd := p.opts.NodeDeployment
	n, ok := p.drv.(interface{ Node() csi.NodeClient })
	if !ok {
		return errors.New("node deployment needs the driver's node service (a *csiconn.Conn)")
	}
	callCtx, cancel := p.callCtx(ctx)
	defer cancel()
	info, err := n.Node().NodeGetInfo(callCtx, &csi.NodeGetInfoRequest{})
	if err != nil {
		return fmt.Errorf("NodeGetInfo for node deployment: %w", err)
	}
	p.node = &nodeInfo{name: nd.NodeName}
	labels := map[string]string{v1.LabelHostname: nd.NodeName}
	var keys []string
	if seg := info.GetAccessibleTopology().GetSegments(); len(seg) > 0 {
		p.node.segment = term{}
		for k, v := range seg {
			p.node.segment[k], labels[k] = v, v
			keys = append(keys, k)
		}
		sort.Strings(keys)
	}
	nodes := cache.NewIndexer(cache.MetaNamespaceKeyFunc, cache.Indexers{})
	_ = nodes.Add(&v1.Node{ObjectMeta: metav1.ObjectMeta{Name: nd.NodeName, Labels: labels}})
	csiNodes := cache.NewIndexer(cache.MetaNamespaceKeyFunc, cache.Indexers{})
	_ = csiNodes.Add(&storagev1.CSINode{ObjectMeta: metav1.ObjectMeta{Name: nd.NodeName},
		Spec: storagev1.CSINodeSpec{Drivers: []storagev1.CSINodeDriver{{Name: p.name, NodeID: info.GetNodeId(), TopologyKeys: keys}}}})
	p.nodes, p.csiNodes = corelisters.NewNodeLister(nodes), storagelisters.NewCSINodeLister(csiNodes)
	klog.FromContext(ctx).Info("Node deployment", "node", nd.NodeName, "topology", p.node.segment, "immediateBinding", nd.ImmediateBinding)
	return nil
}

// take tries to make this node the one that provisions an Immediate claim
// without a selected node: wait the claim's delay, check the class admits
// the node and the capacity fits, then set selected-node to this node
// with the claim's resourceVersion as precondition, so that one node wins.
func (p *Provisioner) take(ctx context.Context, pvc *v1.PersistentVolumeClaim, class *storagev1.StorageClass) (ctrl.Result, error) {
	logger := klog.FromContext(ctx)
	if len(class.AllowedTopologies) > 0 && p.node.segment != nil && !anySubset(flatten(class.AllowedTopologies), p.node.segment) {
		logger.V(4).Info("Class does not allow this node's topology", "class", class.Name)
		return ctrl.Result{}, nil
	}
	if wait := p.takeWait(string(pvc.UID)); wait > 0 {
		return ctrl.Result{RequeueAfter: wait}, nil
	}
	if ok, err := p.capacityFits(ctx, pvc, class); err != nil || !ok {
		logger.V(3).Info("Not offering this node", "reason", "capacity", "fits", ok, "err", err)
		return ctrl.Result{RequeueAfter: p.takeRetry(string(pvc.UID))}, nil
	}
	patch := fmt.Appendf(nil, `{"metadata":{"resourceVersion":%q,"annotations":{%q:%q}}}`, pvc.ResourceVersion, annSelectedNode, p.node.name)
	_, err := p.kube.CoreV1().PersistentVolumeClaims(pvc.Namespace).Patch(ctx, pvc.Name, types.MergePatchType, patch, metav1.PatchOptions{})
	switch {
	case err == nil:
		logger.V(2).Info("Took the claim for this node", "node", p.node.name)
		p.forgetTake(string(pvc.UID))
		return ctrl.Result{}, nil // the update event brings the claim back, now ours
	case apierrors.IsConflict(err) || apierrors.IsNotFound(err):
		return ctrl.Result{RequeueAfter: p.takeRetry(string(pvc.UID))}, nil // changed meanwhile, maybe taken by another node
	}
	return ctrl.Result{}, fmt.Errorf("setting %s on %s: %w", annSelectedNode, klog.KObj(pvc), err)
}

// capacityFits asks GetCapacity for the class on this node's segment; a
// driver without GET_CAPACITY, a size of 0 or an error let the node try.
func (p *Provisioner) capacityFits(ctx context.Context, pvc *v1.PersistentVolumeClaim, class *storagev1.StorageClass) (bool, error) {
	if !p.caps.HasController(csi.ControllerServiceCapability_RPC_GET_CAPACITY) {
		return true, nil
	}
	req := &csi.GetCapacityRequest{Parameters: class.Parameters}
	if p.node.segment != nil {
		req.AccessibleTopology = &csi.Topology{Segments: p.node.segment}
	}
	callCtx, cancel := p.callCtx(ctx)
	defer cancel()
	resp, err := p.ctrl.GetCapacity(callCtx, req)
	if err != nil {
		// As upstream: a failed check does not stop the node from trying.
		return true, nil
	}
	want := pvc.Spec.Resources.Requests[v1.ResourceStorage]
	if resp.GetAvailableCapacity() == 0 {
		return true, nil
	}
	return resp.GetAvailableCapacity() >= want.Value(), nil
}

// takeWait is how long to wait before the next offer for claim uid: a
// random part of BaseDelay on first sight, then what remains of it.
func (p *Provisioner) takeWait(uid string) time.Duration {
	p.topoMu.Lock()
	defer p.topoMu.Unlock()
	now := p.opts.Clock.Now()
	at, ok := p.takeAt[uid]
	if !ok {
		d := time.Duration(rand.Int64N(int64(p.opts.NodeDeployment.BaseDelay) + 1))
		p.takeAt[uid] = takeState{at: now.Add(d), delay: p.opts.NodeDeployment.BaseDelay}
		return d
	}
	return at.at.Sub(now)
}

// takeRetry schedules the next offer after a failed one: up to twice the
// last delay, at most MaxDelay, randomised.
func (p *Provisioner) takeRetry(uid string) time.Duration {
	p.topoMu.Lock()
	defer p.topoMu.Unlock()
	st := p.takeAt[uid]
	st.delay = min(2*max(st.delay, time.Millisecond), p.opts.NodeDeployment.MaxDelay)
	d := st.delay/2 + time.Duration(rand.Int64N(int64(st.delay/2)+1))
	st.at = p.opts.Clock.Now().Add(d)
	p.takeAt[uid] = st
	return d
}

func (p *Provisioner) forgetTake(uid string) {
	p.topoMu.Lock()
	defer p.topoMu.Unlock()
	delete(p.takeAt, uid)
}

type takeState struct {
	at    time.Time
	delay time.Duration
}

// onThisNode reports whether pv's node affinity admits this node (a PV
// without affinity is every node's; the first node to act deletes it).
func (p *Provisioner) onThisNode(pv *v1.PersistentVolume) bool {
	if pv.Spec.NodeAffinity == nil || pv.Spec.NodeAffinity.Required == nil {
		return true
	}
	node, err := p.nodes.Get(p.node.name)
	if err != nil {
		return false
	}
	ok, err := nodeaffinity.NewLazyErrorNodeSelector(pv.Spec.NodeAffinity.Required).Match(node)
	return err == nil && ok
}

// managedBy is the managed-by label of this provisioner's capacity
// objects: "external-provisioner", or in node mode
// "external-provisioner-<node>", cut to 63 characters with a hash.
func (p *Provisioner) managedBy() string {
	if p.opts.NodeDeployment == nil {
		return managedByDefault
	}
	v := managedByDefault + "-" + p.opts.NodeDeployment.NodeName
	if len(v) <= 63 {
		return v
	}
	h := fnv.New32a()
	_, _ = h.Write([]byte(v))
	return fmt.Sprintf("%s-%08x", v[:63-9], h.Sum32())
}

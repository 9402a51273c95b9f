package controlplane

import (
	"context"
	"fmt"
	"runtime"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/util/retry"
)

// CreateNode creates a Node that the scheduler treats as Ready: condition
// Ready=True, 16 CPUs, 64Gi of memory, 110 pods, and without the
// node.kubernetes.io/not-ready taint that admission adds to new nodes (no
// node lifecycle controller runs here to remove it). labels are added to
// kubernetes.io/hostname, kubernetes.io/os and kubernetes.io/arch, and may
// override them. No kubelet runs, so the node never changes by itself.
func CreateNode(ctx context.Context, client kubernetes.Interface, name string, labels map[string]string) error {
	nodes := client.CoreV1().Nodes()
	want := readyNode(name, labels)
	created, err := nodes.Create(ctx, want, metav1.CreateOptions{})
	if err != nil {
		return fmt.Errorf("controlplane: creating node %s: %w", name, err)
	}
	if !nodeReady(created) {
		created.Status = want.Status
		if _, err := nodes.UpdateStatus(ctx, created, metav1.UpdateOptions{}); err != nil {
			return fmt.Errorf("controlplane: marking node %s Ready: %w", name, err)
		}
	}
	err = retry.RetryOnConflict(retry.DefaultRetry, func() error {
		node, err := nodes.Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return err
		}
		kept := node.Spec.Taints[:0]
		for _, t := range node.Spec.Taints {
			if t.Key != corev1.TaintNodeNotReady {
				kept = append(kept, t)
			}
		}
		if len(kept) == len(node.Spec.Taints) {
			return nil
		}
		node.Spec.Taints = kept
		_, err = nodes.Update(ctx, node, metav1.UpdateOptions{})
		return err
	})
	if err != nil {
		return fmt.Errorf("controlplane: removing taint %s from node %s: %w", corev1.TaintNodeNotReady, name, err)
	}
	node, err := nodes.Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		return fmt.Errorf("controlplane: checking node %s: %w", name, err)
	}
	for _, t := range node.Spec.Taints {
		if t.Key == corev1.TaintNodeNotReady {
			return fmt.Errorf("controlplane: node %s still has taint %s", name, t.ToString())
		}
	}
	if !nodeReady(node) {
		return fmt.Errorf("controlplane: node %s is not Ready after creation", name)
	}
	return nil
}

func readyNode(name string, extra map[string]string) *corev1.Node {
	labels := map[string]string{
		corev1.LabelHostname:   name,
		corev1.LabelOSStable:   runtime.GOOS,
		corev1.LabelArchStable: runtime.GOARCH,
	}
	for k, v := range extra {
		labels[k] = v
	}
	resources := corev1.ResourceList{
		corev1.ResourceCPU:              resource.MustParse("16"),
		corev1.ResourceMemory:           resource.MustParse("64Gi"),
		corev1.ResourcePods:             resource.MustParse("110"),
		corev1.ResourceEphemeralStorage: resource.MustParse("100Gi"),
	}
	now := metav1.NewTime(time.Now())
	return &corev1.Node{
		ObjectMeta: metav1.ObjectMeta{Name: name, Labels: labels},
		Status: corev1.NodeStatus{
			Capacity:    resources,
			Allocatable: resources.DeepCopy(),
			Conditions: []corev1.NodeCondition{{
				Type:               corev1.NodeReady,
				Status:             corev1.ConditionTrue,
				Reason:             "KubeletReady",
				Message:            "created by csi-kit controlplane.CreateNode; no kubelet runs",
				LastHeartbeatTime:  now,
				LastTransitionTime: now,
			}},
			Addresses: []corev1.NodeAddress{
				{Type: corev1.NodeInternalIP, Address: "127.0.0.1"},
				{Type: corev1.NodeHostName, Address: name},
			},
			NodeInfo: corev1.NodeSystemInfo{
				KubeletVersion:  KubernetesVersion,
				OperatingSystem: runtime.GOOS,
				Architecture:    runtime.GOARCH,
			},
		},
	}
}

func nodeReady(n *corev1.Node) bool {
	for _, c := range n.Status.Conditions {
		if c.Type == corev1.NodeReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

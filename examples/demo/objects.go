package main

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/container-storage-interface/spec/lib/go/csi"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	v1 "k8s.io/api/core/v1"
	storagev1 "k8s.io/api/storage/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
)

func (e *env) createClass(ctx context.Context, name, driver string, wffc bool, params map[string]string) error {
	mode := storagev1.VolumeBindingImmediate
	if wffc {
		mode = storagev1.VolumeBindingWaitForFirstConsumer
	}
	t := true
	del := v1.PersistentVolumeReclaimDelete
	_, err := e.kube.StorageV1().StorageClasses().Create(ctx, &storagev1.StorageClass{
		ObjectMeta:           metav1.ObjectMeta{Name: name},
		Provisioner:          driver,
		Parameters:           params,
		ReclaimPolicy:        &del,
		AllowVolumeExpansion: &t,
		VolumeBindingMode:    &mode,
	}, metav1.CreateOptions{})
	if err == nil {
		e.say("StorageClass %s: provisioner %s, binding %s, allowVolumeExpansion true", name, driver, mode)
	}
	return err
}

func (e *env) createPVC(ctx context.Context, name, class, size string, source *v1.TypedLocalObjectReference) error {
	pvc := &v1.PersistentVolumeClaim{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: namespace},
		Spec: v1.PersistentVolumeClaimSpec{
			AccessModes:      []v1.PersistentVolumeAccessMode{v1.ReadWriteOnce},
			StorageClassName: &class,
			Resources:        v1.VolumeResourceRequirements{Requests: v1.ResourceList{v1.ResourceStorage: resource.MustParse(size)}},
			DataSource:       source,
		},
	}
	_, err := e.kube.CoreV1().PersistentVolumeClaims(namespace).Create(ctx, pvc, metav1.CreateOptions{})
	if err == nil {
		from := ""
		if source != nil {
			from = fmt.Sprintf(" from %s %s", source.Kind, source.Name)
		}
		e.say("PVC %s: %s of class %s%s", name, size, class, from)
	}
	return err
}

func (e *env) pvc(ctx context.Context, name string) (*v1.PersistentVolumeClaim, error) {
	return e.kube.CoreV1().PersistentVolumeClaims(namespace).Get(ctx, name, metav1.GetOptions{})
}

// waitBound waits for the claim to be Bound and prints its volume.
func (e *env) waitBound(ctx context.Context, name string) (*v1.PersistentVolume, error) {
	start := time.Now()
	var pv *v1.PersistentVolume
	err := eventually(ctx, "PVC "+name+" Bound", 90*time.Second, func() (bool, error) {
		pvc, err := e.pvc(ctx, name)
		if err != nil || pvc.Status.Phase != v1.ClaimBound {
			return false, err
		}
		pv, err = e.kube.CoreV1().PersistentVolumes().Get(ctx, pvc.Spec.VolumeName, metav1.GetOptions{})
		return err == nil, err
	})
	if err != nil {
		e.printEvents(ctx, "PersistentVolumeClaim", name)
		return nil, err
	}
	cap := pv.Spec.Capacity[v1.ResourceStorage]
	e.say("PVC %s Bound to %s (%s) after %.1fs%s", name, pv.Name, cap.String(), time.Since(start).Seconds(), affinity(pv))
	return pv, nil
}

func affinity(pv *v1.PersistentVolume) string {
	if pv.Spec.NodeAffinity == nil || pv.Spec.NodeAffinity.Required == nil {
		return ""
	}
	var terms []string
	for _, t := range pv.Spec.NodeAffinity.Required.NodeSelectorTerms {
		for _, r := range t.MatchExpressions {
			terms = append(terms, fmt.Sprintf("%s in %v", r.Key, r.Values))
		}
	}
	return ", node affinity: " + strings.Join(terms, " and ")
}

func (e *env) expand(ctx context.Context, name, size string) error {
	patch := fmt.Sprintf(`{"spec":{"resources":{"requests":{"storage":%q}}}}`, size)
	_, err := e.kube.CoreV1().PersistentVolumeClaims(namespace).Patch(ctx, name, types.MergePatchType, []byte(patch), metav1.PatchOptions{})
	if err == nil {
		e.say("kubectl patch pvc %s: requests.storage -> %s", name, size)
	}
	return err
}

// showPVC prints the parts of a claim that a user looks at after a resize.
func (e *env) showPVC(ctx context.Context, name string) {
	pvc, err := e.pvc(ctx, name)
	if err != nil {
		e.say("get pvc %s: %v", name, err)
		return
	}
	req := pvc.Spec.Resources.Requests[v1.ResourceStorage]
	got := pvc.Status.Capacity[v1.ResourceStorage]
	var conds []string
	for _, c := range pvc.Status.Conditions {
		conds = append(conds, string(c.Type))
	}
	var alloc []string
	for k, v := range pvc.Status.AllocatedResourceStatuses {
		alloc = append(alloc, fmt.Sprintf("%s=%s", k, v))
	}
	e.say("PVC %s: request %s, status.capacity %s, conditions %v, allocatedResourceStatuses %v",
		name, req.String(), got.String(), conds, alloc)
}

func (e *env) printEvents(ctx context.Context, kind, name string) {
	evs, err := e.kube.CoreV1().Events(namespace).List(ctx, metav1.ListOptions{
		FieldSelector: "involvedObject.kind=" + kind + ",involvedObject.name=" + name})
	if err != nil {
		return
	}
	sort.Slice(evs.Items, func(i, j int) bool { return evs.Items[i].LastTimestamp.Before(&evs.Items[j].LastTimestamp) })
	for _, ev := range evs.Items {
		msg := ev.Message
		if len(msg) > 110 {
			msg = msg[:110] + "..."
		}
		e.say("  event %-8s %-26s %s", ev.Type, ev.Reason, msg)
	}
}

func hasCondition(pvc *v1.PersistentVolumeClaim, t v1.PersistentVolumeClaimConditionType) bool {
	for _, c := range pvc.Status.Conditions {
		if c.Type == t {
			return true
		}
	}
	return false
}

func sizeOf(l v1.ResourceList) string {
	q := l[v1.ResourceStorage]
	return q.String()
}

// nodeExpand does what the kubelet does when a pod (re)starts with a claim
// marked FileSystemResizePending: NodeExpandVolume, then status.capacity set
// and the pending condition and allocation status cleared.
func (e *env) nodeExpand(ctx context.Context, socket, name string) error {
	pvc, err := e.pvc(ctx, name)
	if err != nil {
		return err
	}
	pv, err := e.kube.CoreV1().PersistentVolumes().Get(ctx, pvc.Spec.VolumeName, metav1.GetOptions{})
	if err != nil {
		return err
	}
	size := pv.Spec.Capacity[v1.ResourceStorage]
	conn, err := grpc.NewClient("unix://"+socket, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return err
	}
	defer conn.Close()
	callCtx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if _, err := csi.NewNodeClient(conn).NodeExpandVolume(callCtx, &csi.NodeExpandVolumeRequest{
		VolumeId:      pv.Spec.CSI.VolumeHandle,
		VolumePath:    "/var/lib/kubelet/pods/demo/volumes/" + pv.Name,
		CapacityRange: &csi.CapacityRange{RequiredBytes: size.Value()},
	}); err != nil {
		return fmt.Errorf("NodeExpandVolume: %w", err)
	}
	pvc.Status.Capacity = v1.ResourceList{v1.ResourceStorage: size}
	var conds []v1.PersistentVolumeClaimCondition
	for _, c := range pvc.Status.Conditions {
		if c.Type != v1.PersistentVolumeClaimFileSystemResizePending && c.Type != v1.PersistentVolumeClaimResizing {
			conds = append(conds, c)
		}
	}
	pvc.Status.Conditions = conds
	delete(pvc.Status.AllocatedResourceStatuses, v1.ResourceStorage)
	if _, err := e.kube.CoreV1().PersistentVolumeClaims(namespace).UpdateStatus(ctx, pvc, metav1.UpdateOptions{}); err != nil {
		return err
	}
	e.say("[kubelet stand-in] NodeExpandVolume to %s, PVC status.capacity updated, FileSystemResizePending cleared", size.String())
	return nil
}

// leaseHolder returns the holder of a Lease in kube-system.
func (e *env) leaseHolder(ctx context.Context, name string) (string, error) {
	l, err := e.kube.CoordinationV1().Leases("kube-system").Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		return "", err
	}
	if l.Spec.HolderIdentity == nil {
		return "", nil
	}
	return *l.Spec.HolderIdentity, nil
}

// backendSnapshots asks the driver itself which snapshots exist.
func backendSnapshots(ctx context.Context, socket string) (map[string]bool, error) {
	conn, err := grpc.NewClient("unix://"+socket, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	callCtx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	resp, err := csi.NewControllerClient(conn).ListSnapshots(callCtx, &csi.ListSnapshotsRequest{})
	if err != nil {
		return nil, err
	}
	out := map[string]bool{}
	for _, s := range resp.GetEntries() {
		out[s.GetSnapshot().GetSnapshotId()] = true
	}
	return out, nil
}

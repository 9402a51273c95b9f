package explain

import (
	"time"

	"github.com/csi-kit/sidecars/internal/names"
	snapv1 "github.com/kubernetes-csi/external-snapshotter/client/v8/apis/volumesnapshot/v1"
	coordinationv1 "k8s.io/api/coordination/v1"
	v1 "k8s.io/api/core/v1"
	storagev1 "k8s.io/api/storage/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
)

const (
	testDriver = "hostpath.csi.example.com"
	testNS     = "app"
	zoneKey    = "topology.kubernetes.io/zone"
)

var testNow = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)

func q(s string) resource.Quantity { return resource.MustParse(s) }

func class(name string, wffc bool, mods ...func(*storagev1.StorageClass)) *storagev1.StorageClass {
	mode := storagev1.VolumeBindingImmediate
	if wffc {
		mode = storagev1.VolumeBindingWaitForFirstConsumer
	}
	sc := &storagev1.StorageClass{ObjectMeta: metav1.ObjectMeta{Name: name}, Provisioner: testDriver,
		VolumeBindingMode: &mode, AllowVolumeExpansion: ptr.To(true)}
	for _, m := range mods {
		m(sc)
	}
	return sc
}

func claim(name, size string, mods ...func(*v1.PersistentVolumeClaim)) *v1.PersistentVolumeClaim {
	pvc := &v1.PersistentVolumeClaim{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: testNS, UID: "uid-" + "name", Annotations: map[string]string{}},
		Spec: v1.PersistentVolumeClaimSpec{StorageClassName: ptr.To("fast"),
			Resources: v1.VolumeResourceRequirements{Requests: v1.ResourceList{v1.ResourceStorage: q(size)}}},
		Status: v1.PersistentVolumeClaimStatus{Phase: v1.ClaimPending},
	}
	for _, m := range mods {
		m(pvc)
	}
	return pvc
}

// bound makes the claim bound to pv-<name> with the given capacity.
func bound(capacity string) func(*v1.PersistentVolumeClaim) {
	return func(pvc *v1.PersistentVolumeClaim) {
		pvc.Spec.VolumeName = "pv-" + pvc.Name
		pvc.Status.Phase = v1.ClaimBound
		pvc.Status.Capacity = v1.ResourceList{v1.ResourceStorage: q(capacity)}
		pvc.Annotations[names.AnnStorageResizer] = testDriver
	}
}

func withStatus(s v1.ClaimResourceStatus, allocated string) func(*v1.PersistentVolumeClaim) {
	return func(pvc *v1.PersistentVolumeClaim) {
		pvc.Status.AllocatedResourceStatuses = map[v1.ResourceName]v1.ClaimResourceStatus{v1.ResourceStorage: s}
		pvc.Status.AllocatedResources = v1.ResourceList{v1.ResourceStorage: q(allocated)}
	}
}

func withCondition(t v1.PersistentVolumeClaimConditionType, msg string) func(*v1.PersistentVolumeClaim) {
	return func(pvc *v1.PersistentVolumeClaim) {
		pvc.Status.Conditions = append(pvc.Status.Conditions, v1.PersistentVolumeClaimCondition{Type: t, Status: v1.ConditionTrue, Message: msg})
	}
}

func selected(node string) func(*v1.PersistentVolumeClaim) {
	return func(pvc *v1.PersistentVolumeClaim) { pvc.Annotations[names.AnnSelectedNode] = node }
}

func deleting(pvc *v1.PersistentVolumeClaim) {
	pvc.DeletionTimestamp = &metav1.Time{Time: testNow}
}

func volume(name, size string, mods ...func(*v1.PersistentVolume)) *v1.PersistentVolume {
	pv := &v1.PersistentVolume{
		ObjectMeta: metav1.ObjectMeta{Name: name, UID: "uid-" + "pv"},
		Spec: v1.PersistentVolumeSpec{Capacity: v1.ResourceList{v1.ResourceStorage: q(size)}, StorageClassName: "fast",
			PersistentVolumeReclaimPolicy: v1.PersistentVolumeReclaimDelete,
			ClaimRef:                      &v1.ObjectReference{Namespace: testNS, Name: "data"},
			PersistentVolumeSource:        v1.PersistentVolumeSource{CSI: &v1.CSIPersistentVolumeSource{Driver: testDriver, VolumeHandle: "vol-1"}}},
		Status: v1.PersistentVolumeStatus{Phase: v1.VolumeBound},
	}
	for _, m := range mods {
		m(pv)
	}
	return pv
}

func inZone(zone string) func(*v1.PersistentVolume) {
	return func(pv *v1.PersistentVolume) {
		pv.Spec.NodeAffinity = &v1.VolumeNodeAffinity{Required: &v1.NodeSelector{NodeSelectorTerms: []v1.NodeSelectorTerm{{
			MatchExpressions: []v1.NodeSelectorRequirement{{Key: zoneKey, Operator: v1.NodeSelectorOpIn, Values: []string{zone}}}}}}}
	}
}

func node(name, zone string) v1.Node {
	return v1.Node{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: map[string]string{zoneKey: zone}}}
}

func csiNode(name string, drivers ...string) storagev1.CSINode {
	cn := storagev1.CSINode{ObjectMeta: metav1.ObjectMeta{Name: name}}
	for _, d := range drivers {
		cn.Spec.Drivers = append(cn.Spec.Drivers, storagev1.CSINodeDriver{Name: d, NodeID: name})
	}
	return cn
}

func capacity(class, zone, free string) storagev1.CSIStorageCapacity {
	return storagev1.CSIStorageCapacity{ObjectMeta: metav1.ObjectMeta{Name: "csisc-" + zone, Namespace: "kube-system"},
		StorageClassName: class, Capacity: ptr.To(q(free)),
		NodeTopology: &metav1.LabelSelector{MatchLabels: map[string]string{zoneKey: zone}}}
}

func pod(name, claimName, nodeName string, mods ...func(*v1.Pod)) v1.Pod {
	p := v1.Pod{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: testNS, UID: "uid-" + "pod"},
		Spec: v1.PodSpec{NodeName: nodeName, Volumes: []v1.Volume{{Name: "v",
			VolumeSource: v1.VolumeSource{PersistentVolumeClaim: &v1.PersistentVolumeClaimVolumeSource{ClaimName: claimName}}}}},
		Status: v1.PodStatus{Phase: v1.PodRunning}}
	if nodeName == "" {
		p.Status.Phase = v1.PodPending
	}
	for _, m := range mods {
		m(&p)
	}
	return p
}

func unschedulable(msg string) func(*v1.Pod) {
	return func(p *v1.Pod) {
		p.Status.Conditions = []v1.PodCondition{{Type: v1.PodScheduled, Status: v1.ConditionFalse, Reason: "Unschedulable", Message: msg}}
	}
}

// lease returns a Lease; holder "" is vacant, renewedAgo past its 15s
// duration is expired.
func lease(name, holder string, renewedAgo time.Duration) coordinationv1.Lease {
	return coordinationv1.Lease{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "kube-system"},
		Spec: coordinationv1.LeaseSpec{HolderIdentity: ptr.To(holder), LeaseDurationSeconds: ptr.To[int32](15),
			RenewTime: &metav1.MicroTime{Time: testNow.Add(-renewedAgo)}}}
}

// liveLeases are held leases of every controller of testDriver.
func liveLeases() []coordinationv1.Lease {
	var out []coordinationv1.Lease
	for _, n := range LeaseNames(testDriver) {
		out = append(out, lease(n, "pod-1", time.Second))
	}
	return out
}

func event(kind, name, reason, msg string, ago time.Duration) v1.Event {
	return v1.Event{ObjectMeta: metav1.ObjectMeta{Name: name + "." + reason, Namespace: testNS},
		InvolvedObject: v1.ObjectReference{Kind: kind, Name: name}, Reason: reason, Message: msg, Count: 3,
		LastTimestamp: metav1.Time{Time: testNow.Add(-ago)}, Type: v1.EventTypeWarning}
}

func snapshot(name string, mods ...func(*snapv1.VolumeSnapshot)) *snapv1.VolumeSnapshot {
	vs := &snapv1.VolumeSnapshot{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: testNS, UID: "uid-vs"},
		Spec: snapv1.VolumeSnapshotSpec{Source: snapv1.VolumeSnapshotSource{PersistentVolumeClaimName: ptr.To("data")},
			VolumeSnapshotClassName: ptr.To("snapclass")}}
	for _, m := range mods {
		m(vs)
	}
	return vs
}

func boundTo(content string, ready bool) func(*snapv1.VolumeSnapshot) {
	return func(vs *snapv1.VolumeSnapshot) {
		vs.Status = &snapv1.VolumeSnapshotStatus{BoundVolumeSnapshotContentName: ptr.To(content), ReadyToUse: ptr.To(ready)}
	}
}

func content(name string, mods ...func(*snapv1.VolumeSnapshotContent)) *snapv1.VolumeSnapshotContent {
	vsc := &snapv1.VolumeSnapshotContent{ObjectMeta: metav1.ObjectMeta{Name: name, UID: "uid-vsc"},
		Spec: snapv1.VolumeSnapshotContentSpec{Driver: testDriver, DeletionPolicy: snapv1.VolumeSnapshotContentDelete,
			VolumeSnapshotRef: v1.ObjectReference{Namespace: testNS, Name: "snap"},
			Source:            snapv1.VolumeSnapshotContentSource{VolumeHandle: ptr.To("vol-1")}},
		Status: &snapv1.VolumeSnapshotContentStatus{ReadyToUse: ptr.To(false)}}
	for _, m := range mods {
		m(vsc)
	}
	return vsc
}

func snapClass(name string, isDefault bool) snapv1.VolumeSnapshotClass {
	c := snapv1.VolumeSnapshotClass{ObjectMeta: metav1.ObjectMeta{Name: name}, Driver: testDriver, DeletionPolicy: snapv1.VolumeSnapshotContentDelete}
	if isDefault {
		c.Annotations = map[string]string{names.AnnDefaultSnapshotClass: "true"}
	}
	return c
}

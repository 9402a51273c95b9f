package explain

import (
	"strings"
	"testing"
	"time"

	"github.com/csi-kit/sidecars/internal/names"
	snapv1 "github.com/kubernetes-csi/external-snapshotter/client/v8/apis/volumesnapshot/v1"
	coordinationv1 "k8s.io/api/coordination/v1"
	v1 "k8s.io/api/core/v1"
	storagev1 "k8s.io/api/storage/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
)

// claimInput is a claim of an Immediate class "fast" with every
// controller's lease held.
func claimInput(pvc *v1.PersistentVolumeClaim, mods ...func(*Input)) Input {
	in := Input{Kind: KindPVC, Namespace: pvc.Namespace, Name: pvc.Name, PVC: pvc,
		StorageClass: class("fast", false), Leases: liveLeases(), Now: testNow}
	if pvc.Spec.VolumeName != "" {
		in.PV = volume(pvc.Spec.VolumeName, pvc.Status.Capacity.Storage().String())
	}
	for _, m := range mods {
		m(&in)
	}
	return in
}

func wffc(in *Input) { in.StorageClass = class("fast", true) }

type diagCase struct {
	name     string
	in       Input
	reason   string   // a finding with this reason must be present
	severity Severity // with this severity
	text     []string // each in its Message or Action
	first    bool     // and it must be the first (most severe) finding
}

func TestDiagnoseClaim(t *testing.T) {
	run(t, []diagCase{
		{name: "BoundOK", in: claimInput(claim("data", "1Gi", bound("1Gi"))),
			reason: ReasonBoundOK, severity: Info, text: []string{"pv-data", "1Gi"}, first: true},
		{name: "NotFound", in: Input{Kind: KindPVC, Namespace: testNS, Name: "nope"},
			reason: ReasonNotFound, severity: Error, text: []string{"app/nope"}, first: true},
		{name: "WaitForFirstConsumer without pods", in: claimInput(claim("data", "1Gi"), wffc),
			reason: ReasonWaitForFirstConsumer, severity: Info, text: []string{"waiting for first consumer", "create a pod"}, first: true},
		{name: "WaitForFirstConsumer with a pod being scheduled", in: claimInput(claim("data", "1Gi"), wffc, func(in *Input) {
			in.Pods = []v1.Pod{pod("web-0", "data", "")}
		}), reason: ReasonWaitForFirstConsumer, severity: Info, text: []string{"web-0", "scheduler"}, first: true},
		{name: "PodNotScheduled", in: claimInput(claim("data", "1Gi"), wffc, func(in *Input) {
			in.Pods = []v1.Pod{pod("web-0", "data", "", unschedulable("0/3 nodes are available: 3 node(s) had untolerated taint"))}
		}), reason: ReasonPodNotScheduled, severity: Warning, text: []string{"web-0", "untolerated taint"}},
		{name: "NoCapacity in any zone", in: claimInput(claim("data", "40Gi"), wffc, func(in *Input) {
			in.Pods = []v1.Pod{pod("web-0", "data", "", unschedulable("0/2 nodes are available: 2 node(s) did not have enough free storage"))}
			in.Capacities = []storagev1.CSIStorageCapacity{capacity("fast", "a", "10Gi"), capacity("fast", "b", "20Gi"), capacity("slow", "c", "1Ti")}
		}), reason: ReasonNoCapacity, severity: Error, first: true,
			text: []string{"no node in topology.kubernetes.io/zone=a or topology.kubernetes.io/zone=b has 40Gi free", "largest: 20Gi in topology.kubernetes.io/zone=b", "at most 20Gi"}},
		{name: "NoCapacity in the one allowed zone", in: claimInput(claim("data", "40Gi"), func(in *Input) {
			in.StorageClass = class("fast", false, func(sc *storagev1.StorageClass) {
				sc.AllowedTopologies = []v1.TopologySelectorTerm{{MatchLabelExpressions: []v1.TopologySelectorLabelRequirement{{Key: zoneKey, Values: []string{"x"}}}}}
			})
			in.Capacities = []storagev1.CSIStorageCapacity{capacity("fast", "x", "10Gi"), capacity("fast", "y", "100Gi")}
		}), reason: ReasonNoCapacity, severity: Error, text: []string{"no node in topology.kubernetes.io/zone=x has 40Gi free for class fast (largest: 10Gi"}},
		{name: "NoCapacity on the selected node", in: claimInput(claim("data", "40Gi", selected("n1")), wffc, func(in *Input) {
			in.Nodes = []v1.Node{node("n1", "a")}
			in.Capacities = []storagev1.CSIStorageCapacity{capacity("fast", "a", "10Gi"), capacity("fast", "b", "100Gi")}
		}), reason: ReasonNoCapacity, severity: Error, text: []string{"node n1", "10Gi free", "40Gi requested"}},
		{name: "capacity enough: no NoCapacity", in: claimInput(claim("data", "40Gi", selected("n1")), wffc, func(in *Input) {
			in.Nodes = []v1.Node{node("n1", "a")}
			in.Capacities = []storagev1.CSIStorageCapacity{capacity("fast", "a", "50Gi")}
		}), reason: ReasonWaitingForProvisioner, severity: Info, text: []string{"on node n1"}, first: true},
		{name: "SelectedNodeMissing", in: claimInput(claim("data", "1Gi", selected("gone")), wffc),
			reason: ReasonSelectedNodeMissing, severity: Error, text: []string{"gone", names.AnnSelectedNode}, first: true},
		{name: "DriverNotOnNode", in: claimInput(claim("data", "1Gi", selected("n1")), wffc, func(in *Input) {
			in.Nodes = []v1.Node{node("n1", "a")}
			in.CSINodes = []storagev1.CSINode{csiNode("n1", "other.csi.example.com")}
		}), reason: ReasonDriverNotOnNode, severity: Error, text: []string{testDriver, "n1"}, first: true},
		{name: "StorageClassMissing", in: claimInput(claim("data", "1Gi"), func(in *Input) { in.StorageClass, in.StorageClassMissing = nil, true }),
			reason: ReasonStorageClassMissing, severity: Error, text: []string{`"fast" does not exist`}, first: true},
		{name: "NoStorageClass and no default", in: claimInput(claim("data", "1Gi", func(p *v1.PersistentVolumeClaim) { p.Spec.StorageClassName = nil }),
			func(in *Input) { in.StorageClass = nil }),
			reason: ReasonNoStorageClass, severity: Warning, text: []string{"no default class"}, first: true},
		{name: "NoStorageClass: explicitly empty", in: claimInput(claim("data", "1Gi", func(p *v1.PersistentVolumeClaim) { p.Spec.StorageClassName = ptr.To("") }),
			func(in *Input) { in.StorageClass = nil }),
			reason: ReasonNoStorageClass, severity: Warning, text: []string{`storageClassName: ""`}, first: true},
		{name: "NoDynamicProvisioning", in: claimInput(claim("data", "1Gi"), func(in *Input) { in.StorageClass.Provisioner = noProvisioner }),
			reason: ReasonNoDynamicProvisioning, severity: Warning, text: []string{"create a PV"}, first: true},
		{name: "NoProvisionerLeader: no Lease at all", in: claimInput(claim("data", "1Gi"), func(in *Input) { in.Leases = nil }),
			reason: ReasonNoProvisionerLeader, severity: Warning, text: []string{`no Lease "hostpath-csi-example-com" exists in any namespace`, "without leader election"}, first: true},
		{name: "NoProvisionerLeader: Lease without holder", in: claimInput(claim("data", "1Gi"), func(in *Input) {
			in.Leases = []coordinationv1.Lease{lease("hostpath-csi-example-com", "", time.Second)}
		}), reason: ReasonNoProvisionerLeader, severity: Error, text: []string{"no provisioner of hostpath.csi.example.com is running: no live lease holder for", "kube-system/hostpath-csi-example-com has no holder"}, first: true},
		{name: "NoProvisionerLeader: holder stopped renewing", in: claimInput(claim("data", "1Gi"), func(in *Input) {
			in.Leases = []coordinationv1.Lease{lease("hostpath-csi-example-com", "pod-1", time.Minute)}
		}), reason: ReasonNoProvisionerLeader, severity: Error, text: []string{"held by pod-1", "1m0s ago"}, first: true},
		{name: "leader in another namespace counts", in: claimInput(claim("data", "1Gi"), func(in *Input) {
			stale := lease("hostpath-csi-example-com", "", time.Second)
			live := lease("hostpath-csi-example-com", "pod-2", time.Second)
			live.Namespace = "storage"
			in.Leases = []coordinationv1.Lease{stale, live}
		}), reason: ReasonWaitingForProvisioner, severity: Info, text: []string{"waiting for " + testDriver}, first: true},
		{name: "ProvisioningFailed", in: claimInput(claim("data", "1Gi"), func(in *Input) {
			in.Events = []v1.Event{
				event("PersistentVolumeClaim", "data", names.ReasonProvisioningFailed, "old failure", time.Hour),
				event("PersistentVolumeClaim", "data", names.ReasonProvisioningFailed, "rpc error: code = ResourceExhausted desc = pool full", time.Minute),
				event("PersistentVolumeClaim", "other", names.ReasonProvisioningFailed, "not ours", 0),
			}
		}), reason: ReasonProvisioningFailed, severity: Error, text: []string{"pool full", "seen 3 times", "out of space"}, first: true},
		{name: "SourceSnapshotMissing", in: claimInput(claim("data", "1Gi", func(p *v1.PersistentVolumeClaim) {
			p.Spec.DataSource = &v1.TypedLocalObjectReference{APIGroup: ptr.To("snapshot.storage.k8s.io"), Kind: "VolumeSnapshot", Name: "snap"}
		})), reason: ReasonSourceSnapshotMissing, severity: Error, text: []string{"VolumeSnapshot snap"}, first: true},
		{name: "SourceSnapshotNotReady", in: claimInput(claim("data", "1Gi", func(p *v1.PersistentVolumeClaim) {
			p.Spec.DataSourceRef = &v1.TypedObjectReference{APIGroup: ptr.To("snapshot.storage.k8s.io"), Kind: "VolumeSnapshot", Name: "snap"}
		}), func(in *Input) { in.DataSourceSnapshot = snapshot("snap", boundTo("c", false)) }),
			reason: ReasonSourceSnapshotPending, severity: Warning, text: []string{"not ready"}},
		{name: "SourcePVCMissing for a clone", in: claimInput(claim("copy", "1Gi", func(p *v1.PersistentVolumeClaim) {
			p.Spec.DataSource = &v1.TypedLocalObjectReference{Kind: "PersistentVolumeClaim", Name: "data"}
		})), reason: ReasonSourcePVCMissing, severity: Error, text: []string{"clones claim data", "namespace app"}, first: true},
		{name: "SourcePVCNotBound for a clone", in: claimInput(claim("copy", "1Gi", func(p *v1.PersistentVolumeClaim) {
			p.Spec.DataSource = &v1.TypedLocalObjectReference{Kind: "PersistentVolumeClaim", Name: "data"}
		}), func(in *Input) { in.DataSourceClaim = claim("data", "1Gi") }),
			reason: ReasonSourcePVCNotBound, severity: Warning, text: []string{"Pending", "explain pvc app/data"}, first: true},
		{name: "ClaimLost", in: claimInput(claim("data", "1Gi", func(p *v1.PersistentVolumeClaim) { p.Status.Phase = v1.ClaimLost; p.Spec.VolumeName = "pv-x" })),
			reason: ReasonClaimLost, severity: Error, text: []string{"pv-x"}, first: true},
		{name: "WaitingForProvisioner", in: claimInput(claim("data", "1Gi"), func(in *Input) {
			in.Events = []v1.Event{event("PersistentVolumeClaim", "data", eventExternalProvisioning, "Waiting for a volume to be created", time.Second)}
		}), reason: ReasonWaitingForProvisioner, severity: Info, text: []string{"Waiting for a volume to be created"}, first: true},
	})
}

func TestDiagnoseResize(t *testing.T) {
	offline := "Unable to expand app/data because CSI driver " + testDriver + " only supports offline expansion and volume is currently in-use"
	run(t, []diagCase{
		{name: "Resizing", in: claimInput(claim("data", "2Gi", bound("1Gi"))),
			reason: ReasonResizing, severity: Info, text: []string{"from 1Gi to 2Gi"}, first: true},
		{name: "ExpansionNotAllowed", in: claimInput(claim("data", "2Gi", bound("1Gi"), func(p *v1.PersistentVolumeClaim) { delete(p.Annotations, names.AnnStorageResizer) }),
			func(in *Input) { in.StorageClass.AllowVolumeExpansion = nil }),
			reason: ReasonExpansionNotAllowed, severity: Error, text: []string{"allowVolumeExpansion"}, first: true},
		{name: "ExpansionInfeasible with capacity: lower to ≤ N", in: claimInput(claim("data", "100Gi", bound("10Gi"),
			withStatus(v1.PersistentVolumeClaimControllerResizeInfeasible, "100Gi"),
			withCondition(v1.PersistentVolumeClaimControllerResizeError, "failed to expand pvc with rpc error: code = OutOfRange desc = too big")),
			func(in *Input) {
				in.PV = volume("pv-data", "10Gi", inZone("a"))
				in.Capacities = []storagev1.CSIStorageCapacity{capacity("fast", "a", "30Gi"), capacity("fast", "b", "500Gi")}
			}),
			reason: ReasonExpansionInfeasible, severity: Error, first: true,
			text: []string{"expansion infeasible", "to 100Gi", "too big", "lower the request to ≤ 40Gi", "30Gi free in topology.kubernetes.io/zone=a", "not below 10Gi"}},
		{name: "ExpansionInfeasible without capacity data", in: claimInput(claim("data", "100Gi", bound("10Gi"),
			withStatus(v1.PersistentVolumeClaimControllerResizeInfeasible, "100Gi"))),
			reason: ReasonExpansionInfeasible, severity: Error, text: []string{"not below the current 10Gi"}, first: true},
		{name: "ControllerResizeFailed from the condition", in: claimInput(claim("data", "2Gi", bound("1Gi"),
			withStatus(v1.PersistentVolumeClaimControllerResizeInProgress, "2Gi"),
			withCondition(v1.PersistentVolumeClaimControllerResizeError, "failed to expand pvc with rpc error: code = Internal desc = backend down"))),
			reason: ReasonControllerResizeFailed, severity: Error, text: []string{"backend down", "not below 1Gi"}, first: true},
		{name: "ControllerResizeFailed from an event", in: claimInput(claim("data", "2Gi", bound("1Gi")), func(in *Input) {
			in.Events = []v1.Event{event("PersistentVolumeClaim", "data", names.ReasonVolumeResizeFailed, "resize volume failed: timeout", time.Second)}
		}), reason: ReasonControllerResizeFailed, severity: Warning, text: []string{"timeout"}, first: true},
		{name: "OfflineExpansionInUse from the event", in: claimInput(claim("data", "2Gi", bound("1Gi")), func(in *Input) {
			in.Pods = []v1.Pod{pod("web-0", "data", "n1")}
			in.Events = []v1.Event{event("PersistentVolumeClaim", "data", names.ReasonVolumeResizeFailed, offline, time.Second)}
		}), reason: ReasonOfflineExpansionInUse, severity: Warning, text: []string{"only offline", "web-0", "scale the workload to 0"}, first: true},
		{name: "OfflineExpansionInUse from the condition", in: claimInput(claim("data", "2Gi", bound("1Gi"),
			withStatus(v1.PersistentVolumeClaimControllerResizeInProgress, "2Gi"),
			withCondition(v1.PersistentVolumeClaimResizing, offline+"; it will be expanded as soon as no pod uses it")),
			func(in *Input) { in.Pods = []v1.Pod{pod("web-0", "data", "n1")} }),
			reason: ReasonOfflineExpansionInUse, severity: Warning, text: []string{"web-0"}, first: true},
		{name: "FileSystemResizePending with a running pod: restart it", in: claimInput(claim("data", "2Gi", bound("1Gi"),
			withStatus(v1.PersistentVolumeClaimNodeResizePending, "2Gi"),
			withCondition(v1.PersistentVolumeClaimFileSystemResizePending, "Waiting for user to (re-)start a pod to finish file system resize of volume on node.")),
			func(in *Input) {
				in.PV = volume("pv-data", "2Gi")
				in.Pods = []v1.Pod{pod("web-0", "data", "n1"), pod("job-1", "data", "n1", func(p *v1.Pod) { p.Status.Phase = v1.PodSucceeded })}
			}),
			reason: ReasonFileSystemResizePending, severity: Warning, first: true,
			text: []string{"file system resize pending", "2Gi on the backend", "expands offline", "restart pod web-0"}},
		{name: "FileSystemResizePending without pods: start one", in: claimInput(claim("data", "2Gi", bound("1Gi"),
			withCondition(v1.PersistentVolumeClaimFileSystemResizePending, "Waiting"))),
			reason: ReasonFileSystemResizePending, severity: Warning, text: []string{"start a pod"}, first: true},
		{name: "NodeResizeFailed", in: claimInput(claim("data", "2Gi", bound("1Gi"),
			withStatus(v1.PersistentVolumeClaimNodeResizePending, "2Gi"),
			withCondition(v1.PersistentVolumeClaimNodeResizeError, "resize2fs: bad superblock"))),
			reason: ReasonNodeResizeFailed, severity: Error, text: []string{"bad superblock", "kubelet"}, first: true},
		{name: "NodeExpansionInfeasible", in: claimInput(claim("data", "2Gi", bound("1Gi"),
			withStatus(v1.PersistentVolumeClaimNodeResizeInfeasible, "2Gi"))),
			reason: ReasonNodeExpansionInfeasible, severity: Error, text: []string{"lower the request"}, first: true},
		{name: "NoResizerLeader", in: claimInput(claim("data", "2Gi", bound("1Gi")), func(in *Input) {
			in.Leases = []coordinationv1.Lease{lease("external-resizer-hostpath-csi-example-com", "", 0)}
		}), reason: ReasonNoResizerLeader, severity: Error, text: []string{"external-resizer-hostpath-csi-example-com has no holder"}, first: true},
		{name: "ModifyVolumeFailed", in: claimInput(claim("data", "1Gi", bound("1Gi"),
			withCondition(v1.PersistentVolumeClaimVolumeModifyVolumeError, "rpc error: code = InvalidArgument desc = iops too high"))),
			reason: ReasonModifyVolumeFailed, severity: Error, text: []string{"iops too high"}, first: true},
		{name: "ModifyingVolume", in: claimInput(claim("data", "1Gi", bound("1Gi"),
			withCondition(v1.PersistentVolumeClaimVolumeModifyingVolume, `Modifying volume to "gold" is in progress.`))),
			reason: ReasonModifyingVolume, severity: Info, text: []string{"gold"}, first: true},
	})
}

func TestDiagnoseClaimDeletion(t *testing.T) {
	run(t, []diagCase{
		{name: "InUseByPods", in: claimInput(claim("data", "1Gi", bound("1Gi"), deleting, func(p *v1.PersistentVolumeClaim) {
			p.Finalizers = []string{finalizerPVCProtection}
		}), func(in *Input) { in.Pods = []v1.Pod{pod("web-0", "data", "n1")} }),
			reason: ReasonInUseByPods, severity: Warning, text: []string{"web-0", "delete those pods"}, first: true},
		{name: "SnapshotSourceInUse", in: claimInput(claim("data", "1Gi", bound("1Gi"), deleting, func(p *v1.PersistentVolumeClaim) {
			p.Finalizers = []string{finalizerPVCProtection, names.FinalizerPVCAsSource}
		})), reason: ReasonSnapshotSourceInUse, severity: Warning, text: []string{names.FinalizerPVCAsSource}, first: true},
		{name: "CloneSourceInUse", in: claimInput(claim("data", "1Gi", bound("1Gi"), deleting, func(p *v1.PersistentVolumeClaim) {
			p.Finalizers = []string{names.FinalizerCloneSource}
		})), reason: ReasonCloneSourceInUse, severity: Warning, text: []string{"cloned"}, first: true},
		{name: "ProvisioningCleanup", in: claimInput(claim("data", "1Gi", deleting, func(p *v1.PersistentVolumeClaim) {
			p.Finalizers = []string{names.FinalizerIntent}
			p.Annotations[names.AnnProvisioningVolumeName] = "pvc-123"
		}), func(in *Input) {
			in.Events = []v1.Event{event("PersistentVolumeClaim", "data", names.ReasonProvisioningFailed, "Cannot clean up volume of deleted claim: timeout", time.Second)}
		}), reason: ReasonProvisioningCleanup, severity: Error, text: []string{`"pvc-123"`, "Cannot clean up"}, first: true},
		{name: "ProvisioningCleanup without a provisioner", in: claimInput(claim("data", "1Gi", deleting, func(p *v1.PersistentVolumeClaim) {
			p.Finalizers = []string{names.FinalizerIntent}
		}), func(in *Input) { in.Leases = nil }),
			reason: ReasonNoProvisionerLeader, severity: Warning, text: []string{"cleans up this claim"}},
		{name: "DeletionPending with a foreign finalizer", in: claimInput(claim("data", "1Gi", bound("1Gi"), deleting, func(p *v1.PersistentVolumeClaim) {
			p.Finalizers = []string{"example.com/backup"}
		})), reason: ReasonDeletionPending, severity: Warning, text: []string{"example.com/backup"}, first: true},
	})
}

func volumeInput(pv *v1.PersistentVolume, mods ...func(*Input)) Input {
	in := Input{Kind: KindPV, Name: pv.Name, PV: pv, Leases: liveLeases(), Now: testNow}
	for _, m := range mods {
		m(&in)
	}
	return in
}

func released(pv *v1.PersistentVolume) { pv.Status.Phase = v1.VolumeReleased }

func TestDiagnoseVolume(t *testing.T) {
	run(t, []diagCase{
		{name: "BoundOK", in: volumeInput(volume("pv-1", "5Gi")), reason: ReasonBoundOK, severity: Info, text: []string{"app/data", "5Gi"}, first: true},
		{name: "NotFound", in: Input{Kind: KindPV, Name: "pv-x"}, reason: ReasonNotFound, severity: Error, first: true},
		{name: "Available", in: volumeInput(volume("pv-1", "5Gi", func(pv *v1.PersistentVolume) { pv.Status.Phase = v1.VolumeAvailable; pv.Spec.ClaimRef = nil })),
			reason: ReasonAvailable, severity: Info, first: true},
		{name: "Released with Retain", in: volumeInput(volume("pv-1", "5Gi", released, func(pv *v1.PersistentVolume) {
			pv.Spec.PersistentVolumeReclaimPolicy = v1.PersistentVolumeReclaimRetain
		})), reason: ReasonReleased, severity: Info, text: []string{"Retain", "spec.claimRef"}, first: true},
		{name: "DeletionPending: Released with Delete", in: volumeInput(volume("pv-1", "5Gi", released)),
			reason: ReasonDeletionPending, severity: Info, text: []string{"provisioner deletes"}, first: true},
		{name: "DeletionFailed", in: volumeInput(volume("pv-1", "5Gi", released), func(in *Input) {
			in.Events = []v1.Event{event("PersistentVolume", "pv-1", names.ReasonVolumeFailedDelete, "rpc error: code = FailedPrecondition desc = volume has snapshots", time.Second)}
		}), reason: ReasonDeletionFailed, severity: Error, text: []string{"volume has snapshots"}, first: true},
		{name: "NoProvisionerLeader for deletion", in: volumeInput(volume("pv-1", "5Gi", released, func(pv *v1.PersistentVolume) {
			pv.DeletionTimestamp = &metav1.Time{Time: testNow}
			pv.Finalizers = []string{names.FinalizerProvisionerPV}
		}), func(in *Input) { in.Leases = nil }),
			reason: ReasonNoProvisionerLeader, severity: Warning, text: []string{"deletes this volume"}, first: true},
		{name: "DeletionPending: still attached", in: volumeInput(volume("pv-1", "5Gi", func(pv *v1.PersistentVolume) {
			pv.DeletionTimestamp = &metav1.Time{Time: testNow}
			pv.Status.Phase = v1.VolumeReleased
			pv.Spec.PersistentVolumeReclaimPolicy = v1.PersistentVolumeReclaimRetain
			pv.Finalizers = []string{"external-attacher/" + testDriver}
		})), reason: ReasonDeletionPending, severity: Warning, text: []string{"VolumeAttachment"}, first: true},
		{name: "VolumeFailed", in: volumeInput(volume("pv-1", "5Gi", func(pv *v1.PersistentVolume) {
			pv.Status.Phase, pv.Status.Message = v1.VolumeFailed, "recycler failed"
		})), reason: ReasonVolumeFailed, severity: Error, text: []string{"recycler failed"}, first: true},
	})
}

// snapInput is a dynamic snapshot of bound claim "data" with class
// "snapclass" and every lease held.
func snapInput(vs *snapv1.VolumeSnapshot, mods ...func(*Input)) Input {
	sc := snapClass("snapclass", false)
	in := Input{Kind: KindSnapshot, Namespace: vs.Namespace, Name: vs.Name, Snapshot: vs,
		PVC: claim("data", "1Gi", bound("1Gi")), PV: volume("pv-data", "1Gi"), SnapshotClass: &sc,
		Leases: liveLeases(), Now: testNow}
	for _, m := range mods {
		m(&in)
	}
	return in
}

func TestDiagnoseSnapshot(t *testing.T) {
	run(t, []diagCase{
		{name: "SnapshotReady", in: snapInput(snapshot("snap", boundTo("snapcontent-1", true))),
			reason: ReasonSnapshotReady, severity: Info, text: []string{"snapcontent-1"}, first: true},
		{name: "NotFound", in: Input{Kind: KindSnapshot, Namespace: testNS, Name: "snap"}, reason: ReasonNotFound, severity: Error, first: true},
		{name: "SnapshotFailed", in: snapInput(snapshot("snap", func(vs *snapv1.VolumeSnapshot) {
			vs.Status = &snapv1.VolumeSnapshotStatus{Error: &snapv1.VolumeSnapshotError{Message: ptr.To("Failed to check and update snapshot content: quota exceeded")}}
		}), func(in *Input) { in.Content = content("snapcontent-1") }),
			reason: ReasonSnapshotFailed, severity: Error, text: []string{"quota exceeded"}, first: true},
		{name: "SnapshotClassMissing: named class absent", in: snapInput(snapshot("snap"), func(in *Input) { in.SnapshotClass = nil }),
			reason: ReasonSnapshotClassMissing, severity: Error, text: []string{"VolumeSnapshotClass snapclass does not exist"}},
		{name: "SnapshotClassMissing: no default", in: snapInput(snapshot("snap", func(vs *snapv1.VolumeSnapshot) { vs.Spec.VolumeSnapshotClassName = nil }),
			func(in *Input) {
				in.SnapshotClass = nil
				in.SnapshotClasses = []snapv1.VolumeSnapshotClass{snapClass("a", false)}
			}), reason: ReasonSnapshotClassMissing, severity: Error, text: []string{"no default VolumeSnapshotClass exists for driver " + testDriver}},
		{name: "SnapshotClassMissing: two defaults", in: snapInput(snapshot("snap", func(vs *snapv1.VolumeSnapshot) { vs.Spec.VolumeSnapshotClassName = nil }),
			func(in *Input) {
				in.SnapshotClass = nil
				in.SnapshotClasses = []snapv1.VolumeSnapshotClass{snapClass("a", true), snapClass("b", true)}
			}), reason: ReasonSnapshotClassMissing, severity: Error, text: []string{"2 default classes (a, b)"}},
		{name: "SourcePVCMissing", in: snapInput(snapshot("snap"), func(in *Input) { in.PVC, in.PV = nil, nil }),
			reason: ReasonSourcePVCMissing, severity: Error, text: []string{"app/data does not exist"}},
		{name: "SourcePVCNotBound", in: snapInput(snapshot("snap"), func(in *Input) { in.PVC, in.PV = claim("data", "1Gi"), nil }),
			reason: ReasonSourcePVCNotBound, severity: Warning, text: []string{"Pending", "explain pvc app/data"}},
		{name: "ContentMissing", in: snapInput(snapshot("snap", boundTo("snapcontent-1", false))),
			reason: ReasonContentMissing, severity: Error, text: []string{"snapcontent-1"}, first: true},
		{name: "NoSnapshotControllerLeader", in: snapInput(snapshot("snap"), func(in *Input) {
			in.Leases = []coordinationv1.Lease{lease("snapshot-controller-leader", "ctl-0", 10*time.Minute)}
		}), reason: ReasonNoSnapshotControllerLeader, severity: Error, text: []string{"no snapshot-controller is running", "10m0s ago"}, first: true},
		{name: "SnapshotNotReady: content waits without error", in: snapInput(snapshot("snap", boundTo("snapcontent-1", false)),
			func(in *Input) { in.Content = content("snapcontent-1") }),
			reason: ReasonSnapshotNotReady, severity: Warning, text: []string{"reports no error"}, first: true},
		{name: "SnapshotCreationFailed", in: snapInput(snapshot("snap", boundTo("snapcontent-1", false)), func(in *Input) {
			in.Content = content("snapcontent-1")
			in.Events = []v1.Event{event("VolumeSnapshotContent", "snapcontent-1", names.ReasonSnapshotCreationFailed, "Failed to create snapshot: rpc error: code = Internal desc = io error", time.Second)}
		}), reason: ReasonSnapshotCreationFailed, severity: Error, text: []string{"io error"}, first: true},
		{name: "NoSnapshotterLeader", in: snapInput(snapshot("snap", boundTo("snapcontent-1", false)), func(in *Input) {
			in.Content = content("snapcontent-1")
			in.Leases = []coordinationv1.Lease{lease("snapshot-controller-leader", "ctl-0", 0)}
		}), reason: ReasonNoSnapshotterLeader, severity: Warning, text: []string{`"external-snapshotter-leader-hostpath-csi-example-com"`}, first: true},
		{name: "SnapshotDeletionBlocked", in: snapInput(snapshot("snap", boundTo("snapcontent-1", true), func(vs *snapv1.VolumeSnapshot) {
			vs.DeletionTimestamp = &metav1.Time{Time: testNow}
			vs.Finalizers = []string{names.FinalizerSnapshotAsSource}
		}), func(in *Input) {
			in.Events = []v1.Event{event("VolumeSnapshot", "snap", names.ReasonSnapshotDeletePending, "Snapshot is being used to restore a PVC", time.Second)}
		}), reason: ReasonSnapshotDeletionBlocked, severity: Warning, text: []string{"restore a PVC"}, first: true},
		{name: "SnapshotDeletionBlocked by a restore", in: snapInput(snapshot("snap", boundTo("snapcontent-1", true), func(vs *snapv1.VolumeSnapshot) {
			vs.DeletionTimestamp = &metav1.Time{Time: testNow}
			vs.Finalizers = []string{names.FinalizerRestoreSource}
		})), reason: ReasonSnapshotDeletionBlocked, severity: Warning, text: []string{"being restored"}, first: true},
	})
}

func TestDiagnoseContent(t *testing.T) {
	in := func(vsc *snapv1.VolumeSnapshotContent, mods ...func(*Input)) Input {
		i := Input{Kind: KindSnapshotContent, Name: vsc.Name, Content: vsc, Leases: liveLeases(), Now: testNow}
		for _, m := range mods {
			m(&i)
		}
		return i
	}
	run(t, []diagCase{
		{name: "SnapshotReady", in: in(content("c1", func(c *snapv1.VolumeSnapshotContent) { c.Status.ReadyToUse = ptr.To(true) })),
			reason: ReasonSnapshotReady, severity: Info, text: []string{"app/snap"}, first: true},
		{name: "SnapshotFailed", in: in(content("c1", func(c *snapv1.VolumeSnapshotContent) {
			c.Status.Error = &snapv1.VolumeSnapshotError{Message: ptr.To("source volume not found")}
		})), reason: ReasonSnapshotFailed, severity: Error, text: []string{"source volume not found"}, first: true},
		{name: "SnapshotDeleteFailed", in: in(content("c1", func(c *snapv1.VolumeSnapshotContent) {
			c.DeletionTimestamp = &metav1.Time{Time: testNow}
			c.Finalizers = []string{names.FinalizerContentBound}
		}), func(i *Input) {
			i.Events = []v1.Event{event("VolumeSnapshotContent", "c1", names.ReasonSnapshotDeleteError, "Failed to delete snapshot", time.Second)}
		}), reason: ReasonSnapshotContentDeleteFailed, severity: Error, text: []string{"Failed to delete snapshot"}, first: true},
		{name: "NoSnapshotterLeader blocks deletion", in: in(content("c1", func(c *snapv1.VolumeSnapshotContent) {
			c.DeletionTimestamp = &metav1.Time{Time: testNow}
			c.Finalizers = []string{names.FinalizerContentBound}
		}), func(i *Input) { i.Leases = nil }),
			reason: ReasonNoSnapshotterLeader, severity: Warning, text: []string{"deletes this snapshot"}, first: true},
	})
}

func TestDiagnoseUnknownKind(t *testing.T) {
	fs := Diagnose(Input{Kind: "Pod"})
	if len(fs) != 1 || fs[0].Reason != ReasonNotFound || fs[0].Severity != Error {
		t.Fatalf("Diagnose(Pod) = %+v, want one NotFound error", fs)
	}
}

func run(t *testing.T, cases []diagCase) {
	t.Helper()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			fs := Diagnose(tc.in)
			if len(fs) == 0 {
				t.Fatal("Diagnose returned no findings")
			}
			for i := 1; i < len(fs); i++ {
				if fs[i].Severity > fs[i-1].Severity {
					t.Errorf("findings not sorted by severity: %+v", fs)
				}
			}
			var got *Finding
			for i := range fs {
				if fs[i].Reason == tc.reason {
					got = &fs[i]
					break
				}
			}
			if got == nil {
				t.Fatalf("no %s finding; got:\n%s", tc.reason, render(fs))
			}
			if tc.first && fs[0].Reason != tc.reason {
				t.Errorf("first finding is %s, want %s; got:\n%s", fs[0].Reason, tc.reason, render(fs))
			}
			if got.Severity != tc.severity {
				t.Errorf("%s severity = %s, want %s", tc.reason, got.Severity, tc.severity)
			}
			all := got.Message + " | " + got.Action
			for _, want := range tc.text {
				if !strings.Contains(all, want) {
					t.Errorf("%s finding lacks %q:\n  %s", tc.reason, want, all)
				}
			}
		})
	}
}

func render(fs []Finding) string {
	return Report{Findings: fs}.String()
}

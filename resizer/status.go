package resizer

import (
	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/csi-kit/sidecars/internal/names"
)

// Annotations read or written by the resizer.
const (
	// AnnStorageResizer is set on PVCs by kube-controller-manager's expander
	// to the name of the driver expected to resize them.
	AnnStorageResizer = names.AnnStorageResizer
	// AnnNodeExpansionNotRequired on a PVC tells kubelet to skip
	// NodeExpandVolume because the controller step finished the resize.
	AnnNodeExpansionNotRequired = "volume.kubernetes.io/node-expansion-not-required"
	// AnnPreResizeCapacity on a PV records the PVC capacity before a resize
	// that needs a node step; removed once the node step is done.
	AnnPreResizeCapacity = "volume.alpha.kubernetes.io/pre-resize-capacity"
)

// Condition messages, as upstream words them.
const (
	msgFSResizePending = "Waiting for user to (re-)start a pod to finish file system resize of volume on node."
)

// Every status function below returns a modified deep copy and leaves its
// argument alone; now stamps new conditions.

// resizeConditions are the condition types owned by resizing.
var resizeConditions = map[v1.PersistentVolumeClaimConditionType]bool{
	v1.PersistentVolumeClaimResizing:                true,
	v1.PersistentVolumeClaimFileSystemResizePending: true,
	v1.PersistentVolumeClaimControllerResizeError:   true,
	v1.PersistentVolumeClaimNodeResizeError:         true,
}

// setResizeConditions replaces every resize condition with conds and keeps
// the others (modify conditions, for instance).
func setResizeConditions(pvc *v1.PersistentVolumeClaim, conds ...v1.PersistentVolumeClaimCondition) {
	var out []v1.PersistentVolumeClaimCondition
	for _, c := range pvc.Status.Conditions {
		if !resizeConditions[c.Type] {
			out = append(out, c)
		}
	}
	for _, c := range conds {
		// Keep the transition time when the same condition was already set.
		for _, old := range pvc.Status.Conditions {
			if old.Type == c.Type && old.Status == c.Status && old.Message == c.Message {
				c.LastTransitionTime = old.LastTransitionTime
			}
		}
		out = append(out, c)
	}
	pvc.Status.Conditions = out
}

func condition(t v1.PersistentVolumeClaimConditionType, msg string, now metav1.Time) v1.PersistentVolumeClaimCondition {
	return v1.PersistentVolumeClaimCondition{Type: t, Status: v1.ConditionTrue, LastTransitionTime: now, Message: msg}
}

func setAllocated(pvc *v1.PersistentVolumeClaim, q resource.Quantity) {
	if pvc.Status.AllocatedResources == nil {
		pvc.Status.AllocatedResources = v1.ResourceList{}
	}
	pvc.Status.AllocatedResources[v1.ResourceStorage] = q.DeepCopy()
}

func setResourceStatus(pvc *v1.PersistentVolumeClaim, r v1.ClaimResourceStatus) {
	if r == "" {
		delete(pvc.Status.AllocatedResourceStatuses, v1.ResourceStorage)
		if len(pvc.Status.AllocatedResourceStatuses) == 0 {
			pvc.Status.AllocatedResourceStatuses = nil
		}
		return
	}
	if pvc.Status.AllocatedResourceStatuses == nil {
		pvc.Status.AllocatedResourceStatuses = map[v1.ResourceName]v1.ClaimResourceStatus{}
	}
	pvc.Status.AllocatedResourceStatuses[v1.ResourceStorage] = r
}

func setAnnotation(pvc *v1.PersistentVolumeClaim, key, value string, present bool) {
	if !present {
		delete(pvc.Annotations, key)
		return
	}
	if pvc.Annotations == nil {
		pvc.Annotations = map[string]string{}
	}
	pvc.Annotations[key] = value
}

// MarkInProgress records that the controller is expanding to target:
// allocatedResources = target, ControllerResizeInProgress, and the Resizing
// condition in place of the other resize conditions.
func MarkInProgress(pvc *v1.PersistentVolumeClaim, target resource.Quantity, now metav1.Time) *v1.PersistentVolumeClaim {
	pvc = pvc.DeepCopy()
	setAllocated(pvc, target)
	setResourceStatus(pvc, v1.PersistentVolumeClaimControllerResizeInProgress)
	setAnnotation(pvc, AnnNodeExpansionNotRequired, "", false)
	setResizeConditions(pvc, condition(v1.PersistentVolumeClaimResizing, "", now))
	return pvc
}

// MarkExpanded records a successful controller step to target, with the
// driver's capacity. With nodeExpansion, allocatedResourceStatuses becomes
// NodeResizePending (kubelets skip NodeExpandVolume without it) and the
// only resize condition is FileSystemResizePending. Without it, status
// capacity = capacity, the storage status key and every resize condition are
// removed, and the node-expansion-not-required annotation is set.
func MarkExpanded(pvc *v1.PersistentVolumeClaim, target, capacity resource.Quantity, nodeExpansion bool, now metav1.Time) *v1.PersistentVolumeClaim {
	pvc = pvc.DeepCopy()
	setAllocated(pvc, target)
	if nodeExpansion {
		setResourceStatus(pvc, v1.PersistentVolumeClaimNodeResizePending)
		setAnnotation(pvc, AnnNodeExpansionNotRequired, "", false)
		setResizeConditions(pvc, condition(v1.PersistentVolumeClaimFileSystemResizePending, msgFSResizePending, now))
		return pvc
	}
	if pvc.Status.Capacity == nil {
		pvc.Status.Capacity = v1.ResourceList{}
	}
	pvc.Status.Capacity[v1.ResourceStorage] = capacity.DeepCopy()
	setResourceStatus(pvc, "")
	setAnnotation(pvc, AnnNodeExpansionNotRequired, "true", true)
	setResizeConditions(pvc)
	return pvc
}

// MarkFailed records a failed controller step to target. An infeasible
// error sets ControllerResizeInfeasible with only the ControllerResizeError
// condition; any other error keeps ControllerResizeInProgress with Resizing
// and ControllerResizeError.
func MarkFailed(pvc *v1.PersistentVolumeClaim, target resource.Quantity, infeasible bool, msg string, now metav1.Time) *v1.PersistentVolumeClaim {
	pvc = pvc.DeepCopy()
	setAllocated(pvc, target)
	setAnnotation(pvc, AnnNodeExpansionNotRequired, "", false)
	errCond := condition(v1.PersistentVolumeClaimControllerResizeError, "failed to expand pvc with "+msg, now)
	if infeasible {
		setResourceStatus(pvc, v1.PersistentVolumeClaimControllerResizeInfeasible)
		setResizeConditions(pvc, errCond)
		return pvc
	}
	setResourceStatus(pvc, v1.PersistentVolumeClaimControllerResizeInProgress)
	setResizeConditions(pvc, condition(v1.PersistentVolumeClaimResizing, "", now), errCond)
	return pvc
}

// MarkBlocked records that expansion to target waits for the pods using the
// volume to go (offline-only driver): ControllerResizeInProgress with the
// Resizing condition whose message says so.
func MarkBlocked(pvc *v1.PersistentVolumeClaim, target resource.Quantity, msg string, now metav1.Time) *v1.PersistentVolumeClaim {
	pvc = pvc.DeepCopy()
	setAllocated(pvc, target)
	setResourceStatus(pvc, v1.PersistentVolumeClaimControllerResizeInProgress)
	setResizeConditions(pvc, condition(v1.PersistentVolumeClaimResizing, msg, now))
	return pvc
}

// MarkDoneAt clears controller resize state once the request is back at
// status capacity: allocatedResources = capacity, the storage status key
// and the resize conditions removed.
func MarkDoneAt(pvc *v1.PersistentVolumeClaim, capacity resource.Quantity) *v1.PersistentVolumeClaim {
	pvc = pvc.DeepCopy()
	setAllocated(pvc, capacity)
	setResourceStatus(pvc, "")
	setResizeConditions(pvc)
	return pvc
}

// ResizedPV returns a copy of pv with capacity set; with preResize set and
// no annotation yet, the pre-resize-capacity annotation records it.
func ResizedPV(pv *v1.PersistentVolume, capacity resource.Quantity, preResize *resource.Quantity) *v1.PersistentVolume {
	pv = pv.DeepCopy()
	if pv.Spec.Capacity == nil {
		pv.Spec.Capacity = v1.ResourceList{}
	}
	pv.Spec.Capacity[v1.ResourceStorage] = capacity.DeepCopy()
	if preResize != nil {
		if _, ok := pv.Annotations[AnnPreResizeCapacity]; !ok {
			if pv.Annotations == nil {
				pv.Annotations = map[string]string{}
			}
			pv.Annotations[AnnPreResizeCapacity] = preResize.String()
		}
	}
	return pv
}

package resizer

import (
	"fmt"
	"math"

	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
)

// Action is what the controller does with one PVC.
type Action int

const (
	// None: nothing to do now (not ours, not bound, already at size, or
	// waiting for kubelet or for the infeasible backoff).
	None Action = iota
	// ExpandInController: call ControllerExpandVolume with Decision.Target,
	// then write the PV and the PVC.
	ExpandInController
	// ExpandOnNode: the driver has no controller expansion. Set the PV to
	// the target and ask kubelet for NodeExpandVolume, without a CSI call.
	ExpandOnNode
	// Recover: the user lowered the request after a failed expansion. Expand
	// towards the lower Target (in the controller, or on the node for
	// node-only drivers) and write the lower allocatedResources.
	Recover
	// MarkDone: the request is at or below status capacity but the PVC still
	// carries controller resize state (in progress, infeasible, or
	// allocatedResources above capacity). Clear it; no CSI call.
	MarkDone
	// RefuseSize: the target has more bytes than CSI's int64 can carry (the
	// API server accepts, say, 10E). Warn on the PVC; no CSI call, no write.
	RefuseSize
)

func (a Action) String() string {
	switch a {
	case None:
		return "None"
	case ExpandInController:
		return "ExpandInController"
	case ExpandOnNode:
		return "ExpandOnNode"
	case Recover:
		return "Recover"
	case MarkDone:
		return "MarkDone"
	case RefuseSize:
		return "RefuseSize"
	}
	return fmt.Sprintf("Action(%d)", int(a))
}

// Input is everything Decide looks at.
type Input struct {
	PVC *v1.PersistentVolumeClaim
	// PV is the volume named by PVC.spec.volumeName; nil when not found.
	PV *v1.PersistentVolume
	// DriverName is the CSI driver this resizer serves.
	DriverName string
	// ControllerExpansion is true when the driver has controller
	// EXPAND_VOLUME; false for node-only drivers.
	ControllerExpansion bool
	// FinalErrorSeen is true when this process saw a final (not transient)
	// expansion error for the PVC. After one, a lowered request is honoured
	// even while the PVC shows ControllerResizeInProgress.
	FinalErrorSeen bool
	// InfeasibleBackoff is true while an infeasible answer for this PVC is
	// recent (younger than Options.RetryIntervalMax).
	InfeasibleBackoff bool
}

// Decision is the outcome of Decide.
type Decision struct {
	Action Action
	// Target is the size to expand to (ExpandInController, ExpandOnNode,
	// Recover) or to record (MarkDone).
	Target resource.Quantity
	// Reason says why, for logs and test failures.
	Reason string
	// Ignored is true when the PVC is not this resizer's business (another
	// driver, not CSI, claimRef mismatch, not bound) as opposed to "ours, but
	// nothing to do now".
	Ignored bool
	// Backoff is true when the only reason for None is the infeasible
	// backoff: the controller requeues the PVC once it expires.
	Backoff bool
}

// Sizes are the quantities Decide compares. A zero Quantity means unset.
type Sizes struct {
	Spec      resource.Quantity // S: spec.resources.requests.storage
	Capacity  resource.Quantity // C: status.capacity.storage
	Allocated resource.Quantity // A: status.allocatedResources.storage
	PV        resource.Quantity // P: PV spec.capacity.storage
	// Status is R: status.allocatedResourceStatuses.storage, "" when unset.
	Status v1.ClaimResourceStatus
	// HasAllocated tells a set A from an unset one.
	HasAllocated bool
}

// SizesOf reads the sizes of a PVC and its PV (pv may be nil).
func SizesOf(pvc *v1.PersistentVolumeClaim, pv *v1.PersistentVolume) Sizes {
	var s Sizes
	s.Spec = pvc.Spec.Resources.Requests[v1.ResourceStorage]
	s.Capacity = pvc.Status.Capacity[v1.ResourceStorage]
	s.Allocated, s.HasAllocated = pvc.Status.AllocatedResources[v1.ResourceStorage]
	s.Status = pvc.Status.AllocatedResourceStatuses[v1.ResourceStorage]
	if pv != nil {
		s.PV = pv.Spec.Capacity[v1.ResourceStorage]
	}
	return s
}

// Responsible reports whether a resizer of driver handles pvc with pv. The
// reason says why not. pv must be the PV named by pvc.spec.volumeName.
func Responsible(pvc *v1.PersistentVolumeClaim, pv *v1.PersistentVolume, driver string) (bool, string) {
	switch {
	case pvc == nil:
		return false, "PVC not found"
	case pvc.Spec.VolumeName == "":
		return false, "PVC has no volume yet"
	case pvc.Status.Phase != v1.ClaimBound:
		return false, fmt.Sprintf("PVC is %s, not Bound", pvc.Status.Phase)
	case pv == nil:
		return false, fmt.Sprintf("PV %q not found", pvc.Spec.VolumeName)
	case pv.Spec.CSI == nil:
		return false, fmt.Sprintf("PV %q is not a CSI volume", pv.Name)
	case pv.Spec.CSI.Driver != driver:
		return false, fmt.Sprintf("PV %q belongs to CSI driver %q", pv.Name, pv.Spec.CSI.Driver)
	case pv.Spec.ClaimRef == nil:
		return false, fmt.Sprintf("PV %q has no claimRef", pv.Name)
	case pv.Spec.ClaimRef.Namespace != pvc.Namespace:
		return false, fmt.Sprintf("PV %q claimRef namespace %q differs from the PVC's", pv.Name, pv.Spec.ClaimRef.Namespace)
	case pv.Spec.ClaimRef.UID != pvc.UID:
		return false, fmt.Sprintf("PV %q claimRef UID %q is not the PVC's %q", pv.Name, pv.Spec.ClaimRef.UID, pvc.UID)
	}
	return true, ""
}

// NeedsResize reports whether the request exceeds the status capacity
// (S > C). This, not S > P, is what starts a resize.
func NeedsResize(pvc *v1.PersistentVolumeClaim) bool {
	s := SizesOf(pvc, nil)
	return s.Spec.Cmp(s.Capacity) > 0
}

// hasTrueCondition reports whether pvc has condition t with status True
// (unlike hasConditionOfType, which takes any status).
func hasTrueCondition(pvc *v1.PersistentVolumeClaim, t v1.PersistentVolumeClaimConditionType) bool {
	for _, c := range pvc.Status.Conditions {
		if c.Type == t && c.Status == v1.ConditionTrue {
			return true
		}
	}
	return false
}

// TargetSize picks the size to ask the driver for when S > C, from the
// request S, allocatedResources A, its status R and the PV size P. stop is
// true when nothing must be called now (kubelet's node step is pending).
//
//	P vs S  R                 target
//	P < S   NodeResizeInfeasible      A, or S
//	P < S   NodeResizePending/InProgr A, or S; stop if P >= target
//	P < S   ControllerResizeInProgr   S after a final error, else A, or S
//	P < S   none, Infeasible          S
//	P >= S  NodeResizePending/InProgr stop
//	P >= S  NodeResizeInfeasible      A with controller expansion and A set, else S
//	P >= S  ControllerResize*         A, or S
//	P >= S  none                      A if set; else stop when FileSystemResizePending, else S
func TargetSize(pvc *v1.PersistentVolumeClaim, pv *v1.PersistentVolume, controllerExpansion, finalErrorSeen bool) (target resource.Quantity, stop bool, why string) {
	s := SizesOf(pvc, pv)
	aOrS := s.Spec
	if s.HasAllocated {
		aOrS = s.Allocated
	}
	nodePending := s.Status == v1.PersistentVolumeClaimNodeResizePending || s.Status == v1.PersistentVolumeClaimNodeResizeInProgress
	if s.PV.Cmp(s.Spec) < 0 {
		switch {
		case s.Status == v1.PersistentVolumeClaimNodeResizeInfeasible:
			return aOrS, false, "node expansion failed: retrying the controller step"
		case nodePending:
			if s.PV.Cmp(aOrS) >= 0 {
				return aOrS, true, "PV already at the allocated size; waiting for kubelet"
			}
			return aOrS, false, "PV below the allocated size"
		case s.Status == v1.PersistentVolumeClaimControllerResizeInProgress:
			if finalErrorSeen {
				return s.Spec, false, "previous attempt failed finally: following the request"
			}
			return aOrS, false, "controller resize in progress: keeping the allocated size"
		default:
			return s.Spec, false, "request above PV size"
		}
	}
	switch {
	case nodePending:
		return aOrS, true, "PV at the requested size; waiting for kubelet"
	case s.Status == v1.PersistentVolumeClaimNodeResizeInfeasible:
		if controllerExpansion && s.HasAllocated {
			return s.Allocated, false, "node expansion failed: retrying at the allocated size"
		}
		return s.Spec, false, "node expansion failed: retrying at the requested size"
	case s.Status == v1.PersistentVolumeClaimControllerResizeInProgress, s.Status == v1.PersistentVolumeClaimControllerResizeInfeasible:
		return aOrS, false, "controller resize unfinished"
	case s.HasAllocated:
		return s.Allocated, false, "PV at size, PVC not updated: repeating the call"
	case hasTrueCondition(pvc, v1.PersistentVolumeClaimFileSystemResizePending):
		return s.Spec, true, "FileSystemResizePending set: waiting for kubelet"
	}
	return s.Spec, false, "PV at size, PVC not updated: repeating the call"
}

// Decide chooses what to do with one PVC. It reads nothing but its input.
func Decide(in Input) Decision {
	if ok, why := Responsible(in.PVC, in.PV, in.DriverName); !ok {
		return Decision{Action: None, Reason: why, Ignored: true}
	}
	s := SizesOf(in.PVC, in.PV)
	if s.Spec.Cmp(s.Capacity) <= 0 {
		controllerState := s.Status == v1.PersistentVolumeClaimControllerResizeInProgress ||
			s.Status == v1.PersistentVolumeClaimControllerResizeInfeasible
		if controllerState || (s.HasAllocated && s.Allocated.Cmp(s.Capacity) > 0 && !isNodeStatus(s.Status)) {
			return Decision{Action: MarkDone, Target: s.Capacity,
				Reason: "request back at status capacity: clearing the failed or unfinished resize"}
		}
		return Decision{Action: None, Reason: "request not above status capacity"}
	}
	target, stop, why := TargetSize(in.PVC, in.PV, in.ControllerExpansion, in.FinalErrorSeen)
	if stop {
		return Decision{Action: None, Target: target, Reason: why}
	}
	if _, ok := toBytes(target); !ok {
		return Decision{Action: RefuseSize, Target: target, Reason: sizeTooLarge(target)}
	}
	if s.Status == v1.PersistentVolumeClaimControllerResizeInfeasible && s.HasAllocated &&
		s.Allocated.Cmp(target) == 0 && in.InfeasibleBackoff {
		return Decision{Action: None, Target: target, Backoff: true,
			Reason: "size " + target.String() + " was refused as infeasible: waiting for a new request or the retry interval"}
	}
	if s.HasAllocated && target.Cmp(s.Allocated) < 0 {
		return Decision{Action: Recover, Target: target, Reason: "request lowered to " + target.String() + " after a failed expansion to " + s.Allocated.String()}
	}
	if !in.ControllerExpansion {
		return Decision{Action: ExpandOnNode, Target: target, Reason: why + " (node-only driver)"}
	}
	return Decision{Action: ExpandInController, Target: target, Reason: why}
}

func isNodeStatus(r v1.ClaimResourceStatus) bool {
	switch r {
	case v1.PersistentVolumeClaimNodeResizePending, v1.PersistentVolumeClaimNodeResizeInProgress, v1.PersistentVolumeClaimNodeResizeInfeasible:
		return true
	}
	return false
}

// preResizeAnnotationStale reports whether the PV still carries the
// pre-resize-capacity annotation although the node step finished (C >= P).
func preResizeAnnotationStale(pvc *v1.PersistentVolumeClaim, pv *v1.PersistentVolume) bool {
	if pv == nil || pvc == nil {
		return false
	}
	if _, ok := pv.Annotations[AnnPreResizeCapacity]; !ok {
		return false
	}
	s := SizesOf(pvc, pv)
	return s.Capacity.Cmp(s.PV) >= 0
}

// capacityAfterExpand is the size to record after a successful
// ControllerExpandVolume that returned got bytes for a request of target.
// Drivers that answer 0 (or less than asked) are recorded at the target,
// and ok is false so the caller can say so in an event.
func capacityAfterExpand(target resource.Quantity, got int64) (q resource.Quantity, ok bool) {
	if got <= 0 || got < target.Value() {
		return target.DeepCopy(), false
	}
	return *resource.NewQuantity(got, resource.BinarySI), true
}

// maxBytes is the largest size a CSI CapacityRange can carry.
var maxBytes = *resource.NewQuantity(math.MaxInt64, resource.DecimalSI)

// toBytes returns q in bytes, rounded up, and whether it fits in the int64 of
// CSI's CapacityRange. Quantity.Value wraps sizes above math.MaxInt64 (10E
// gives 0, 9223372036854775808 a negative number): never send those.
func toBytes(q resource.Quantity) (int64, bool) {
	if q.Sign() <= 0 || q.Cmp(maxBytes) > 0 {
		return 0, false
	}
	return q.Value(), true
}

// sizeTooLarge explains why q is refused.
func sizeTooLarge(q resource.Quantity) string {
	return fmt.Sprintf("requested size %s is not a positive number of bytes below %d (about 8Ei), the most a CSI driver can be asked for: lower the request", q.String(), int64(math.MaxInt64))
}

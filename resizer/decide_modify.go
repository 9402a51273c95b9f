package resizer

import (
	"fmt"
	"maps"

	v1 "k8s.io/api/core/v1"
	storagev1 "k8s.io/api/storage/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/csi-kit/sidecars/internal/names"
	internalparams "github.com/csi-kit/sidecars/internal/params"
)

// ModifyAction is what the controller does about a PVC's
// VolumeAttributesClass.
type ModifyAction int

const (
	// ModifyNone: nothing to do now.
	ModifyNone ModifyAction = iota
	// ModifyCall: call ControllerModifyVolume with the parameters of the
	// class ModifyDecision.Target (Pending, with an event, if it does not
	// exist).
	ModifyCall
	// ModifyCancel: the user gave up a modification that is not running:
	// remove the ModifyingVolume condition.
	ModifyCancel
)

func (a ModifyAction) String() string {
	switch a {
	case ModifyNone:
		return "ModifyNone"
	case ModifyCall:
		return "ModifyCall"
	case ModifyCancel:
		return "ModifyCancel"
	}
	return fmt.Sprintf("ModifyAction(%d)", int(a))
}

// ModifyInput is everything DecideModify looks at.
type ModifyInput struct {
	PVC        *v1.PersistentVolumeClaim
	PV         *v1.PersistentVolume
	DriverName string
	// Uncertain: the last call towards the status target ended without a
	// final answer (timeout, Unavailable, ...), so the driver may still be
	// applying it; it must be finished before a new target is taken.
	Uncertain bool
	// InfeasibleBackoff: the spec's class was refused as infeasible recently.
	InfeasibleBackoff bool
}

// ModifyDecision is the outcome of DecideModify.
type ModifyDecision struct {
	Action  ModifyAction
	Target  string // the class to apply
	Reason  string
	Ignored bool // not this resizer's PVC
	Backoff bool // None only because of the infeasible backoff
	// Resume: the call finishes an earlier, unfinished modification to
	// Target rather than starting one, so no VolumeModify event is sent.
	Resume bool
}

// The secret of ControllerModifyVolume, referenced on the PV (defined in
// internal/names).
const (
	ModifyVolumeAnnSecretName      = names.AnnModifySecretName
	ModifyVolumeAnnSecretNamespace = names.AnnModifySecretNamespace
)

// DecideModify chooses what to do about the class of one PVC.
func DecideModify(in ModifyInput) ModifyDecision {
	if ok, why := Responsible(in.PVC, in.PV, in.DriverName); !ok {
		return ModifyDecision{Reason: why, Ignored: true}
	}
	spec := ptrString(in.PVC.Spec.VolumeAttributesClassName)
	current := ptrString(in.PVC.Status.CurrentVolumeAttributesClassName)
	ms := in.PVC.Status.ModifyVolumeStatus
	inProgress := ms != nil && ms.Status == v1.PersistentVolumeClaimModifyVolumeInProgress
	switch {
	case ms == nil && spec == current:
		return ModifyDecision{Reason: "class already applied"}
	case inProgress && (in.Uncertain || spec == ""):
		return ModifyDecision{Action: ModifyCall, Target: ms.TargetVolumeAttributesClassName, Resume: true,
			Reason: "finishing the unfinished modification to " + ms.TargetVolumeAttributesClassName}
	case spec == "":
		if hasConditionOfType(in.PVC, v1.PersistentVolumeClaimVolumeModifyingVolume) {
			return ModifyDecision{Action: ModifyCancel, Reason: "class removed from the spec"}
		}
		return ModifyDecision{Reason: "no class requested"}
	case ms != nil && ms.Status == v1.PersistentVolumeClaimModifyVolumeInfeasible &&
		ms.TargetVolumeAttributesClassName == spec && in.InfeasibleBackoff:
		return ModifyDecision{Target: spec, Backoff: true, Reason: "class " + spec + " was refused as infeasible: waiting"}
	}
	return ModifyDecision{Action: ModifyCall, Target: spec, Reason: "class changed to " + spec}
}

// hasConditionOfType reports whether pvc has condition t, whatever its
// status (unlike hasTrueCondition).
func hasConditionOfType(pvc *v1.PersistentVolumeClaim, t v1.PersistentVolumeClaimConditionType) bool {
	for _, c := range pvc.Status.Conditions {
		if c.Type == t {
			return true
		}
	}
	return false
}

// modifyParameters are the mutable parameters sent for vac; with extra,
// the PVC and PV identity keys are added to a copy.
func modifyParameters(vac *storagev1.VolumeAttributesClass, pvc *v1.PersistentVolumeClaim, pv *v1.PersistentVolume, extra bool) map[string]string {
	params := maps.Clone(vac.Parameters)
	if extra {
		if params == nil {
			params = map[string]string{}
		}
		params[internalparams.PVCNameKey] = pvc.Name
		params[internalparams.PVCNamespaceKey] = pvc.Namespace
		params[internalparams.PVNameKey] = pv.Name
	}
	return params
}

func setModifyConditions(pvc *v1.PersistentVolumeClaim, drop map[v1.PersistentVolumeClaimConditionType]bool, conds ...v1.PersistentVolumeClaimCondition) {
	var out []v1.PersistentVolumeClaimCondition
	for _, c := range pvc.Status.Conditions {
		if drop[c.Type] {
			continue
		}
		replaced := false
		for i, n := range conds {
			if n.Type == c.Type {
				if n.Reason == c.Reason && n.Status == c.Status {
					conds[i].LastTransitionTime = c.LastTransitionTime
				}
				replaced = true
			}
		}
		if !replaced {
			out = append(out, c)
		}
	}
	pvc.Status.Conditions = append(out, conds...)
}

var modifyConditions = map[v1.PersistentVolumeClaimConditionType]bool{
	v1.PersistentVolumeClaimVolumeModifyingVolume:   true,
	v1.PersistentVolumeClaimVolumeModifyVolumeError: true,
}

// MarkModified records a successful modification to target: no modify
// status, current class = target, modify conditions removed.
func MarkModified(pvc *v1.PersistentVolumeClaim, target string) *v1.PersistentVolumeClaim {
	pvc = pvc.DeepCopy()
	pvc.Status.ModifyVolumeStatus = nil
	pvc.Status.CurrentVolumeAttributesClassName = &target
	setModifyConditions(pvc, modifyConditions)
	return pvc
}

// MarkModifyFailed records a failed modification: status Infeasible for an
// infeasible error, else InProgress; a ModifyingVolume condition saying
// whether it is retried or still running, and ModifyVolumeError with the
// gRPC code as reason.
func MarkModifyFailed(pvc *v1.PersistentVolumeClaim, target string, infeasible, final bool, code, msg string, now metav1.Time) *v1.PersistentVolumeClaim {
	pvc = pvc.DeepCopy()
	st := v1.PersistentVolumeClaimModifyVolumeInProgress
	if infeasible {
		st = v1.PersistentVolumeClaimModifyVolumeInfeasible
	}
	pvc.Status.ModifyVolumeStatus = &v1.ModifyVolumeStatus{TargetVolumeAttributesClassName: target, Status: st}
	text := fmt.Sprintf("Modifying volume to %q is still in progress.", target)
	if final || infeasible {
		text = fmt.Sprintf("Modifying volume to %q failed. Waiting for retry.", target)
	}
	setModifyConditions(pvc, nil,
		v1.PersistentVolumeClaimCondition{Type: v1.PersistentVolumeClaimVolumeModifyingVolume, Status: v1.ConditionTrue, LastProbeTime: now, LastTransitionTime: now, Message: text},
		v1.PersistentVolumeClaimCondition{Type: v1.PersistentVolumeClaimVolumeModifyVolumeError, Status: v1.ConditionTrue, LastProbeTime: now, LastTransitionTime: now, Reason: code, Message: msg})
	return pvc
}

// MarkModifyPending records that the requested class does not exist: status
// Pending, keeping the earlier target (quota counts it); conditions stay.
func MarkModifyPending(pvc *v1.PersistentVolumeClaim) *v1.PersistentVolumeClaim {
	pvc = pvc.DeepCopy()
	target := ptrString(pvc.Status.CurrentVolumeAttributesClassName)
	if ms := pvc.Status.ModifyVolumeStatus; ms != nil {
		target = ms.TargetVolumeAttributesClassName
	}
	pvc.Status.ModifyVolumeStatus = &v1.ModifyVolumeStatus{TargetVolumeAttributesClassName: target, Status: v1.PersistentVolumeClaimModifyVolumePending}
	return pvc
}

// MarkModifyCanceled removes the ModifyingVolume condition.
func MarkModifyCanceled(pvc *v1.PersistentVolumeClaim) *v1.PersistentVolumeClaim {
	pvc = pvc.DeepCopy()
	setModifyConditions(pvc, map[v1.PersistentVolumeClaimConditionType]bool{v1.PersistentVolumeClaimVolumeModifyingVolume: true})
	return pvc
}

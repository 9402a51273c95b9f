package resizer

import (
	"context"
	"fmt"

	v1 "k8s.io/api/core/v1"
	"k8s.io/klog/v2"

	"github.com/csi-kit/sidecars/csiconn"
	"github.com/csi-kit/sidecars/internal/ctrl"
	"github.com/csi-kit/sidecars/internal/params"
)

// Modify event reasons, as upstream names them.
const (
	eventModify           = "VolumeModify"
	eventModifySuccessful = "VolumeModifySuccessful"
	eventModifyFailed     = "VolumeModifyFailed"
	eventModifyCanceled   = "VolumeModifyCanceled"
)

func (r *Resizer) syncModify(ctx context.Context, pvc *v1.PersistentVolumeClaim, pv *v1.PersistentVolume) (ctrl.Result, error) {
	logger := klog.FromContext(ctx)
	var st claimState
	r.withState(pvc.UID, func(s *claimState) { st = *s })
	ms := pvc.Status.ModifyVolumeStatus
	uncertain := st.modifyUncertain
	if !uncertain && ms != nil && ms.Status == v1.PersistentVolumeClaimModifyVolumeInProgress && !st.modifySeen {
		// After a restart, an InProgress status may hide a call still
		// running in the driver: finish it first.
		uncertain = true
	}
	remaining := r.opts.RetryIntervalMax - r.opts.Clock.Since(st.modifyInfeasibleAt)
	d := DecideModify(ModifyInput{PVC: pvc, PV: pv, DriverName: r.name, Uncertain: uncertain,
		InfeasibleBackoff: !st.modifyInfeasibleAt.IsZero() && remaining > 0})
	switch d.Action {
	case ModifyNone:
		if d.Backoff {
			return requeue(ctx, remaining, d.Reason), nil
		}
		logger.V(4).Info("No modification", "reason", d.Reason)
		return ctrl.Result{}, nil
	case ModifyCancel:
		if _, err := r.patchPVC(ctx, pvc, MarkModifyCanceled(pvc), false); err != nil {
			return ctrl.Result{}, err
		}
		r.recorder.Event(pvc, v1.EventTypeNormal, eventModifyCanceled, "Cancelled modify.")
		return ctrl.Result{}, nil
	}
	r.withState(pvc.UID, func(s *claimState) { s.modifySeen = true })
	vac, err := r.vacs.Get(d.Target)
	if err != nil {
		r.recorder.Event(pvc, v1.EventTypeWarning, eventModifyFailed, fmt.Sprintf("VAC %q does not exist.", d.Target))
		_, perr := r.patchPVC(ctx, pvc, MarkModifyPending(pvc), false)
		return ctrl.Result{}, perr // the VAC handler requeues the PVC when the class appears
	}
	logger.V(2).Info("Modifying volume", "class", d.Target, "reason", d.Reason)
	secrets, err := params.FetchSecret(ctx, r.kube.CoreV1(), modifySecretRef(pv))
	if err != nil {
		r.recorder.Event(pvc, v1.EventTypeWarning, eventModifyFailed, err.Error())
		return ctrl.Result{}, err
	}
	if !d.Resume {
		r.normalEvent(pvc, eventModify, fmt.Sprintf("external resizer is modifying volume %s with vac %s", pvc.Name, d.Target))
	}
	callCtx, cancel := context.WithTimeout(ctx, r.opts.Timeout)
	err = r.drv.ModifyVolume(callCtx, ModifyRequest{VolumeID: pv.Spec.CSI.VolumeHandle, Secrets: secrets,
		Parameters: modifyParameters(vac, pvc, pv, r.opts.ExtraModifyMetadata)})
	cancel()
	if err != nil {
		class := csiconn.Classify(csiconn.OpModifyVolume, err)
		r.withState(pvc.UID, func(s *claimState) {
			s.modifyUncertain = class == csiconn.Transient
			if class == csiconn.Infeasible {
				s.modifyInfeasibleAt = r.opts.Clock.Now()
			}
		})
		text := err.Error()
		if class == csiconn.Transient {
			text += ". Still modifying to VAC " + d.Target
		}
		r.recorder.Event(pvc, v1.EventTypeWarning, eventModifyFailed, text)
		code := csiconn.Code(err).String()
		if _, perr := r.patchPVC(ctx, pvc, MarkModifyFailed(pvc, d.Target, class == csiconn.Infeasible, class == csiconn.Final, code, err.Error(), r.now()), false); perr != nil {
			return ctrl.Result{}, perr
		}
		if class == csiconn.Infeasible {
			return requeue(ctx, r.opts.RetryIntervalMax, "infeasible class "+d.Target), nil
		}
		return ctrl.Result{}, fmt.Errorf("modifying %s to class %s: %w", pv.Name, d.Target, err)
	}
	r.withState(pvc.UID, func(s *claimState) { s.modifyUncertain, s.modifyInfeasibleAt = false, zeroTime })
	updated := pv.DeepCopy()
	target := d.Target
	updated.Spec.VolumeAttributesClassName = &target
	if _, err := r.patchPV(ctx, pv, updated); err != nil {
		return ctrl.Result{}, err
	}
	if _, err := r.patchPVC(ctx, pvc, MarkModified(pvc, target), false); err != nil {
		return ctrl.Result{}, err
	}
	r.normalEvent(pvc, eventModifySuccessful, fmt.Sprintf("external resizer modified volume %s with vac %s successfully", pvc.Name, target))
	return ctrl.Result{}, nil
}

// normalEvent emits a Normal event of progress or success unless
// DisableNormalEvents is set.
func (r *Resizer) normalEvent(pvc *v1.PersistentVolumeClaim, reason, msg string) {
	if !r.opts.DisableNormalEvents {
		r.recorder.Event(pvc, v1.EventTypeNormal, reason, msg)
	}
}

// modifySecretRef is the secret named by the provisioner's PV annotations,
// else the controller-expand secret.
func modifySecretRef(pv *v1.PersistentVolume) *v1.SecretReference {
	name, ns := pv.Annotations[ModifyVolumeAnnSecretName], pv.Annotations[ModifyVolumeAnnSecretNamespace]
	if name != "" && ns != "" {
		return &v1.SecretReference{Name: name, Namespace: ns}
	}
	return pv.Spec.CSI.ControllerExpandSecretRef
}

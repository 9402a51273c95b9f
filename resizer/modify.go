package resizer

import (
	"context"
	"fmt"

	v1 "k8s.io/api/core/v1"
	"k8s.io/klog/v2"

	"github.com/csi-kit/sidecars/csiconn"
)

// Modify event reasons, as upstream names them.
const (
	EventModify           = "VolumeModify"
	EventModifySuccessful = "VolumeModifySuccessful"
	EventModifyFailed     = "VolumeModifyFailed"
	EventModifyCanceled   = "VolumeModifyCanceled"
)

func (r *Resizer) syncModify(ctx context.Context, pvc *v1.PersistentVolumeClaim, pv *v1.PersistentVolume) error {
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
			return &requeueAfter{d: remaining, why: d.Reason}
		}
		logger.V(4).Info("No modification", "reason", d.Reason)
		return nil
	case ModifyCancel:
		if _, err := r.patchPVC(ctx, pvc, MarkModifyCanceled(pvc), false); err != nil {
			return err
		}
		r.recorder.Event(pvc, v1.EventTypeNormal, EventModifyCanceled, "Cancelled modify.")
		return nil
	}
	r.withState(pvc.UID, func(s *claimState) { s.modifySeen = true })
	vac, err := r.vacs.Get(d.Target)
	if err != nil {
		r.recorder.Event(pvc, v1.EventTypeWarning, EventModifyFailed, fmt.Sprintf("VAC %q does not exist.", d.Target))
		_, perr := r.patchPVC(ctx, pvc, MarkModifyPending(pvc), false)
		return perr // the VAC handler requeues the PVC when the class appears
	}
	logger.V(2).Info("Modifying volume", "class", d.Target, "reason", d.Reason)
	secrets, err := r.secrets(ctx, modifySecretRef(pv))
	if err != nil {
		r.recorder.Event(pvc, v1.EventTypeWarning, EventModifyFailed, err.Error())
		return err
	}
	if !d.Resume {
		r.normalEvent(pvc, EventModify, fmt.Sprintf("external resizer is modifying volume %s with vac %s", pvc.Name, d.Target))
	}
	callCtx, cancel := context.WithTimeout(ctx, r.opts.Timeout)
	err = r.drv.ModifyVolume(callCtx, ModifyRequest{VolumeID: pv.Spec.CSI.VolumeHandle, Secrets: secrets,
		Parameters: ModifyParameters(vac, pvc, pv, r.opts.ExtraModifyMetadata)})
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
		r.recorder.Event(pvc, v1.EventTypeWarning, EventModifyFailed, text)
		code := csiconn.Code(err).String()
		if _, perr := r.patchPVC(ctx, pvc, MarkModifyFailed(pvc, d.Target, class == csiconn.Infeasible, class == csiconn.Final, code, err.Error(), r.now()), false); perr != nil {
			return perr
		}
		if class == csiconn.Infeasible {
			return &requeueAfter{d: r.opts.RetryIntervalMax, why: "infeasible class " + d.Target}
		}
		return fmt.Errorf("modifying %s to class %s: %w", pv.Name, d.Target, err)
	}
	r.withState(pvc.UID, func(s *claimState) { s.modifyUncertain, s.modifyInfeasibleAt = false, zeroTime })
	updated := pv.DeepCopy()
	target := d.Target
	updated.Spec.VolumeAttributesClassName = &target
	if _, err := r.patchPV(ctx, pv, updated); err != nil {
		return err
	}
	if _, err := r.patchPVC(ctx, pvc, MarkModified(pvc, target), false); err != nil {
		return err
	}
	r.normalEvent(pvc, EventModifySuccessful, fmt.Sprintf("external resizer modified volume %s with vac %s successfully", pvc.Name, target))
	return nil
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

package resizer

import (
	"context"
	"fmt"
	"time"

	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/klog/v2"

	"github.com/csi-kit/sidecars/csiconn"
	"github.com/csi-kit/sidecars/internal/ctrl"
	"github.com/csi-kit/sidecars/internal/names"
	"github.com/csi-kit/sidecars/internal/params"
)

// Event reasons, as upstream names them.
const (
	eventResizing                 = "Resizing"
	EventResizeFailed             = names.ReasonVolumeResizeFailed
	eventResizeSuccessful         = "VolumeResizeSuccessful"
	EventFileSystemResizeRequired = names.ReasonFileSystemResizeRequired
)

func (r *Resizer) now() metav1.Time { return metav1.NewTime(r.opts.Clock.Now()) }

// syncResize decides and acts on one PVC; it returns the objects as written.
func (r *Resizer) syncResize(ctx context.Context, pvc *v1.PersistentVolumeClaim, pv *v1.PersistentVolume) (*v1.PersistentVolumeClaim, *v1.PersistentVolume, ctrl.Result, error) {
	logger := klog.FromContext(ctx)
	if !r.opts.DisablePreResizeAnnotation && preResizeAnnotationStale(pvc, pv) && pv.Spec.CSI != nil && pv.Spec.CSI.Driver == r.name {
		updated := pv.DeepCopy()
		delete(updated.Annotations, AnnPreResizeCapacity)
		got, err := r.patchPV(ctx, pv, updated)
		if err != nil {
			return pvc, pv, ctrl.Result{}, err
		}
		pv = got
	}
	var st claimState
	r.withState(pvc.UID, func(s *claimState) { st = *s })
	remaining := r.opts.RetryIntervalMax - r.opts.Clock.Since(st.infeasibleAt)
	d := Decide(Input{
		PVC: pvc, PV: pv, DriverName: r.name,
		ControllerExpansion: r.caps.ControllerExpand,
		FinalErrorSeen:      st.finalError,
		InfeasibleBackoff:   !st.infeasibleAt.IsZero() && remaining > 0,
	})
	switch {
	case d.Action == None && d.Backoff:
		return pvc, pv, requeue(ctx, remaining, d.Reason), nil
	case d.Action == None && d.Ignored && pv == nil && pvc.Status.Phase == v1.ClaimBound && NeedsResize(pvc):
		logger.Info("Resize waits for the PV", "reason", d.Reason)
		return pvc, pv, ctrl.Result{}, nil
	case d.Action == None:
		logger.V(4).Info("No resize", "reason", d.Reason)
		return pvc, pv, ctrl.Result{}, nil
	}
	logger.V(2).Info("Resizing", "action", d.Action, "target", d.Target.String(), "reason", d.Reason)
	switch {
	case d.Action == RefuseSize:
		r.refuseSize(ctx, pvc, pv, d.Target)
		return pvc, pv, ctrl.Result{}, nil
	case d.Action == MarkDone:
		got, err := r.patchPVC(ctx, pvc, MarkDoneAt(pvc, d.Target), false)
		if err != nil {
			return pvc, pv, ctrl.Result{}, err
		}
		r.withState(pvc.UID, (*claimState).resetResize)
		return got, pv, ctrl.Result{}, nil
	case d.Action == ExpandOnNode || (d.Action == Recover && !r.caps.ControllerExpand):
		return noRequeue(r.finish(ctx, pvc, pv, d.Target, d.Target, true, true))
	}
	return r.expandInController(ctx, pvc, pv, d.Target)
}

func (r *Resizer) expandInController(ctx context.Context, pvc *v1.PersistentVolumeClaim, pv *v1.PersistentVolume, target resource.Quantity) (*v1.PersistentVolumeClaim, *v1.PersistentVolume, ctrl.Result, error) {
	if pv.Spec.CSI.VolumeHandle == "" {
		r.recorder.Event(pvc, v1.EventTypeWarning, EventResizeFailed, fmt.Sprintf("resize volume %q by resizer %q failed: %v", pv.Name, r.name, errNoHandle))
		return pvc, pv, ctrl.Result{}, nil
	}
	bytes, ok := toBytes(target)
	if !ok { // Decide refuses these already; never send a wrapped size
		r.refuseSize(ctx, pvc, pv, target)
		return pvc, pv, ctrl.Result{}, nil
	}
	if blocked, err := r.inUseGate(ctx, pvc, target); blocked || err != nil {
		return pvc, pv, ctrl.Result{}, err
	}
	if !r.opts.DisableMarkInProgress {
		got, err := r.patchPVC(ctx, pvc, MarkInProgress(pvc, target, r.now()), true)
		if err != nil {
			return pvc, pv, ctrl.Result{}, err
		}
		pvc = got
		r.normalEvent(pvc, eventResizing, "External resizer is resizing volume "+pv.Name)
	}
	capability, err := volumeCapability(pv, r.caps.SingleNodeMultiWriter)
	if err != nil {
		// The PV's access modes cannot be expressed in CSI: retrying the
		// same PV cannot help, so this counts as a final error.
		return r.failed(ctx, pvc, pv, target, &csiconn.CallError{Op: csiconn.OpExpandVolume, Class: csiconn.Final, Err: err}, true)
	}
	secrets, err := params.FetchSecret(ctx, r.kube.CoreV1(), pv.Spec.CSI.ControllerExpandSecretRef)
	if err != nil {
		r.recorder.Event(pvc, v1.EventTypeWarning, EventResizeFailed, fmt.Sprintf("resize volume %q by resizer %q failed: %v", pv.Name, r.name, err))
		return pvc, pv, ctrl.Result{}, err
	}
	callCtx, cancel := context.WithTimeout(ctx, r.opts.Timeout)
	got, nodeExpansion, err := r.drv.ExpandVolume(callCtx, ExpandRequest{
		VolumeID: pv.Spec.CSI.VolumeHandle, RequiredBytes: bytes, Capability: capability, Secrets: secrets,
	})
	cancel()
	if err != nil {
		return r.failed(ctx, pvc, pv, target, err, false)
	}
	capacity, ok := capacityAfterExpand(target, got)
	if !ok {
		r.recorder.Event(pvc, v1.EventTypeWarning, EventResizeFailed, fmt.Sprintf(
			"CSI driver %q reported capacity %d bytes after expanding %q to %s; recording %s", r.name, got, pv.Name, target.String(), capacity.String()))
	}
	return noRequeue(r.finish(ctx, pvc, pv, target, capacity, nodeExpansion, false))
}

// noRequeue passes on the outcome of a step that never asks to come back
// later.
func noRequeue(pvc *v1.PersistentVolumeClaim, pv *v1.PersistentVolume, err error) (*v1.PersistentVolumeClaim, *v1.PersistentVolume, ctrl.Result, error) {
	return pvc, pv, ctrl.Result{}, err
}

// refuseSize warns, once per size, that target cannot be sent to a CSI
// driver. Nothing is written: a new request brings the PVC back.
func (r *Resizer) refuseSize(ctx context.Context, pvc *v1.PersistentVolumeClaim, pv *v1.PersistentVolume, target resource.Quantity) {
	var warned bool
	r.withState(pvc.UID, func(s *claimState) {
		warned = s.refusedSize == target.String()
		s.refusedSize = target.String()
	})
	klog.FromContext(ctx).Info("Resize refused", "target", target.String(), "warned", warned)
	if !warned {
		r.recorder.Event(pvc, v1.EventTypeWarning, EventResizeFailed,
			fmt.Sprintf("resize volume %q by resizer %q refused: %s", pv.Name, r.name, sizeTooLarge(target)))
	}
}

// finish records a done controller step (or a node-only expansion): PV
// first, then the PVC in one status patch, then one event.
func (r *Resizer) finish(ctx context.Context, pvc *v1.PersistentVolumeClaim, pv *v1.PersistentVolume, target, capacity resource.Quantity, nodeExpansion, nodeOnly bool) (*v1.PersistentVolumeClaim, *v1.PersistentVolume, error) {
	r.withState(pvc.UID, (*claimState).resetResize)
	var preResize *resource.Quantity
	if nodeExpansion && !r.opts.DisablePreResizeAnnotation {
		c := SizesOf(pvc, pv).Capacity
		preResize = &c
	}
	gotPV, err := r.patchPV(ctx, pv, ResizedPV(pv, capacity, preResize))
	if err != nil {
		r.recorder.Event(pvc, v1.EventTypeWarning, EventResizeFailed, fmt.Sprintf("resize volume %q by resizer %q: the volume was expanded but updating the PV failed: %v", pv.Name, r.name, err))
		return pvc, pv, err
	}
	gotPVC, err := r.patchPVC(ctx, pvc, MarkExpanded(pvc, target, capacity, nodeExpansion, r.now()), false)
	if err != nil {
		r.recorder.Event(pvc, v1.EventTypeWarning, EventResizeFailed, fmt.Sprintf("resize volume %q by resizer %q: the volume was expanded but updating the PVC failed: %v", pv.Name, r.name, err))
		return pvc, gotPV, err
	}
	if nodeExpansion {
		msg := "Require file system resize of volume on node"
		if nodeOnly {
			msg += " (the driver expands only on the node)"
		}
		r.recorder.Event(gotPVC, v1.EventTypeNormal, EventFileSystemResizeRequired, msg)
	} else {
		r.normalEvent(gotPVC, eventResizeSuccessful, "Resize volume succeeded")
	}
	return gotPVC, gotPV, nil
}

// failed records a failed ControllerExpandVolume according to its class.
func (r *Resizer) failed(ctx context.Context, pvc *v1.PersistentVolumeClaim, pv *v1.PersistentVolume, target resource.Quantity, callErr error, local bool) (*v1.PersistentVolumeClaim, *v1.PersistentVolume, ctrl.Result, error) {
	class := csiconn.Classify(csiconn.OpExpandVolume, callErr)
	if local {
		class = csiconn.ClassOf(callErr)
	}
	r.withState(pvc.UID, func(s *claimState) {
		if csiconn.IsInUse(callErr) {
			s.failedInUse = true
		}
		switch class {
		case csiconn.Infeasible:
			s.finalError, s.infeasibleAt = true, r.opts.Clock.Now()
		case csiconn.Final:
			s.finalError, s.infeasibleAt = true, time.Time{}
		default:
			s.finalError, s.infeasibleAt = false, time.Time{}
		}
	})
	msg := callErr.Error()
	event := fmt.Sprintf("resize volume %q by resizer %q failed: %v", pv.Name, r.name, callErr)
	if class == csiconn.Transient {
		event += " (not final: the driver may still be expanding; it will be asked again)"
	}
	r.recorder.Event(pvc, v1.EventTypeWarning, EventResizeFailed, event)
	got, err := r.patchPVC(ctx, pvc, MarkFailed(pvc, target, class == csiconn.Infeasible, msg, r.now()), false)
	if err != nil {
		return pvc, pv, ctrl.Result{}, err
	}
	if class == csiconn.Infeasible {
		return got, pv, requeue(ctx, r.opts.RetryIntervalMax, "infeasible size "+target.String()), nil
	}
	return got, pv, ctrl.Result{}, fmt.Errorf("expanding %s to %s: %w", pv.Name, target.String(), callErr)
}

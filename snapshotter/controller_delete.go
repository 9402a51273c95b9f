package snapshotter

import (
	"context"
	"errors"
	"fmt"
	"slices"

	crdv1 "github.com/kubernetes-csi/external-snapshotter/client/v8/apis/volumesnapshot/v1"
	v1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/klog/v2"

	"github.com/csi-kit/sidecars/internal/ctrl"
)

// deleteSnapshot handles a snapshot with a deletion timestamp: it marks
// its content being deleted, deletes the content under policy Delete,
// releases the source PVC and removes the finalizers that may go.
func (c *Controller) deleteSnapshot(ctx context.Context, vs *crdv1.VolumeSnapshot) error {
	c.metrics.start(opDelete, vs.UID, driverUnknown, typeOf(vs), c.opts.Clock.Now())
	if isGroupMember(vs) || slices.Contains(vs.Finalizers, FinalizerSnapshotInGroup) {
		var err error
		if vs, err = c.releaseMember(ctx, vs); err != nil { // group_controller_members.go
			return err
		}
	}
	vsc, err := c.content(contentNameOf(vs))
	if err != nil {
		return err
	}
	if vsc != nil && !pointsBack(vs, vsc) {
		vsc = nil
	}
	restoring := false
	if vsc != nil {
		items, _ := c.pvcIndex.ByIndex(indexByRestore, vs.Namespace+"/"+vs.Name)
		for _, it := range items {
			if pvc, ok := it.(*v1.PersistentVolumeClaim); ok && restoresFrom(pvc, vs.Name) {
				restoring = true
			}
		}
	}
	plan := decideDeletion(vs, vsc, restoring)
	switch {
	case plan.Skip:
		return nil
	case plan.Blocked != "":
		c.rec.Event(vs, v1.EventTypeWarning, ReasonSnapshotDeletePending, plan.Blocked)
		return errors.New(plan.Blocked)
	}
	if plan.MarkBeingDeleted {
		updated, err := c.snap.SnapshotV1().VolumeSnapshotContents().Patch(ctx, vsc.Name, types.MergePatchType,
			annotationPatch(AnnBeingDeleted, annYes), metav1.PatchOptions{})
		if err != nil && !apierrors.IsNotFound(err) {
			return fmt.Errorf("marking content %s being deleted: %w", vsc.Name, err)
		}
		if err == nil {
			c.freshVSC.Remember(vsc.Name, updated)
		}
	}
	if plan.DeleteContent {
		err := c.snap.SnapshotV1().VolumeSnapshotContents().Delete(ctx, vsc.Name, metav1.DeleteOptions{})
		if err != nil && !apierrors.IsNotFound(err) {
			c.rec.Event(vs, v1.EventTypeWarning, ReasonSnapshotContentObjectDelete, "Failed to delete snapshot content API object")
			return fmt.Errorf("deleting content %s: %w", vsc.Name, err)
		}
		klog.FromContext(ctx).V(2).Info("Deleted snapshot content", "content", vsc.Name)
	}
	if isDynamic(vs) {
		if err := c.releasePVC(ctx, vs.Namespace, *vs.Spec.Source.PersistentVolumeClaimName, vs.UID); err != nil {
			c.rec.Event(vs, v1.EventTypeWarning, ReasonErrorPVCFinalizer, "Error check and remove PVC Finalizer for VolumeSnapshot")
			return err
		}
	}
	if len(plan.RemoveFinalizers) > 0 {
		updated, err := c.snap.SnapshotV1().VolumeSnapshots(vs.Namespace).Patch(ctx, vs.Name, types.MergePatchType,
			finalizersPatch(vs.ResourceVersion, withoutFinalizers(vs.Finalizers, plan.RemoveFinalizers...)), metav1.PatchOptions{})
		if apierrors.IsNotFound(err) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("removing snapshot finalizers: %w", err)
		}
		c.freshVS.Remember(key(vs), updated)
	}
	return nil
}

func typeOf(vs *crdv1.VolumeSnapshot) string {
	if isDynamic(vs) {
		return typeDynamic
	}
	return typeStatic
}

// protectPVC adds the pvc-as-source finalizer. The patch merges into the
// finalizer list, so it needs no fresh copy and cannot conflict.
func (c *Controller) protectPVC(ctx context.Context, pvc *v1.PersistentVolumeClaim) error {
	unlock := c.pvcLocks.Lock(pvc.Namespace + "/" + pvc.Name)
	defer unlock()
	k := pvc.Namespace + "/" + pvc.Name
	if cached, err := c.pvcLister.PersistentVolumeClaims(pvc.Namespace).Get(pvc.Name); err == nil {
		pvc = c.freshPVC.Latest(k, cached)
	}
	if slices.Contains(pvc.Finalizers, FinalizerPVCAsSource) {
		return nil
	}
	patch := mustJSON(map[string]any{"metadata": map[string]any{"finalizers": []string{FinalizerPVCAsSource}}})
	updated, err := c.kube.CoreV1().PersistentVolumeClaims(pvc.Namespace).Patch(ctx, pvc.Name, types.StrategicMergePatchType, patch, metav1.PatchOptions{})
	if err != nil {
		return fmt.Errorf("adding finalizer to PVC %s/%s: %w", pvc.Namespace, pvc.Name, err)
	}
	if slim, err := stripCoreObject(updated); err == nil {
		c.freshPVC.Remember(k, slim.(*v1.PersistentVolumeClaim))
	}
	return nil
}

// releasePVC removes the pvc-as-source finalizer once no snapshot (other
// than ignore) still needs the PVC. protectPVC and releasePVC of one PVC
// never run at once in a controller (and only the leader runs), so the
// patch needs no resourceVersion: a stale cached PVC cannot make it fail.
func (c *Controller) releasePVC(ctx context.Context, ns, name string, ignore types.UID) error {
	unlock := c.pvcLocks.Lock(ns + "/" + name)
	defer unlock()
	pvc, err := c.pvcLister.PersistentVolumeClaims(ns).Get(name)
	if apierrors.IsNotFound(err) {
		c.freshPVC.Forget(ns + "/" + name)
		return nil
	}
	if err != nil {
		return err
	}
	pvc = c.freshPVC.Latest(ns+"/"+name, pvc)
	if !slices.Contains(pvc.Finalizers, FinalizerPVCAsSource) {
		return nil
	}
	items, err := c.vsIndex.ByIndex(indexBySource, ns+"/"+name)
	if err != nil {
		return err
	}
	for _, it := range items {
		vs, ok := it.(*crdv1.VolumeSnapshot)
		if !ok || vs.UID == ignore {
			continue
		}
		vs = c.freshVS.Latest(key(vs), vs)
		exists := false
		if vsc, _ := c.vscLister.Get(contentNameOf(vs)); vsc != nil {
			exists = true
		}
		if holdsPVC(vs, name, exists) {
			return nil
		}
	}
	patch := mustJSON(map[string]any{"metadata": map[string]any{
		"$deleteFromPrimitiveList/finalizers": []string{FinalizerPVCAsSource},
	}})
	updated, err := c.kube.CoreV1().PersistentVolumeClaims(ns).Patch(ctx, name, types.StrategicMergePatchType, patch, metav1.PatchOptions{})
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("removing finalizer from PVC %s/%s: %w", ns, name, err)
	}
	if slim, err := stripCoreObject(updated); err == nil {
		c.freshPVC.Remember(ns+"/"+name, slim.(*v1.PersistentVolumeClaim))
	}
	klog.FromContext(ctx).V(2).Info("Released source PVC", "pvc", ns+"/"+name)
	return nil
}

// syncContentKey checks a content from the common controller's side:
// validity, its finalizer once bound, and an orphan being deleted by hand.
func (c *Controller) syncContentKey(ctx context.Context, name string) (ctrl.Result, error) {
	vsc, err := c.content(name)
	if err != nil || vsc == nil {
		if vsc == nil {
			c.freshVSC.Forget(name)
		}
		return ctrl.Result{}, err
	}
	hasVol := vsc.Spec.Source.VolumeHandle != nil && *vsc.Spec.Source.VolumeHandle != ""
	hasSnap := vsc.Spec.Source.SnapshotHandle != nil && *vsc.Spec.Source.SnapshotHandle != ""
	if hasVol == hasSnap {
		c.rec.Event(vsc, v1.EventTypeWarning, ReasonContentValidationError, "Exactly one of VolumeHandle and SnapshotHandle should be specified")
		return ctrl.Result{}, nil
	}
	ref := vsc.Spec.VolumeSnapshotRef
	if ref.UID == "" {
		return ctrl.Result{}, nil
	}
	if vsc.DeletionTimestamp == nil && !slices.Contains(vsc.Finalizers, FinalizerContentBound) {
		updated, err := c.snap.SnapshotV1().VolumeSnapshotContents().Patch(ctx, vsc.Name, types.MergePatchType,
			finalizersPatch(vsc.ResourceVersion, withFinalizers(vsc.Finalizers, FinalizerContentBound)), metav1.PatchOptions{})
		if err != nil {
			return ctrl.Result{}, err
		}
		c.freshVSC.Remember(name, updated)
		vsc = updated
	}
	if vsc.DeletionTimestamp != nil && vsc.Annotations[AnnBeingDeleted] != annYes {
		vs, err := c.vsLister.VolumeSnapshots(ref.Namespace).Get(ref.Name)
		if apierrors.IsNotFound(err) || (err == nil && vs.UID != ref.UID) {
			// Its snapshot is gone and it is being deleted: let the
			// sidecar release it per its policy instead of hanging.
			updated, err := c.snap.SnapshotV1().VolumeSnapshotContents().Patch(ctx, vsc.Name, types.MergePatchType,
				annotationPatch(AnnBeingDeleted, annYes), metav1.PatchOptions{})
			if err != nil && !apierrors.IsNotFound(err) {
				return ctrl.Result{}, err
			}
			if err == nil {
				c.freshVSC.Remember(name, updated)
			}
		}
	}
	return ctrl.Result{}, nil
}

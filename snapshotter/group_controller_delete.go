package snapshotter

import (
	"context"
	"errors"
	"fmt"

	groupv1 "github.com/kubernetes-csi/external-snapshotter/client/v8/apis/volumegroupsnapshot/v1"
	crdv1 "github.com/kubernetes-csi/external-snapshotter/client/v8/apis/volumesnapshot/v1"
	v1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/klog/v2"
)

// deleteGroup handles a group snapshot with a deletion timestamp: unless
// a member is being restored from, it marks its content being deleted,
// deletes the content under policy Delete, deletes every member snapshot,
// and drops its finalizer (under Delete, once the content object is gone).
func (c *Controller) deleteGroup(ctx context.Context, vgs *groupv1.VolumeGroupSnapshot) error {
	g := c.groups
	vgsc, err := c.groupContent(groupContentNameOf(vgs))
	if err != nil {
		return err
	}
	if vgsc != nil && !groupPointsBack(vgs, vgsc) {
		vgsc = nil
	}
	members, err := c.membersOf(vgs)
	if err != nil {
		return err
	}
	restoring := ""
	for _, m := range members {
		items, _ := c.pvcIndex.ByIndex(indexByRestore, m.Namespace+"/"+m.Name)
		for _, it := range items {
			// A claim being deleted restores nothing any more.
			if pvc, ok := it.(*v1.PersistentVolumeClaim); ok && pvc.DeletionTimestamp == nil && restoresFrom(pvc, m.Name) {
				restoring = m.Name
			}
		}
	}
	plan := decideGroupDeletion(vgs, vgsc, restoring)
	switch {
	case plan.Skip:
		return nil
	case plan.Blocked != "":
		g.rec.Event(vgs, v1.EventTypeWarning, ReasonSnapshotDeletePending, plan.Blocked)
		return errors.New(plan.Blocked)
	}
	api := c.snap.GroupsnapshotV1()
	if plan.MarkBeingDeleted {
		updated, err := api.VolumeGroupSnapshotContents().Patch(ctx, vgsc.Name, mergePatch, annotationPatch(AnnGroupBeingDeleted, annYes), metav1.PatchOptions{})
		if err != nil && !apierrors.IsNotFound(err) {
			return fmt.Errorf("marking group content %s being deleted: %w", vgsc.Name, err)
		}
		if err == nil {
			g.freshVGSC.Remember(vgsc.Name, updated)
		}
	}
	if plan.DeleteContent {
		err := api.VolumeGroupSnapshotContents().Delete(ctx, vgsc.Name, metav1.DeleteOptions{})
		if err != nil && !apierrors.IsNotFound(err) {
			g.rec.Event(vgs, v1.EventTypeWarning, ReasonGroupSnapshotContentObjectDelete, "Failed to delete group snapshot content API object")
			return fmt.Errorf("deleting group content %s: %w", vgsc.Name, err)
		}
		klog.FromContext(ctx).V(2).Info("Deleted group snapshot content", "content", vgsc.Name)
	}
	if plan.DeleteMembers {
		for _, m := range members {
			if m.DeletionTimestamp != nil {
				continue
			}
			err := c.snap.SnapshotV1().VolumeSnapshots(m.Namespace).Delete(ctx, m.Name, metav1.DeleteOptions{})
			if err != nil && !apierrors.IsNotFound(err) {
				msg := fmt.Sprintf("failed to delete snapshot API object %s part of group snapshot %s: %v", key(m), groupKey(vgs), err)
				g.rec.Event(vgs, v1.EventTypeWarning, ReasonSnapshotDeleteError, msg)
				return errors.New(msg)
			}
		}
	}
	if plan.RemoveFinalizer {
		updated, err := api.VolumeGroupSnapshots(vgs.Namespace).Patch(ctx, vgs.Name, mergePatch,
			finalizersPatch(vgs.ResourceVersion, withoutFinalizers(vgs.Finalizers, FinalizerGroupSnapshotBound)), metav1.PatchOptions{})
		if apierrors.IsNotFound(err) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("removing group snapshot finalizer: %w", err)
		}
		g.freshVGS.Remember(groupKey(vgs), updated)
	}
	return nil
}

// membersOf lists the member snapshots of vgs (by owner reference, uid
// included).
func (c *Controller) membersOf(vgs *groupv1.VolumeGroupSnapshot) ([]*crdv1.VolumeSnapshot, error) {
	items, err := c.groups.vsIndex.ByIndex(indexMembersByGroup, vgs.Namespace+"^"+vgs.Name)
	if err != nil {
		return nil, err
	}
	var out []*crdv1.VolumeSnapshot
	for _, it := range items {
		vs, ok := it.(*crdv1.VolumeSnapshot)
		if !ok {
			continue
		}
		if _, uid, member := groupOf(vs); member && uid == vgs.UID {
			out = append(out, vs)
		}
	}
	return out, nil
}

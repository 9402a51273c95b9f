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
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/klog/v2"

	"github.com/csi-kit/sidecars/internal/ctrl"
)

// ensureMembers creates, binds and fills the member snapshot and content
// of every entry of the group content's snapshot list. Every step is
// idempotent: a member half made by an earlier attempt is completed.
func (c *Controller) ensureMembers(ctx context.Context, vgs *groupv1.VolumeGroupSnapshot, vgsc *groupv1.VolumeGroupSnapshotContent) error {
	// The member secret is the group's: the same reference the group
	// content carries (resolved from the group class when it was created).
	var secret *v1.SecretReference
	if n, ns := vgsc.Annotations[AnnGroupDeletionSecretName], vgsc.Annotations[AnnGroupDeletionSecretNamespace]; n != "" && ns != "" {
		secret = &v1.SecretReference{Name: n, Namespace: ns}
	}
	for _, info := range vgsc.Status.VolumeSnapshotInfoList {
		if err := c.ensureMember(ctx, vgs, vgsc, info, secret); err != nil {
			return fmt.Errorf("member snapshot of volume %s: %w", info.VolumeHandle, err)
		}
	}
	return nil
}

func (c *Controller) ensureMember(ctx context.Context, vgs *groupv1.VolumeGroupSnapshot, vgsc *groupv1.VolumeGroupSnapshotContent, info groupv1.VolumeSnapshotInfo, secret *v1.SecretReference) error {
	g := c.groups
	pv, err := c.volumeByHandle(vgsc.Spec.Driver, info.VolumeHandle)
	if err != nil {
		return err
	}
	vsc, err := c.createOrGetMemberContent(ctx, memberContent(vgs, vgsc, info, pv, secret))
	if err != nil {
		return fmt.Errorf("creating member content: %w", err)
	}
	vs, err := c.createOrGetMemberSnapshot(ctx, memberSnapshot(vgs, info, pv))
	if err != nil {
		return fmt.Errorf("creating member snapshot: %w", err)
	}
	if _, uid, ok := groupOf(vs); !ok || uid != vgs.UID || vs.UID == "" {
		return fmt.Errorf("snapshot %s exists and is not a member of group snapshot %s", key(vs), groupKey(vgs))
	}
	switch ref := vsc.Spec.VolumeSnapshotRef; ref.UID {
	case vs.UID:
	case "":
		patch := mustJSON(map[string]any{"spec": map[string]any{"volumeSnapshotRef": map[string]any{"uid": string(vs.UID)}}})
		updated, err := c.snap.SnapshotV1().VolumeSnapshotContents().Patch(ctx, vsc.Name, mergePatch, patch, metav1.PatchOptions{})
		if err != nil {
			return fmt.Errorf("binding member content %s: %w", vsc.Name, err)
		}
		g.freshVSC.Remember(vsc.Name, updated)
		vsc = updated
	default:
		return fmt.Errorf("member content %s is bound to another snapshot (uid %s)", vsc.Name, ref.UID)
	}
	if st := vs.Status; st == nil || st.BoundVolumeSnapshotContentName == nil || *st.BoundVolumeSnapshotContentName == "" ||
		st.VolumeGroupSnapshotName == nil || *st.VolumeGroupSnapshotName != vgs.Name {
		patch := mustJSON(map[string]any{"status": map[string]any{"boundVolumeSnapshotContentName": vsc.Name, "volumeGroupSnapshotName": vgs.Name}})
		updated, err := c.snap.SnapshotV1().VolumeSnapshots(vs.Namespace).Patch(ctx, vs.Name, mergePatch, patch, metav1.PatchOptions{}, "status")
		if err != nil {
			return fmt.Errorf("binding member snapshot %s: %w", key(vs), err)
		}
		g.freshVS.Remember(key(vs), updated)
	}
	if st := memberContentStatus(vsc, vgsc, info); st != nil {
		updated, err := c.snap.SnapshotV1().VolumeSnapshotContents().Patch(ctx, vsc.Name, mergePatch, contentStatusPatch(st), metav1.PatchOptions{}, "status")
		if err != nil {
			return fmt.Errorf("writing the status of member content %s: %w", vsc.Name, err)
		}
		g.freshVSC.Remember(vsc.Name, updated)
	}
	return nil
}

// volumeByHandle finds the PV of a volume handle; nil when there is none.
func (c *Controller) volumeByHandle(driver, handle string) (*v1.PersistentVolume, error) {
	items, err := c.groups.pvIndex.ByIndex(indexPVByHandle, driver+"^"+handle)
	if err != nil {
		return nil, err
	}
	switch len(items) {
	case 0:
		return nil, nil
	case 1:
		pv, _ := items[0].(*v1.PersistentVolume)
		return pv, nil
	}
	return nil, fmt.Errorf("%d PVs of driver %s have volume handle %s: keep one", len(items), driver, handle)
}

func (c *Controller) createOrGetMemberContent(ctx context.Context, want *crdv1.VolumeSnapshotContent) (*crdv1.VolumeSnapshotContent, error) {
	g := c.groups
	if cached, err := c.vscLister.Get(want.Name); err == nil {
		return g.freshVSC.Latest(want.Name, cached), nil
	}
	if mine, ok := g.freshVSC.Get(want.Name); ok {
		return mine, nil
	}
	api := c.snap.SnapshotV1().VolumeSnapshotContents()
	got, err := api.Create(ctx, want, metav1.CreateOptions{})
	if apierrors.IsAlreadyExists(err) {
		got, err = api.Get(ctx, want.Name, metav1.GetOptions{})
	} else if err == nil {
		klog.FromContext(ctx).V(2).Info("Created member snapshot content", "content", want.Name)
	}
	if err != nil {
		return nil, err
	}
	g.freshVSC.Remember(want.Name, got)
	return got, nil
}

func (c *Controller) createOrGetMemberSnapshot(ctx context.Context, want *crdv1.VolumeSnapshot) (*crdv1.VolumeSnapshot, error) {
	g := c.groups
	k := key(want)
	if cached, err := c.vsLister.VolumeSnapshots(want.Namespace).Get(want.Name); err == nil {
		return g.freshVS.Latest(k, cached), nil
	}
	if mine, ok := g.freshVS.Get(k); ok {
		return mine, nil
	}
	api := c.snap.SnapshotV1().VolumeSnapshots(want.Namespace)
	got, err := api.Create(ctx, want, metav1.CreateOptions{})
	if apierrors.IsAlreadyExists(err) {
		got, err = api.Get(ctx, want.Name, metav1.GetOptions{})
	} else if err == nil {
		klog.FromContext(ctx).V(2).Info("Created member snapshot", "snapshot", k)
	}
	if err != nil {
		return nil, err
	}
	g.freshVS.Remember(k, got)
	return got, nil
}

// syncMemberSnapshot is the snapshot part's sync of a group member: the
// group part creates and binds it; here it gets the finalizers of a bound
// snapshot and its content's status. It never gets a class or a content
// of its own.
func (c *Controller) syncMemberSnapshot(ctx context.Context, vs *crdv1.VolumeSnapshot) (ctrl.Result, error) {
	if vs.Status == nil || vs.Status.BoundVolumeSnapshotContentName == nil || *vs.Status.BoundVolumeSnapshotContentName == "" {
		return ctrl.Result{}, nil // not bound yet: the group part's write wakes it
	}
	vsc, err := c.content(*vs.Status.BoundVolumeSnapshotContentName)
	if err != nil {
		return ctrl.Result{}, err
	}
	if vsc == nil || !pointsBack(vs, vsc) {
		return ctrl.Result{}, nil // not bound yet, as above
	}
	if vs, err = c.addSnapshotFinalizers(ctx, vs, vsc, nil); err != nil {
		return ctrl.Result{}, err
	}
	return c.updateStatus(ctx, vs, vsc)
}

// releaseMember decides on a deleted snapshot that is, or was, a group
// member: refused with SnapshotDeletePending while its group snapshot
// exists (being deleted or not, as upstream), else its in-group finalizer goes and
// the snapshot's deletion continues.
func (c *Controller) releaseMember(ctx context.Context, vs *crdv1.VolumeSnapshot) (*crdv1.VolumeSnapshot, error) {
	name, uid := memberGroupName(vs)
	group, err := c.lookupGroup(ctx, vs.Namespace, name, uid)
	if err != nil {
		return vs, err
	}
	blocked, drop := memberDeletion(vs, group)
	if blocked != "" {
		c.rec.Event(vs, v1.EventTypeWarning, ReasonSnapshotDeletePending, blocked)
		return vs, errors.New(blocked)
	}
	if !drop {
		return vs, nil
	}
	updated, err := c.snap.SnapshotV1().VolumeSnapshots(vs.Namespace).Patch(ctx, vs.Name, mergePatch,
		finalizersPatch(vs.ResourceVersion, withoutFinalizers(vs.Finalizers, FinalizerSnapshotInGroup)), metav1.PatchOptions{})
	if err != nil {
		return vs, fmt.Errorf("removing the in-group finalizer: %w", err)
	}
	c.freshVS.Remember(key(vs), updated)
	return updated.DeepCopy(), nil
}

// lookupGroup returns the group snapshot ns/name (with uid, when not
// empty), or nil when it is gone. With groups off it asks the API server:
// members may outlive the switch.
func (c *Controller) lookupGroup(ctx context.Context, ns, name string, uid types.UID) (*groupv1.VolumeGroupSnapshot, error) {
	if name == "" {
		return nil, nil
	}
	var vgs *groupv1.VolumeGroupSnapshot
	var err error
	if c.groups != nil {
		vgs, err = c.groups.vgsLister.VolumeGroupSnapshots(ns).Get(name)
	} else {
		vgs, err = c.snap.GroupsnapshotV1().VolumeGroupSnapshots(ns).Get(ctx, name, metav1.GetOptions{})
	}
	switch {
	case apierrors.IsNotFound(err):
		return nil, nil
	case err != nil:
		return nil, fmt.Errorf("looking up group snapshot %s/%s: %w", ns, name, err)
	case uid != "" && vgs.UID != uid:
		return nil, nil
	}
	return vgs, nil
}

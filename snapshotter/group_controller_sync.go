package snapshotter

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"sort"
	"time"

	groupv1 "github.com/kubernetes-csi/external-snapshotter/client/v8/apis/volumegroupsnapshot/v1"
	v1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/klog/v2"

	"github.com/csi-kit/sidecars/internal/params"
)

const (
	mergePatch = types.MergePatchType
	// minuteOfTrust is how long an object this process created is taken
	// as existing while the cache has not seen it.
	minuteOfTrust = time.Minute
)

// syncStaticGroup binds vgs to the pre-provisioned content it names.
func (c *Controller) syncStaticGroup(ctx context.Context, vgs *groupv1.VolumeGroupSnapshot, contentName string) error {
	g := c.groups
	vgsc, err := c.groupContent(contentName)
	if err != nil {
		return err
	}
	if vgsc == nil {
		return c.reportGroupProblem(ctx, vgs, &problem{ReasonGroupSnapshotContentMissing, "VolumeGroupSnapshotContent is missing"}, true)
	}
	if p := checkStaticGroupContent(vgs, vgsc); p != nil {
		return c.reportGroupProblem(ctx, vgs, p, true)
	}
	if setUID, setClass, addFin := groupBindPatch(vgs, vgsc); setUID || setClass != nil || addFin {
		meta := map[string]any{"resourceVersion": vgsc.ResourceVersion}
		if addFin {
			meta["finalizers"] = withFinalizers(vgsc.Finalizers, FinalizerGroupContentBound)
		}
		patch := map[string]any{"metadata": meta}
		spec := map[string]any{}
		if setUID {
			spec["volumeGroupSnapshotRef"] = map[string]any{"uid": string(vgs.UID)}
		}
		if setClass != nil {
			spec["volumeGroupSnapshotClassName"] = *setClass
		}
		if len(spec) > 0 {
			patch["spec"] = spec
		}
		updated, err := c.snap.GroupsnapshotV1().VolumeGroupSnapshotContents().Patch(ctx, vgsc.Name, mergePatch, mustJSON(patch), metav1.PatchOptions{})
		if err != nil {
			if !apierrors.IsConflict(err) {
				return c.reportGroupProblem(ctx, vgs, &problem{ReasonGroupSnapshotBindFailed, fmt.Sprintf("GroupSnapshot failed to bind VolumeGroupSnapshotContent, %v", err)}, true)
			}
			return err
		}
		g.freshVGSC.Remember(vgsc.Name, updated)
		vgsc = updated
	}
	if vgs, err = c.addGroupFinalizer(ctx, vgs); err != nil {
		return err
	}
	return c.updateGroupStatus(ctx, vgs, vgsc)
}

// syncDynamicGroup creates the content of a dynamic group snapshot, then,
// once the sidecar has cut the group, its members, and mirrors the
// content's status.
func (c *Controller) syncDynamicGroup(ctx context.Context, vgs *groupv1.VolumeGroupSnapshot, sel *metav1.LabelSelector) error {
	vgsc, err := c.groupContent(dynamicGroupContentName(vgs))
	if err != nil {
		return err
	}
	if vgsc != nil {
		if p := checkDynamicGroupContent(vgs, vgsc); p != nil {
			return c.reportGroupProblem(ctx, vgs, p, true)
		}
	} else {
		if vgs.Status != nil && vgs.Status.ReadyToUse != nil && *vgs.Status.ReadyToUse {
			return c.reportGroupProblem(ctx, vgs, &problem{ReasonGroupSnapshotContentMissing, "VolumeGroupSnapshotContent is missing"}, true)
		}
		if vgs, vgsc, err = c.createGroupContent(ctx, vgs, sel); err != nil {
			return err
		}
	}
	if vgs, err = c.addGroupFinalizer(ctx, vgs); err != nil {
		return err
	}
	if membersDue(vgsc) {
		if err := c.ensureMembers(ctx, vgs, vgsc); err != nil {
			return err
		}
	}
	return c.updateGroupStatus(ctx, vgs, vgsc)
}

// selectedVolumes lists the claims a dynamic group selects (matchLabels
// only, as upstream, straight from the API server: cached claims carry no
// labels) and checks them and their volumes.
func (c *Controller) selectedVolumes(ctx context.Context, vgs *groupv1.VolumeGroupSnapshot, sel *metav1.LabelSelector, driver string) ([]string, string, *problem, error) {
	list, err := c.kube.CoreV1().PersistentVolumeClaims(vgs.Namespace).List(ctx, metav1.ListOptions{LabelSelector: labels.Set(sel.MatchLabels).String()})
	if err != nil {
		return nil, "", nil, fmt.Errorf("listing the PVCs of group snapshot %s: %w", groupKey(vgs), err)
	}
	claims := make([]*v1.PersistentVolumeClaim, 0, len(list.Items))
	for i := range list.Items {
		claims = append(claims, &list.Items[i])
	}
	sort.Slice(claims, func(i, j int) bool { return claims[i].Name < claims[j].Name })
	var lookupErr error
	pvOf := func(name string) *v1.PersistentVolume {
		pv, err := c.pvLister.Get(name)
		if apierrors.IsNotFound(err) {
			pv, err = c.kube.CoreV1().PersistentVolumes().Get(ctx, name, metav1.GetOptions{})
		}
		if err != nil {
			if !apierrors.IsNotFound(err) {
				lookupErr = err
			}
			return nil
		}
		return pv
	}
	handles, drv, p := groupVolumes(vgs, claims, pvOf, driver)
	if lookupErr != nil {
		return nil, "", nil, lookupErr
	}
	return handles, drv, p, nil
}

// resolveGroupClass returns the class of a dynamic group: the named one,
// or the one default group class of the driver of its first volume,
// which is then written into its spec.
func (c *Controller) resolveGroupClass(ctx context.Context, vgs *groupv1.VolumeGroupSnapshot, sel *metav1.LabelSelector) (*groupv1.VolumeGroupSnapshot, *groupv1.VolumeGroupSnapshotClass, error) {
	g := c.groups
	if n := vgs.Spec.VolumeGroupSnapshotClassName; n != nil && *n != "" {
		class, err := g.classLister.Get(*n)
		if err != nil {
			return vgs, nil, c.reportGroupProblem(ctx, vgs, &problem{ReasonGetGroupSnapshotClassFailed, fmt.Sprintf("failed to get group snapshot class with error %v", err)}, false)
		}
		return vgs, class, nil
	}
	_, driver, p, err := c.selectedVolumes(ctx, vgs, sel, "")
	if err != nil {
		return vgs, nil, err
	}
	var name string
	if p == nil {
		var classes []*groupv1.VolumeGroupSnapshotClass
		if classes, err = g.classLister.List(labels.Everything()); err == nil {
			name, err = chooseDefaultGroupClass(classes, driver)
		}
		if err != nil {
			p = &problem{Message: err.Error()}
		}
	}
	if p != nil {
		return vgs, nil, c.reportGroupProblem(ctx, vgs, &problem{ReasonSetDefaultGroupSnapshotClassFailed, fmt.Sprintf("Failed to set default group snapshot class with error %v", p.Message)}, false)
	}
	patch := mustJSON(map[string]any{"spec": map[string]any{"volumeGroupSnapshotClassName": name}})
	updated, err := c.snap.GroupsnapshotV1().VolumeGroupSnapshots(vgs.Namespace).Patch(ctx, vgs.Name, mergePatch, patch, metav1.PatchOptions{})
	if err != nil {
		return vgs, nil, fmt.Errorf("setting default group snapshot class %q: %w", name, err)
	}
	g.freshVGS.Remember(groupKey(vgs), updated)
	klog.FromContext(ctx).V(2).Info("Default group snapshot class set", "class", name)
	class, err := g.classLister.Get(name)
	return updated.DeepCopy(), class, err
}

// createGroupContent creates the content of a dynamic group snapshot and
// records the binding in its status.
func (c *Controller) createGroupContent(ctx context.Context, vgs *groupv1.VolumeGroupSnapshot, sel *metav1.LabelSelector) (*groupv1.VolumeGroupSnapshot, *groupv1.VolumeGroupSnapshotContent, error) {
	g := c.groups
	vgs, class, err := c.resolveGroupClass(ctx, vgs, sel)
	if err != nil {
		return vgs, nil, err
	}
	fail := func(msg string) error {
		return c.reportGroupProblem(ctx, vgs, &problem{ReasonGroupSnapshotContentCreationFailed, "failed to create group snapshot content with error " + msg}, true)
	}
	handles, _, p, err := c.selectedVolumes(ctx, vgs, sel, class.Driver)
	if err != nil {
		return vgs, nil, err
	}
	if p != nil {
		if p.Reason == ReasonCreateGroupSnapshotContentFailed {
			g.rec.Event(vgs, v1.EventTypeWarning, p.Reason, p.Message)
		}
		return vgs, nil, fail(p.Message)
	}
	name := dynamicGroupContentName(vgs)
	secret, err := params.GroupSnapshotterSecret.Resolve(class.Parameters, params.GroupSnapshotVars(name, vgs.Name, vgs.Namespace))
	if err != nil {
		return vgs, nil, fail(err.Error())
	}
	vgsc := &groupv1.VolumeGroupSnapshotContent{
		ObjectMeta: metav1.ObjectMeta{Name: name, Finalizers: []string{FinalizerGroupContentBound}},
		Spec: groupv1.VolumeGroupSnapshotContentSpec{
			VolumeGroupSnapshotRef: v1.ObjectReference{
				Kind: groupOwnerKind, APIVersion: groupOwnerAPIVersion,
				Namespace: vgs.Namespace, Name: vgs.Name, UID: vgs.UID, ResourceVersion: vgs.ResourceVersion,
			},
			DeletionPolicy:               class.DeletionPolicy,
			Driver:                       class.Driver,
			VolumeGroupSnapshotClassName: ptr(class.Name),
			Source:                       groupv1.VolumeGroupSnapshotContentSource{VolumeHandles: handles},
		},
	}
	if secret != nil {
		vgsc.Annotations = map[string]string{AnnGroupDeletionSecretName: secret.Name, AnnGroupDeletionSecretNamespace: secret.Namespace}
	}
	created, err := c.snap.GroupsnapshotV1().VolumeGroupSnapshotContents().Create(ctx, vgsc, metav1.CreateOptions{})
	switch {
	case apierrors.IsAlreadyExists(err):
		created, err = c.snap.GroupsnapshotV1().VolumeGroupSnapshotContents().Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return vgs, nil, err
		}
		if p := checkDynamicGroupContent(vgs, created); p != nil {
			return vgs, nil, c.reportGroupProblem(ctx, vgs, p, true)
		}
	case err != nil:
		g.rec.Event(vgs, v1.EventTypeWarning, ReasonCreateGroupSnapshotContentFailed, fmt.Sprintf("Error creating volume group snapshot content object for group snapshot %s: %v.", groupKey(vgs), err))
		return vgs, nil, fail(err.Error())
	default:
		klog.FromContext(ctx).V(2).Info("Created group snapshot content", "content", name)
		if !c.opts.DisableNormalEvents {
			g.rec.Event(vgs, v1.EventTypeNormal, ReasonCreatingGroupSnapshot, fmt.Sprintf("Waiting for a group snapshot %s to be created by the CSI driver.", groupKey(vgs)))
		}
	}
	g.freshVGSC.Remember(name, created)
	return vgs, created, nil
}

// addGroupFinalizer puts the bound finalizer on a group snapshot bound to
// its content, whatever the policy.
func (c *Controller) addGroupFinalizer(ctx context.Context, vgs *groupv1.VolumeGroupSnapshot) (*groupv1.VolumeGroupSnapshot, error) {
	if slices.Contains(vgs.Finalizers, FinalizerGroupSnapshotBound) {
		return vgs, nil
	}
	updated, err := c.snap.GroupsnapshotV1().VolumeGroupSnapshots(vgs.Namespace).Patch(ctx, vgs.Name, mergePatch,
		finalizersPatch(vgs.ResourceVersion, withFinalizers(vgs.Finalizers, FinalizerGroupSnapshotBound)), metav1.PatchOptions{})
	if err != nil {
		if !apierrors.IsConflict(err) {
			c.groups.rec.Event(vgs, v1.EventTypeWarning, ReasonGroupSnapshotFinalizerError, fmt.Sprintf("Failed to check and update group snapshot: %v", err))
		}
		return vgs, err
	}
	c.groups.freshVGS.Remember(groupKey(vgs), updated)
	return updated.DeepCopy(), nil
}

// updateGroupStatus mirrors the content into the group snapshot's status.
func (c *Controller) updateGroupStatus(ctx context.Context, vgs *groupv1.VolumeGroupSnapshot, vgsc *groupv1.VolumeGroupSnapshotContent) error {
	g := c.groups
	ch := mirrorGroupStatus(vgs, vgsc)
	if ch == nil {
		return nil
	}
	updated, err := c.snap.GroupsnapshotV1().VolumeGroupSnapshots(vgs.Namespace).Patch(ctx, vgs.Name, mergePatch,
		groupStatusPatch(ch.Status), metav1.PatchOptions{}, "status")
	if err != nil {
		g.rec.Event(vgs, v1.EventTypeWarning, ReasonGroupSnapshotStatusUpdateFailed, fmt.Sprintf("GroupSnapshot status update failed, %v", err))
		return err
	}
	g.freshVGS.Remember(groupKey(vgs), updated)
	if !c.opts.DisableNormalEvents {
		if ch.Created {
			g.rec.Event(updated, v1.EventTypeNormal, ReasonGroupSnapshotCreated, fmt.Sprintf("GroupSnapshot %s was successfully created by the CSI driver.", groupKey(vgs)))
		}
		if ch.Ready {
			g.rec.Event(updated, v1.EventTypeNormal, ReasonGroupSnapshotReady, fmt.Sprintf("GroupSnapshot %s is ready to use.", groupKey(vgs)))
		}
	}
	return nil
}

// reportGroupProblem records p as a Warning event and in the group
// snapshot's status (skipped when the same message is there), and returns
// p so the group is retried with backoff.
func (c *Controller) reportGroupProblem(ctx context.Context, vgs *groupv1.VolumeGroupSnapshot, p *problem, unready bool) error {
	g := c.groups
	g.rec.Event(vgs, v1.EventTypeWarning, p.Reason, p.Message)
	if st := groupErrorStatus(vgs, p.Message, unready, c.opts.Clock.Now()); st != nil {
		updated, err := c.snap.GroupsnapshotV1().VolumeGroupSnapshots(vgs.Namespace).Patch(ctx, vgs.Name, mergePatch,
			groupStatusPatch(st), metav1.PatchOptions{}, "status")
		if err != nil {
			klog.FromContext(ctx).Error(err, "Failed to record group snapshot error in status", "error", p.Message)
		} else {
			g.freshVGS.Remember(groupKey(vgs), updated)
		}
	}
	return p
}

// groupStatusPatch replaces the fields of st; an absent error is cleared.
func groupStatusPatch(st *groupv1.VolumeGroupSnapshotStatus) []byte {
	m := map[string]any{}
	_ = json.Unmarshal(mustJSON(st), &m)
	if st.Error == nil {
		m["error"] = nil
	}
	return mustJSON(map[string]any{"status": m})
}

package snapshotter

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"

	groupv1 "github.com/kubernetes-csi/external-snapshotter/client/v8/apis/volumegroupsnapshot/v1"
	v1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/klog/v2"

	"github.com/csi-kit/sidecars/csiconn"
	"github.com/csi-kit/sidecars/internal/params"
)

// steps is the content loop over this group sidecar's calls and
// decideGroupContent.
func (g *groupSidecar) steps() contentSync[*groupv1.VolumeGroupSnapshotContent, GroupSnapshotInfo] {
	return contentSync[*groupv1.VolumeGroupSnapshotContent, GroupSnapshotInfo]{kind: "group content", side: g,
		client: g.s.snap.GroupsnapshotV1().VolumeGroupSnapshotContents(),
		decide: decideGroupContent, mayRelease: groupShouldRelease, beingCreated: AnnGroupBeingCreated, fresh: g.fresh, polls: g.polls}
}

func (g *groupSidecar) lookup(name string) (*groupv1.VolumeGroupSnapshotContent, error) {
	return g.contents.Get(name)
}

func (g *groupSidecar) handles(c *groupv1.VolumeGroupSnapshotContent) bool {
	return handlesGroup(c, g.s.opts.DriverName)
}

func (g *groupSidecar) create(ctx context.Context, c *groupv1.VolumeGroupSnapshotContent) (GroupSnapshotInfo, error) {
	ref := c.Spec.VolumeGroupSnapshotRef
	if ref.UID == "" {
		return GroupSnapshotInfo{}, fmt.Errorf("cannot create group snapshot: group content %s is not bound to a VolumeGroupSnapshot UID", c.Name)
	}
	class, err := g.class(c)
	if err != nil {
		return GroupSnapshotInfo{}, err
	}
	p, err := params.Strip(class.Parameters, params.SnapshotterKeys)
	if err != nil {
		return GroupSnapshotInfo{}, fmt.Errorf("failed to strip CSI parameters of VolumeGroupSnapshotClass %s: %w", class.Name, err)
	}
	if g.s.opts.ExtraCreateMetadata {
		p = maps.Clone(p)
		p[metaGroupSnapshotName] = ref.Name
		p[metaGroupSnapshotNamespace] = ref.Namespace
		p[metaGroupContentName] = c.Name
	}
	secrets, err := g.secrets(ctx, c, class)
	if err != nil {
		return GroupSnapshotInfo{}, err
	}
	name := SnapshotName(g.s.opts.GroupSnapshotNamePrefix, ref.UID, g.s.opts.GroupSnapshotNameUUIDLength)
	info, err := g.drv.CreateGroupSnapshot(ctx, name, c.Spec.Source.VolumeHandles, p, secrets)
	if err != nil {
		return info, &csiError{err}
	}
	if info.Handle == "" {
		return info, &csiError{errors.New("CreateVolumeGroupSnapshot returned an empty group snapshot ID")}
	}
	return info, nil
}

func (g *groupSidecar) statusPatch(c *groupv1.VolumeGroupSnapshotContent, info GroupSnapshotInfo) []byte {
	if st := groupContentStatusFor(c, info, g.s.opts.Clock.Now()); st != nil {
		return groupContentStatusPatch(st)
	}
	return nil
}

// poll asks GetVolumeGroupSnapshot about a pre-provisioned group
// snapshot, with the class's group-snapshotter-get secret when the content
// names a class.
func (g *groupSidecar) poll(ctx context.Context, c *groupv1.VolumeGroupSnapshotContent) (GroupSnapshotInfo, error) {
	var secrets map[string]string
	class, err := g.class(c)
	if err != nil {
		return GroupSnapshotInfo{}, err
	}
	if class != nil {
		ref, err := params.GroupSnapshotterGetSecret.Resolve(class.Parameters, params.GroupSnapshotVars(c.Name, "", ""))
		if err != nil {
			return GroupSnapshotInfo{}, err
		}
		if secrets, err = params.FetchSecret(ctx, g.s.kube.CoreV1(), ref); err != nil {
			return GroupSnapshotInfo{}, err
		}
	}
	ids := c.Spec.Source.GroupSnapshotHandles.VolumeSnapshotHandles
	return g.drv.GroupSnapshotStatus(ctx, groupBackendHandle(c), ids, secrets)
}

// class returns the group content's class, nil for a pre-provisioned one
// without a class. A dynamic group content needs its class, and the class
// must be for this driver.
func (g *groupSidecar) class(c *groupv1.VolumeGroupSnapshotContent) (*groupv1.VolumeGroupSnapshotClass, error) {
	name := c.Spec.VolumeGroupSnapshotClassName
	if name == nil || *name == "" {
		if len(c.Spec.Source.VolumeHandles) > 0 {
			return nil, fmt.Errorf("failed to take group snapshot %s without a VolumeGroupSnapshotClass", c.Name)
		}
		return nil, nil
	}
	class, err := g.classes.Get(*name)
	if err != nil {
		return nil, fmt.Errorf("failed to get VolumeGroupSnapshotClass %s of group content %s: %w", *name, c.Name, err)
	}
	if class.Driver != g.s.opts.DriverName {
		return nil, fmt.Errorf("VolumeGroupSnapshotClass %s is for driver %q, not %q", class.Name, class.Driver, g.s.opts.DriverName)
	}
	return class, nil
}

// secrets reads the group snapshotter secret for create and delete: the
// one referenced by the group content's annotations (written by the common
// controller), else the one the class names with
// csi.storage.k8s.io/group-snapshotter-secret-name and -namespace, its
// templates resolved; none when neither names one. class may be nil.
func (g *groupSidecar) secrets(ctx context.Context, c *groupv1.VolumeGroupSnapshotContent, class *groupv1.VolumeGroupSnapshotClass) (map[string]string, error) {
	name, okName := c.Annotations[AnnGroupDeletionSecretName]
	ns, okNS := c.Annotations[AnnGroupDeletionSecretNamespace]
	switch {
	case okName || okNS:
		if name == "" || ns == "" {
			return nil, fmt.Errorf("group content %s has an incomplete secret reference (annotations %s and %s)", c.Name, AnnGroupDeletionSecretName, AnnGroupDeletionSecretNamespace)
		}
		return params.FetchSecret(ctx, g.s.kube.CoreV1(), &v1.SecretReference{Name: name, Namespace: ns})
	case class == nil:
		return nil, nil
	}
	ref := c.Spec.VolumeGroupSnapshotRef
	sref, err := params.GroupSnapshotterSecret.Resolve(class.Parameters, params.GroupSnapshotVars(c.Name, ref.Name, ref.Namespace))
	if err != nil {
		return nil, err
	}
	return params.FetchSecret(ctx, g.s.kube.CoreV1(), sref)
}

// createFailed records a failed create or get in the group content: the
// being-created annotation while the driver may still be cutting the group
// snapshot, the error in status and an event (sent even when the status
// write fails). It returns err.
func (g *groupSidecar) createFailed(ctx context.Context, c *groupv1.VolumeGroupSnapshotContent, err error, static bool) error {
	var ce *csiError
	if !static && errors.As(err, &ce) {
		transient := classify(ce.err) == csiconn.Transient
		_, marked := c.Annotations[AnnGroupBeingCreated]
		if transient != marked {
			updated, aerr := g.setBeingCreated(ctx, c, transient)
			if aerr != nil {
				return errors.Join(err, aerr)
			}
			c = updated
		}
	}
	reason, msg := ReasonGroupSnapshotCreationFailed, "Failed to create group snapshot: "+err.Error()
	if static || c.Status != nil {
		reason, msg = ReasonGroupSnapshotContentCheckandUpdate, "Failed to check and update group snapshot content: "+err.Error()
	}
	g.rec.Event(c, v1.EventTypeWarning, reason, msg)
	if c.Status != nil && c.Status.Error != nil && c.Status.Error.Message != nil && *c.Status.Error.Message == msg {
		return err
	}
	now := metav1.NewTime(g.s.opts.Clock.Now())
	patch := mustJSON(map[string]any{"status": map[string]any{
		"readyToUse": false,
		"error":      map[string]any{"time": now, "message": msg},
	}})
	if _, perr := g.patchStatus(ctx, c.Name, patch); perr != nil {
		klog.FromContext(ctx).V(2).Info("Recording the error in the group content's status failed", "err", perr)
	}
	return err
}

func (g *groupSidecar) setBeingCreated(ctx context.Context, c *groupv1.VolumeGroupSnapshotContent, on bool) (*groupv1.VolumeGroupSnapshotContent, error) {
	val := ""
	if on {
		val = annYes
	}
	updated, err := g.s.snap.GroupsnapshotV1().VolumeGroupSnapshotContents().Patch(ctx, c.Name, types.MergePatchType,
		annotationPatch(AnnGroupBeingCreated, val), metav1.PatchOptions{})
	if err != nil {
		return c, fmt.Errorf("updating annotation %s of group content %s: %w", AnnGroupBeingCreated, c.Name, err)
	}
	g.fresh.Remember(c.Name, updated)
	return updated.DeepCopy(), nil
}

// deleteBackend deletes the group snapshot in the driver (the group and
// its member snapshot IDs), then clears the handle, readiness, creation
// time and error from the status. It returns the updated group content.
func (g *groupSidecar) deleteBackend(ctx context.Context, c *groupv1.VolumeGroupSnapshotContent) (*groupv1.VolumeGroupSnapshotContent, error) {
	handle, ids := groupBackendHandle(c), groupMemberIDs(c)
	if len(ids) == 0 {
		g.rec.Event(c, v1.EventTypeWarning, ReasonGroupSnapshotDeleteError, "Failed to delete group snapshot")
		return c, fmt.Errorf("cannot delete group snapshot %s of group content %s: no member snapshot IDs in its status or source", handle, c.Name)
	}
	class, _ := g.class(c) // a class deleted since is no reason to keep the backend snapshot
	secrets, err := g.secrets(ctx, c, class)
	if err != nil {
		g.rec.Event(c, v1.EventTypeWarning, ReasonGroupSnapshotDeleteError, "Failed to get snapshot credentials")
		return c, err
	}
	if err := g.drv.DeleteGroupSnapshot(ctx, handle, ids, secrets); err != nil {
		g.rec.Event(c, v1.EventTypeWarning, ReasonGroupSnapshotDeleteError, "Failed to delete group snapshot")
		return c, fmt.Errorf("failed to delete group snapshot %s: %w", handle, err)
	}
	klog.FromContext(ctx).V(2).Info("Deleted group snapshot", "handle", handle, "snapshots", len(ids))
	clear := mustJSON(map[string]any{"status": map[string]any{
		"volumeGroupSnapshotHandle": nil, "readyToUse": nil, "creationTime": nil, "error": nil,
	}})
	updated, err := g.patchStatus(ctx, c.Name, clear)
	if err != nil {
		g.rec.Event(c, v1.EventTypeWarning, ReasonGroupSnapshotDeleteError, "Failed to clear content status")
		return c, fmt.Errorf("clearing the status of group content %s: %w", c.Name, err)
	}
	return updated, nil
}

// release removes the group content finalizer.
func (g *groupSidecar) release(ctx context.Context, c *groupv1.VolumeGroupSnapshotContent) error {
	_, err := g.s.snap.GroupsnapshotV1().VolumeGroupSnapshotContents().Patch(ctx, c.Name, types.MergePatchType,
		finalizersPatch(c.ResourceVersion, withoutFinalizers(c.Finalizers, FinalizerGroupContentBound)), metav1.PatchOptions{})
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("removing finalizer of group content %s: %w", c.Name, err)
	}
	g.polls.Reset(c.Name)
	return nil
}

func (g *groupSidecar) patchStatus(ctx context.Context, name string, patch []byte) (*groupv1.VolumeGroupSnapshotContent, error) {
	updated, err := g.s.snap.GroupsnapshotV1().VolumeGroupSnapshotContents().Patch(ctx, name, types.MergePatchType,
		patch, metav1.PatchOptions{}, "status")
	if err != nil {
		return nil, err
	}
	g.fresh.Remember(name, updated)
	return updated.DeepCopy(), nil
}

// groupContentStatusPatch replaces the fields of st; an absent error is cleared
// explicitly.
func groupContentStatusPatch(st *groupv1.VolumeGroupSnapshotContentStatus) []byte {
	m := map[string]any{}
	_ = json.Unmarshal(mustJSON(st), &m)
	if st.Error == nil {
		m["error"] = nil
	}
	return mustJSON(map[string]any{"status": m})
}

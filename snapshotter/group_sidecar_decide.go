package snapshotter

import (
	"maps"
	"slices"
	"time"

	groupv1 "github.com/kubernetes-csi/external-snapshotter/client/v8/apis/volumegroupsnapshot/v1"
	crdv1 "github.com/kubernetes-csi/external-snapshotter/client/v8/apis/volumesnapshot/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// decideGroupContent picks the sidecar's next step for c; the same rules
// as decideContent, for a group.
func decideGroupContent(c *groupv1.VolumeGroupSnapshotContent) contentAction {
	dynamic := len(c.Spec.Source.VolumeHandles) > 0
	bound := c.Spec.VolumeGroupSnapshotRef.UID != ""
	_, leftover := c.Annotations[AnnGroupBeingCreated]
	f := contentFacts{
		deleted:      c.DeletionTimestamp != nil,
		finalizer:    hasFinalizer(c.Finalizers, FinalizerGroupContentBound),
		dynamic:      dynamic,
		bound:        bound,
		creatable:    dynamic && bound,
		beingCreated: c.Annotations[AnnGroupBeingCreated] == annYes,
		leftover:     leftover,
		release:      c.DeletionTimestamp != nil && groupShouldRelease(c),
		retain:       c.Spec.DeletionPolicy != crdv1.VolumeSnapshotContentDelete,
		handle:       groupBackendHandle(c) != "",
		gone:         groupBackendDeleted(c),
		ready:        groupReady(c.Status) && groupStatusHandle(c) != "",
		static:       c.Spec.Source.GroupSnapshotHandles != nil,
	}
	return decide(f)
}

// groupShouldRelease reports whether a deleted group content may let go
// of its backend group snapshot: a pre-provisioned one never bound, or one
// whose VolumeGroupSnapshot the common controller deleted.
func groupShouldRelease(c *groupv1.VolumeGroupSnapshotContent) bool {
	if len(c.Spec.Source.VolumeHandles) == 0 && c.Spec.VolumeGroupSnapshotRef.UID == "" {
		return true
	}
	return c.Annotations[AnnGroupBeingDeleted] == annYes
}

// groupBackendDeleted reports a status cleared after the backend group
// snapshot was deleted: members listed, but no handle any more. (A status
// written from a driver's answer always has both.)
func groupBackendDeleted(c *groupv1.VolumeGroupSnapshotContent) bool {
	return c.Status != nil && c.Status.VolumeGroupSnapshotHandle == nil && len(c.Status.VolumeSnapshotInfoList) > 0
}

func groupStatusHandle(c *groupv1.VolumeGroupSnapshotContent) string {
	if c.Status != nil && c.Status.VolumeGroupSnapshotHandle != nil {
		return *c.Status.VolumeGroupSnapshotHandle
	}
	return ""
}

// groupBackendHandle is the group snapshot's ID in the driver: from the
// status, else from the pre-provisioned source.
func groupBackendHandle(c *groupv1.VolumeGroupSnapshotContent) string {
	if h := groupStatusHandle(c); h != "" {
		return h
	}
	if src := c.Spec.Source.GroupSnapshotHandles; src != nil {
		return src.VolumeGroupSnapshotHandle
	}
	return ""
}

// groupMemberIDs are the snapshot IDs of the group's members: from the
// status's info list, else from the pre-provisioned source.
func groupMemberIDs(c *groupv1.VolumeGroupSnapshotContent) []string {
	var ids []string
	if c.Status != nil {
		for _, m := range c.Status.VolumeSnapshotInfoList {
			if m.SnapshotHandle != "" {
				ids = append(ids, m.SnapshotHandle)
			}
		}
	}
	if len(ids) == 0 && c.Spec.Source.GroupSnapshotHandles != nil {
		ids = slices.Clone(c.Spec.Source.GroupSnapshotHandles.VolumeSnapshotHandles)
	}
	return ids
}

func groupReady(st *groupv1.VolumeGroupSnapshotContentStatus) bool {
	return st != nil && st.ReadyToUse != nil && *st.ReadyToUse
}

// handlesGroup reports whether c is for driver: it has a source and names
// driver.
func handlesGroup(c *groupv1.VolumeGroupSnapshotContent, driver string) bool {
	if c.Spec.Driver != driver {
		return false
	}
	return len(c.Spec.Source.VolumeHandles) > 0 || c.Spec.Source.GroupSnapshotHandles != nil
}

// shouldEnqueueGroupContentChange filters group content updates as
// shouldEnqueueContentChange does contents: the sidecar's own writes
// (status, finalizers, the being-created annotation) are not work, except
// readyToUse turning true and resyncs.
func shouldEnqueueGroupContentChange(old, cur *groupv1.VolumeGroupSnapshotContent) bool {
	if old.ResourceVersion == cur.ResourceVersion {
		return true // resync
	}
	if !groupReady(old.Status) && groupReady(cur.Status) {
		return true
	}
	if (old.DeletionTimestamp == nil) != (cur.DeletionTimestamp == nil) {
		return true
	}
	if !equality.Semantic.DeepEqual(old.Spec, cur.Spec) || !equality.Semantic.DeepEqual(old.Labels, cur.Labels) {
		return true
	}
	strip := func(a map[string]string) map[string]string {
		a = maps.Clone(a)
		delete(a, AnnGroupBeingCreated)
		return a
	}
	return !equality.Semantic.DeepEqual(strip(old.Annotations), strip(cur.Annotations))
}

// groupContentStatusFor merges what the driver said into c's status: the
// group handle, readyToUse, a creation time kept from the first answer (a
// zero time becomes now) and no error. A dynamic group content also gets
// the member list (volume and snapshot handles, creation time in
// nanoseconds, readiness, a size only when positive); a pre-provisioned
// one keeps its list empty. It returns nil when nothing changes.
func groupContentStatusFor(c *groupv1.VolumeGroupSnapshotContent, info GroupSnapshotInfo, now time.Time) *groupv1.VolumeGroupSnapshotContentStatus {
	st := &groupv1.VolumeGroupSnapshotContentStatus{}
	if c.Status != nil {
		st = c.Status.DeepCopy()
	}
	handle := info.Handle
	if src := c.Spec.Source.GroupSnapshotHandles; src != nil && handle == "" {
		handle = src.VolumeGroupSnapshotHandle
	}
	st.VolumeGroupSnapshotHandle = ptr(handle)
	st.ReadyToUse = ptr(info.Ready)
	if st.CreationTime == nil {
		t := info.CreationTime
		if t.IsZero() {
			t = now
		}
		st.CreationTime = ptr(metav1.NewTime(t))
	}
	if len(c.Spec.Source.VolumeHandles) > 0 && len(info.Members) > 0 {
		list := make([]groupv1.VolumeSnapshotInfo, 0, len(info.Members))
		for _, m := range info.Members {
			e := groupv1.VolumeSnapshotInfo{VolumeHandle: m.VolumeHandle, SnapshotHandle: m.Handle, ReadyToUse: ptr(m.Ready)}
			if !m.CreationTime.IsZero() {
				e.CreationTime = ptr(m.CreationTime.UnixNano())
			}
			if m.Size > 0 {
				e.RestoreSize = ptr(m.Size)
			}
			list = append(list, e)
		}
		st.VolumeSnapshotInfoList = list
	}
	st.Error = nil
	if c.Status != nil && equality.Semantic.DeepEqual(c.Status, st) {
		return nil
	}
	return st
}

package snapshotter

import (
	"slices"
	"testing"
	"time"

	groupv1 "github.com/kubernetes-csi/external-snapshotter/client/v8/apis/volumegroupsnapshot/v1"
	crdv1 "github.com/kubernetes-csi/external-snapshotter/client/v8/apis/volumesnapshot/v1"
	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
)

type vgscOpt func(*groupv1.VolumeGroupSnapshotContent)

// mkVGSC is a bound group content of driver "drv" with policy Delete and
// no source.
func mkVGSC(opts ...vgscOpt) *groupv1.VolumeGroupSnapshotContent {
	c := &groupv1.VolumeGroupSnapshotContent{
		ObjectMeta: metav1.ObjectMeta{Name: "groupcontent", ResourceVersion: "1"},
		Spec: groupv1.VolumeGroupSnapshotContentSpec{
			VolumeGroupSnapshotRef: v1.ObjectReference{Name: "group", Namespace: "ns", UID: "guid1"},
			DeletionPolicy:         crdv1.VolumeSnapshotContentDelete,
			Driver:                 "drv",
		},
	}
	for _, o := range opts {
		o(c)
	}
	return c
}

func volumeHandles(h ...string) vgscOpt {
	return func(c *groupv1.VolumeGroupSnapshotContent) { c.Spec.Source.VolumeHandles = h }
}
func groupHandles(group string, snaps ...string) vgscOpt {
	return func(c *groupv1.VolumeGroupSnapshotContent) {
		c.Spec.Source.GroupSnapshotHandles = &groupv1.GroupSnapshotHandles{VolumeGroupSnapshotHandle: group, VolumeSnapshotHandles: snaps}
	}
}
func groupRefUID(uid types.UID) vgscOpt {
	return func(c *groupv1.VolumeGroupSnapshotContent) { c.Spec.VolumeGroupSnapshotRef.UID = uid }
}
func groupRetain() vgscOpt {
	return func(c *groupv1.VolumeGroupSnapshotContent) { c.Spec.DeletionPolicy = crdv1.VolumeSnapshotContentRetain }
}
func groupClass(name string) vgscOpt {
	return func(c *groupv1.VolumeGroupSnapshotContent) { c.Spec.VolumeGroupSnapshotClassName = &name }
}
func vgscAnn(k, v string) vgscOpt {
	return func(c *groupv1.VolumeGroupSnapshotContent) {
		if c.Annotations == nil {
			c.Annotations = map[string]string{}
		}
		c.Annotations[k] = v
	}
}
func vgscFinalizers(f ...string) vgscOpt {
	return func(c *groupv1.VolumeGroupSnapshotContent) { c.Finalizers = f }
}
func vgscDeleting() vgscOpt {
	return func(c *groupv1.VolumeGroupSnapshotContent) { now := metav1.Now(); c.DeletionTimestamp = &now }
}
func vgscStatus(st *groupv1.VolumeGroupSnapshotContentStatus) vgscOpt {
	return func(c *groupv1.VolumeGroupSnapshotContent) { c.Status = st }
}

func groupStatus(handle string, ready bool, members ...string) *groupv1.VolumeGroupSnapshotContentStatus {
	st := &groupv1.VolumeGroupSnapshotContentStatus{ReadyToUse: ptr(ready)}
	if handle != "" {
		st.VolumeGroupSnapshotHandle = ptr(handle)
	}
	for _, m := range members {
		st.VolumeSnapshotInfoList = append(st.VolumeSnapshotInfoList, groupv1.VolumeSnapshotInfo{VolumeHandle: "v-" + m, SnapshotHandle: m})
	}
	return st
}

func TestGroupDecideContent(t *testing.T) {
	fin := vgscFinalizers(FinalizerGroupContentBound)
	dyn := volumeHandles("v1", "v2")
	static := groupHandles("g", "s1", "s2")
	beingDeleted := vgscAnn(AnnGroupBeingDeleted, "yes")
	beingCreated := vgscAnn(AnnGroupBeingCreated, "yes")
	notReady := vgscStatus(groupStatus("g", false, "s1", "s2"))
	ready := vgscStatus(groupStatus("g", true, "s1", "s2"))
	cleared := vgscStatus(&groupv1.VolumeGroupSnapshotContentStatus{VolumeSnapshotInfoList: groupStatus("", false, "s1").VolumeSnapshotInfoList})
	failed := vgscStatus(&groupv1.VolumeGroupSnapshotContentStatus{ReadyToUse: ptr(false), Error: &crdv1.VolumeSnapshotError{Message: ptr("no")}})
	for _, tc := range []struct {
		name string
		c    *groupv1.VolumeGroupSnapshotContent
		want contentAction
	}{
		// Live group contents.
		{"dynamic, no status: create", mkVGSC(dyn, fin), actCreate},
		{"dynamic, not bound yet: nothing", mkVGSC(dyn, groupRefUID("")), actNone},
		{"dynamic, not ready: create again (readiness poll)", mkVGSC(dyn, notReady), actCreate},
		{"dynamic, failed before: create again", mkVGSC(dyn, failed), actCreate},
		{"dynamic, ready: nothing", mkVGSC(dyn, ready), actNone},
		{"ready with a leftover being-created", mkVGSC(dyn, ready, beingCreated), actClearBeingCreated},
		{"static, no status: get", mkVGSC(static), actPoll},
		{"static, not bound: still get", mkVGSC(static, groupRefUID("")), actPoll},
		{"static, not ready: get again", mkVGSC(static, notReady), actPoll},
		{"static, ready: nothing", mkVGSC(static, ready), actNone},
		{"no source: nothing", mkVGSC(), actNone},
		// TestShouldDeleteGroupSnapshotContent equivalents.
		{"deleted, bound, no being-deleted: wait", mkVGSC(dyn, fin, ready, vgscDeleting()), actNone},
		{"static not bound: delete", mkVGSC(static, groupRefUID(""), fin, vgscDeleting()), actDelete},
		{"being-created set: create first, never release", mkVGSC(dyn, fin, notReady, vgscDeleting(), beingDeleted, beingCreated), actCreate},
		{"being-deleted, Delete: delete", mkVGSC(dyn, fin, ready, vgscDeleting(), beingDeleted), actDelete},
		{"being-deleted, Retain: release without CSI call", mkVGSC(dyn, fin, ready, groupRetain(), vgscDeleting(), beingDeleted), actRelease},
		{"static, Delete, no status: handle from the spec", mkVGSC(static, fin, vgscDeleting(), beingDeleted), actDelete},
		{"dynamic, never got a handle: learn it with create", mkVGSC(dyn, fin, vgscDeleting(), beingDeleted), actCreate},
		{"dynamic, refused for good before: learn it with create", mkVGSC(dyn, fin, failed, vgscDeleting(), beingDeleted), actCreate},
		{"dynamic, status cleared after the delete: release, no create", mkVGSC(dyn, fin, cleared, vgscDeleting(), beingDeleted), actRelease},
		{"finalizer already gone", mkVGSC(dyn, ready, vgscDeleting(), beingDeleted), actNone},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := decideGroupContent(tc.c); got != tc.want {
				t.Fatalf("decideGroupContent = %v, want %v", got, tc.want)
			}
		})
	}
}

// TestGroupMemberContentNeverCreatedOrDeleted: a member content of a group
// snapshot (marked by the common controller with AnnGroupSnapshotHandle,
// or carrying a group handle in its status) never gets CreateSnapshot or
// DeleteSnapshot from the per-snapshot logic, whatever its state.
func TestGroupMemberContentNeverCreatedOrDeleted(t *testing.T) {
	fin := vscFinalizers(FinalizerContentBound)
	byAnn := vscAnn(AnnGroupSnapshotHandle, "g")
	byStatus := vscStatus(&crdv1.VolumeSnapshotContentStatus{SnapshotHandle: ptr("h"), VolumeGroupSnapshotHandle: ptr("g"), ReadyToUse: ptr(false)})
	annNotReady := vscStatus(&crdv1.VolumeSnapshotContentStatus{SnapshotHandle: ptr("h"), ReadyToUse: ptr(false)})
	for _, tc := range []struct {
		name string
		vsc  *crdv1.VolumeSnapshotContent
		want contentAction
	}{
		{"annotation, no status yet", mkVSC(volumeHandle("v"), fin, byAnn), actNone},
		{"annotation, not ready", mkVSC(volumeHandle("v"), fin, byAnn, annNotReady), actNone},
		{"annotation, not bound", mkVSC(volumeHandle("v"), byAnn, refUID("")), actNone},
		{"annotation, deleted with a handle, Delete", mkVSC(volumeHandle("v"), fin, byAnn, annNotReady, vscDeleting(), vscAnn(AnnBeingDeleted, "yes")), actRelease},
		{"annotation, deleted without a handle, Delete", mkVSC(volumeHandle("v"), fin, byAnn, vscDeleting(), vscAnn(AnnBeingDeleted, "yes")), actRelease},
		{"annotation, deleted while being created", mkVSC(volumeHandle("v"), fin, byAnn, vscDeleting(), vscAnn(AnnBeingDeleted, "yes"), vscAnn(AnnBeingCreated, "yes")), actRelease},
		{"annotation, deleted, not released yet", mkVSC(volumeHandle("v"), fin, byAnn, vscDeleting()), actNone},
		{"status group handle, not ready", mkVSC(volumeHandle("v"), fin, byStatus), actNone},
		{"status group handle, deleted, Delete", mkVSC(volumeHandle("v"), fin, byStatus, vscDeleting(), vscAnn(AnnBeingDeleted, "yes")), actRelease},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := decideContent(tc.vsc)
			if got == actCreate || got == actDelete || got == actPoll && tc.vsc.Spec.Source.VolumeHandle != nil {
				t.Fatalf("decideContent = %v for a group member: the per-snapshot logic must not call the driver", got)
			}
			if got != tc.want {
				t.Fatalf("decideContent = %v, want %v", got, tc.want)
			}
		})
	}
}

func TestGroupShouldEnqueueContentChange(t *testing.T) {
	base := func() *groupv1.VolumeGroupSnapshotContent { return mkVGSC(volumeHandles("v"), vgscAnn("x", "1")) }
	for _, tc := range []struct {
		name string
		mod  func(*groupv1.VolumeGroupSnapshotContent)
		rv   bool
		want bool
	}{
		{"rv only", func(*groupv1.VolumeGroupSnapshotContent) {}, true, false},
		{"resync (same rv)", func(*groupv1.VolumeGroupSnapshotContent) {}, false, true},
		{"status change", func(c *groupv1.VolumeGroupSnapshotContent) { c.Status = groupStatus("g", false) }, true, false},
		{"readyToUse turns true", func(c *groupv1.VolumeGroupSnapshotContent) { c.Status = groupStatus("g", true) }, true, true},
		{"finalizers change", func(c *groupv1.VolumeGroupSnapshotContent) { c.Finalizers = []string{FinalizerGroupContentBound} }, true, false},
		{"being-created set", func(c *groupv1.VolumeGroupSnapshotContent) { c.Annotations[AnnGroupBeingCreated] = "yes" }, true, false},
		{"being-deleted set", func(c *groupv1.VolumeGroupSnapshotContent) { c.Annotations[AnnGroupBeingDeleted] = "yes" }, true, true},
		{"other annotation removed", func(c *groupv1.VolumeGroupSnapshotContent) { delete(c.Annotations, "x") }, true, true},
		{"deletion timestamp set", func(c *groupv1.VolumeGroupSnapshotContent) { vgscDeleting()(c) }, true, true},
		{"spec change", func(c *groupv1.VolumeGroupSnapshotContent) { c.Spec.VolumeGroupSnapshotRef.UID = "other" }, true, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			old, cur := base(), base()
			tc.mod(cur)
			if tc.rv {
				cur.ResourceVersion = "2"
			}
			if got := shouldEnqueueGroupContentChange(old, cur); got != tc.want {
				t.Fatalf("shouldEnqueueGroupContentChange = %v, want %v", got, tc.want)
			}
		})
	}
}

func TestGroupContentStatusFor(t *testing.T) {
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	cut := now.Add(-time.Minute)
	members := []GroupMember{
		{VolumeHandle: "v1", SnapshotInfo: SnapshotInfo{Handle: "s1", Ready: true, CreationTime: cut, Size: 10}},
		{VolumeHandle: "v2", SnapshotInfo: SnapshotInfo{Handle: "s2"}},
	}
	wantList := []groupv1.VolumeSnapshotInfo{
		{VolumeHandle: "v1", SnapshotHandle: "s1", ReadyToUse: ptr(true), CreationTime: ptr(cut.UnixNano()), RestoreSize: ptr(int64(10))},
		{VolumeHandle: "v2", SnapshotHandle: "s2", ReadyToUse: ptr(false)},
	}
	t.Run("dynamic, first answer: everything, zero time becomes now", func(t *testing.T) {
		st := groupContentStatusFor(mkVGSC(volumeHandles("v1", "v2")), GroupSnapshotInfo{Handle: "g", Members: members}, now)
		if st == nil || *st.VolumeGroupSnapshotHandle != "g" || *st.ReadyToUse || !st.CreationTime.Time.Equal(now) || st.Error != nil {
			t.Fatalf("status = %+v", st)
		}
		if !slices.EqualFunc(st.VolumeSnapshotInfoList, wantList, func(a, b groupv1.VolumeSnapshotInfo) bool {
			return a.VolumeHandle == b.VolumeHandle && a.SnapshotHandle == b.SnapshotHandle && *a.ReadyToUse == *b.ReadyToUse &&
				(a.CreationTime == nil) == (b.CreationTime == nil) && (a.CreationTime == nil || *a.CreationTime == *b.CreationTime) &&
				(a.RestoreSize == nil) == (b.RestoreSize == nil) && (a.RestoreSize == nil || *a.RestoreSize == *b.RestoreSize)
		}) {
			t.Errorf("info list = %+v, want %+v", st.VolumeSnapshotInfoList, wantList)
		}
	})
	t.Run("creation time kept, error cleared, readiness updated", func(t *testing.T) {
		first := metav1.NewTime(cut)
		c := mkVGSC(volumeHandles("v1"), vgscStatus(&groupv1.VolumeGroupSnapshotContentStatus{
			VolumeGroupSnapshotHandle: ptr("g"), ReadyToUse: ptr(false), CreationTime: &first,
			Error: &crdv1.VolumeSnapshotError{Message: ptr("old")},
		}))
		st := groupContentStatusFor(c, GroupSnapshotInfo{Handle: "g", Ready: true, CreationTime: now}, now)
		if st == nil || !*st.ReadyToUse || !st.CreationTime.Time.Equal(cut) || st.Error != nil {
			t.Fatalf("status = %+v", st)
		}
	})
	t.Run("no change: nil", func(t *testing.T) {
		c := mkVGSC(volumeHandles("v1", "v2"))
		st := groupContentStatusFor(c, GroupSnapshotInfo{Handle: "g", Members: members}, now)
		c.Status = st
		if again := groupContentStatusFor(c, GroupSnapshotInfo{Handle: "g", Members: members}, now.Add(time.Hour)); again != nil {
			t.Fatalf("second identical answer gives %+v, want nil (no write)", again)
		}
	})
	t.Run("static: handle from the spec, info list stays empty", func(t *testing.T) {
		st := groupContentStatusFor(mkVGSC(groupHandles("sg", "s1")), GroupSnapshotInfo{Ready: true, Members: members}, now)
		if st == nil || *st.VolumeGroupSnapshotHandle != "sg" || !*st.ReadyToUse || len(st.VolumeSnapshotInfoList) != 0 {
			t.Fatalf("status = %+v", st)
		}
	})
}

func TestGroupBackendHandleAndMembers(t *testing.T) {
	for _, tc := range []struct {
		name   string
		c      *groupv1.VolumeGroupSnapshotContent
		handle string
		ids    []string
	}{
		{"dynamic: from the status", mkVGSC(volumeHandles("v1"), vgscStatus(groupStatus("g", true, "s1", "s2"))), "g", []string{"s1", "s2"}},
		{"static, no status: from the spec", mkVGSC(groupHandles("sg", "a", "b")), "sg", []string{"a", "b"}},
		{"static with status handle: status first", mkVGSC(groupHandles("sg", "a"), vgscStatus(groupStatus("g", true))), "g", []string{"a"}},
		{"dynamic, nothing yet", mkVGSC(volumeHandles("v1")), "", nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := groupBackendHandle(tc.c); got != tc.handle {
				t.Errorf("groupBackendHandle = %q, want %q", got, tc.handle)
			}
			if got := groupMemberIDs(tc.c); !slices.Equal(got, tc.ids) {
				t.Errorf("groupMemberIDs = %q, want %q", got, tc.ids)
			}
		})
	}
}

func TestGroupHandlesDriver(t *testing.T) {
	for _, tc := range []struct {
		name string
		c    *groupv1.VolumeGroupSnapshotContent
		want bool
	}{
		{"no source", mkVGSC(), false},
		{"other driver", mkVGSC(volumeHandles("v"), func(c *groupv1.VolumeGroupSnapshotContent) { c.Spec.Driver = "other" }), false},
		{"dynamic", mkVGSC(volumeHandles("v")), true},
		{"static", mkVGSC(groupHandles("g", "s")), true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := handlesGroup(tc.c, "drv"); got != tc.want {
				t.Fatalf("handlesGroup = %v, want %v", got, tc.want)
			}
		})
	}
}

func TestGroupSnapshotOptions(t *testing.T) {
	o := SidecarOptions{DriverName: "d"}.withDefaults()
	if o.GroupSnapshotNamePrefix != "groupsnapshot" || o.GroupSnapshotNameUUIDLength != -1 || o.DisableVolumeGroupSnapshots {
		t.Fatalf("defaults: prefix %q, uuid length %d, disabled %v", o.GroupSnapshotNamePrefix, o.GroupSnapshotNameUUIDLength, o.DisableVolumeGroupSnapshots)
	}
	if got := SnapshotName(o.GroupSnapshotNamePrefix, "1b4e28ba-2fa1-11d2-883f-0016d3cca427", o.GroupSnapshotNameUUIDLength); got != "groupsnapshot-1b4e28ba-2fa1-11d2-883f-0016d3cca427" {
		t.Errorf("default group snapshot name %q", got)
	}
	for _, n := range []int{-2, 33} {
		o := SidecarOptions{DriverName: "d", GroupSnapshotNameUUIDLength: n}.withDefaults()
		if err := o.Validate(); err == nil {
			t.Errorf("GroupSnapshotNameUUIDLength %d accepted", n)
		}
	}
}

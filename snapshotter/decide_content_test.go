package snapshotter

import (
	"testing"
	"time"

	crdv1 "github.com/kubernetes-csi/external-snapshotter/client/v8/apis/volumesnapshot/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func TestDecideContent(t *testing.T) {
	fin := vscFinalizers(FinalizerContentBound)
	withHandle := vscStatus(&crdv1.VolumeSnapshotContentStatus{SnapshotHandle: ptr("h"), ReadyToUse: ptr(false)})
	readyHandle := vscStatus(&crdv1.VolumeSnapshotContentStatus{SnapshotHandle: ptr("h"), ReadyToUse: ptr(true)})
	member := vscStatus(&crdv1.VolumeSnapshotContentStatus{SnapshotHandle: ptr("h"), VolumeGroupSnapshotHandle: ptr("g")})
	for _, tc := range []struct {
		name string
		vsc  *crdv1.VolumeSnapshotContent
		want contentAction
	}{
		// TestShouldDelete and TestDeleteSync equivalents.
		{"DeletionTimeStamp is nil: create", mkVSC(volumeHandle("v"), fin), actCreate},
		{"1-2 content is not bound (static): delete", mkVSC(snapHandle("h"), refUID(""), fin, vscDeleting()), actDelete},
		{"being-deleted set: delete", mkVSC(volumeHandle("v"), fin, withHandle, vscDeleting(), vscAnn(AnnBeingDeleted, "yes")), actDelete},
		{"no other case matches: wait (deleted by hand while bound)", mkVSC(volumeHandle("v"), fin, withHandle, vscDeleting()), actNone},
		{"1-10 retain policy: release without CSI call", mkVSC(volumeHandle("v"), fin, withHandle, retain(), vscDeleting(), vscAnn(AnnBeingDeleted, "yes")), actRelease},
		{"being-created blocks release: create first", mkVSC(volumeHandle("v"), fin, vscDeleting(), vscAnn(AnnBeingDeleted, "yes"), vscAnn(AnnBeingCreated, "yes")), actCreate},
		{"never got a handle: probe with CreateSnapshot", mkVSC(volumeHandle("v"), fin, vscDeleting(), vscAnn(AnnBeingDeleted, "yes")), actCreate},
		{"1-17 group member: no CSI call", mkVSC(volumeHandle("v"), fin, member, vscDeleting(), vscAnn(AnnBeingDeleted, "yes")), actRelease},
		{"1-6 finalizer already gone", mkVSC(volumeHandle("v"), withHandle, vscDeleting(), vscAnn(AnnBeingDeleted, "yes")), actNone},
		{"static handle from spec", mkVSC(snapHandle("h"), fin, vscDeleting(), vscAnn(AnnBeingDeleted, "yes")), actDelete},
		// TestSyncContent equivalents.
		{"1-2 basic create", mkVSC(volumeHandle("v")), actCreate},
		{"1-1/1-8 un-ready snapshot is polled with CreateSnapshot", mkVSC(volumeHandle("v"), withHandle), actCreate},
		{"1-9 ready: nothing", mkVSC(volumeHandle("v"), readyHandle), actNone},
		{"ready with a leftover being-created", mkVSC(volumeHandle("v"), readyHandle, vscAnn(AnnBeingCreated, "yes")), actClearBeingCreated},
		{"static un-ready: ListSnapshots", mkVSC(snapHandle("h")), actPoll},
		{"dynamic not bound yet", mkVSC(volumeHandle("v"), refUID("")), actNone},
		{"live group member: nothing", mkVSC(volumeHandle("v"), member), actNone},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := decideContent(tc.vsc); got != tc.want {
				t.Fatalf("decideContent = %v, want %v", got, tc.want)
			}
		})
	}
}

func TestShouldEnqueueContentChange(t *testing.T) {
	base := func() *crdv1.VolumeSnapshotContent { return mkVSC(volumeHandle("v"), vscAnn("x", "1")) }
	bump := func(c *crdv1.VolumeSnapshotContent) *crdv1.VolumeSnapshotContent { c.ResourceVersion = "2"; return c }
	for _, tc := range []struct {
		name string
		mod  func(*crdv1.VolumeSnapshotContent)
		rv   bool
		want bool
	}{
		{"basic no change (rv only)", func(*crdv1.VolumeSnapshotContent) {}, true, false},
		{"resync from informer (same rv)", func(*crdv1.VolumeSnapshotContent) {}, false, true},
		{"basic change (spec)", func(c *crdv1.VolumeSnapshotContent) { c.Spec.DeletionPolicy = crdv1.VolumeSnapshotContentRetain }, true, true},
		{"status change", func(c *crdv1.VolumeSnapshotContent) {
			c.Status = &crdv1.VolumeSnapshotContentStatus{ReadyToUse: ptr(false)}
		}, true, false},
		{"readyToUse false -> true", func(c *crdv1.VolumeSnapshotContent) {
			c.Status = &crdv1.VolumeSnapshotContentStatus{ReadyToUse: ptr(true)}
		}, true, true},
		{"finalizers change", func(c *crdv1.VolumeSnapshotContent) { c.Finalizers = []string{"f"} }, true, false},
		{"managed fields change", func(c *crdv1.VolumeSnapshotContent) { c.ManagedFields = []metav1.ManagedFieldsEntry{{Manager: "m"}} }, true, false},
		{"sidecar-managed annotation created", func(c *crdv1.VolumeSnapshotContent) { c.Annotations[AnnBeingCreated] = "yes" }, true, false},
		{"sidecar-unmanaged annotation changed", func(c *crdv1.VolumeSnapshotContent) { c.Annotations["x"] = "2" }, true, true},
		{"sidecar-unmanaged annotation deleted", func(c *crdv1.VolumeSnapshotContent) { delete(c.Annotations, "x") }, true, true},
		{"being-deleted annotation", func(c *crdv1.VolumeSnapshotContent) { c.Annotations[AnnBeingDeleted] = "yes" }, true, true},
		{"deletion timestamp", func(c *crdv1.VolumeSnapshotContent) { now := metav1.Now(); c.DeletionTimestamp = &now }, true, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			old, cur := base(), base()
			tc.mod(cur)
			if tc.rv {
				cur = bump(cur)
			}
			if got := shouldEnqueueContentChange(old, cur); got != tc.want {
				t.Fatalf("shouldEnqueueContentChange = %v", got)
			}
		})
	}
}

func TestSnapshotName(t *testing.T) {
	uid := "2338699d-d08d-42f8-8173-dfa6cb660522"
	for _, tc := range []struct {
		n    int
		want string
	}{
		{-1, "snapshot-" + uid},
		{8, "snapshot-2338699d"},
		{32, "snapshot-2338699dd08d42f88173dfa6cb660522"},
	} {
		if got := SnapshotName("snapshot", "2338699d-d08d-42f8-8173-dfa6cb660522", tc.n); got != tc.want {
			t.Errorf("SnapshotName(%d) = %q, want %q", tc.n, got, tc.want)
		}
	}
	if got := SnapshotName("p", "abc", 10); got != "p-abc" {
		t.Errorf("short uid: %q", got)
	}
}

func TestContentStatusFor(t *testing.T) {
	now := time.Unix(1000, 0)
	created := time.Unix(500, 0)
	msg := "old error"
	for _, tc := range []struct {
		name string
		vsc  *crdv1.VolumeSnapshotContent
		info SnapshotInfo
		want *crdv1.VolumeSnapshotContentStatus // nil: no write
	}{
		{"first answer", mkVSC(), SnapshotInfo{Handle: "h", Ready: true, CreationTime: created, Size: 10},
			&crdv1.VolumeSnapshotContentStatus{SnapshotHandle: ptr("h"), ReadyToUse: ptr(true), CreationTime: ptr(created.UnixNano()), RestoreSize: ptr(int64(10))}},
		{"zero time becomes now, size 0 stays absent", mkVSC(), SnapshotInfo{Handle: "h"},
			&crdv1.VolumeSnapshotContentStatus{SnapshotHandle: ptr("h"), ReadyToUse: ptr(false), CreationTime: ptr(now.UnixNano())}},
		{"creation time kept, error cleared", mkVSC(vscStatus(&crdv1.VolumeSnapshotContentStatus{CreationTime: ptr(int64(1)), Error: &crdv1.VolumeSnapshotError{Message: &msg}})),
			SnapshotInfo{Handle: "h", Ready: true, CreationTime: created},
			&crdv1.VolumeSnapshotContentStatus{SnapshotHandle: ptr("h"), ReadyToUse: ptr(true), CreationTime: ptr(int64(1))}},
		{"unchanged: no write", mkVSC(vscStatus(&crdv1.VolumeSnapshotContentStatus{SnapshotHandle: ptr("h"), ReadyToUse: ptr(false), CreationTime: ptr(int64(1))})),
			SnapshotInfo{Handle: "h", CreationTime: created}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := contentStatusFor(tc.vsc, tc.info, now)
			if string(mustJSON(got)) != string(mustJSON(tc.want)) {
				t.Fatalf("contentStatusFor = %s, want %s", mustJSON(got), mustJSON(tc.want))
			}
		})
	}
}

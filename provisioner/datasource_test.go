package provisioner

import (
	"context"
	"testing"
	"time"

	"github.com/container-storage-interface/spec/lib/go/csi"
	snapv1 "github.com/kubernetes-csi/external-snapshotter/client/v8/apis/volumesnapshot/v1"
	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	"github.com/csi-kit/sidecars/testkit/eventually"
	"github.com/csi-kit/sidecars/testkit/fakedriver"
)

func TestRestoreFromSnapshot(t *testing.T) {
	e := newEnv(t, fakedriver.Options{Capabilities: noTopology()})
	e.start(Options{}, nil)
	sc := e.class("std", nil)
	e.claim("src", sc.Name, "1Gi", nil)
	srcPV := e.waitBound("src")
	snap, err := e.conn.Controller().CreateSnapshot(e.ctx, &csi.CreateSnapshotRequest{Name: "snap-1", SourceVolumeId: srcPV.Spec.CSI.VolumeHandle})
	if err != nil {
		t.Fatal(err)
	}
	handle := snap.Snapshot.SnapshotId
	vs, err := e.snaps.SnapshotV1().VolumeSnapshots(e.ns).Create(e.ctx, &snapv1.VolumeSnapshot{
		ObjectMeta: metav1.ObjectMeta{Name: "snap", Namespace: e.ns},
		Spec:       snapv1.VolumeSnapshotSpec{Source: snapv1.VolumeSnapshotSource{VolumeSnapshotContentName: ptr.To(e.ns + "-content")}},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	content, err := e.snaps.SnapshotV1().VolumeSnapshotContents().Create(e.ctx, &snapv1.VolumeSnapshotContent{
		ObjectMeta: metav1.ObjectMeta{Name: e.ns + "-content"},
		Spec: snapv1.VolumeSnapshotContentSpec{Driver: e.driver, DeletionPolicy: snapv1.VolumeSnapshotContentRetain,
			Source:            snapv1.VolumeSnapshotContentSource{SnapshotHandle: &handle},
			VolumeSnapshotRef: v1.ObjectReference{Name: "snap", Namespace: e.ns, UID: vs.UID}},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = e.snaps.SnapshotV1().VolumeSnapshotContents().Delete(context.Background(), content.Name, metav1.DeleteOptions{})
	})
	e.claim("restored", sc.Name, "1Gi", func(c *v1.PersistentVolumeClaim) {
		c.Spec.DataSource = &v1.TypedLocalObjectReference{APIGroup: ptr.To(snapshotAPIGroup), Kind: "VolumeSnapshot", Name: "snap"}
	})
	// Not ready yet: no volume, a clear event.
	e.waitEvent("restored", ReasonProvisioningFailed, "not bound to a content yet")
	content.Status = &snapv1.VolumeSnapshotContentStatus{SnapshotHandle: &handle, ReadyToUse: ptr.To(true), RestoreSize: ptr.To(int64(1 << 30))}
	if _, err := e.snaps.SnapshotV1().VolumeSnapshotContents().UpdateStatus(e.ctx, content, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	vs.Status = &snapv1.VolumeSnapshotStatus{BoundVolumeSnapshotContentName: &content.Name, ReadyToUse: ptr.To(true)}
	e.drv.Hang("CreateVolume")
	if _, err := e.snaps.SnapshotV1().VolumeSnapshots(e.ns).UpdateStatus(e.ctx, vs, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	eventually.Require(e.t, 30*time.Second, "restore in flight", eventually.True("restore in flight", func() bool { return e.drv.InFlight("CreateVolume") > 0 }))
	if s, err := e.snaps.SnapshotV1().VolumeSnapshots(e.ns).Get(e.ctx, "snap", metav1.GetOptions{}); err != nil ||
		!hasFinalizer(s.Finalizers, FinalizerSnapshotSource) {
		t.Errorf("snapshot not protected during the restore: %v %v", s.Finalizers, err)
	}
	e.drv.Unhang("CreateVolume")
	pv := e.waitBound("restored")
	eventually.Require(e.t, 30*time.Second, "source protection removed", eventually.True("source protection removed", func() bool {
		s, err := e.snaps.SnapshotV1().VolumeSnapshots(e.ns).Get(e.ctx, "snap", metav1.GetOptions{})
		return err == nil && !hasFinalizer(s.Finalizers, FinalizerSnapshotSource)
	}))
	for _, v := range e.drv.Volumes() {
		if v.ID == pv.Spec.CSI.VolumeHandle && v.SourceSnapshotID != handle {
			t.Errorf("restored volume source %q, want %q", v.SourceSnapshotID, handle)
		}
	}
}

func TestClone(t *testing.T) {
	e := newEnv(t, fakedriver.Options{Capabilities: noTopology()})
	e.start(Options{}, nil)
	sc := e.class("std", nil)
	e.claim("src", sc.Name, "1Gi", nil)
	srcPV := e.waitBound("src")
	e.claim("small", sc.Name, "512Mi", func(c *v1.PersistentVolumeClaim) {
		c.Spec.DataSource = &v1.TypedLocalObjectReference{Kind: "PersistentVolumeClaim", Name: "src"}
	})
	e.claim("copy", sc.Name, "1Gi", func(c *v1.PersistentVolumeClaim) {
		c.Spec.DataSource = &v1.TypedLocalObjectReference{Kind: "PersistentVolumeClaim", Name: "src"}
	})
	pv := e.waitBound("copy")
	for _, v := range e.drv.Volumes() {
		if v.ID == pv.Spec.CSI.VolumeHandle && v.SourceVolumeID != srcPV.Spec.CSI.VolumeHandle {
			t.Errorf("clone source %q, want %q", v.SourceVolumeID, srcPV.Spec.CSI.VolumeHandle)
		}
	}
	if src := e.getClaim("src"); !hasFinalizer(src.Finalizers, FinalizerCloneSource) {
		t.Errorf("source finalizers %v lack %s", src.Finalizers, FinalizerCloneSource)
	}
	e.waitEvent("small", ReasonProvisioningFailed, "smaller than the source")
	// Deleting the source waits for the pending clone, then goes.
	e.deleteClaim("small")
	e.deleteClaim("src")
	eventually.Require(e.t, 30*time.Second, "source claim gone", eventually.True("source claim gone", func() bool { return e.getClaim("src") == nil }))
}

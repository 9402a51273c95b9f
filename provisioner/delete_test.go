package provisioner

import (
	"context"
	"testing"
	"time"

	storagev1 "k8s.io/api/storage/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/csi-kit/sidecars/testkit/eventually"
	"github.com/csi-kit/sidecars/testkit/fakedriver"
)

// TestDeleteWhileAttached: a VolumeAttachment naming the PV blocks the
// deletion with a VolumeFailedDelete event; once it goes, the volume goes.
func TestDeleteWhileAttached(t *testing.T) {
	caps := noTopology()
	caps.PublishUnpublish = true
	e := newEnv(t, fakedriver.Options{Capabilities: caps})
	e.start(Options{}, nil)
	sc := e.class("std", nil)
	e.claim("data", sc.Name, "1Gi", nil)
	pv := e.waitBound("data")
	va := &storagev1.VolumeAttachment{ObjectMeta: metav1.ObjectMeta{Name: e.ns + "-va"},
		Spec: storagev1.VolumeAttachmentSpec{Attacher: e.driver, NodeName: "somenode",
			Source: storagev1.VolumeAttachmentSource{PersistentVolumeName: &pv.Name}}}
	if _, err := e.kube.StorageV1().VolumeAttachments().Create(e.ctx, va, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	e.deleteClaim("data")
	e.waitEvent(pv.Name, ReasonVolumeFailedDelete, "still attached to node somenode")
	if len(e.drv.Volumes()) != 1 {
		t.Fatalf("volume deleted while attached")
	}
	if err := e.kube.StorageV1().VolumeAttachments().Delete(context.Background(), va.Name, metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	eventually.Require(e.t, 30*time.Second, "volume and PV deleted", eventually.True("volume and PV deleted", func() bool {
		_, err := e.kube.CoreV1().PersistentVolumes().Get(e.ctx, pv.Name, metav1.GetOptions{})
		return err != nil && len(e.drv.Volumes()) == 0
	}))
}

// TestPVFirstDeletion: deleting the PV before the claim still deletes the
// backend volume once the claim goes (the finalizer holds the PV).
func TestPVFirstDeletion(t *testing.T) {
	e := newEnv(t, fakedriver.Options{Capabilities: noTopology()})
	e.start(Options{}, nil)
	sc := e.class("std", nil)
	e.claim("data", sc.Name, "1Gi", nil)
	pv := e.waitBound("data")
	if err := e.kube.CoreV1().PersistentVolumes().Delete(e.ctx, pv.Name, metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	e.deleteClaim("data")
	eventually.Require(e.t, 30*time.Second, "volume and PV deleted", eventually.True("volume and PV deleted", func() bool {
		_, err := e.kube.CoreV1().PersistentVolumes().Get(e.ctx, pv.Name, metav1.GetOptions{})
		return err != nil && len(e.drv.Volumes()) == 0
	}))
}

package snapshotter

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/container-storage-interface/spec/lib/go/csi"
	crdv1 "github.com/kubernetes-csi/external-snapshotter/client/v8/apis/volumesnapshot/v1"
	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/csi-kit/sidecars/testkit/eventually"
)

func TestIntegrationDynamicSnapshotReady(t *testing.T) {
	e := newEnv(t, envOptions{})
	e.class("gold", crdv1.VolumeSnapshotContentDelete, false, map[string]string{"tier": "gold"})
	e.volume("data")
	e.startController(ControllerOptions{})
	e.startSidecar(SidecarOptions{ExtraCreateMetadata: true})
	created := e.snapshot("snap1", "data", "gold")

	vs := e.waitReady("snap1")
	if got, want := *vs.Status.BoundVolumeSnapshotContentName, "snapcontent-"+string(created.UID); got != want {
		t.Errorf("bound content = %q, want %q", got, want)
	}
	if vs.Status.CreationTime == nil || vs.Status.RestoreSize == nil || vs.Status.RestoreSize.Value() != 1<<30 || vs.Status.Error != nil {
		t.Errorf("status = %+v, want creationTime, restoreSize 1Gi and no error", vs.Status)
	}
	for _, f := range []string{FinalizerSnapshotAsSource, FinalizerSnapshotBound} {
		if !slices.Contains(vs.Finalizers, f) {
			t.Errorf("snapshot finalizers %v lack %s", vs.Finalizers, f)
		}
	}
	vsc, err := e.snap.SnapshotV1().VolumeSnapshotContents().Get(e.ctx, *vs.Status.BoundVolumeSnapshotContentName, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if vsc.Spec.VolumeSnapshotRef.UID != created.UID || !slices.Contains(vsc.Finalizers, FinalizerContentBound) ||
		vsc.Status == nil || vsc.Status.SnapshotHandle == nil || vsc.Annotations[AnnBeingCreated] != "" {
		t.Errorf("content = %+v", vsc)
	}
	snaps := e.drv.Snapshots()
	if len(snaps) != 1 || snaps[0].Name != "snapshot-"+string(created.UID) {
		t.Fatalf("backend snapshots = %+v, want one named snapshot-<uid>", snaps)
	}
	if p := snaps[0].Parameters; p["tier"] != "gold" || p[metaSnapshotName] != "snap1" || p[metaSnapshotNamespace] != e.ns || p[metaContentName] != vsc.Name {
		t.Errorf("CreateSnapshot parameters = %v", p)
	}
	eventually.Require(t, 10*time.Second, "PVC finalizer released", func(context.Context) error {
		pvc, err := e.kube.CoreV1().PersistentVolumeClaims(e.ns).Get(e.ctx, "data", metav1.GetOptions{})
		if err != nil {
			return err
		}
		if slices.Contains(pvc.Finalizers, FinalizerPVCAsSource) {
			return fmt.Errorf("finalizers %v", pvc.Finalizers)
		}
		return nil
	})
	e.waitEvent("snap1", ReasonSnapshotReady, "ready to use")
}

func TestIntegrationPreProvisionedBinds(t *testing.T) {
	e := newEnv(t, envOptions{})
	e.volume("data")
	pvc, _ := e.kube.CoreV1().PersistentVolumeClaims(e.ns).Get(e.ctx, "data", metav1.GetOptions{})
	pv, _ := e.kube.CoreV1().PersistentVolumes().Get(e.ctx, pvc.Spec.VolumeName, metav1.GetOptions{})
	resp, err := e.conn.Controller().CreateSnapshot(e.ctx, &csi.CreateSnapshotRequest{Name: "pre", SourceVolumeId: pv.Spec.CSI.VolumeHandle})
	if err != nil {
		t.Fatal(err)
	}
	handle := resp.GetSnapshot().GetSnapshotId()
	contentName := e.ns + "-pre"
	vsc := &crdv1.VolumeSnapshotContent{
		ObjectMeta: metav1.ObjectMeta{Name: contentName},
		Spec: crdv1.VolumeSnapshotContentSpec{
			VolumeSnapshotRef: v1.ObjectReference{Namespace: e.ns, Name: "static"},
			DeletionPolicy:    crdv1.VolumeSnapshotContentDelete,
			Driver:            e.driver,
			Source:            crdv1.VolumeSnapshotContentSource{SnapshotHandle: &handle},
		},
	}
	if _, err := e.snap.SnapshotV1().VolumeSnapshotContents().Create(e.ctx, vsc, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	e.startController(ControllerOptions{})
	e.startSidecar(SidecarOptions{})
	vs := &crdv1.VolumeSnapshot{
		ObjectMeta: metav1.ObjectMeta{Name: "static", Namespace: e.ns},
		Spec:       crdv1.VolumeSnapshotSpec{Source: crdv1.VolumeSnapshotSource{VolumeSnapshotContentName: &contentName}},
	}
	vs, err = e.snap.SnapshotV1().VolumeSnapshots(e.ns).Create(e.ctx, vs, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	got := e.waitReady("static")
	if *got.Status.BoundVolumeSnapshotContentName != contentName {
		t.Errorf("bound to %q", *got.Status.BoundVolumeSnapshotContentName)
	}
	eventually.Require(t, 10*time.Second, "content bound back", func(context.Context) error {
		c, err := e.snap.SnapshotV1().VolumeSnapshotContents().Get(e.ctx, contentName, metav1.GetOptions{})
		if err != nil {
			return err
		}
		if c.Spec.VolumeSnapshotRef.UID != vs.UID || !slices.Contains(c.Finalizers, FinalizerContentBound) {
			return fmt.Errorf("ref %+v finalizers %v", c.Spec.VolumeSnapshotRef, c.Finalizers)
		}
		return nil
	})
	if n := e.drv.Calls("CreateSnapshot"); n != 1 {
		t.Errorf("CreateSnapshot calls = %d, want only the test's own", n)
	}
	// Deleting it under policy Delete removes the backend snapshot.
	if err := e.snap.SnapshotV1().VolumeSnapshots(e.ns).Delete(e.ctx, "static", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	e.waitGone("content", func() error {
		_, err := e.snap.SnapshotV1().VolumeSnapshotContents().Get(e.ctx, contentName, metav1.GetOptions{})
		return err
	})
	if s := e.drv.Snapshots(); len(s) != 0 {
		t.Errorf("backend snapshots after delete = %+v", s)
	}
}

func TestIntegrationDefaultClass(t *testing.T) {
	e := newEnv(t, envOptions{})
	e.class("default", crdv1.VolumeSnapshotContentDelete, true, nil)
	e.class("other", crdv1.VolumeSnapshotContentDelete, false, nil)
	e.volume("data")
	e.startController(ControllerOptions{})
	e.startSidecar(SidecarOptions{})
	e.snapshot("snap", "data", "")
	vs := e.waitReady("snap")
	if c := vs.Spec.VolumeSnapshotClassName; c == nil || *c != e.className("default") {
		t.Errorf("class = %v, want the default %q", c, e.className("default"))
	}

	if n := len(e.drv.Snapshots()); n != 1 {
		t.Errorf("backend snapshots = %d, want 1", n)
	}
}

// TestIntegrationAmbiguousDefaultClass: two default classes make the
// choice ambiguous: the snapshot is rejected with an event and an error
// status. Both classes exist before the controller starts, so its class
// cache holds both when the snapshot comes.
func TestIntegrationAmbiguousDefaultClass(t *testing.T) {
	e := newEnv(t, envOptions{})
	e.class("default", crdv1.VolumeSnapshotContentDelete, true, nil)
	e.class("default2", crdv1.VolumeSnapshotContentDelete, true, nil)
	e.volume("data")
	e.startController(ControllerOptions{})
	e.startSidecar(SidecarOptions{})
	e.snapshot("ambiguous", "data", "")
	e.waitEvent("ambiguous", ReasonSetDefaultSnapshotClassFailed, "2 default snapshot classes were found")
	eventually.Require(t, 10*time.Second, "error status", func(context.Context) error {
		vs, err := e.getVS("ambiguous")
		if err != nil {
			return err
		}
		if vs.Status == nil || vs.Status.Error == nil || vs.Spec.VolumeSnapshotClassName != nil {
			return fmt.Errorf("spec %+v status %+v", vs.Spec, vs.Status)
		}
		return nil
	})
	if n := len(e.drv.Snapshots()); n != 0 {
		t.Errorf("backend snapshots = %d, want none", n)
	}
}

func TestIntegrationDeletionPolicies(t *testing.T) {
	e := newEnv(t, envOptions{})
	e.class("delete", crdv1.VolumeSnapshotContentDelete, false, nil)
	e.class("retain", crdv1.VolumeSnapshotContentRetain, false, nil)
	e.volume("data")
	e.startController(ControllerOptions{})
	e.startSidecar(SidecarOptions{})
	del := e.snapshot("del", "data", "delete")
	ret := e.snapshot("ret", "data", "retain")
	e.waitReady("del")
	e.waitReady("ret")
	if n := len(e.drv.Snapshots()); n != 2 {
		t.Fatalf("backend snapshots = %d, want 2", n)
	}
	for _, name := range []string{"del", "ret"} {
		if err := e.snap.SnapshotV1().VolumeSnapshots(e.ns).Delete(e.ctx, name, metav1.DeleteOptions{}); err != nil {
			t.Fatal(err)
		}
		e.waitGone("snapshot "+name, func() error { _, err := e.getVS(name); return err })
	}
	e.waitGone("Delete content", func() error {
		_, err := e.snap.SnapshotV1().VolumeSnapshotContents().Get(e.ctx, dynamicContentName(del), metav1.GetOptions{})
		return err
	})
	snaps := e.drv.Snapshots()
	if len(snaps) != 1 || snaps[0].Name != "snapshot-"+string(ret.UID) {
		t.Errorf("backend = %+v, want only the retained snapshot", snaps)
	}
	vsc, err := e.snap.SnapshotV1().VolumeSnapshotContents().Get(e.ctx, dynamicContentName(ret), metav1.GetOptions{})
	if err != nil {
		t.Fatalf("retained content: %v", err)
	}
	if vsc.Annotations[AnnBeingDeleted] != "yes" {
		t.Errorf("retained content annotations = %v, want being-deleted", vsc.Annotations)
	}
}

func TestIntegrationPVCProtectedWhileSnapshotting(t *testing.T) {
	e := newEnv(t, envOptions{})
	if !withKCM {
		t.Skip("needs kube-controller-manager's PVC protection controller")
	}
	e.class("gold", crdv1.VolumeSnapshotContentDelete, false, nil)
	e.volume("data")
	e.drv.Hang("CreateSnapshot")
	e.startController(ControllerOptions{})
	e.startSidecar(SidecarOptions{})
	e.snapshot("snap", "data", "gold")
	eventually.Require(t, 20*time.Second, "PVC protected", func(context.Context) error {
		pvc, err := e.kube.CoreV1().PersistentVolumeClaims(e.ns).Get(e.ctx, "data", metav1.GetOptions{})
		if err != nil {
			return err
		}
		if !slices.Contains(pvc.Finalizers, FinalizerPVCAsSource) || e.drv.Calls("CreateSnapshot") == 0 {
			return fmt.Errorf("finalizers %v, calls %d", pvc.Finalizers, e.drv.Calls("CreateSnapshot"))
		}
		return nil
	})
	if err := e.kube.CoreV1().PersistentVolumeClaims(e.ns).Delete(e.ctx, "data", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	// The PVC stays while the snapshot is being cut (well past the call timeout).
	time.Sleep(3 * time.Second)
	pvc, err := e.kube.CoreV1().PersistentVolumeClaims(e.ns).Get(e.ctx, "data", metav1.GetOptions{})
	if err != nil {
		t.Fatalf("PVC deleted while its snapshot was being taken: %v", err)
	}
	if pvc.DeletionTimestamp == nil {
		t.Fatal("PVC not marked for deletion")
	}
	e.drv.Unhang("CreateSnapshot")
	e.waitReady("snap")
	e.waitGone("PVC", func() error {
		_, err := e.kube.CoreV1().PersistentVolumeClaims(e.ns).Get(e.ctx, "data", metav1.GetOptions{})
		return err
	})
}

func TestIntegrationReadinessPolled(t *testing.T) {
	e := newEnv(t, envOptions{notReadyPolls: 3})
	e.class("gold", crdv1.VolumeSnapshotContentDelete, false, nil)
	e.volume("data")
	e.startController(ControllerOptions{BindStatusDelay: 200 * time.Millisecond, DisableNormalEvents: true})
	e.startSidecar(SidecarOptions{ReadyPollStart: 50 * time.Millisecond})
	e.snapshot("slow", "data", "gold")
	e.snapshot("quiet", "data", "gold")
	eventually.Require(t, 10*time.Second, "not ready reported", func(context.Context) error {
		vs, err := e.getVS("slow")
		if err != nil {
			return err
		}
		if vs.Status == nil || vs.Status.BoundVolumeSnapshotContentName == nil {
			return fmt.Errorf("status %+v", vs.Status)
		}
		return nil
	})
	e.waitReady("slow")
	if n := e.drv.Calls("CreateSnapshot"); n < 4 {
		t.Errorf("CreateSnapshot calls = %d, want >= 4 (3 not-ready answers, then ready)", n)
	}
	e.waitReady("quiet")
	// With DisableNormalEvents a successful snapshot writes no Normal event.
	list, err := e.kube.CoreV1().Events(e.ns).List(e.ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for _, ev := range list.Items {
		if ev.Type == v1.EventTypeNormal && (ev.InvolvedObject.Name == "slow" || ev.InvolvedObject.Name == "quiet") {
			t.Errorf("Normal event with DisableNormalEvents: %s %s", ev.Reason, ev.Message)
		}
	}
}

func TestIntegrationMissingPVC(t *testing.T) {
	e := newEnv(t, envOptions{})
	e.class("gold", crdv1.VolumeSnapshotContentDelete, false, nil)
	e.startController(ControllerOptions{})
	e.startSidecar(SidecarOptions{})
	e.snapshot("orphan", "nope", "gold")
	want := fmt.Sprintf("source PVC %s/nope does not exist", e.ns)
	eventually.Require(t, 10*time.Second, "error status", func(context.Context) error {
		vs, err := e.getVS("orphan")
		if err != nil {
			return err
		}
		if vs.Status == nil || vs.Status.Error == nil || vs.Status.Error.Message == nil {
			return fmt.Errorf("status %+v", vs.Status)
		}
		if msg := *vs.Status.Error.Message; !strings.Contains(msg, want) {
			return fmt.Errorf("message %q, want %q", msg, want)
		}
		return nil
	})
	e.waitEvent("orphan", ReasonSnapshotContentCreationFailed, want)
	// Deleting it leaves nothing behind.
	if err := e.snap.SnapshotV1().VolumeSnapshots(e.ns).Delete(e.ctx, "orphan", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	e.waitGone("snapshot", func() error { _, err := e.getVS("orphan"); return err })
}

// A snapshot deleted while the driver is still cutting it (CreateSnapshot
// timed out and keeps running): everything goes, the backend included.
func TestIntegrationDeleteWhileBeingCreated(t *testing.T) {
	e := newEnv(t, envOptions{})
	e.class("gold", crdv1.VolumeSnapshotContentDelete, false, nil)
	e.volume("data")
	e.drv.Hang("CreateSnapshot")
	e.startController(ControllerOptions{})
	e.startSidecar(SidecarOptions{})
	vs := e.snapshot("snap", "data", "gold")
	eventually.Require(t, 20*time.Second, "being-created annotation after a timed-out call", func(context.Context) error {
		vsc, err := e.snap.SnapshotV1().VolumeSnapshotContents().Get(e.ctx, dynamicContentName(vs), metav1.GetOptions{})
		if err != nil {
			return err
		}
		if vsc.Annotations[AnnBeingCreated] != "yes" {
			return fmt.Errorf("annotations %v", vsc.Annotations)
		}
		return nil
	})
	if err := e.snap.SnapshotV1().VolumeSnapshots(e.ns).Delete(e.ctx, "snap", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	time.Sleep(time.Second)
	if _, err := e.snap.SnapshotV1().VolumeSnapshotContents().Get(e.ctx, dynamicContentName(vs), metav1.GetOptions{}); err != nil {
		t.Fatalf("content released while being created: %v", err)
	}
	e.drv.Unhang("CreateSnapshot")
	e.waitGone("snapshot", func() error { _, err := e.getVS("snap"); return err })
	e.waitGone("content", func() error {
		_, err := e.snap.SnapshotV1().VolumeSnapshotContents().Get(e.ctx, dynamicContentName(vs), metav1.GetOptions{})
		return err
	})
	eventually.Require(t, 10*time.Second, "backend empty", func(context.Context) error {
		if s := e.drv.Snapshots(); len(s) != 0 {
			return fmt.Errorf("backend %+v", s)
		}
		return nil
	})
	eventually.Require(t, 10*time.Second, "PVC released", func(context.Context) error {
		pvc, err := e.kube.CoreV1().PersistentVolumeClaims(e.ns).Get(e.ctx, "data", metav1.GetOptions{})
		if err != nil {
			return err
		}
		if slices.Contains(pvc.Finalizers, FinalizerPVCAsSource) {
			return fmt.Errorf("finalizers %v", pvc.Finalizers)
		}
		return nil
	})
}

// The sidecar is stopped while a CreateSnapshot is in flight and the
// snapshot is deleted while it is down; the new sidecar cleans up.
func TestIntegrationRestartMidOperation(t *testing.T) {
	e := newEnv(t, envOptions{})
	e.class("gold", crdv1.VolumeSnapshotContentDelete, false, nil)
	e.volume("data")
	e.drv.SetLatency("CreateSnapshot", 1500*time.Millisecond)
	e.startController(ControllerOptions{})
	stopSidecar := e.startSidecar(SidecarOptions{})
	vs := e.snapshot("snap", "data", "gold")
	eventually.Require(t, 20*time.Second, "create in flight", func(context.Context) error {
		if e.drv.InFlight("CreateSnapshot") == 0 {
			return fmt.Errorf("no call yet")
		}
		return nil
	})
	stopSidecar()
	if err := e.snap.SnapshotV1().VolumeSnapshots(e.ns).Delete(e.ctx, "snap", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	eventually.Require(t, 10*time.Second, "the abandoned call completed in the backend", eventually.True("CreateSnapshot in flight", func() bool {
		return e.drv.InFlight("CreateSnapshot") == 0
	}))
	e.drv.SetLatency("CreateSnapshot", 0)
	e.startSidecar(SidecarOptions{})
	e.waitGone("snapshot", func() error { _, err := e.getVS("snap"); return err })
	e.waitGone("content", func() error {
		_, err := e.snap.SnapshotV1().VolumeSnapshotContents().Get(e.ctx, dynamicContentName(vs), metav1.GetOptions{})
		return err
	})
	eventually.Require(t, 10*time.Second, "backend empty", func(context.Context) error {
		if s := e.drv.Snapshots(); len(s) != 0 {
			return fmt.Errorf("backend %+v", s)
		}
		return nil
	})
}

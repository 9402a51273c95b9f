package provisioner

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/container-storage-interface/spec/lib/go/csi"
	snapv1 "github.com/kubernetes-csi/external-snapshotter/client/v8/apis/volumesnapshot/v1"
	"google.golang.org/grpc/codes"
	v1 "k8s.io/api/core/v1"
	storagev1 "k8s.io/api/storage/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/rest"
	"k8s.io/utils/ptr"

	"github.com/csi-kit/sidecars/testkit/eventually"
	"github.com/csi-kit/sidecars/testkit/fakedriver"
)

// failing returns a client config whose POSTs to paths ending in suffix
// fail with 500 while fail is set.
func failing(suffix string, fail *atomic.Bool) *rest.Config {
	cfg := rest.CopyConfig(cp.Config())
	cfg.Wrap(func(rt http.RoundTripper) http.RoundTripper {
		return roundTripFunc(func(r *http.Request) (*http.Response, error) {
			if fail.Load() && r.Method == http.MethodPost && strings.HasSuffix(r.URL.Path, suffix) {
				body := `{"kind":"Status","apiVersion":"v1","status":"Failure","message":"injected","reason":"InternalError","code":500}`
				return &http.Response{StatusCode: 500, Header: http.Header{"Content-Type": {"application/json"}},
					Body: io.NopCloser(strings.NewReader(body)), Request: r}, nil
			}
			return rt.RoundTrip(r)
		})
	})
	return cfg
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

func (e *env) backendHas(id string) bool {
	for _, v := range e.drv.Volumes() {
		if v.ID == id {
			return true
		}
	}
	return false
}

// TestForgedIntentCannotDeleteAnotherVolume: tenant B writes the intent
// annotation and finalizer naming tenant A's volume on its own claim, then
// deletes the claim. A's volume survives, A stays Bound, B gets a Warning,
// and B's claim is not held by the finalizer. (Before provisioning records
// moved off the claim, the cleanup deleted A's volume.)
func TestForgedIntentCannotDeleteAnotherVolume(t *testing.T) {
	e := newEnv(t, fakedriver.Options{Capabilities: noTopology()})
	e.start(Options{}, nil)
	sc := e.class("std", nil)
	e.claim("victim", sc.Name, "1Gi", nil)
	pvA := e.waitBound("victim")
	e.claim("attacker", sc.Name, "1Gi", func(c *v1.PersistentVolumeClaim) {
		c.Annotations = map[string]string{AnnProvisioningVolumeName: pvA.Name}
		c.Finalizers = []string{FinalizerIntent}
	})
	e.waitEvent("attacker", ReasonForgedRecord, pvA.Name)
	e.waitBound("attacker")
	e.deleteClaim("attacker")
	eventually.Require(e.t, 30*time.Second, "attacker's claim gone", eventually.True("attacker's claim gone", func() bool { return e.getClaim("attacker") == nil }))
	time.Sleep(time.Second) // give a wrong cleanup the chance to act
	if !e.backendHas(pvA.Spec.CSI.VolumeHandle) {
		t.Fatalf("victim's volume %s was deleted from the backend", pvA.Spec.CSI.VolumeHandle)
	}
	if c := e.getClaim("victim"); c.Status.Phase != v1.ClaimBound {
		t.Errorf("victim's claim is %s, want Bound", c.Status.Phase)
	}
}

// TestPVWriteFailsAfterFastCreate: CreateVolume answers at once, but the
// PV cannot be written; the claim is then deleted. The volume ID is kept in
// a provisioning record and the volume is deleted.
func TestPVWriteFailsAfterFastCreate(t *testing.T) {
	e := newEnv(t, fakedriver.Options{Capabilities: noTopology()})
	var fail atomic.Bool
	fail.Store(true)
	e.start(Options{}, failing("/persistentvolumes", &fail))
	sc := e.class("std", nil)
	uid := e.claim("data", sc.Name, "1Gi", nil).UID
	eventually.Require(e.t, 30*time.Second, "a record with the volume ID", eventually.True("a record with the volume ID", func() bool {
		r := e.record(uid)
		return r != nil && strings.Contains(string(r.Data[keyRecord]), "volumeID")
	}))
	if len(e.drv.Volumes()) != 1 {
		t.Fatalf("backend has %d volumes, want 1", len(e.drv.Volumes()))
	}
	e.deleteClaim("data")
	eventually.Require(e.t, 30*time.Second, "backend empty and record gone", eventually.True("backend empty and record gone", func() bool {
		return len(e.drv.Volumes()) == 0 && e.record(uid) == nil
	}))
}

// TestRecordWriteFailsBeforeCreate: with a negative IntentDelay no
// CreateVolume is sent while the record cannot be written; once it can,
// the claim is provisioned and the record removed. Nothing crashes.
func TestRecordWriteFailsBeforeCreate(t *testing.T) {
	e := newEnv(t, fakedriver.Options{Capabilities: noTopology()})
	var fail atomic.Bool
	fail.Store(true)
	e.start(Options{IntentDelay: -1}, failing("/secrets", &fail))
	sc := e.class("std", nil)
	uid := e.claim("data", sc.Name, "1Gi", nil).UID
	e.waitEvent("data", ReasonProvisioningFailed, "provisioning record")
	if n := e.drv.Calls("CreateVolume"); n != 0 {
		t.Fatalf("CreateVolume called %d times without a record", n)
	}
	fail.Store(false)
	e.waitBound("data")
	eventually.Require(e.t, 30*time.Second, "record removed once the PV exists", eventually.True("record removed once the PV exists", func() bool { return e.record(uid) == nil }))
}

// TestNamespaceDeletionNotBlocked: a create hangs with its record written;
// the claim's whole namespace, secret included, is deleted. The namespace
// goes at once, and the volume is deleted with the copied secret once the
// driver answers.
func TestNamespaceDeletionNotBlocked(t *testing.T) {
	e := newEnv(t, fakedriver.Options{Capabilities: noTopology()})
	if _, err := e.kube.CoreV1().Secrets(e.ns).Create(e.ctx, &v1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "creds"},
		StringData: map[string]string{"token": "t0k3n"}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	e.drv.Hang("CreateVolume")
	e.start(Options{Timeout: 2 * time.Second, IntentDelay: 100 * time.Millisecond}, nil)
	sc := e.class("std", func(sc *storagev1.StorageClass) {
		sc.Parameters = map[string]string{
			"csi.storage.k8s.io/provisioner-secret-name":      "creds",
			"csi.storage.k8s.io/provisioner-secret-namespace": "${pvc.namespace}",
		}
	})
	uid := e.claim("data", sc.Name, "1Gi", nil).UID
	eventually.Require(e.t, 30*time.Second, "record written during the slow call", eventually.True("record written during the slow call", func() bool { return e.record(uid) != nil }))
	if err := e.kube.CoreV1().Namespaces().Delete(e.ctx, e.ns, metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	eventually.Require(e.t, 60*time.Second, "namespace gone", eventually.True("namespace gone", func() bool {
		_, err := e.kube.CoreV1().Namespaces().Get(e.ctx, e.ns, metav1.GetOptions{})
		return err != nil
	}))
	e.drv.Unhang("CreateVolume")
	eventually.Require(e.t, 60*time.Second, "backend empty and record gone", eventually.True("backend empty and record gone", func() bool {
		return len(e.drv.Volumes()) == 0 && e.drv.Calls("DeleteVolume") > 0 && e.record(uid) == nil
	}))
	reqs := e.drv.Requests("DeleteVolume")
	if len(reqs) == 0 {
		t.Fatal("no DeleteVolume request recorded")
	}
	if got := reqs[len(reqs)-1].(interface{ GetSecrets() map[string]string }).GetSecrets(); got["token"] != "t0k3n" {
		t.Errorf("DeleteVolume secrets = %v, want the claim's provisioner secret", got)
	}
}

// TestLegacyIntentConverted: a claim carrying the intent record of an
// earlier version that names its own volume is provisioned, and the
// finalizer goes.
func TestLegacyIntentConverted(t *testing.T) {
	e := newEnv(t, fakedriver.Options{Capabilities: noTopology()})
	sc := e.class("std", nil)
	pvc := e.claim("data", sc.Name, "1Gi", nil)
	name, _ := volumeName(DefaultVolumeNamePrefix, string(pvc.UID), 0)
	patch := fmt.Sprintf(`{"metadata":{"annotations":{%q:%q},"finalizers":[%q]}}`, AnnProvisioningVolumeName, name, FinalizerIntent)
	if _, err := e.kube.CoreV1().PersistentVolumeClaims(e.ns).Patch(e.ctx, pvc.Name, types.MergePatchType, []byte(patch), metav1.PatchOptions{}); err != nil {
		t.Fatal(err)
	}
	e.start(Options{}, nil)
	e.waitBound("data")
	eventually.Require(e.t, 30*time.Second, "intent finalizer removed", eventually.True("intent finalizer removed", func() bool {
		return !hasFinalizer(e.getClaim("data").Finalizers, FinalizerIntent)
	}))
	if ev := e.events("data", ReasonForgedRecord); len(ev) != 0 {
		t.Errorf("a valid legacy record was reported as forged: %v", ev)
	}
}

// TestDeleteVolumeOnce: deleting a bound claim deletes its volume with one
// DeleteVolume call (the finalizer patch used to conflict on the stale
// cached PV, and the retry called DeleteVolume again).
func TestDeleteVolumeOnce(t *testing.T) {
	e := newEnv(t, fakedriver.Options{Capabilities: noTopology()})
	e.start(Options{}, nil)
	sc := e.class("std", nil)
	e.claim("data", sc.Name, "1Gi", nil)
	pv := e.waitBound("data")
	e.deleteClaim("data")
	eventually.Require(e.t, 60*time.Second, "PV gone", eventually.True("PV gone", func() bool {
		_, err := e.kube.CoreV1().PersistentVolumes().Get(e.ctx, pv.Name, metav1.GetOptions{})
		return err != nil
	}))
	time.Sleep(500 * time.Millisecond) // a second call would come from a requeue
	if n := e.drv.Calls("DeleteVolume"); n != 1 {
		t.Errorf("DeleteVolume called %d times, want 1", n)
	}
}

// readySnapshot makes a ready VolumeSnapshot "snap" of the volume of pv.
func (e *env) readySnapshot(pv *v1.PersistentVolume) {
	e.t.Helper()
	snap, err := e.conn.Controller().CreateSnapshot(e.ctx, &csi.CreateSnapshotRequest{Name: "snap-1", SourceVolumeId: pv.Spec.CSI.VolumeHandle})
	if err != nil {
		e.t.Fatal(err)
	}
	handle := snap.Snapshot.SnapshotId
	vs, err := e.snaps.SnapshotV1().VolumeSnapshots(e.ns).Create(e.ctx, &snapv1.VolumeSnapshot{
		ObjectMeta: metav1.ObjectMeta{Name: "snap", Namespace: e.ns},
		Spec:       snapv1.VolumeSnapshotSpec{Source: snapv1.VolumeSnapshotSource{VolumeSnapshotContentName: ptr.To(e.ns + "-content")}},
	}, metav1.CreateOptions{})
	if err != nil {
		e.t.Fatal(err)
	}
	content, err := e.snaps.SnapshotV1().VolumeSnapshotContents().Create(e.ctx, &snapv1.VolumeSnapshotContent{
		ObjectMeta: metav1.ObjectMeta{Name: e.ns + "-content"},
		Spec: snapv1.VolumeSnapshotContentSpec{Driver: e.driver, DeletionPolicy: snapv1.VolumeSnapshotContentRetain,
			Source:            snapv1.VolumeSnapshotContentSource{SnapshotHandle: &handle},
			VolumeSnapshotRef: v1.ObjectReference{Name: "snap", Namespace: e.ns, UID: vs.UID}},
	}, metav1.CreateOptions{})
	if err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(func() {
		_ = e.snaps.SnapshotV1().VolumeSnapshotContents().Delete(context.Background(), content.Name, metav1.DeleteOptions{})
	})
	content.Status = &snapv1.VolumeSnapshotContentStatus{SnapshotHandle: &handle, ReadyToUse: ptr.To(true), RestoreSize: ptr.To(int64(1 << 30))}
	if _, err := e.snaps.SnapshotV1().VolumeSnapshotContents().UpdateStatus(e.ctx, content, metav1.UpdateOptions{}); err != nil {
		e.t.Fatal(err)
	}
	vs.Status = &snapv1.VolumeSnapshotStatus{BoundVolumeSnapshotContentName: &content.Name, ReadyToUse: ptr.To(true)}
	if _, err := e.snaps.SnapshotV1().VolumeSnapshots(e.ns).UpdateStatus(e.ctx, vs, metav1.UpdateOptions{}); err != nil {
		e.t.Fatal(err)
	}
}

// TestSweepOrphanedSnapshotFinalizer: a restore fails for good and its
// claim is deleted; the sweeper removes the source-protection finalizer,
// so the snapshot can be deleted. A snapshot a pending restore still needs
// keeps it.
func TestSweepOrphanedSnapshotFinalizer(t *testing.T) {
	e := newEnv(t, fakedriver.Options{Capabilities: noTopology()})
	e.start(Options{SnapshotSweepInterval: 200 * time.Millisecond}, nil)
	sc := e.class("std", nil)
	e.claim("src", sc.Name, "1Gi", nil)
	e.readySnapshot(e.waitBound("src"))
	e.drv.SetError("CreateVolume", codes.InvalidArgument)
	restore := func(c *v1.PersistentVolumeClaim) {
		c.Spec.DataSource = &v1.TypedLocalObjectReference{APIGroup: ptr.To(snapshotAPIGroup), Kind: "VolumeSnapshot", Name: "snap"}
	}
	e.claim("restored", sc.Name, "1Gi", restore)
	protected := func() bool {
		s, err := e.snaps.SnapshotV1().VolumeSnapshots(e.ns).Get(e.ctx, "snap", metav1.GetOptions{})
		return err == nil && hasFinalizer(s.Finalizers, FinalizerSnapshotSource)
	}
	eventually.Require(e.t, 30*time.Second, "snapshot protected during the restore", eventually.True("snapshot protected during the restore", func() bool { return protected() }))
	time.Sleep(time.Second) // several sweeps: a pending restore keeps the finalizer
	if !protected() {
		t.Fatal("the sweeper removed the finalizer while a restore was pending")
	}
	e.deleteClaim("restored")
	eventually.Require(e.t, 30*time.Second, "finalizer swept", eventually.True("finalizer swept", func() bool { return !protected() }))
}

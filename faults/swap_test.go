package faults

import (
	"fmt"
	"testing"
	"time"

	"github.com/container-storage-interface/spec/lib/go/csi"
	crdv1 "github.com/kubernetes-csi/external-snapshotter/client/v8/apis/volumesnapshot/v1"
	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/csi-kit/sidecars/csiconn"
	"github.com/csi-kit/sidecars/provisioner"
	"github.com/csi-kit/sidecars/snapshotter"
	"github.com/csi-kit/sidecars/testkit/fakedriver"
)

// Keys exactly as the upstream sidecars write them. They are spelled out
// here rather than taken from our packages, so that a drift between our
// names and upstream's fails this test.
const (
	upPVFinalizer        = "external-provisioner.volume.kubernetes.io/finalizer"
	upProvisionedBy      = "pv.kubernetes.io/provisioned-by"
	upStorageProvisioner = "volume.kubernetes.io/storage-provisioner"
	upBetaProvisioner    = "volume.beta.kubernetes.io/storage-provisioner"
	upIdentityKey        = "storage.kubernetes.io/csiProvisionerIdentity"
	upVSSource           = "snapshot.storage.kubernetes.io/volumesnapshot-as-source-protection"
	upVSBound            = "snapshot.storage.kubernetes.io/volumesnapshot-bound-protection"
	upVSCBound           = "snapshot.storage.kubernetes.io/volumesnapshotcontent-bound-protection"
	upPVCSource          = "snapshot.storage.kubernetes.io/pvc-as-source-protection"
	upBeingCreated       = "snapshot.storage.kubernetes.io/volumesnapshot-being-created"
)

// TestSwapFromUpstream: a cluster ran the upstream sidecars, which left
// objects in every state they write (a provisioned volume with its PV
// finalizer, a resize marked in progress, a ready snapshot with all its
// finalizers, a snapshot whose CreateSnapshot was sent but not answered,
// a restore not yet provisioned). The upstream containers are replaced by
// ours; ours finish every operation in flight, and deleting everything
// afterwards leaves no object held by a finalizer and nothing in the
// backend.
func TestSwapFromUpstream(t *testing.T) {
	e := newEnv(t, "swap", fakedriver.Options{Capabilities: snapshotCaps()})
	conn := e.connect(csiconn.Options{})
	sc := e.class("sc", nil)
	snapClass := e.snapshotClass()

	// What upstream left behind.
	e.upstreamVolume("kept", sc.Name, "1Gi", nil)
	e.upstreamVolume("resizing", sc.Name, "1Gi", nil)
	e.markResizeInProgress("resizing", "2Gi")
	e.upstreamVolume("source", sc.Name, "1Gi", nil)
	e.upstreamSnapshot("ready", "source", snapClass, true)
	e.upstreamSnapshot("in-flight", "source", snapClass, false)
	e.restoreClaim("restore", sc.Name, "ready")

	// The swap: our containers start.
	e.fault(1)
	e.startProvisioner(e.ctx, provisioner.Options{}, conn)
	e.startResizer(e.ctx, conn)
	ctl, err := snapshotter.NewController(snapshotter.ControllerOptions{SnapshotClient: e.snaps, RetryIntervalStart: 100 * time.Millisecond,
		RetryIntervalMax: 2 * time.Second}, e.kube)
	if err != nil {
		t.Fatal(err)
	}
	e.run("snapshot-controller", e.ctx, ctl.Run)
	e.run("snapshotter", e.ctx, e.newSidecar(conn).Run)

	e.waitCapacity(60*time.Second, "2Gi", "resizing")
	e.waitSnapshotsReady(60*time.Second, "ready", "in-flight")
	e.waitBound(60*time.Second, "restore")
	e.eventually("the in-flight snapshot's being-created mark and the source claim's snapshot finalizer gone", 60*time.Second, func() (bool, string) {
		vs, err := e.snaps.SnapshotV1().VolumeSnapshots(e.ns).Get(e.ctx, "in-flight", metav1.GetOptions{})
		if err != nil || vs.Status == nil || vs.Status.BoundVolumeSnapshotContentName == nil {
			return false, fmt.Sprintf("snapshot: %v", err)
		}
		vsc, err := e.snaps.SnapshotV1().VolumeSnapshotContents().Get(e.ctx, *vs.Status.BoundVolumeSnapshotContentName, metav1.GetOptions{})
		if err != nil {
			return false, err.Error()
		}
		if vsc.Annotations[upBeingCreated] != "" {
			return false, "content still marked being-created"
		}
		pvc, err := e.kube.CoreV1().PersistentVolumeClaims(e.ns).Get(e.ctx, "source", metav1.GetOptions{})
		if err != nil {
			return false, err.Error()
		}
		for _, f := range pvc.Finalizers {
			if f == upPVCSource {
				return false, "source claim still has " + upPVCSource
			}
		}
		return true, ""
	})
	if n := len(e.drv.Snapshots()); n != 2 {
		t.Errorf("backend has %d snapshots after the swap, want 2 (the in-flight create must not cut a second one)", n)
	}
	e.check()

	if err := e.snaps.SnapshotV1().VolumeSnapshots(e.ns).DeleteCollection(e.ctx, metav1.DeleteOptions{}, metav1.ListOptions{}); err != nil {
		t.Fatal(err)
	}
	e.eventually("snapshots deleted in the backend", 60*time.Second, func() (bool, string) {
		n := len(e.drv.Snapshots())
		return n == 0, fmt.Sprintf("%d backend snapshots", n)
	})
	e.check()
	e.drain()
}

// upstreamVolume creates a volume in the driver and the claim and PV the
// upstream provisioner would have written for it; the controller-manager
// binds them. mut may change the claim before it is created.
func (e *env) upstreamVolume(name, class, size string, mut func(*v1.PersistentVolumeClaim)) {
	e.t.Helper()
	pvc := e.newClaim(name, class, size)
	pvc.Annotations = map[string]string{upStorageProvisioner: e.driver, upBetaProvisioner: e.driver}
	if mut != nil {
		mut(pvc)
	}
	pvc, err := e.kube.CoreV1().PersistentVolumeClaims(e.ns).Create(e.ctx, pvc, metav1.CreateOptions{})
	if err != nil {
		e.t.Fatal(err)
	}
	pvName := "pvc-" + string(pvc.UID)
	q := resource.MustParse(size)
	resp, err := e.connCreate(pvName, q.Value())
	if err != nil {
		e.t.Fatal(err)
	}
	pv := &v1.PersistentVolume{
		ObjectMeta: metav1.ObjectMeta{Name: pvName, Annotations: map[string]string{upProvisionedBy: e.driver},
			Finalizers: []string{upPVFinalizer}},
		Spec: v1.PersistentVolumeSpec{
			Capacity:                      v1.ResourceList{v1.ResourceStorage: q},
			AccessModes:                   []v1.PersistentVolumeAccessMode{v1.ReadWriteOnce},
			PersistentVolumeReclaimPolicy: v1.PersistentVolumeReclaimDelete,
			StorageClassName:              class,
			ClaimRef: &v1.ObjectReference{Kind: "PersistentVolumeClaim", APIVersion: "v1", Namespace: e.ns, Name: name,
				UID: pvc.UID, ResourceVersion: pvc.ResourceVersion},
			PersistentVolumeSource: v1.PersistentVolumeSource{CSI: &v1.CSIPersistentVolumeSource{
				Driver: e.driver, VolumeHandle: resp.GetVolume().GetVolumeId(), FSType: "ext4",
				VolumeAttributes: map[string]string{upIdentityKey: "1700000000000-1234-" + e.driver},
			}},
		},
	}
	if _, err := e.kube.CoreV1().PersistentVolumes().Create(e.ctx, pv, metav1.CreateOptions{}); err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(func() { _ = e.kube.CoreV1().PersistentVolumes().Delete(e.t.Context(), pvName, metav1.DeleteOptions{}) })
	e.waitBound(60*time.Second, name)
}

// connCreate calls CreateVolume as the upstream provisioner did.
func (e *env) connCreate(name string, bytes int64) (*csi.CreateVolumeResponse, error) {
	conn := e.connect(csiconn.Options{})
	return conn.Controller().CreateVolume(e.ctx, &csi.CreateVolumeRequest{
		Name:          name,
		CapacityRange: &csi.CapacityRange{RequiredBytes: bytes},
		VolumeCapabilities: []*csi.VolumeCapability{{
			AccessType: &csi.VolumeCapability_Mount{Mount: &csi.VolumeCapability_MountVolume{FsType: "ext4"}},
			AccessMode: &csi.VolumeCapability_AccessMode{Mode: csi.VolumeCapability_AccessMode_SINGLE_NODE_WRITER},
		}},
	})
}

// markResizeInProgress raises the claim's request to size, as its user
// did, and writes the claim status the upstream resizer writes just before
// ControllerExpandVolume: the new size allocated, controller resize in
// progress.
func (e *env) markResizeInProgress(name, size string) {
	e.t.Helper()
	e.request(name, size)
	pvc, err := e.kube.CoreV1().PersistentVolumeClaims(e.ns).Get(e.ctx, name, metav1.GetOptions{})
	if err != nil {
		e.t.Fatal(err)
	}
	pvc.Status.AllocatedResources = v1.ResourceList{v1.ResourceStorage: resource.MustParse(size)}
	pvc.Status.AllocatedResourceStatuses = map[v1.ResourceName]v1.ClaimResourceStatus{
		v1.ResourceStorage: v1.PersistentVolumeClaimControllerResizeInProgress}
	pvc.Status.Conditions = append(pvc.Status.Conditions, v1.PersistentVolumeClaimCondition{
		Type: v1.PersistentVolumeClaimResizing, Status: v1.ConditionTrue, LastTransitionTime: metav1.Now()})
	if _, err := e.kube.CoreV1().PersistentVolumeClaims(e.ns).UpdateStatus(e.ctx, pvc, metav1.UpdateOptions{}); err != nil {
		e.t.Fatal(err)
	}
}

// upstreamSnapshot writes a dynamic VolumeSnapshot of claim and its
// content as the upstream snapshot controller and sidecar leave them:
// ready, with every finalizer; or (ready false) with CreateSnapshot sent
// to the driver but its answer never recorded, the content marked
// being-created and the source claim protected.
func (e *env) upstreamSnapshot(name, claim, class string, ready bool) {
	e.t.Helper()
	vs := &crdv1.VolumeSnapshot{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: e.ns, Finalizers: []string{upVSSource, upVSBound}},
		Spec: crdv1.VolumeSnapshotSpec{Source: crdv1.VolumeSnapshotSource{PersistentVolumeClaimName: &claim},
			VolumeSnapshotClassName: &class},
	}
	vs, err := e.snaps.SnapshotV1().VolumeSnapshots(e.ns).Create(e.ctx, vs, metav1.CreateOptions{})
	if err != nil {
		e.t.Fatal(err)
	}
	pvc, err := e.kube.CoreV1().PersistentVolumeClaims(e.ns).Get(e.ctx, claim, metav1.GetOptions{})
	if err != nil {
		e.t.Fatal(err)
	}
	if !ready {
		pvc.Finalizers = append(pvc.Finalizers, upPVCSource)
		if _, err := e.kube.CoreV1().PersistentVolumeClaims(e.ns).Update(e.ctx, pvc, metav1.UpdateOptions{}); err != nil {
			e.t.Fatal(err)
		}
	}
	pv, err := e.kube.CoreV1().PersistentVolumes().Get(e.ctx, pvc.Spec.VolumeName, metav1.GetOptions{})
	if err != nil {
		e.t.Fatal(err)
	}
	conn := e.connect(csiconn.Options{})
	snapName := "snapshot-" + string(vs.UID)
	resp, err := conn.Controller().CreateSnapshot(e.ctx, &csi.CreateSnapshotRequest{
		Name: snapName, SourceVolumeId: pv.Spec.CSI.VolumeHandle})
	if err != nil {
		e.t.Fatal(err)
	}
	handle := pv.Spec.CSI.VolumeHandle
	vsc := &crdv1.VolumeSnapshotContent{
		ObjectMeta: metav1.ObjectMeta{Name: "snapcontent-" + string(vs.UID), Finalizers: []string{upVSCBound}},
		Spec: crdv1.VolumeSnapshotContentSpec{
			VolumeSnapshotRef:       v1.ObjectReference{Kind: "VolumeSnapshot", APIVersion: "snapshot.storage.k8s.io/v1", Namespace: e.ns, Name: name, UID: vs.UID},
			DeletionPolicy:          crdv1.VolumeSnapshotContentDelete,
			Driver:                  e.driver,
			VolumeSnapshotClassName: &class,
			Source:                  crdv1.VolumeSnapshotContentSource{VolumeHandle: &handle},
		},
	}
	if !ready {
		vsc.Annotations = map[string]string{upBeingCreated: "yes"}
	}
	vsc, err = e.snaps.SnapshotV1().VolumeSnapshotContents().Create(e.ctx, vsc, metav1.CreateOptions{})
	if err != nil {
		e.t.Fatal(err)
	}
	vs.Status = &crdv1.VolumeSnapshotStatus{BoundVolumeSnapshotContentName: &vsc.Name, ReadyToUse: ptr(false)}
	if ready {
		snap := resp.GetSnapshot()
		created := snap.GetCreationTime().AsTime().UnixNano()
		vsc.Status = &crdv1.VolumeSnapshotContentStatus{SnapshotHandle: ptr(snap.GetSnapshotId()), ReadyToUse: ptr(true),
			RestoreSize: ptr(snap.GetSizeBytes()), CreationTime: &created}
		if _, err := e.snaps.SnapshotV1().VolumeSnapshotContents().UpdateStatus(e.ctx, vsc, metav1.UpdateOptions{}); err != nil {
			e.t.Fatal(err)
		}
		size := resource.NewQuantity(snap.GetSizeBytes(), resource.BinarySI)
		ct := metav1.NewTime(snap.GetCreationTime().AsTime())
		vs.Status = &crdv1.VolumeSnapshotStatus{BoundVolumeSnapshotContentName: &vsc.Name, ReadyToUse: ptr(true),
			RestoreSize: size, CreationTime: &ct}
	}
	if _, err := e.snaps.SnapshotV1().VolumeSnapshots(e.ns).UpdateStatus(e.ctx, vs, metav1.UpdateOptions{}); err != nil {
		e.t.Fatal(err)
	}
}

// restoreClaim creates a claim restoring from snapshot, as a user does; the
// upstream provisioner had not got to it.
func (e *env) restoreClaim(name, class, snapshot string) types.UID {
	e.t.Helper()
	pvc := e.newClaim(name, class, "1Gi")
	group := "snapshot.storage.k8s.io"
	pvc.Spec.DataSource = &v1.TypedLocalObjectReference{APIGroup: &group, Kind: "VolumeSnapshot", Name: snapshot}
	pvc, err := e.kube.CoreV1().PersistentVolumeClaims(e.ns).Create(e.ctx, pvc, metav1.CreateOptions{})
	if err != nil {
		e.t.Fatal(err)
	}
	return pvc.UID
}

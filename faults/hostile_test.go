package faults

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
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/csi-kit/sidecars/csiconn"
	"github.com/csi-kit/sidecars/internal/kube"
	"github.com/csi-kit/sidecars/provisioner"
	"github.com/csi-kit/sidecars/snapshotter"
	"github.com/csi-kit/sidecars/testkit/controlplane"
	"github.com/csi-kit/sidecars/testkit/fakedriver"
)

// hostile is a case with two tenants of one driver: the victim A in the
// case's namespace, with a bound claim and a ready snapshot of it, and the
// attacker B in a namespace of its own, who may write any namespaced
// object (claims, snapshots, their annotations and finalizers) but no
// cluster-scoped one.
type hostile struct {
	*env
	atk      *env // the attacker's namespace; same driver and clients
	class    string
	snapCls  string
	claim    *v1.PersistentVolumeClaim // A's, bound
	pv       string                    // A's PV, pvc-<claim UID>
	snap     *crdv1.VolumeSnapshot     // A's, ready
	content  string                    // A's dynamically created content
	volumes  []string                  // A's backend volume IDs
	backups  []string                  // A's backend snapshot IDs
	volumeID string
	snapID   string
}

// newHostile starts a provisioner, a snapshot controller and a snapshot
// sidecar (all with event recorders), and builds A's claim and snapshot.
func newHostile(t *testing.T) *hostile {
	t.Helper()
	if cp == nil {
		t.Skip("fault suite: needs the control plane (not in -short mode)")
	}
	return newHostileOn(t, cp, provisioner.Options{}, snapshotCaps())
}

// newHostileOn is newHostile on control plane c, with a provisioner of
// popts and a driver of caps.
func newHostileOn(t *testing.T, c *controlplane.ControlPlane, popts provisioner.Options, caps fakedriver.Capabilities) *hostile {
	t.Helper()
	e := newEnvOn(t, c, "hostile", fakedriver.Options{Capabilities: caps})
	atk := *e
	atk.ns = e.ns + "-b"
	if _, err := e.kube.CoreV1().Namespaces().Create(e.ctx, &v1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: atk.ns}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = e.kube.CoreV1().Namespaces().Delete(context.Background(), atk.ns, metav1.DeleteOptions{})
	})
	h := &hostile{env: e, atk: &atk}
	h.class = e.class("sc", nil).Name
	h.snapCls = e.snapshotClass()
	conn := e.connect(csiconn.Options{})
	e.startProvisioner(e.ctx, popts, conn)
	ctlRec, stopCtl, err := kube.RecorderFor(e.kube, snapshotter.ControllerComponent)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(stopCtl)
	ctl, err := snapshotter.NewController(snapshotter.ControllerOptions{SnapshotClient: e.snaps, Recorder: ctlRec,
		RetryIntervalStart: 100 * time.Millisecond, RetryIntervalMax: 2 * time.Second}, e.kube)
	if err != nil {
		t.Fatal(err)
	}
	e.run("snapshot-controller", e.ctx, ctl.Run)
	sideRec, stopSide, err := kube.RecorderFor(e.kube, snapshotter.SidecarComponent)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(stopSide)
	sdrv, err := snapshotter.NewCSIDriver(conn)
	if err != nil {
		t.Fatal(err)
	}
	side, err := snapshotter.NewSidecar(snapshotter.SidecarOptions{SnapshotClient: e.snaps, DriverName: e.driver, Recorder: sideRec,
		RetryIntervalStart: 100 * time.Millisecond, RetryIntervalMax: 2 * time.Second, ReadyPollStart: 100 * time.Millisecond}, e.kube, sdrv)
	if err != nil {
		t.Fatal(err)
	}
	e.run("snapshotter", e.ctx, side.Run)

	name := e.claims("a", h.class, "1Gi", 1)[0]
	e.waitBound(60*time.Second, name)
	e.snapshot("snap-a", name, h.snapCls)
	e.waitSnapshotsReady(60*time.Second, "snap-a")
	if h.claim, err = e.kube.CoreV1().PersistentVolumeClaims(e.ns).Get(e.ctx, name, metav1.GetOptions{}); err != nil {
		t.Fatal(err)
	}
	h.pv = h.claim.Spec.VolumeName
	if h.snap, err = e.snaps.SnapshotV1().VolumeSnapshots(e.ns).Get(e.ctx, "snap-a", metav1.GetOptions{}); err != nil {
		t.Fatal(err)
	}
	h.content = *h.snap.Status.BoundVolumeSnapshotContentName
	for _, v := range e.drv.Volumes() {
		h.volumes = append(h.volumes, v.ID)
	}
	for _, s := range e.drv.Snapshots() {
		h.backups = append(h.backups, s.ID)
	}
	if len(h.volumes) != 1 || len(h.backups) != 1 || h.pv != "pvc-"+string(h.claim.UID) {
		t.Fatalf("victim set-up: volumes %v, snapshots %v, PV %s of claim %s", h.volumes, h.backups, h.pv, h.claim.UID)
	}
	h.volumeID, h.snapID = h.volumes[0], h.backups[0]
	return h
}

// createClaim creates a claim of the attacker.
func (h *hostile) createClaim(pvc *v1.PersistentVolumeClaim) {
	h.t.Helper()
	pvc.Namespace = h.atk.ns
	if _, err := h.kube.CoreV1().PersistentVolumeClaims(h.atk.ns).Create(h.ctx, pvc, metav1.CreateOptions{}); err != nil {
		h.t.Fatalf("attacker claim %s: %v", pvc.Name, err)
	}
	h.fault(1)
}

func (h *hostile) createSnapshot(vs *crdv1.VolumeSnapshot) {
	h.t.Helper()
	vs.Namespace = h.atk.ns
	if _, err := h.snaps.SnapshotV1().VolumeSnapshots(h.atk.ns).Create(h.ctx, vs, metav1.CreateOptions{}); err != nil {
		h.t.Fatalf("attacker snapshot %s: %v", vs.Name, err)
	}
	h.fault(1)
}

// attackerClaim is a claim of the attacker of the case's class.
func (h *hostile) attackerClaim(name string) *v1.PersistentVolumeClaim {
	pvc := h.newClaim(name, h.class, "1Gi")
	pvc.Namespace = h.atk.ns
	return pvc
}

// warned waits until an object of the attacker named name has a Warning
// event. With controllersOnly, only events of the controllers under test
// count (the PV binder's do not).
func (h *hostile) warned(name string, controllersOnly bool) {
	h.t.Helper()
	ok := poll(30*time.Second, func() (bool, string) {
		list, err := h.kube.CoreV1().Events(h.atk.ns).List(h.ctx, metav1.ListOptions{})
		if err != nil {
			return false, err.Error()
		}
		for _, ev := range list.Items {
			if ev.InvolvedObject.Name == name && ev.Type == v1.EventTypeWarning &&
				(!controllersOnly || ev.Source.Component != "persistentvolume-controller") {
				h.t.Logf("%s warned: %s %s: %s", name, ev.Source.Component, ev.Reason, ev.Message)
				return true, ""
			}
		}
		return false, ""
	})
	if !ok {
		h.t.Errorf("no Warning event on the attacker's %s/%s within 30s", h.atk.ns, name)
	}
}

// survives checks that everything of A is intact: its backend volume and
// snapshot, its PV bound to its claim, its snapshot ready and bound to its
// content.
func (h *hostile) survives() {
	h.t.Helper()
	have := map[string]bool{}
	for _, v := range h.drv.Volumes() {
		have[v.ID] = true
	}
	for _, s := range h.drv.Snapshots() {
		have[s.ID] = true
	}
	for _, id := range append(slices.Clone(h.volumes), h.backups...) {
		if !have[id] {
			h.t.Errorf("victim's backend object %s is gone", id)
		}
	}
	pv, err := h.kube.CoreV1().PersistentVolumes().Get(h.ctx, h.pv, metav1.GetOptions{})
	switch {
	case err != nil:
		h.t.Errorf("victim's PV: %v", err)
	case pv.DeletionTimestamp != nil || pv.Status.Phase != v1.VolumeBound || pv.Spec.ClaimRef == nil || pv.Spec.ClaimRef.UID != h.claim.UID:
		h.t.Errorf("victim's PV %s: phase %s, deleted %v, claimRef %+v; want Bound to %s/%s", pv.Name, pv.Status.Phase, pv.DeletionTimestamp != nil, pv.Spec.ClaimRef, h.ns, h.claim.Name)
	}
	vs, err := h.snaps.SnapshotV1().VolumeSnapshots(h.ns).Get(h.ctx, h.snap.Name, metav1.GetOptions{})
	switch {
	case err != nil:
		h.t.Errorf("victim's snapshot: %v", err)
	case vs.DeletionTimestamp != nil || vs.Status == nil || vs.Status.ReadyToUse == nil || !*vs.Status.ReadyToUse ||
		vs.Status.BoundVolumeSnapshotContentName == nil || *vs.Status.BoundVolumeSnapshotContentName != h.content:
		h.t.Errorf("victim's snapshot changed: deleted %v, status %+v", vs.DeletionTimestamp != nil, vs.Status)
	}
	vsc, err := h.snaps.SnapshotV1().VolumeSnapshotContents().Get(h.ctx, h.content, metav1.GetOptions{})
	switch {
	case err != nil:
		h.t.Errorf("victim's content: %v", err)
	case vsc.DeletionTimestamp != nil || vsc.Spec.VolumeSnapshotRef.UID != h.snap.UID:
		h.t.Errorf("victim's content %s: deleted %v, bound to %+v", vsc.Name, vsc.DeletionTimestamp != nil, vsc.Spec.VolumeSnapshotRef)
	}
	for _, r := range h.drv.Requests("CreateVolume") {
		src := r.(*csi.CreateVolumeRequest).GetVolumeContentSource()
		if src.GetSnapshot().GetSnapshotId() == h.snapID || src.GetVolume().GetVolumeId() == h.volumeID {
			h.t.Errorf("CreateVolume %s was given the victim's data: %v", r.(*csi.CreateVolumeRequest).GetName(), src)
		}
	}
}

// deleteClaim deletes a claim of the attacker.
func (h *hostile) deleteClaim(name string) {
	h.t.Helper()
	if err := h.kube.CoreV1().PersistentVolumeClaims(h.atk.ns).Delete(h.ctx, name, metav1.DeleteOptions{}); err != nil && !apierrors.IsNotFound(err) {
		h.t.Fatal(err)
	}
}

// finish deletes the attacker's namespace, which must go within a minute
// (no finalizer of ours left on its objects), checks A again and the
// invariants, then removes A's snapshot and claim.
func (h *hostile) finish() {
	h.t.Helper()
	if err := h.kube.CoreV1().Namespaces().Delete(h.ctx, h.atk.ns, metav1.DeleteOptions{}); err != nil {
		h.t.Fatal(err)
	}
	var last string
	if !poll(time.Minute, func() (bool, string) {
		if _, err := h.kube.CoreV1().Namespaces().Get(h.ctx, h.atk.ns, metav1.GetOptions{}); apierrors.IsNotFound(err) {
			return true, ""
		}
		last = h.atk.stuckFinalizers() + "; " + h.atk.leftovers()
		return false, last
	}) {
		tallies.add(h.category, func(c *tally) { c.Stuck++ })
		h.t.Errorf("attacker's namespace %s still there after 1m: %s", h.atk.ns, last)
	}
	h.survives()
	h.check()
	if err := h.snaps.SnapshotV1().VolumeSnapshots(h.ns).DeleteCollection(h.ctx, metav1.DeleteOptions{}, metav1.ListOptions{}); err != nil {
		h.t.Fatal(err)
	}
	h.eventually("victim's backend snapshot deleted", 60*time.Second, func() (bool, string) {
		n := len(h.drv.Snapshots())
		return n == 0, fmt.Sprintf("%d backend snapshots", n)
	})
	h.check()
	h.drain()
}

// leftovers lists the claims and snapshots of the namespace with their
// finalizers.
func (e *env) leftovers() string {
	var msgs []string
	if claims, err := e.kube.CoreV1().PersistentVolumeClaims(e.ns).List(e.ctx, metav1.ListOptions{}); err == nil {
		for _, c := range claims.Items {
			msgs = append(msgs, fmt.Sprintf("claim %s %v", c.Name, c.Finalizers))
		}
	}
	if snaps, err := e.snaps.SnapshotV1().VolumeSnapshots(e.ns).List(e.ctx, metav1.ListOptions{}); err == nil {
		for _, s := range snaps.Items {
			msgs = append(msgs, fmt.Sprintf("snapshot %s %v", s.Name, s.Finalizers))
		}
	}
	return strings.Join(msgs, ", ")
}

// TestHostileForgedIntentRecord: the attacker's claims carry A's volume
// name in the provisioner's old intent annotation, with its finalizer, and
// are deleted (one at once, one after the provisioner saw it). The
// provisioner must not delete A's volume on their behalf, must warn, and
// must let the claims go.
func TestHostileForgedIntentRecord(t *testing.T) {
	h := newHostile(t)
	for _, name := range []string{"forged-seen", "forged-now"} {
		pvc := h.attackerClaim(name)
		pvc.Annotations = map[string]string{provisioner.AnnProvisioningVolumeName: h.pv}
		pvc.Finalizers = []string{provisioner.FinalizerIntent}
		h.createClaim(pvc)
		if name == "forged-now" {
			h.deleteClaim(name)
		}
	}
	h.warned("forged-seen", true)
	h.deleteClaim("forged-seen")
	h.atk.eventually("forged claims gone", 30*time.Second, func() (bool, string) {
		left := h.atk.leftovers()
		return left == "", left
	})
	h.survives()
	h.finish()
}

// TestHostileClaimNamesOthersVolume: the attacker's claim names A's PV in
// spec.volumeName. The PV binder refuses (A's PV is bound to A's claim);
// nothing of ours may bind, release or delete A's PV.
func TestHostileClaimNamesOthersVolume(t *testing.T) {
	h := newHostile(t)
	pvc := h.attackerClaim("steal")
	pvc.Spec.VolumeName = h.pv
	h.createClaim(pvc)
	noClass := ""
	pvc = h.attackerClaim("steal-no-class")
	pvc.Spec.VolumeName, pvc.Spec.StorageClassName = h.pv, &noClass
	h.createClaim(pvc)
	// Our controllers leave claims that name a volume to the PV binder,
	// whose Warning is what the attacker gets.
	h.warned("steal", false)
	h.warned("steal-no-class", false)
	h.survives()
	h.deleteClaim("steal")
	h.survives()
	h.finish()
}

// TestHostileDataSourceInOtherNamespace: the attacker's claims restore
// from A's snapshot or clone A's claim, by dataSource (same name in the
// attacker's namespace) and by dataSourceRef with A's namespace. No
// CreateVolume may get A's data; each claim gets a Warning.
func TestHostileDataSourceInOtherNamespace(t *testing.T) {
	h := newHostile(t)
	group := crdv1.GroupName
	cases := map[string]func(*v1.PersistentVolumeClaim){
		"snap-by-name": func(c *v1.PersistentVolumeClaim) {
			c.Spec.DataSource = &v1.TypedLocalObjectReference{APIGroup: &group, Kind: "VolumeSnapshot", Name: h.snap.Name}
		},
		"snap-by-ref": func(c *v1.PersistentVolumeClaim) {
			c.Spec.DataSourceRef = &v1.TypedObjectReference{APIGroup: &group, Kind: "VolumeSnapshot", Name: h.snap.Name, Namespace: &h.ns}
		},
		"clone-by-name": func(c *v1.PersistentVolumeClaim) {
			c.Spec.DataSource = &v1.TypedLocalObjectReference{Kind: "PersistentVolumeClaim", Name: h.claim.Name}
		},
		"clone-by-ref": func(c *v1.PersistentVolumeClaim) {
			c.Spec.DataSourceRef = &v1.TypedObjectReference{Kind: "PersistentVolumeClaim", Name: h.claim.Name, Namespace: &h.ns}
		},
	}
	for name, mut := range cases {
		pvc := h.attackerClaim(name)
		mut(pvc)
		h.createClaim(pvc)
	}
	// Without the CrossNamespaceVolumeDataSource feature gate the
	// apiserver drops a dataSourceRef with a namespace: the claim is then
	// an empty one, and provisioning it is right.
	refused := map[string]bool{}
	for name := range cases {
		got, err := h.kube.CoreV1().PersistentVolumeClaims(h.atk.ns).Get(h.ctx, name, metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("%s stored with dataSource %+v, dataSourceRef %+v", name, got.Spec.DataSource, got.Spec.DataSourceRef)
		if got.Spec.DataSource == nil && got.Spec.DataSourceRef == nil {
			continue
		}
		refused[name] = true
		h.warned(name, true)
	}
	h.survives()
	for name := range refused {
		got, err := h.kube.CoreV1().PersistentVolumeClaims(h.atk.ns).Get(h.ctx, name, metav1.GetOptions{})
		if err == nil && got.Status.Phase == v1.ClaimBound {
			t.Errorf("attacker's claim %s is Bound (to %s) from another namespace's data", name, got.Spec.VolumeName)
		}
	}
	h.finish()
}

// TestHostileForgedSnapshotObjects: the attacker's snapshots name A's
// dynamically created content as their pre-provisioned source, carry the
// controllers' annotations and finalizers, and its claims carry their
// finalizers. A's content and backend snapshot survive every delete, the
// misbound snapshots get a Warning, and the attacker's objects go.
func TestHostileForgedSnapshotObjects(t *testing.T) {
	h := newHostile(t)
	forgedAnn := map[string]string{
		snapshotter.AnnBeingDeleted:            "yes",
		snapshotter.AnnBeingCreated:            "yes",
		snapshotter.AnnDeletionSecretName:      "stolen",
		snapshotter.AnnDeletionSecretNamespace: h.ns,
	}
	allFinalizers := []string{snapshotter.FinalizerSnapshotAsSource, snapshotter.FinalizerSnapshotBound, provisioner.FinalizerSnapshotSource}
	// Pre-provisioned, naming A's content: plain, and with every forged
	// annotation and finalizer.
	for i, name := range []string{"claims-content", "claims-content-forged"} {
		content := h.content
		vs := &crdv1.VolumeSnapshot{ObjectMeta: metav1.ObjectMeta{Name: name},
			Spec: crdv1.VolumeSnapshotSpec{Source: crdv1.VolumeSnapshotSource{VolumeSnapshotContentName: &content}}}
		if i == 1 {
			vs.Annotations, vs.Finalizers = forgedAnn, allFinalizers
		}
		h.createSnapshot(vs)
	}
	// The same name as A's snapshot, in the attacker's namespace.
	content := h.content
	h.createSnapshot(&crdv1.VolumeSnapshot{ObjectMeta: metav1.ObjectMeta{Name: h.snap.Name, Annotations: forgedAnn, Finalizers: allFinalizers},
		Spec: crdv1.VolumeSnapshotSpec{Source: crdv1.VolumeSnapshotSource{VolumeSnapshotContentName: &content}}})
	// A dynamic snapshot of the attacker's own claim with the forged
	// annotations: it works on the attacker's volume only.
	own := h.attackerClaim("own")
	own.Finalizers = []string{snapshotter.FinalizerPVCAsSource, provisioner.FinalizerCloneSource}
	own.Annotations = map[string]string{provisioner.AnnProvisioningVolumeName: h.pv}
	h.createClaim(own)
	h.createSnapshot(&crdv1.VolumeSnapshot{ObjectMeta: metav1.ObjectMeta{Name: "own-snap", Annotations: forgedAnn},
		Spec: crdv1.VolumeSnapshotSpec{Source: crdv1.VolumeSnapshotSource{PersistentVolumeClaimName: &own.Name}, VolumeSnapshotClassName: &h.snapCls}})
	// A claim with the snapshot finalizers, deleted at once.
	bare := h.attackerClaim("bare")
	bare.Finalizers = []string{snapshotter.FinalizerPVCAsSource, provisioner.FinalizerCloneSource}
	h.createClaim(bare)
	h.deleteClaim("bare")

	h.warned("claims-content", true)
	h.warned("claims-content-forged", true)
	h.warned(h.snap.Name, true)
	h.survives()
	for _, name := range []string{"claims-content", "claims-content-forged", h.snap.Name, "own-snap"} {
		if err := h.snaps.SnapshotV1().VolumeSnapshots(h.atk.ns).Delete(h.ctx, name, metav1.DeleteOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	if !poll(60*time.Second, func() (bool, string) {
		list, err := h.snaps.SnapshotV1().VolumeSnapshots(h.atk.ns).List(h.ctx, metav1.ListOptions{})
		return err == nil && len(list.Items) == 0, ""
	}) {
		t.Errorf("attacker's deleted snapshots still there after 60s: %s", h.atk.leftovers())
	}
	h.survives()
	h.finish()
}

package deploy

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/container-storage-interface/spec/lib/go/csi"
	groupv1 "github.com/kubernetes-csi/external-snapshotter/client/v8/apis/volumegroupsnapshot/v1"
	crdv1 "github.com/kubernetes-csi/external-snapshotter/client/v8/apis/volumesnapshot/v1"
	snapclient "github.com/kubernetes-csi/external-snapshotter/client/v8/clientset/versioned"
	v1 "k8s.io/api/core/v1"
	storagev1 "k8s.io/api/storage/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/klog/v2/ktesting"

	"github.com/csi-kit/sidecars/csiconn"
	"github.com/csi-kit/sidecars/internal/kube"
	"github.com/csi-kit/sidecars/leaderelection"
	"github.com/csi-kit/sidecars/provisioner"
	"github.com/csi-kit/sidecars/resizer"
	"github.com/csi-kit/sidecars/snapshotter"
	"github.com/csi-kit/sidecars/testkit/controlplane"
	"github.com/csi-kit/sidecars/testkit/fakedriver"
)

// world is one test's namespace, admin clients, driver and connection.
type world struct {
	t      *testing.T
	ctx    context.Context
	ns     string
	admin  kubernetes.Interface
	snap   snapclient.Interface
	driver *fakedriver.Driver
	conn   *csiconn.Conn
	// refused collects the 403s of every ServiceAccount client; a wait
	// fails as soon as one is seen.
	refused []*Forbidden
}

func newWorld(t *testing.T) *world {
	needCluster(t)
	_, ctx := ktesting.NewTestContext(t)
	ctx, cancel := context.WithCancel(ctx)
	t.Cleanup(cancel)
	cfg := cp.Config()
	w := &world{t: t, ctx: ctx, admin: kubernetes.NewForConfigOrDie(cfg), snap: snapclient.NewForConfigOrDie(cfg)}
	ns, err := w.admin.CoreV1().Namespaces().Create(ctx, &v1.Namespace{ObjectMeta: metav1.ObjectMeta{GenerateName: "rbac-"}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	w.ns = ns.Name
	w.driver = fakedriver.Start(t, fakedriver.Options{Name: w.ns + ".csi.test"})
	w.conn, err = csiconn.Connect(ctx, csiconn.Options{Address: w.driver.Endpoint(), CallTimeout: 10 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { w.conn.Close() })
	return w
}

// as applies file's RBAC in the test namespace and returns a config for
// its ServiceAccount whose 403 answers are recorded in the returned
// Forbidden. It waits until every granted rule is in effect, so that a
// refusal later means a missing rule, not a slow authorizer cache.
func (w *world) as(file, sa string) (*rest.Config, *Forbidden) {
	w.t.Helper()
	if err := ApplyRBAC(w.ctx, w.admin, file, w.ns, "-"+w.ns); err != nil {
		w.t.Fatal(err)
	}
	saCfg := kube.WithBudget(cp.ConfigForServiceAccount(w.ns, sa), -1, 0)
	if err := WaitGranted(w.ctx, kubernetes.NewForConfigOrDie(saCfg), file, w.ns, 30*time.Second); err != nil {
		w.t.Fatal(err)
	}
	f := &Forbidden{}
	w.refused = append(w.refused, f)
	return f.Watch(saCfg), f
}

// elected runs work under leader election with the ServiceAccount's
// client, as the binaries do, and stops it at cleanup.
func (w *world) elected(cfg *rest.Config, lock string, work func(context.Context) error) {
	w.t.Helper()
	opts := leaderelection.Options{LockName: lock, Namespace: w.ns, Identity: lock + "-0", RetryPeriod: time.Second, RenewDeadline: 5 * time.Second, LeaseDuration: 8 * time.Second}
	client, err := leaderelection.NewClient(cfg, opts)
	if err != nil {
		w.t.Fatal(err)
	}
	e, err := leaderelection.New(opts, client)
	if err != nil {
		w.t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(w.ctx)
	done := make(chan error, 1)
	go func() { done <- e.Run(ctx, work) }()
	w.t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil && ctx.Err() == nil {
			w.t.Errorf("%s: %v", lock, err)
		}
	})
	w.eventually("lease "+lock+" held", 30*time.Second, func() error {
		l, err := w.admin.CoordinationV1().Leases(w.ns).Get(w.ctx, lock, metav1.GetOptions{})
		if err != nil {
			return err
		}
		if l.Spec.HolderIdentity == nil || *l.Spec.HolderIdentity != opts.Identity {
			return fmt.Errorf("holder %v", l.Spec.HolderIdentity)
		}
		return nil
	})
}

func (w *world) eventually(what string, timeout time.Duration, cond func() error) {
	w.t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		for _, f := range w.refused {
			if r := f.Requests(); len(r) > 0 {
				w.t.Fatalf("%s: forbidden requests (missing RBAC rules): %q", what, r)
			}
		}
		err := cond()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			w.t.Fatalf("%s: not within %v: %v", what, timeout, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// noForbidden fails the test if any request was refused; it also lists
// Warning events in the namespace mentioning "forbidden".
func (w *world) noForbidden(who string, f *Forbidden) {
	w.t.Helper()
	if r := f.Requests(); len(r) > 0 {
		w.t.Errorf("%s: forbidden requests (missing RBAC rules): %q", who, r)
	}
	evs, err := w.admin.CoreV1().Events(w.ns).List(w.ctx, metav1.ListOptions{})
	if err != nil {
		w.t.Fatal(err)
	}
	for _, e := range evs.Items {
		if containsFold(e.Message, "forbidden") {
			w.t.Errorf("%s: event %s %s: %s", who, e.Reason, e.InvolvedObject.Name, e.Message)
		}
	}
}

func containsFold(s, sub string) bool {
	for i := 0; i+len(sub) <= len(s); i++ {
		if equalFold(s[i:i+len(sub)], sub) {
			return true
		}
	}
	return false
}

func equalFold(a, b string) bool {
	for i := 0; i < len(a); i++ {
		ca, cb := a[i]|0x20, b[i]|0x20
		if ca != cb {
			return false
		}
	}
	return true
}

func (w *world) class(expand bool) string {
	w.t.Helper()
	name := w.ns + "-sc"
	mode := storagev1.VolumeBindingImmediate
	sc := &storagev1.StorageClass{ObjectMeta: metav1.ObjectMeta{Name: name}, Provisioner: w.conn.DriverName(),
		VolumeBindingMode: &mode, AllowVolumeExpansion: &expand}
	if _, err := w.admin.StorageV1().StorageClasses().Create(w.ctx, sc, metav1.CreateOptions{}); err != nil {
		w.t.Fatal(err)
	}
	w.t.Cleanup(func() {
		_ = w.admin.StorageV1().StorageClasses().Delete(context.Background(), name, metav1.DeleteOptions{})
	})
	return name
}

// boundClaim creates a backend volume and a PV and PVC bound to it.
func (w *world) boundClaim(name, class string) *v1.PersistentVolumeClaim {
	w.t.Helper()
	resp, err := w.conn.Controller().CreateVolume(w.ctx, &csi.CreateVolumeRequest{
		Name: w.ns + "-" + name, CapacityRange: &csi.CapacityRange{RequiredBytes: 1 << 30},
		VolumeCapabilities: []*csi.VolumeCapability{{AccessType: &csi.VolumeCapability_Mount{Mount: &csi.VolumeCapability_MountVolume{}},
			AccessMode: &csi.VolumeCapability_AccessMode{Mode: csi.VolumeCapability_AccessMode_SINGLE_NODE_WRITER}}},
	})
	if err != nil {
		w.t.Fatal(err)
	}
	size := resource.MustParse("1Gi")
	pv := &v1.PersistentVolume{ObjectMeta: metav1.ObjectMeta{Name: "pv-" + w.ns + "-" + name}, Spec: v1.PersistentVolumeSpec{
		Capacity: v1.ResourceList{v1.ResourceStorage: size}, AccessModes: []v1.PersistentVolumeAccessMode{v1.ReadWriteOnce},
		PersistentVolumeReclaimPolicy: v1.PersistentVolumeReclaimRetain, StorageClassName: class,
		ClaimRef:               &v1.ObjectReference{Kind: "PersistentVolumeClaim", APIVersion: "v1", Namespace: w.ns, Name: name},
		PersistentVolumeSource: v1.PersistentVolumeSource{CSI: &v1.CSIPersistentVolumeSource{Driver: w.conn.DriverName(), VolumeHandle: resp.GetVolume().GetVolumeId()}},
	}}
	if _, err := w.admin.CoreV1().PersistentVolumes().Create(w.ctx, pv, metav1.CreateOptions{}); err != nil {
		w.t.Fatal(err)
	}
	pvc := &v1.PersistentVolumeClaim{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: w.ns}, Spec: v1.PersistentVolumeClaimSpec{
		AccessModes: []v1.PersistentVolumeAccessMode{v1.ReadWriteOnce}, VolumeName: pv.Name, StorageClassName: &class,
		Resources: v1.VolumeResourceRequirements{Requests: v1.ResourceList{v1.ResourceStorage: size}},
	}}
	created, err := w.admin.CoreV1().PersistentVolumeClaims(w.ns).Create(w.ctx, pvc, metav1.CreateOptions{})
	if err != nil {
		w.t.Fatal(err)
	}
	uidPatch := []byte(fmt.Sprintf(`{"spec":{"claimRef":{"uid":%q}}}`, created.UID))
	if _, err := w.admin.CoreV1().PersistentVolumes().Patch(w.ctx, pv.Name, types.MergePatchType, uidPatch, metav1.PatchOptions{}); err != nil {
		w.t.Fatal(err)
	}
	created.Status = v1.PersistentVolumeClaimStatus{Phase: v1.ClaimBound, AccessModes: pvc.Spec.AccessModes, Capacity: v1.ResourceList{v1.ResourceStorage: size}}
	if created, err = w.admin.CoreV1().PersistentVolumeClaims(w.ns).UpdateStatus(w.ctx, created, metav1.UpdateOptions{}); err != nil {
		w.t.Fatal(err)
	}
	return created
}

func TestProvisionerRBAC(t *testing.T) {
	w := newWorld(t)
	cfg, forbidden := w.as("rbac-csi-provisioner.yaml", "csi-provisioner")
	client := kubernetes.NewForConfigOrDie(cfg)
	rec, stop, err := kube.RecorderFor(client, "external-provisioner")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(stop)
	p, err := provisioner.New(provisioner.Options{RecordNamespace: w.ns, IntentDelay: -1, /* records written and removed under the shipped rules */
		SnapshotClient: snapclient.NewForConfigOrDie(cfg), Recorder: rec}, client, w.conn)
	if err != nil {
		t.Fatal(err)
	}
	w.elected(cfg, leaderelection.LockName(leaderelection.ComponentProvisioner, w.conn.DriverName()), p.Run)

	w.node()
	class := w.class(false)
	pvc := &v1.PersistentVolumeClaim{ObjectMeta: metav1.ObjectMeta{Name: "claim", Namespace: w.ns,
		// kube-controller-manager's binder would write this; it does not run here.
		Annotations: map[string]string{"volume.kubernetes.io/storage-provisioner": w.conn.DriverName()}}, Spec: v1.PersistentVolumeClaimSpec{
		AccessModes: []v1.PersistentVolumeAccessMode{v1.ReadWriteOnce}, StorageClassName: &class,
		Resources: v1.VolumeResourceRequirements{Requests: v1.ResourceList{v1.ResourceStorage: resource.MustParse("1Gi")}},
	}}
	created, err := w.admin.CoreV1().PersistentVolumeClaims(w.ns).Create(w.ctx, pvc, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	w.eventually("PV provisioned for the claim", time.Minute, func() error {
		pvs, err := w.admin.CoreV1().PersistentVolumes().List(w.ctx, metav1.ListOptions{})
		if err != nil {
			return err
		}
		for _, pv := range pvs.Items {
			if ref := pv.Spec.ClaimRef; ref != nil && ref.UID == created.UID {
				return nil
			}
		}
		return fmt.Errorf("no PV yet; backend has %d volumes", len(w.driver.Volumes()))
	})
	w.eventually("ProvisioningSucceeded event", 30*time.Second, func() error { return w.event("claim", "ProvisioningSucceeded") })
	w.noForbidden("csi-provisioner", forbidden)
}

// node creates a Node and its CSINode carrying the fake driver's topology,
// so that Immediate claims get a topology requirement.
func (w *world) node() {
	w.t.Helper()
	key := "topology." + w.conn.DriverName() + "/node"
	name := w.ns + "-node"
	if err := controlplane.CreateNode(w.ctx, w.admin, name, map[string]string{key: fakedriver.DefaultNodeID}); err != nil {
		w.t.Fatal(err)
	}
	cn := &storagev1.CSINode{ObjectMeta: metav1.ObjectMeta{Name: name}, Spec: storagev1.CSINodeSpec{Drivers: []storagev1.CSINodeDriver{
		{Name: w.conn.DriverName(), NodeID: fakedriver.DefaultNodeID, TopologyKeys: []string{key}}}}}
	if _, err := w.admin.StorageV1().CSINodes().Create(w.ctx, cn, metav1.CreateOptions{}); err != nil {
		w.t.Fatal(err)
	}
	w.t.Cleanup(func() {
		_ = w.admin.StorageV1().CSINodes().Delete(context.Background(), name, metav1.DeleteOptions{})
		_ = w.admin.CoreV1().Nodes().Delete(context.Background(), name, metav1.DeleteOptions{})
	})
}

func (w *world) event(object, reason string) error {
	evs, err := w.admin.CoreV1().Events(w.ns).List(w.ctx, metav1.ListOptions{})
	if err != nil {
		return err
	}
	var seen []string
	for _, e := range evs.Items {
		if e.InvolvedObject.Name == object && e.Reason == reason {
			return nil
		}
		seen = append(seen, e.Reason)
	}
	return fmt.Errorf("events of the namespace: %q", seen)
}

func TestResizerRBAC(t *testing.T) {
	w := newWorld(t)
	cfg, forbidden := w.as("rbac-csi-resizer.yaml", "csi-resizer")
	client := kubernetes.NewForConfigOrDie(cfg)
	rec, stop, err := kube.RecorderFor(client, "external-resizer")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(stop)
	drv, err := resizer.NewCSIDriver(w.ctx, w.conn)
	if err != nil {
		t.Fatal(err)
	}
	r, err := resizer.New(resizer.Options{Recorder: rec}, client, drv)
	if err != nil {
		t.Fatal(err)
	}
	w.elected(cfg, leaderelection.LockName(leaderelection.ComponentResizer, w.conn.DriverName()), r.Run)

	pvc := w.boundClaim("claim", w.class(true))
	patch := []byte(`{"spec":{"resources":{"requests":{"storage":"2Gi"}}}}`)
	if _, err := w.admin.CoreV1().PersistentVolumeClaims(w.ns).Patch(w.ctx, pvc.Name, types.MergePatchType, patch, metav1.PatchOptions{}); err != nil {
		t.Fatal(err)
	}
	w.eventually("PV expanded to 2Gi", time.Minute, func() error {
		pv, err := w.admin.CoreV1().PersistentVolumes().Get(w.ctx, pvc.Spec.VolumeName, metav1.GetOptions{})
		if err != nil {
			return err
		}
		if got := pv.Spec.Capacity[v1.ResourceStorage]; got.Cmp(resource.MustParse("2Gi")) != 0 {
			return fmt.Errorf("PV capacity %s", got.String())
		}
		return nil
	})
	w.eventually("Resizing event", 30*time.Second, func() error { return w.event("claim", "Resizing") })
	w.noForbidden("csi-resizer", forbidden)
}

// TestSnapshotRBAC runs the snapshot controller and the sidecar, each as
// its own ServiceAccount, through one snapshot.
func TestSnapshotRBAC(t *testing.T) {
	w := newWorld(t)
	ctlCfg, ctlForbidden := w.as("rbac-snapshot-controller.yaml", "snapshot-controller")
	sideCfg, sideForbidden := w.as("rbac-csi-snapshotter.yaml", "csi-snapshotter")

	ctlKube := kubernetes.NewForConfigOrDie(ctlCfg)
	ctlRec, stop, err := kube.RecorderFor(ctlKube, snapshotter.ControllerComponent)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(stop)
	ctl, err := snapshotter.NewController(snapshotter.ControllerOptions{SnapshotClient: snapclient.NewForConfigOrDie(ctlCfg), Recorder: ctlRec}, ctlKube)
	if err != nil {
		t.Fatal(err)
	}
	// The controller's Lease is cluster-wide by name; one per namespace here.
	w.elected(ctlCfg, leaderelection.LockName(leaderelection.ComponentSnapshotCtl, ""), ctl.Run)

	sideKube := kubernetes.NewForConfigOrDie(sideCfg)
	sideRec, stop2, err := kube.RecorderFor(sideKube, snapshotter.SidecarComponent)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(stop2)
	drv, err := snapshotter.NewCSIDriver(w.conn)
	if err != nil {
		t.Fatal(err)
	}
	side, err := snapshotter.NewSidecar(snapshotter.SidecarOptions{SnapshotClient: snapclient.NewForConfigOrDie(sideCfg), DriverName: w.conn.DriverName(), Recorder: sideRec}, sideKube, drv)
	if err != nil {
		t.Fatal(err)
	}
	w.elected(sideCfg, leaderelection.LockName(leaderelection.ComponentSnapshotter, w.conn.DriverName()), side.Run)

	pvc := w.boundClaim("claim", w.class(false))
	vsc := &crdv1.VolumeSnapshotClass{ObjectMeta: metav1.ObjectMeta{Name: w.ns + "-vsc"}, Driver: w.conn.DriverName(), DeletionPolicy: crdv1.VolumeSnapshotContentDelete}
	if _, err := w.snap.SnapshotV1().VolumeSnapshotClasses().Create(w.ctx, vsc, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = w.snap.SnapshotV1().VolumeSnapshotClasses().Delete(context.Background(), vsc.Name, metav1.DeleteOptions{})
	})
	vs := &crdv1.VolumeSnapshot{ObjectMeta: metav1.ObjectMeta{Name: "snap", Namespace: w.ns}, Spec: crdv1.VolumeSnapshotSpec{
		Source: crdv1.VolumeSnapshotSource{PersistentVolumeClaimName: &pvc.Name}, VolumeSnapshotClassName: &vsc.Name}}
	if _, err := w.snap.SnapshotV1().VolumeSnapshots(w.ns).Create(w.ctx, vs, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	w.eventually("snapshot ready", time.Minute, func() error {
		got, err := w.snap.SnapshotV1().VolumeSnapshots(w.ns).Get(w.ctx, vs.Name, metav1.GetOptions{})
		if err != nil {
			return err
		}
		if got.Status == nil || got.Status.ReadyToUse == nil || !*got.Status.ReadyToUse {
			return fmt.Errorf("status %+v", got.Status)
		}
		return nil
	})
	// Deleting exercises the content deletion path of both.
	if err := w.snap.SnapshotV1().VolumeSnapshots(w.ns).Delete(w.ctx, vs.Name, metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	w.eventually("snapshot deleted from the backend", time.Minute, func() error {
		if n := len(w.driver.Snapshots()); n != 0 {
			return fmt.Errorf("%d backend snapshots", n)
		}
		if _, err := w.snap.SnapshotV1().VolumeSnapshots(w.ns).Get(w.ctx, vs.Name, metav1.GetOptions{}); err == nil {
			return fmt.Errorf("VolumeSnapshot still there")
		}
		return nil
	})
	w.groupRoundTrip()
	w.noForbidden("snapshot-controller", ctlForbidden)
	w.noForbidden("csi-snapshotter", sideForbidden)
}

// groupRoundTrip creates a dynamic group content as the common controller
// would, and has the sidecar cut it, then delete it under policy Delete.
func (w *world) groupRoundTrip() {
	w.t.Helper()
	class := &groupv1.VolumeGroupSnapshotClass{ObjectMeta: metav1.ObjectMeta{Name: w.ns + "-vgsc"}, Driver: w.conn.DriverName(), DeletionPolicy: crdv1.VolumeSnapshotContentDelete}
	if _, err := w.snap.GroupsnapshotV1().VolumeGroupSnapshotClasses().Create(w.ctx, class, metav1.CreateOptions{}); err != nil {
		w.t.Fatal(err)
	}
	w.t.Cleanup(func() {
		_ = w.snap.GroupsnapshotV1().VolumeGroupSnapshotClasses().Delete(context.Background(), class.Name, metav1.DeleteOptions{})
	})
	var vols []string
	for _, v := range w.driver.Volumes() {
		vols = append(vols, v.ID)
	}
	c := &groupv1.VolumeGroupSnapshotContent{
		ObjectMeta: metav1.ObjectMeta{Name: w.ns + "-group", Finalizers: []string{snapshotter.FinalizerGroupContentBound}},
		Spec: groupv1.VolumeGroupSnapshotContentSpec{
			VolumeGroupSnapshotRef:       v1.ObjectReference{Name: "group", Namespace: w.ns, UID: "0b5e3c58-5b7e-4d39-9d8e-6c3f0e1a2b4c"},
			DeletionPolicy:               crdv1.VolumeSnapshotContentDelete,
			Driver:                       w.conn.DriverName(),
			VolumeGroupSnapshotClassName: &class.Name,
			Source:                       groupv1.VolumeGroupSnapshotContentSource{VolumeHandles: vols},
		},
	}
	if _, err := w.snap.GroupsnapshotV1().VolumeGroupSnapshotContents().Create(w.ctx, c, metav1.CreateOptions{}); err != nil {
		w.t.Fatal(err)
	}
	w.eventually("group snapshot cut", time.Minute, func() error {
		got, err := w.snap.GroupsnapshotV1().VolumeGroupSnapshotContents().Get(w.ctx, c.Name, metav1.GetOptions{})
		if err != nil {
			return err
		}
		if got.Status == nil || got.Status.ReadyToUse == nil || !*got.Status.ReadyToUse {
			return fmt.Errorf("status %+v", got.Status)
		}
		return nil
	})
	patch := []byte(fmt.Sprintf(`{"metadata":{"annotations":{%q:"yes"}}}`, snapshotter.AnnGroupBeingDeleted))
	if _, err := w.snap.GroupsnapshotV1().VolumeGroupSnapshotContents().Patch(w.ctx, c.Name, types.MergePatchType, patch, metav1.PatchOptions{}); err != nil {
		w.t.Fatal(err)
	}
	if err := w.snap.GroupsnapshotV1().VolumeGroupSnapshotContents().Delete(w.ctx, c.Name, metav1.DeleteOptions{}); err != nil {
		w.t.Fatal(err)
	}
	w.eventually("group content released and its snapshot deleted", time.Minute, func() error {
		if n := len(w.driver.GroupSnapshots()); n != 0 {
			return fmt.Errorf("%d backend group snapshots", n)
		}
		if _, err := w.snap.GroupsnapshotV1().VolumeGroupSnapshotContents().Get(w.ctx, c.Name, metav1.GetOptions{}); err == nil {
			return fmt.Errorf("group content still there")
		}
		return nil
	})
}

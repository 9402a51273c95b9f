package main

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/container-storage-interface/spec/lib/go/csi"
	crdv1 "github.com/kubernetes-csi/external-snapshotter/client/v8/apis/volumesnapshot/v1"
	snapclient "github.com/kubernetes-csi/external-snapshotter/client/v8/clientset/versioned"
	snapfake "github.com/kubernetes-csi/external-snapshotter/client/v8/clientset/versioned/fake"
	v1 "k8s.io/api/core/v1"
	storagev1 "k8s.io/api/storage/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
	kubefake "k8s.io/client-go/kubernetes/fake"
	"k8s.io/klog/v2"
	"k8s.io/klog/v2/ktesting"

	"github.com/csi-kit/sidecars/csiconn"
	"github.com/csi-kit/sidecars/examples/deploy"
	"github.com/csi-kit/sidecars/internal/cmdutil"
	"github.com/csi-kit/sidecars/internal/explaincmd"
	"github.com/csi-kit/sidecars/internal/kube"
	"github.com/csi-kit/sidecars/snapshotter"
	"github.com/csi-kit/sidecars/testkit/controlplane"
	"github.com/csi-kit/sidecars/testkit/fakedriver"
)

var cp *controlplane.ControlPlane

func TestMain(m *testing.M) {
	klog.InitFlags(nil)
	flag.Parse()
	// The snapshotter package adds its types to client-go's global scheme
	// in its first NewController/NewSidecar; do it now, before the tests'
	// clients decode with that scheme from other goroutines.
	if _, err := snapshotter.NewController(snapshotter.ControllerOptions{SnapshotClient: snapfake.NewSimpleClientset()}, kubefake.NewClientset()); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	os.Exit(controlplane.RunTests(m, controlplane.Options{RBAC: true, SnapshotCRDs: true, Progress: os.Stderr}, &cp))
}

func needCluster(tb testing.TB) {
	tb.Helper()
	if cp == nil {
		tb.Skip("integration test: needs the control plane, skipped in -short mode")
	}
}

// TestAllInOne runs every controller of csi-sidecars in one process as the
// csi-sidecars ServiceAccount of examples/deploy: a claim is provisioned,
// another is expanded and snapshotted; no request may be forbidden.
func TestAllInOne(t *testing.T) {
	needCluster(t)
	_, ctx := ktesting.NewTestContext(t)
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	admin := kubernetes.NewForConfigOrDie(cp.Config())
	snaps := snapclient.NewForConfigOrDie(cp.Config())
	nsObj, err := admin.CoreV1().Namespaces().Create(ctx, &v1.Namespace{ObjectMeta: metav1.ObjectMeta{GenerateName: "aio-"}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	ns := nsObj.Name
	caps := fakedriver.All
	caps.Topology = false
	drv := fakedriver.Start(t, fakedriver.Options{Name: ns + ".csi.test", Capabilities: caps})
	conn, err := csiconn.Connect(ctx, csiconn.Options{Address: drv.Endpoint(), CallTimeout: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	driver := conn.DriverName()

	if err := deploy.ApplyRBAC(ctx, admin, "rbac-csi-sidecars.yaml", ns, "-"+ns); err != nil {
		t.Fatal(err)
	}
	saCfg := kube.WithBudget(cp.ConfigForServiceAccount(ns, "csi-sidecars"), -1, 0)
	if err := deploy.WaitGranted(ctx, kubernetes.NewForConfigOrDie(saCfg), "rbac-csi-sidecars.yaml", ns, 30*time.Second); err != nil {
		t.Fatal(err)
	}
	forbidden := &deploy.Forbidden{}
	saCfg = forbidden.Watch(saCfg)
	env := &cmdutil.Env{Config: saCfg, Kube: kubernetes.NewForConfigOrDie(saCfg), Conn: conn}
	f := parse(t, "--enable-snapshot-controller", "--retry-interval-start=100ms", "--leader-election-namespace="+ns)
	done := make(chan error, 1)
	runCtx, stop := context.WithCancel(ctx)
	go func() { done <- run(runCtx, env, f) }()
	defer func() {
		stop()
		if err := <-done; err != nil {
			t.Errorf("run: %v", err)
		}
	}()
	eventually := func(what string, cond func() error) {
		t.Helper()
		deadline := time.Now().Add(time.Minute)
		for {
			if r := forbidden.Requests(); len(r) > 0 {
				t.Fatalf("%s: forbidden requests: %q", what, r)
			}
			select {
			case err := <-done:
				t.Fatalf("%s: run returned %v", what, err)
			default:
			}
			err := cond()
			if err == nil {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s: %v", what, err)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}

	expand := true
	class := &storagev1.StorageClass{ObjectMeta: metav1.ObjectMeta{Name: ns + "-sc"}, Provisioner: driver, AllowVolumeExpansion: &expand}
	if _, err := admin.StorageV1().StorageClasses().Create(ctx, class, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	defer admin.StorageV1().StorageClasses().Delete(context.Background(), class.Name, metav1.DeleteOptions{})

	// Provision.
	gi := resource.MustParse("1Gi")
	claim := &v1.PersistentVolumeClaim{ObjectMeta: metav1.ObjectMeta{Name: "new", Namespace: ns,
		Annotations: map[string]string{"volume.kubernetes.io/storage-provisioner": driver}}, Spec: v1.PersistentVolumeClaimSpec{
		AccessModes: []v1.PersistentVolumeAccessMode{v1.ReadWriteOnce}, StorageClassName: &class.Name,
		Resources: v1.VolumeResourceRequirements{Requests: v1.ResourceList{v1.ResourceStorage: gi}}}}
	created, err := admin.CoreV1().PersistentVolumeClaims(ns).Create(ctx, claim, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	eventually("PV provisioned", func() error {
		pvs, err := admin.CoreV1().PersistentVolumes().List(ctx, metav1.ListOptions{})
		if err != nil {
			return err
		}
		for _, pv := range pvs.Items {
			if pv.Spec.ClaimRef != nil && pv.Spec.ClaimRef.UID == created.UID {
				return nil
			}
		}
		return fmt.Errorf("no PV for the claim")
	})

	// Expand a bound claim.
	pvc := boundClaim(ctx, t, admin, conn, ns, "old", class.Name)
	patch := []byte(`{"spec":{"resources":{"requests":{"storage":"2Gi"}}}}`)
	if _, err := admin.CoreV1().PersistentVolumeClaims(ns).Patch(ctx, pvc.Name, types.MergePatchType, patch, metav1.PatchOptions{}); err != nil {
		t.Fatal(err)
	}
	eventually("PV expanded", func() error {
		pv, err := admin.CoreV1().PersistentVolumes().Get(ctx, pvc.Spec.VolumeName, metav1.GetOptions{})
		if err != nil {
			return err
		}
		if q := pv.Spec.Capacity[v1.ResourceStorage]; q.Cmp(resource.MustParse("2Gi")) != 0 {
			return fmt.Errorf("capacity %s", q.String())
		}
		return nil
	})

	// Snapshot it: controller and sidecar both run in this process.
	vsc := &crdv1.VolumeSnapshotClass{ObjectMeta: metav1.ObjectMeta{Name: ns + "-vsc"}, Driver: driver, DeletionPolicy: crdv1.VolumeSnapshotContentDelete}
	if _, err := snaps.SnapshotV1().VolumeSnapshotClasses().Create(ctx, vsc, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	defer snaps.SnapshotV1().VolumeSnapshotClasses().Delete(context.Background(), vsc.Name, metav1.DeleteOptions{})
	vs := &crdv1.VolumeSnapshot{ObjectMeta: metav1.ObjectMeta{Name: "snap", Namespace: ns}, Spec: crdv1.VolumeSnapshotSpec{
		Source: crdv1.VolumeSnapshotSource{PersistentVolumeClaimName: &pvc.Name}, VolumeSnapshotClassName: &vsc.Name}}
	if _, err := snaps.SnapshotV1().VolumeSnapshots(ns).Create(ctx, vs, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	eventually("snapshot ready", func() error {
		got, err := snaps.SnapshotV1().VolumeSnapshots(ns).Get(ctx, vs.Name, metav1.GetOptions{})
		if err != nil {
			return err
		}
		if got.Status == nil || got.Status.ReadyToUse == nil || !*got.Status.ReadyToUse {
			return fmt.Errorf("status %+v", got.Status)
		}
		return nil
	})
	if n := len(drv.Snapshots()); n != 1 {
		t.Errorf("backend snapshots %d, want 1", n)
	}

	// The explain subcommand reads the same cluster.
	var out, errOut bytes.Buffer
	code := explaincmd.Run(ctx, "csi-sidecars explain", []string{"--kubeconfig", cp.KubeconfigPath(), "volumesnapshot", "snap", "-n", ns}, &out, &errOut)
	if code != 0 || !strings.Contains(out.String(), ns+"/snap") {
		t.Errorf("explain: code %d, stdout %q, stderr %q", code, out.String(), errOut.String())
	}
	t.Logf("explain:\n%s", out.String())
}

// boundClaim creates a backend volume and a PV and PVC bound to it, as
// kube-controller-manager's binder would.
func boundClaim(ctx context.Context, t *testing.T, admin kubernetes.Interface, conn *csiconn.Conn, ns, name, class string) *v1.PersistentVolumeClaim {
	t.Helper()
	pvc, err := makeBoundClaim(ctx, admin, conn, ns, name, class)
	if err != nil {
		t.Fatal(err)
	}
	return pvc
}

func makeBoundClaim(ctx context.Context, admin kubernetes.Interface, conn *csiconn.Conn, ns, name, class string) (*v1.PersistentVolumeClaim, error) {
	resp, err := conn.Controller().CreateVolume(ctx, &csi.CreateVolumeRequest{
		Name: ns + "-" + name, CapacityRange: &csi.CapacityRange{RequiredBytes: 1 << 30},
		VolumeCapabilities: []*csi.VolumeCapability{{AccessType: &csi.VolumeCapability_Mount{Mount: &csi.VolumeCapability_MountVolume{}},
			AccessMode: &csi.VolumeCapability_AccessMode{Mode: csi.VolumeCapability_AccessMode_SINGLE_NODE_WRITER}}},
	})
	if err != nil {
		return nil, err
	}
	size := resource.MustParse("1Gi")
	pv := &v1.PersistentVolume{ObjectMeta: metav1.ObjectMeta{Name: "pv-" + ns + "-" + name}, Spec: v1.PersistentVolumeSpec{
		Capacity: v1.ResourceList{v1.ResourceStorage: size}, AccessModes: []v1.PersistentVolumeAccessMode{v1.ReadWriteOnce},
		PersistentVolumeReclaimPolicy: v1.PersistentVolumeReclaimRetain, StorageClassName: class,
		ClaimRef:               &v1.ObjectReference{Kind: "PersistentVolumeClaim", APIVersion: "v1", Namespace: ns, Name: name},
		PersistentVolumeSource: v1.PersistentVolumeSource{CSI: &v1.CSIPersistentVolumeSource{Driver: conn.DriverName(), VolumeHandle: resp.GetVolume().GetVolumeId()}},
	}}
	if _, err := admin.CoreV1().PersistentVolumes().Create(ctx, pv, metav1.CreateOptions{}); err != nil {
		return nil, err
	}
	pvc := &v1.PersistentVolumeClaim{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns}, Spec: v1.PersistentVolumeClaimSpec{
		AccessModes: []v1.PersistentVolumeAccessMode{v1.ReadWriteOnce}, VolumeName: pv.Name, StorageClassName: &class,
		Resources: v1.VolumeResourceRequirements{Requests: v1.ResourceList{v1.ResourceStorage: size}},
	}}
	created, err := admin.CoreV1().PersistentVolumeClaims(ns).Create(ctx, pvc, metav1.CreateOptions{})
	if err != nil {
		return nil, err
	}
	uid := []byte(fmt.Sprintf(`{"spec":{"claimRef":{"uid":%q}}}`, created.UID))
	if _, err := admin.CoreV1().PersistentVolumes().Patch(ctx, pv.Name, types.MergePatchType, uid, metav1.PatchOptions{}); err != nil {
		return nil, err
	}
	created.Status = v1.PersistentVolumeClaimStatus{Phase: v1.ClaimBound, AccessModes: pvc.Spec.AccessModes, Capacity: v1.ResourceList{v1.ResourceStorage: size}}
	return admin.CoreV1().PersistentVolumeClaims(ns).UpdateStatus(ctx, created, metav1.UpdateOptions{})
}

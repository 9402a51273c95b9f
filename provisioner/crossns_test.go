package provisioner

import (
	"context"
	"fmt"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/container-storage-interface/spec/lib/go/csi"
	snapv1 "github.com/kubernetes-csi/external-snapshotter/client/v8/apis/volumesnapshot/v1"
	v1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"
	"k8s.io/utils/ptr"

	"github.com/csi-kit/sidecars/testkit/controlplane"
	"github.com/csi-kit/sidecars/testkit/eventually"
	"github.com/csi-kit/sidecars/testkit/fakedriver"
)

// TestCrossNamespaceDataSources runs on a control plane of its own: its
// kube-apiserver has the CrossNamespaceVolumeDataSource gate (the shared
// one drops a dataSourceRef's namespace) and serves the ReferenceGrant
// CRD of testdata/referencegrant.
func TestCrossNamespaceDataSources(t *testing.T) {
	needCluster(t)
	c := controlplane.StartT(t, controlplane.Options{
		ControllerManager: true, SnapshotCRDs: true, Progress: os.Stderr,
		CRDDirs:            []string{"testdata/referencegrant"},
		ExtraAPIServerArgs: []string{"--feature-gates=CrossNamespaceVolumeDataSource=true"},
	})
	t.Run("CloneWithGrant", func(t *testing.T) {
		x := newXNS(t, c, true)
		x.grant("to-src", v1.GroupName, "PersistentVolumeClaim", "src")
		x.claim("copy", x.cloneRef("src"))
		pv := x.waitBound("copy")
		if got := x.volume(pv).SourceVolumeID; got != x.srcHandle {
			t.Errorf("clone source %q, want the source claim's volume %q", got, x.srcHandle)
		}
		src, err := x.kube.CoreV1().PersistentVolumeClaims(x.srcNS).Get(x.ctx, "src", metav1.GetOptions{})
		if err != nil || !hasFinalizer(src.Finalizers, FinalizerCloneSource) {
			t.Errorf("source claim %s/src: finalizers %v (err %v), want %s", x.srcNS, src.Finalizers, err, FinalizerCloneSource)
		}
		// A grant removed before provisioning blocks the next clone again.
		x.deleteGrant("to-src")
		calls := x.drv.Calls("CreateVolume")
		x.claim("late", x.cloneRef("src"))
		x.waitWarning("late", "no ReferenceGrant in namespace "+x.srcNS)
		x.stillPending("late", calls)
	})
	t.Run("CloneWithoutGrant", func(t *testing.T) {
		x := newXNS(t, c, true)
		// Grants that do not fit: other target name, other kind, other
		// claim namespace.
		x.grant("other-name", v1.GroupName, "PersistentVolumeClaim", "not-src")
		x.grant("snapshots-only", snapshotAPIGroup, "VolumeSnapshot", "")
		x.grantFrom("other-ns", x.ns+"-other", v1.GroupName, "PersistentVolumeClaim", "")
		calls := x.drv.Calls("CreateVolume")
		x.claim("copy", x.cloneRef("src"))
		x.waitWarning("copy", fmt.Sprintf("create one in namespace %s with from [{group: \"\", kind: PersistentVolumeClaim, namespace: %s}]", x.srcNS, x.ns))
		x.stillPending("copy", calls)
		src, err := x.kube.CoreV1().PersistentVolumeClaims(x.srcNS).Get(x.ctx, "src", metav1.GetOptions{})
		if err != nil || hasFinalizer(src.Finalizers, FinalizerCloneSource) {
			t.Errorf("source claim %s/src got %s without a grant (err %v)", x.srcNS, FinalizerCloneSource, err)
		}
		// The grant the event asks for lets the claim through.
		x.grant("to-src", v1.GroupName, "PersistentVolumeClaim", "src")
		pv := x.waitBound("copy")
		if got := x.volume(pv).SourceVolumeID; got != x.srcHandle {
			t.Errorf("clone source %q, want %q", got, x.srcHandle)
		}
	})
	t.Run("RestoreWithGrant", func(t *testing.T) {
		x := newXNS(t, c, true)
		handle := x.snapshot("snap")
		x.grant("to-snap", snapshotAPIGroup, "VolumeSnapshot", "snap")
		x.drv.Hang("CreateVolume")
		x.claim("restored", &v1.TypedObjectReference{APIGroup: ptr.To(snapshotAPIGroup), Kind: "VolumeSnapshot", Name: "snap", Namespace: &x.srcNS})
		eventually.Require(t, 30*time.Second, "restore in flight", eventually.True("CreateVolume in flight", func() bool { return x.drv.InFlight("CreateVolume") > 0 }))
		if s, err := x.snaps.SnapshotV1().VolumeSnapshots(x.srcNS).Get(x.ctx, "snap", metav1.GetOptions{}); err != nil || !hasFinalizer(s.Finalizers, FinalizerSnapshotSource) {
			t.Errorf("snapshot %s/snap not protected during the restore: %v (err %v)", x.srcNS, s.Finalizers, err)
		}
		x.drv.Unhang("CreateVolume")
		pv := x.waitBound("restored")
		if got := x.volume(pv).SourceSnapshotID; got != handle {
			t.Errorf("restored volume source %q, want %q", got, handle)
		}
		eventually.Require(t, 30*time.Second, "source protection removed", func(ctx context.Context) error {
			s, err := x.snaps.SnapshotV1().VolumeSnapshots(x.srcNS).Get(ctx, "snap", metav1.GetOptions{})
			if err == nil && hasFinalizer(s.Finalizers, FinalizerSnapshotSource) {
				err = fmt.Errorf("finalizers %v", s.Finalizers)
			}
			return err
		})
	})
	t.Run("RestoreWithoutGrant", func(t *testing.T) {
		x := newXNS(t, c, true)
		x.snapshot("snap")
		x.grant("clones-only", v1.GroupName, "PersistentVolumeClaim", "")
		calls := x.drv.Calls("CreateVolume")
		x.claim("restored", &v1.TypedObjectReference{APIGroup: ptr.To(snapshotAPIGroup), Kind: "VolumeSnapshot", Name: "snap", Namespace: &x.srcNS})
		x.waitWarning("restored", "no ReferenceGrant in namespace "+x.srcNS)
		x.stillPending("restored", calls)
		if s, err := x.snaps.SnapshotV1().VolumeSnapshots(x.srcNS).Get(x.ctx, "snap", metav1.GetOptions{}); err != nil || hasFinalizer(s.Finalizers, FinalizerSnapshotSource) {
			t.Errorf("snapshot %s/snap got %s without a grant (err %v)", x.srcNS, FinalizerSnapshotSource, err)
		}
	})
	t.Run("GateOff", func(t *testing.T) {
		x := newXNS(t, c, false)
		x.grant("to-src", v1.GroupName, "PersistentVolumeClaim", "")
		calls := x.drv.Calls("CreateVolume")
		x.claim("copy", x.cloneRef("src"))
		x.waitWarning("copy", "without feature gate CrossNamespaceVolumeDataSource")
		x.stillPending("copy", calls)
	})
	// Last: it removes the CRD from the control plane.
	t.Run("NoReferenceGrantAPI", func(t *testing.T) {
		x := newXNS(t, c, true)
		crds := schema.GroupVersionResource{Group: "apiextensions.k8s.io", Version: "v1", Resource: "customresourcedefinitions"}
		if err := x.dyn.Resource(crds).Delete(x.ctx, "referencegrants.gateway.networking.k8s.io", metav1.DeleteOptions{}); err != nil {
			t.Fatal(err)
		}
		eventually.Require(t, 60*time.Second, "ReferenceGrant API gone", func(ctx context.Context) error {
			_, err := x.dyn.Resource(referenceGrantResource).Namespace(x.srcNS).List(ctx, metav1.ListOptions{})
			if !apierrors.IsNotFound(err) {
				return fmt.Errorf("still served: list error %v", err)
			}
			return nil
		})
		calls := x.drv.Calls("CreateVolume")
		x.claim("copy", x.cloneRef("src"))
		x.waitWarning("copy", "ReferenceGrant API not installed")
		x.stillPending("copy", calls)
	})
}

// xns is one cross-namespace case: the claims' namespace (env.ns), a
// source namespace with a bound claim "src", a class and a running
// provisioner.
type xns struct {
	*env
	dyn       dynamic.Interface
	srcNS     string
	class     string
	srcHandle string // the volume of srcNS/src
}

func newXNS(t *testing.T, c *controlplane.ControlPlane, gate bool) *xns {
	t.Helper()
	caps := noTopology()
	caps.Clone, caps.Snapshots = true, true
	e := newEnvOn(t, c, fakedriver.Options{Capabilities: caps})
	x := &xns{env: e, dyn: dynamic.NewForConfigOrDie(c.Config()), srcNS: e.ns + "-src"}
	if _, err := e.kube.CoreV1().Namespaces().Create(e.ctx, &v1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: x.srcNS}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	opts := Options{CrossNamespaceDataSources: gate}
	if gate {
		opts.DynamicClient = x.dyn
	}
	e.start(opts, c.Config())
	x.class = e.class("std", nil).Name
	x.claimIn(x.srcNS, "src", nil)
	x.srcHandle = x.waitBoundIn(x.srcNS, "src").Spec.CSI.VolumeHandle
	return x
}

func (x *xns) cloneRef(name string) *v1.TypedObjectReference {
	return &v1.TypedObjectReference{Kind: "PersistentVolumeClaim", Name: name, Namespace: &x.srcNS}
}

func (x *xns) claim(name string, ref *v1.TypedObjectReference) {
	x.t.Helper()
	pvc := x.claimIn(x.ns, name, ref)
	if ref != nil && (pvc.Spec.DataSourceRef == nil || pvc.Spec.DataSourceRef.Namespace == nil) {
		x.t.Fatalf("the API server dropped the namespace of claim %s's dataSourceRef (%+v): is its CrossNamespaceVolumeDataSource gate on?", name, pvc.Spec.DataSourceRef)
	}
}

func (x *xns) claimIn(ns, name string, ref *v1.TypedObjectReference) *v1.PersistentVolumeClaim {
	x.t.Helper()
	pvc, err := x.kube.CoreV1().PersistentVolumeClaims(ns).Create(x.ctx, &v1.PersistentVolumeClaim{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns},
		Spec: v1.PersistentVolumeClaimSpec{
			StorageClassName: &x.class,
			AccessModes:      []v1.PersistentVolumeAccessMode{v1.ReadWriteOnce},
			Resources:        v1.VolumeResourceRequirements{Requests: v1.ResourceList{v1.ResourceStorage: resource.MustParse("1Gi")}},
			DataSourceRef:    ref,
		},
	}, metav1.CreateOptions{})
	if err != nil {
		x.t.Fatal(err)
	}
	return pvc
}

func (x *xns) waitBound(name string) *v1.PersistentVolume {
	x.t.Helper()
	return x.waitBoundIn(x.ns, name)
}

func (x *xns) waitBoundIn(ns, name string) *v1.PersistentVolume {
	x.t.Helper()
	var pv *v1.PersistentVolume
	eventually.Require(x.t, 60*time.Second, "claim "+ns+"/"+name+" bound", func(ctx context.Context) error {
		pvc, err := x.kube.CoreV1().PersistentVolumeClaims(ns).Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return err
		}
		if pvc.Status.Phase != v1.ClaimBound {
			return fmt.Errorf("phase %s", pvc.Status.Phase)
		}
		pv, err = x.kube.CoreV1().PersistentVolumes().Get(ctx, pvc.Spec.VolumeName, metav1.GetOptions{})
		return err
	})
	return pv
}

// volume returns the driver's volume of pv.
func (x *xns) volume(pv *v1.PersistentVolume) fakedriver.Volume {
	x.t.Helper()
	vols := x.drv.Volumes()
	i := slices.IndexFunc(vols, func(v fakedriver.Volume) bool { return v.ID == pv.Spec.CSI.VolumeHandle })
	if i < 0 {
		x.t.Fatalf("the driver has no volume %s of PV %s", pv.Spec.CSI.VolumeHandle, pv.Name)
	}
	return vols[i]
}

// waitWarning waits for a ProvisioningFailed Warning on claim name of the
// claims' namespace containing want.
func (x *xns) waitWarning(name, want string) {
	x.t.Helper()
	eventually.Require(x.t, 30*time.Second, fmt.Sprintf("a %s event on %s containing %q", ReasonProvisioningFailed, name, want), func(context.Context) error {
		msgs := x.events(name, ReasonProvisioningFailed)
		if slices.ContainsFunc(msgs, func(m string) bool { return strings.Contains(m, want) }) {
			return nil
		}
		return fmt.Errorf("events so far: %q", msgs)
	})
}

// stillPending checks that claim name is Pending and that the driver got
// no CreateVolume since it had calls of them. A refused claim is refused
// before any CSI call, and its Warning is written after the refusal: once
// the Warning is seen, a CreateVolume of that attempt would have been
// counted already.
func (x *xns) stillPending(name string, calls int) {
	x.t.Helper()
	pvc := x.getClaim(name)
	if pvc == nil || pvc.Status.Phase != v1.ClaimPending || pvc.Spec.VolumeName != "" {
		x.t.Errorf("claim %s: %+v, want Pending without a volume", name, pvc)
	}
	if got := x.drv.Calls("CreateVolume"); got != calls {
		x.t.Errorf("CreateVolume calls: %d, want %d (none for the refused claim %s)", got, calls, name)
	}
}

// grant creates ReferenceGrant name in the source namespace allowing
// claims of the claims' namespace to use objects of group and kind (named
// toName, or any when empty).
func (x *xns) grant(name, group, kind, toName string) {
	x.t.Helper()
	x.grantFrom(name, x.ns, group, kind, toName)
}

func (x *xns) grantFrom(name, fromNS, group, kind, toName string) {
	x.t.Helper()
	to := map[string]any{"group": group, "kind": kind}
	if toName != "" {
		to["name"] = toName
	}
	g := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": referenceGrantResource.GroupVersion().String(), "kind": "ReferenceGrant",
		"metadata": map[string]any{"name": name, "namespace": x.srcNS},
		"spec": map[string]any{
			"from": []any{map[string]any{"group": "", "kind": "PersistentVolumeClaim", "namespace": fromNS}},
			"to":   []any{to},
		},
	}}
	if _, err := x.dyn.Resource(referenceGrantResource).Namespace(x.srcNS).Create(x.ctx, g, metav1.CreateOptions{}); err != nil {
		x.t.Fatal(err)
	}
}

func (x *xns) deleteGrant(name string) {
	x.t.Helper()
	if err := x.dyn.Resource(referenceGrantResource).Namespace(x.srcNS).Delete(x.ctx, name, metav1.DeleteOptions{}); err != nil {
		x.t.Fatal(err)
	}
}

// snapshot creates a ready, pre-provisioned VolumeSnapshot name in the
// source namespace, of a driver snapshot of srcNS/src, and returns the
// snapshot's handle.
func (x *xns) snapshot(name string) string {
	x.t.Helper()
	resp, err := x.conn.Controller().CreateSnapshot(x.ctx, &csi.CreateSnapshotRequest{Name: x.srcNS + "-" + name, SourceVolumeId: x.srcHandle})
	if err != nil {
		x.t.Fatal(err)
	}
	handle := resp.Snapshot.SnapshotId
	contentName := x.srcNS + "-" + name
	vs, err := x.snaps.SnapshotV1().VolumeSnapshots(x.srcNS).Create(x.ctx, &snapv1.VolumeSnapshot{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: x.srcNS},
		Spec:       snapv1.VolumeSnapshotSpec{Source: snapv1.VolumeSnapshotSource{VolumeSnapshotContentName: &contentName}},
	}, metav1.CreateOptions{})
	if err != nil {
		x.t.Fatal(err)
	}
	content, err := x.snaps.SnapshotV1().VolumeSnapshotContents().Create(x.ctx, &snapv1.VolumeSnapshotContent{
		ObjectMeta: metav1.ObjectMeta{Name: contentName},
		Spec: snapv1.VolumeSnapshotContentSpec{Driver: x.driver, DeletionPolicy: snapv1.VolumeSnapshotContentRetain,
			Source:            snapv1.VolumeSnapshotContentSource{SnapshotHandle: &handle},
			VolumeSnapshotRef: v1.ObjectReference{Name: name, Namespace: x.srcNS, UID: vs.UID}},
	}, metav1.CreateOptions{})
	if err != nil {
		x.t.Fatal(err)
	}
	x.t.Cleanup(func() {
		_ = x.snaps.SnapshotV1().VolumeSnapshotContents().Delete(context.Background(), contentName, metav1.DeleteOptions{})
	})
	content.Status = &snapv1.VolumeSnapshotContentStatus{SnapshotHandle: &handle, ReadyToUse: ptr.To(true), RestoreSize: ptr.To(int64(1 << 30))}
	if _, err := x.snaps.SnapshotV1().VolumeSnapshotContents().UpdateStatus(x.ctx, content, metav1.UpdateOptions{}); err != nil {
		x.t.Fatal(err)
	}
	vs.Status = &snapv1.VolumeSnapshotStatus{BoundVolumeSnapshotContentName: &contentName, ReadyToUse: ptr.To(true)}
	if _, err := x.snaps.SnapshotV1().VolumeSnapshots(x.srcNS).UpdateStatus(x.ctx, vs, metav1.UpdateOptions{}); err != nil {
		x.t.Fatal(err)
	}
	return handle
}

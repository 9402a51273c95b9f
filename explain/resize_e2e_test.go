package explain_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/container-storage-interface/spec/lib/go/csi"
	"google.golang.org/grpc/codes"
	v1 "k8s.io/api/core/v1"
	storagev1 "k8s.io/api/storage/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"

	"github.com/csi-kit/sidecars/csiconn"
	"github.com/csi-kit/sidecars/explain"
	"github.com/csi-kit/sidecars/resizer"
	"github.com/csi-kit/sidecars/testkit/fakedriver"
)

// resizeWorld runs this module's resizer against a fake driver, so the
// findings are checked against what the resizer really writes.
type resizeWorld struct {
	*world
	drv    *fakedriver.Driver
	conn   *csiconn.Conn
	driver string
	class  string
}

func newResizeWorld(t *testing.T, caps fakedriver.Capabilities, nodeExpansion bool) *resizeWorld {
	w := &resizeWorld{world: newWorld(t)}
	w.driver = "resize-" + w.id + ".csi.example.com"
	w.drv = fakedriver.Start(t, fakedriver.Options{Name: w.driver, Capabilities: caps, NodeExpansionRequired: nodeExpansion})
	ctx, cancel := context.WithCancel(w.ctx)
	conn, err := csiconn.Connect(ctx, csiconn.Options{Address: w.drv.Endpoint()})
	if err != nil {
		t.Fatal(err)
	}
	w.conn = conn
	drv, err := resizer.NewCSIDriver(ctx, conn)
	if err != nil {
		t.Fatal(err)
	}
	r, err := resizer.New(resizer.Options{}, w.kube, drv)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("resizer Run: %v", err)
		}
		conn.Close()
	})
	w.class = "sc-" + w.id
	w.must(w.kube.StorageV1().StorageClasses().Create(w.ctx, &storagev1.StorageClass{ObjectMeta: metav1.ObjectMeta{Name: w.class},
		Provisioner: w.driver, AllowVolumeExpansion: ptr.To(true)}, metav1.CreateOptions{}))
	t.Cleanup(func() {
		_ = w.kube.StorageV1().StorageClasses().Delete(context.Background(), w.class, metav1.DeleteOptions{})
	})
	return w
}

// bound creates a backend volume and a PV and PVC bound to each other.
func (w *resizeWorld) bound(name, size string) (volumeID string) {
	w.t.Helper()
	q := resource.MustParse(size)
	resp, err := w.conn.Controller().CreateVolume(w.ctx, &csi.CreateVolumeRequest{Name: w.ns + name,
		CapacityRange: &csi.CapacityRange{RequiredBytes: q.Value()},
		VolumeCapabilities: []*csi.VolumeCapability{{AccessType: &csi.VolumeCapability_Mount{Mount: &csi.VolumeCapability_MountVolume{}},
			AccessMode: &csi.VolumeCapability_AccessMode{Mode: csi.VolumeCapability_AccessMode_SINGLE_NODE_WRITER}}}})
	if err != nil {
		w.t.Fatal(err)
	}
	id := resp.GetVolume().GetVolumeId()
	pvName := w.ns + "-" + name
	pvc, err := w.kube.CoreV1().PersistentVolumeClaims(w.ns).Create(w.ctx, &v1.PersistentVolumeClaim{ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: v1.PersistentVolumeClaimSpec{AccessModes: []v1.PersistentVolumeAccessMode{v1.ReadWriteOnce}, StorageClassName: &w.class, VolumeName: pvName,
			Resources: v1.VolumeResourceRequirements{Requests: v1.ResourceList{v1.ResourceStorage: q}}}}, metav1.CreateOptions{})
	if err != nil {
		w.t.Fatal(err)
	}
	w.must(w.kube.CoreV1().PersistentVolumes().Create(w.ctx, &v1.PersistentVolume{ObjectMeta: metav1.ObjectMeta{Name: pvName},
		Spec: v1.PersistentVolumeSpec{Capacity: v1.ResourceList{v1.ResourceStorage: q}, AccessModes: []v1.PersistentVolumeAccessMode{v1.ReadWriteOnce},
			PersistentVolumeReclaimPolicy: v1.PersistentVolumeReclaimRetain, StorageClassName: w.class,
			PersistentVolumeSource: v1.PersistentVolumeSource{CSI: &v1.CSIPersistentVolumeSource{Driver: w.driver, VolumeHandle: id, FSType: "ext4"}},
			ClaimRef:               &v1.ObjectReference{Kind: "PersistentVolumeClaim", APIVersion: "v1", Namespace: w.ns, Name: name, UID: pvc.UID}}},
		metav1.CreateOptions{}))
	w.t.Cleanup(func() {
		_ = w.kube.CoreV1().PersistentVolumes().Delete(context.Background(), pvName, metav1.DeleteOptions{})
	})
	w.eventually("pvc", name, first(explain.ReasonBoundOK, explain.Info, "bound to volume "+pvName))
	return id
}

func (w *resizeWorld) request(name, size string) {
	w.t.Helper()
	patch := fmt.Sprintf(`{"spec":{"resources":{"requests":{"storage":%q}}}}`, size)
	w.must(w.kube.CoreV1().PersistentVolumeClaims(w.ns).Patch(w.ctx, name, types.MergePatchType, []byte(patch), metav1.PatchOptions{}))
}

// An offline-only driver and a pod using the claim: the resizer waits for
// the pod, explain says so; once the pod is gone the volume grows and the
// file system waits for a pod to mount it.
func TestExplainOfflineExpansion(t *testing.T) {
	caps := fakedriver.Resizer
	caps.ExpandOnline, caps.ExpandOffline = false, true
	w := newResizeWorld(t, caps, true)
	id := w.bound("data", "1Gi")
	w.drv.SetVolumeInUse(id, true)
	w.pod("app", "data")
	// The resizer must see the pod before the request grows; its pod
	// cache is not observable, so watch Explain (which lists pods) first.
	w.eventually("pvc", "data", func(r explain.Report) error {
		if r.Has(explain.ReasonBoundOK) {
			return nil
		}
		return fmt.Errorf("not bound")
	})
	time.Sleep(500 * time.Millisecond) // settle the resizer's pod informer
	w.request("data", "2Gi")
	rep := w.eventually("pvc", "data", first(explain.ReasonOfflineExpansionInUse, explain.Warning, "expands volumes only offline", "app", "scale the workload to 0"))
	t.Logf("\n%s", rep)
	if n := w.drv.Calls("ControllerExpandVolume"); n != 0 {
		t.Fatalf("the driver was called %d times while in use", n)
	}

	w.drv.SetVolumeInUse(id, false)
	w.must(nil, w.kube.CoreV1().Pods(w.ns).Delete(w.ctx, "app", metav1.DeleteOptions{GracePeriodSeconds: ptr.To[int64](0)}))
	rep = w.eventually("pvc", "data", first(explain.ReasonFileSystemResizePending, explain.Warning, "file system resize pending", "2Gi on the backend", "start a pod"))
	t.Logf("\n%s", rep)
}

// The driver refuses the size: explain says the expansion is infeasible
// and how to get out.
func TestExplainExpansionInfeasible(t *testing.T) {
	w := newResizeWorld(t, fakedriver.Resizer, false)
	w.bound("data", "1Gi")
	w.drv.FailNext("ControllerExpandVolume", codes.OutOfRange, 1000)
	w.request("data", "5Gi")
	rep := w.eventually("pvc", "data", first(explain.ReasonExpansionInfeasible, explain.Error, "expansion infeasible", "to 5Gi", "not below the current 1Gi"))
	t.Logf("\n%s", rep)
	if !strings.Contains(rep.String(), "OutOfRange") {
		t.Errorf("report does not quote the driver's error:\n%s", rep)
	}
}

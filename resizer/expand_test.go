package resizer_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/container-storage-interface/spec/lib/go/csi"
	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/client-go/util/retry"

	"github.com/csi-kit/sidecars/resizer"
	"github.com/csi-kit/sidecars/testkit/fakedriver"
)

// Seed 000: a bound 20Gi PVC edited to 30Gi. The driver needs a node step,
// so the PV grows, the PVC shows FileSystemResizePending and
// NodeResizePending, and status capacity waits for kubelet.
func TestSeed000NodeExpansionRequired(t *testing.T) {
	e := newEnv(t, fakedriver.Options{Capabilities: fakedriver.Resizer, NodeExpansionRequired: true}, resizer.Options{})
	id := e.backendVolume("disk-1", gi(20))
	pvc, pv := e.boundPair("pvc-disk", "20Gi", id, nil)
	if err := e.request(pvc.Name, "30Gi"); err != nil {
		t.Fatal(err)
	}
	e.eventually(30*time.Second, "NodeResizePending", func() (bool, string) {
		got := e.pvc(pvc.Name)
		return rstatus(got) == v1.PersistentVolumeClaimNodeResizePending && hasCond(got, v1.PersistentVolumeClaimFileSystemResizePending),
			fmt.Sprintf("R=%q conditions=%v", rstatus(got), got.Status.Conditions)
	})
	got := e.pvc(pvc.Name)
	if c, a := storage(got.Status.Capacity), storage(got.Status.AllocatedResources); c != "20Gi" || a != "30Gi" {
		t.Errorf("status capacity %s (want 20Gi until kubelet), allocated %s (want 30Gi)", c, a)
	}
	if p := storage(e.pv(pv.Name).Spec.Capacity); p != "30Gi" {
		t.Errorf("PV capacity %s, want 30Gi", p)
	}
	if ann := e.pv(pv.Name).Annotations[resizer.AnnPreResizeCapacity]; ann != "20Gi" {
		t.Errorf("pre-resize-capacity annotation = %q, want 20Gi", ann)
	}
	e.waitEvent(pvc.Name, resizer.EventFileSystemResizeRequired, "Require file system resize")
	if n := e.drv.Calls("ControllerExpandVolume"); n != 1 {
		t.Errorf("ControllerExpandVolume called %d times, want 1", n)
	}
	req := e.drv.Requests("ControllerExpandVolume")[0].(*csi.ControllerExpandVolumeRequest)
	if req.GetCapacityRange().GetRequiredBytes() != gi(30) || req.GetVolumeId() != id ||
		req.GetVolumeCapability().GetMount().GetFsType() != "ext4" ||
		req.GetVolumeCapability().GetAccessMode().GetMode() != csi.VolumeCapability_AccessMode_SINGLE_NODE_WRITER {
		t.Errorf("request = %v", req)
	}
	if vols := e.drv.Volumes(); len(vols) != 1 || vols[0].CapacityBytes != gi(30) {
		t.Errorf("backend volumes = %+v", vols)
	}
	// Kubelet's part, done by hand: capacity raised, status cleared. The
	// resizer then drops the pre-resize annotation.
	if err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
		got := e.pvc(pvc.Name)
		got.Status.Capacity[v1.ResourceStorage] = resource.MustParse("30Gi")
		got.Status.AllocatedResourceStatuses = nil
		got.Status.Conditions = nil
		_, err := e.kube.CoreV1().PersistentVolumeClaims(e.ns).UpdateStatus(e.ctx, got, metav1UpdateOptions)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	e.eventually(20*time.Second, "pre-resize annotation removed", func() (bool, string) {
		ann, ok := e.pv(pv.Name).Annotations[resizer.AnnPreResizeCapacity]
		return !ok, "annotation " + ann
	})
}

// Seed 000 with a driver that needs no node step: status capacity is set
// at once, no pending condition.
func TestSeed000NoNodeExpansion(t *testing.T) {
	e := newEnv(t, fakedriver.Options{Capabilities: fakedriver.Resizer}, resizer.Options{})
	id := e.backendVolume("disk-1", gi(20))
	pvc, pv := e.boundPair("pvc-disk", "20Gi", id, nil)
	if err := e.request(pvc.Name, "30Gi"); err != nil {
		t.Fatal(err)
	}
	e.eventually(30*time.Second, "status capacity 30Gi", func() (bool, string) {
		got := e.pvc(pvc.Name)
		return storage(got.Status.Capacity) == "30Gi", fmt.Sprintf("capacity %s R=%q", storage(got.Status.Capacity), rstatus(got))
	})
	got := e.pvc(pvc.Name)
	if len(ourConds(got)) != 0 || got.Status.AllocatedResourceStatuses != nil {
		t.Errorf("conditions %v, statuses %v: want none", ourConds(got), got.Status.AllocatedResourceStatuses)
	}
	if got.Annotations[resizer.AnnNodeExpansionNotRequired] != "true" {
		t.Errorf("annotations %v: want %s", got.Annotations, resizer.AnnNodeExpansionNotRequired)
	}
	if p := storage(e.pv(pv.Name).Spec.Capacity); p != "30Gi" {
		t.Errorf("PV capacity %s, want 30Gi", p)
	}
	if _, ok := e.pv(pv.Name).Annotations[resizer.AnnPreResizeCapacity]; ok {
		t.Error("no node step: no pre-resize annotation expected")
	}
	e.waitEvent(pvc.Name, "VolumeResizeSuccessful", "Resize volume succeeded")
	if n := e.drv.Calls("ControllerExpandVolume"); n != 1 {
		t.Errorf("ControllerExpandVolume called %d times, want 1", n)
	}
}

// A node-only driver: no controller call; PV updated and node step asked.
func TestNodeOnlyDriver(t *testing.T) {
	e := newEnv(t, fakedriver.Options{Capabilities: fakedriver.NodeOnly}, resizer.Options{})
	pvc, pv := e.boundPair("data", "1Gi", "vol-node-only", nil)
	if err := e.request(pvc.Name, "2Gi"); err != nil {
		t.Fatal(err)
	}
	e.eventually(30*time.Second, "NodeResizePending", func() (bool, string) {
		got := e.pvc(pvc.Name)
		return rstatus(got) == v1.PersistentVolumeClaimNodeResizePending, fmt.Sprintf("R=%q", rstatus(got))
	})
	if p := storage(e.pv(pv.Name).Spec.Capacity); p != "2Gi" {
		t.Errorf("PV capacity %s, want 2Gi", p)
	}
	if !hasCond(e.pvc(pvc.Name), v1.PersistentVolumeClaimFileSystemResizePending) {
		t.Error("FileSystemResizePending missing")
	}
	if n := e.drv.Calls("ControllerExpandVolume"); n != 0 {
		t.Errorf("ControllerExpandVolume called %d times on a node-only driver", n)
	}
	e.waitEvent(pvc.Name, resizer.EventFileSystemResizeRequired, "")
}

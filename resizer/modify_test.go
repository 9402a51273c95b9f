package resizer_test

import (
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/container-storage-interface/spec/lib/go/csi"
	v1 "k8s.io/api/core/v1"
	storagev1 "k8s.io/api/storage/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/csi-kit/sidecars/resizer"
	"github.com/csi-kit/sidecars/testkit/controlplane"
	"github.com/csi-kit/sidecars/testkit/fakedriver"
)

func (e *env) vac(name string, params map[string]string) {
	e.t.Helper()
	_, err := e.kube.StorageV1().VolumeAttributesClasses().Create(e.ctx, &storagev1.VolumeAttributesClass{
		ObjectMeta: metav1.ObjectMeta{Name: name}, DriverName: e.name, Parameters: params,
	}, metav1.CreateOptions{})
	if err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(func() { _ = e.kube.StorageV1().VolumeAttributesClasses().Delete(e.ctx, name, metav1.DeleteOptions{}) })
}

func (e *env) setClass(pvc, class string) {
	e.t.Helper()
	patch := fmt.Sprintf(`{"spec":{"volumeAttributesClassName":%q}}`, class)
	if _, err := e.kube.CoreV1().PersistentVolumeClaims(e.ns).Patch(e.ctx, pvc, types.MergePatchType, []byte(patch), metav1.PatchOptions{}); err != nil {
		e.t.Fatal(err)
	}
}

func (e *env) waitCurrentClass(pvc, class string) {
	e.t.Helper()
	e.eventually(30*time.Second, "current class "+class, func() (bool, string) {
		got := e.pvc(pvc)
		cur := ""
		if got.Status.CurrentVolumeAttributesClassName != nil {
			cur = *got.Status.CurrentVolumeAttributesClassName
		}
		return cur == class && got.Status.ModifyVolumeStatus == nil,
			fmt.Sprintf("current %q status %+v conditions %v", cur, got.Status.ModifyVolumeStatus, ourConds(got))
	})
}

// A VolumeAttributesClass change drives ControllerModifyVolume; an
// infeasible class is marked Infeasible; a class that does not exist yet
// leaves the PVC Pending until it is created.
func TestModifyVolumeAttributesClass(t *testing.T) {
	e := newEnv(t, fakedriver.Options{Capabilities: fakedriver.Resizer},
		resizer.Options{RetryIntervalStart: 10 * time.Millisecond, RetryIntervalMax: time.Minute})
	gold := e.name + "-gold"
	bad := e.name + "-bad"
	later := e.name + "-later"
	e.vac(gold, map[string]string{"iops": "4567"})
	e.vac(bad, map[string]string{"fail": "yes"})
	id := e.backendVolume("disk", gi(1))
	pvc, pv := e.boundPair("data", "1Gi", id, nil)

	e.setClass(pvc.Name, gold)
	e.waitCurrentClass(pvc.Name, gold)
	if got := e.pv(pv.Name).Spec.VolumeAttributesClassName; got == nil || *got != gold {
		t.Errorf("PV class = %v, want %s", got, gold)
	}
	req := e.drv.Requests("ControllerModifyVolume")[0].(*csi.ControllerModifyVolumeRequest)
	if req.GetVolumeId() != id || req.GetMutableParameters()["iops"] != "4567" {
		t.Errorf("modify request %v", req)
	}
	if vols := e.drv.Volumes(); vols[0].MutableParameters["iops"] != "4567" {
		t.Errorf("backend parameters %v", vols[0].MutableParameters)
	}
	e.waitEvent(pvc.Name, "VolumeModifySuccessful", "modified volume data with vac "+gold)

	// Infeasible: the driver refuses the parameters with InvalidArgument.
	e.setClass(pvc.Name, bad)
	e.eventually(30*time.Second, "Infeasible", func() (bool, string) {
		got := e.pvc(pvc.Name)
		ms := got.Status.ModifyVolumeStatus
		return ms != nil && ms.Status == v1.PersistentVolumeClaimModifyVolumeInfeasible && ms.TargetVolumeAttributesClassName == bad &&
			hasCond(got, v1.PersistentVolumeClaimVolumeModifyVolumeError), fmt.Sprintf("status %+v conditions %v", ms, ourConds(got))
	})
	e.waitEvent(pvc.Name, "VolumeModifyFailed", "InvalidArgument")
	calls := e.drv.Calls("ControllerModifyVolume")
	time.Sleep(time.Second) // a hot loop would call dozens of times here
	if n := e.drv.Calls("ControllerModifyVolume"); n != calls {
		t.Errorf("infeasible class retried %d times within a second", n-calls)
	}
	// Rolling back to the current class clears the status.
	e.setClass(pvc.Name, gold)
	e.waitCurrentClass(pvc.Name, gold)
	if c := ourConds(e.pvc(pvc.Name)); len(c) != 0 {
		t.Errorf("conditions after rollback: %v", c)
	}

	// A class that does not exist yet: Pending, then applied once created.
	e.setClass(pvc.Name, later)
	e.eventually(30*time.Second, "Pending", func() (bool, string) {
		ms := e.pvc(pvc.Name).Status.ModifyVolumeStatus
		return ms != nil && ms.Status == v1.PersistentVolumeClaimModifyVolumePending, fmt.Sprintf("status %+v", ms)
	})
	e.waitEvent(pvc.Name, "VolumeModifyFailed", "does not exist")
	e.vac(later, map[string]string{"iops": "100"})
	e.waitCurrentClass(pvc.Name, later)
}

// TestModifyOffWithoutVolumeAttributesClassAPI runs on a control plane of
// its own whose kube-apiserver does not serve storage.k8s.io/v1
// VolumeAttributesClasses: the resizer of a MODIFY_VOLUME driver finds
// that by discovery and runs without the modify controller (no class
// informer that could never sync), so expansion works and a claim's class
// change calls no ControllerModifyVolume.
func TestModifyOffWithoutVolumeAttributesClassAPI(t *testing.T) {
	if cp == nil {
		t.Skip("no control plane in -short mode")
	}
	c := controlplane.StartT(t, controlplane.Options{ControllerManager: true, Progress: os.Stderr,
		ExtraAPIServerArgs: []string{"--runtime-config=storage.k8s.io/v1/volumeattributesclasses=false"}})
	caps := fakedriver.Resizer
	caps.NodeExpand = false
	e := newIdleEnvOn(t, c.Config(), fakedriver.Options{Capabilities: caps})
	if _, err := e.kube.StorageV1().VolumeAttributesClasses().List(e.ctx, metav1.ListOptions{}); err == nil {
		t.Fatal("the API server still serves VolumeAttributesClasses")
	}
	e.run(resizer.Options{RetryIntervalStart: 10 * time.Millisecond, RetryIntervalMax: time.Second})
	id := e.backendVolume("disk", gi(1))
	pvc, _ := e.boundPair("data", "1Gi", id, nil)
	e.setClass(pvc.Name, "gold")
	if err := e.request(pvc.Name, "2Gi"); err != nil {
		t.Fatal(err)
	}
	e.eventually(30*time.Second, "status capacity 2Gi", func() (bool, string) {
		got := e.pvc(pvc.Name)
		return storage(got.Status.Capacity) == "2Gi", fmt.Sprintf("capacity %s R=%q", storage(got.Status.Capacity), rstatus(got))
	})
	time.Sleep(500 * time.Millisecond) // room for a modify that should not come
	if n := e.drv.Calls("ControllerModifyVolume"); n != 0 {
		t.Errorf("ControllerModifyVolume called %d times; modify should be off", n)
	}
	if got := e.pvc(pvc.Name); got.Status.ModifyVolumeStatus != nil || got.Status.CurrentVolumeAttributesClassName != nil {
		t.Errorf("modify status %+v, current class %v: want none", got.Status.ModifyVolumeStatus, got.Status.CurrentVolumeAttributesClassName)
	}
}

package resizer_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	v1 "k8s.io/api/core/v1"

	"github.com/csi-kit/sidecars/resizer"
	"github.com/csi-kit/sidecars/testkit/fakedriver"
)

// An infeasible size is marked as such once, not retried in a loop, and a
// user who lowers the request gets a working volume.
func TestInfeasibleThenRecover(t *testing.T) {
	e := newEnv(t, fakedriver.Options{Capabilities: fakedriver.Resizer},
		resizer.Options{RetryIntervalStart: 10 * time.Millisecond, RetryIntervalMax: time.Minute})
	id := e.backendVolume("disk", gi(20))
	pvc, pv := e.boundPair("data", "20Gi", id, nil)
	e.drv.SetError("ControllerExpandVolume", codes.OutOfRange)
	if err := e.request(pvc.Name, "100Gi"); err != nil {
		t.Fatal(err)
	}
	e.eventually(30*time.Second, "ControllerResizeInfeasible", func() (bool, string) {
		got := e.pvc(pvc.Name)
		return rstatus(got) == v1.PersistentVolumeClaimControllerResizeInfeasible && hasCond(got, v1.PersistentVolumeClaimControllerResizeError),
			fmt.Sprintf("R=%q conditions=%v", rstatus(got), got.Status.Conditions)
	})
	if a := storage(e.pvc(pvc.Name).Status.AllocatedResources); a != "100Gi" {
		t.Errorf("allocated %s, want 100Gi", a)
	}
	e.waitEvent(pvc.Name, resizer.EventResizeFailed, "OutOfRange")
	// No hot loop: with RetryIntervalStart 10ms a retrying controller would
	// call dozens of times in this window; the infeasible size waits for
	// RetryIntervalMax (1m) or a new request.
	time.Sleep(2 * time.Second)
	if n := e.drv.Calls("ControllerExpandVolume"); n != 1 {
		t.Errorf("ControllerExpandVolume called %d times for an infeasible size, want 1", n)
	}
	// The user lowers the request (not below status capacity).
	e.drv.ClearErrors()
	if err := e.request(pvc.Name, "30Gi"); err != nil {
		t.Fatal(err)
	}
	e.eventually(30*time.Second, "expanded to 30Gi", func() (bool, string) {
		got := e.pvc(pvc.Name)
		return storage(got.Status.Capacity) == "30Gi", fmt.Sprintf("capacity %s R=%q A=%s", storage(got.Status.Capacity), rstatus(got), storage(got.Status.AllocatedResources))
	})
	got := e.pvc(pvc.Name)
	if a := storage(got.Status.AllocatedResources); a != "30Gi" || got.Status.AllocatedResourceStatuses != nil || len(ourConds(got)) != 0 {
		t.Errorf("after recovery: allocated %s (want 30Gi, quota released), statuses %v, conditions %v", a, got.Status.AllocatedResourceStatuses, ourConds(got))
	}
	if p := storage(e.pv(pv.Name).Spec.Capacity); p != "30Gi" {
		t.Errorf("PV capacity %s", p)
	}
	if n := e.drv.Calls("ControllerExpandVolume"); n != 2 {
		t.Errorf("ControllerExpandVolume called %d times, want 2", n)
	}
}

// A driver that hangs past the timeout: the call is retried with backoff,
// the PVC shows the resize in progress, and once the driver answers the
// backend holds one expansion, not several.
func TestDriverHangsPastTimeout(t *testing.T) {
	e := newEnv(t, fakedriver.Options{Capabilities: fakedriver.Resizer},
		resizer.Options{Timeout: 300 * time.Millisecond, RetryIntervalStart: 100 * time.Millisecond, RetryIntervalMax: 2 * time.Second})
	id := e.backendVolume("disk", gi(20))
	pvc, pv := e.boundPair("data", "20Gi", id, nil)
	e.drv.Hang("ControllerExpandVolume")
	if err := e.request(pvc.Name, "30Gi"); err != nil {
		t.Fatal(err)
	}
	e.eventually(30*time.Second, "retries after timeouts", func() (bool, string) {
		n := e.drv.Calls("ControllerExpandVolume")
		return n >= 3, fmt.Sprintf("%d calls", n)
	})
	got := e.pvc(pvc.Name)
	if rstatus(got) != v1.PersistentVolumeClaimControllerResizeInProgress || storage(got.Status.AllocatedResources) != "30Gi" {
		t.Errorf("while hanging: R=%q A=%s, want ControllerResizeInProgress 30Gi", rstatus(got), storage(got.Status.AllocatedResources))
	}
	ev := e.waitEvent(pvc.Name, resizer.EventResizeFailed, "DeadlineExceeded")
	if !strings.Contains(ev, "not final") {
		t.Errorf("timeout event must say it is not final: %q", ev)
	}
	e.drv.Unhang("ControllerExpandVolume")
	e.eventually(30*time.Second, "expanded", func() (bool, string) {
		got := e.pvc(pvc.Name)
		return storage(got.Status.Capacity) == "30Gi", fmt.Sprintf("capacity %s R=%q", storage(got.Status.Capacity), rstatus(got))
	})
	if vols := e.drv.Volumes(); len(vols) != 1 || vols[0].CapacityBytes != gi(30) {
		t.Errorf("backend volumes %+v, want one of 30Gi", vols)
	}
	if p := storage(e.pv(pv.Name).Spec.Capacity); p != "30Gi" {
		t.Errorf("PV capacity %s", p)
	}
	t.Logf("ControllerExpandVolume calls: %d", e.drv.Calls("ControllerExpandVolume"))
}

// PVCs that are not ours, or not resizable, are left alone.
func TestIgnoredClaims(t *testing.T) {
	e := newEnv(t, fakedriver.Options{Capabilities: fakedriver.Resizer}, resizer.Options{})
	other, otherPV := e.boundPair("other-driver", "1Gi", "vol-other", func(pv *v1.PersistentVolume) { pv.Spec.CSI.Driver = "other.csi.test" })
	hostPath, hostPV := e.boundPair("not-csi", "1Gi", "", func(pv *v1.PersistentVolume) {
		pv.Spec.CSI = nil
		pv.Spec.HostPath = &v1.HostPathVolumeSource{Path: "/tmp/x"}
	})
	missing, _ := e.boundPair("pv-missing", "1Gi", "vol-missing", func(pv *v1.PersistentVolume) { pv.Name = "" })
	id := e.backendVolume("disk", gi(1))
	mine, minePV := e.boundPair("mine", "1Gi", id, nil)

	for _, name := range []string{other.Name, hostPath.Name} {
		if err := e.request(name, "2Gi"); err != nil {
			t.Fatalf("raising %s: %v", name, err)
		}
	}
	// The PV binder marks a Bound claim without its PV Lost, after which the
	// apiserver refuses a new request; either way the resizer must not
	// touch it.
	if err := e.request(missing.Name, "2Gi"); err != nil {
		t.Logf("raising the claim whose PV is missing: %v", err)
	}
	// A shrink below status capacity is refused by the apiserver.
	if err := e.request(mine.Name, "512Mi"); err == nil {
		t.Error("shrinking below status capacity was accepted")
	} else {
		t.Logf("shrink refused: %v", err)
	}
	// Our own claim proves the resizer is running and has seen the others.
	if err := e.request(mine.Name, "2Gi"); err != nil {
		t.Fatal(err)
	}
	e.eventually(30*time.Second, "own claim expanded", func() (bool, string) {
		p := storage(e.pv(minePV.Name).Spec.Capacity)
		return p == "2Gi", "PV " + p
	})
	for _, name := range []string{other.Name, hostPath.Name, missing.Name} {
		got := e.pvc(name)
		// The binder may reset the capacity of the claim whose PV is
		// missing; the resizer's own fields must stay empty everywhere.
		if got.Status.AllocatedResources != nil || got.Status.AllocatedResourceStatuses != nil || len(ourConds(got)) != 0 ||
			(name != missing.Name && storage(got.Status.Capacity) != "1Gi") {
			t.Errorf("%s was modified: %+v", name, got.Status)
		}
		if evs := e.events(name); len(evs) != 0 {
			t.Errorf("%s got events %q", name, evs)
		}
	}
	for _, name := range []string{otherPV.Name, hostPV.Name} {
		if p := storage(e.pv(name).Spec.Capacity); p != "1Gi" {
			t.Errorf("PV %s capacity changed to %s", name, p)
		}
	}
	if n := e.drv.Calls("ControllerExpandVolume"); n != 1 {
		t.Errorf("ControllerExpandVolume called %d times, want 1 (own claim only)", n)
	}
}

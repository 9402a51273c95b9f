package resizer_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

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

// An OFFLINE-only driver is not called while a pod uses the PVC; the
// expansion runs as soon as the pod is gone.
func TestOfflineOnlyWaitsForPod(t *testing.T) {
	caps := fakedriver.Resizer
	caps.ExpandOnline, caps.ExpandOffline = false, true
	e := newEnv(t, fakedriver.Options{Capabilities: caps}, resizer.Options{})
	id := e.backendVolume("disk", gi(1))
	pvc, pv := e.boundPair("data", "1Gi", id, nil)
	e.drv.SetVolumeInUse(id, true)
	pod := &v1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "app", Namespace: e.ns},
		Spec: v1.PodSpec{
			Containers: []v1.Container{{Name: "c", Image: "busybox"}},
			Volumes: []v1.Volume{{Name: "d", VolumeSource: v1.VolumeSource{
				PersistentVolumeClaim: &v1.PersistentVolumeClaimVolumeSource{ClaimName: pvc.Name}}}},
		},
	}
	if _, err := e.kube.CoreV1().Pods(e.ns).Create(e.ctx, pod, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	// Let the resizer's pod cache see the pod before the request changes.
	e.eventually(10*time.Second, "pod visible", func() (bool, string) {
		_, err := e.kube.CoreV1().Pods(e.ns).Get(e.ctx, "app", metav1.GetOptions{})
		return err == nil, fmt.Sprint(err)
	})
	time.Sleep(500 * time.Millisecond)
	if err := e.request(pvc.Name, "2Gi"); err != nil {
		t.Fatal(err)
	}
	e.waitEvent(pvc.Name, resizer.EventResizeFailed, "only supports offline expansion and volume is currently in-use")
	// The event is sent just before the status is written.
	e.eventually(10*time.Second, "blocked status", func() (bool, string) {
		got := e.pvc(pvc.Name)
		return rstatus(got) == v1.PersistentVolumeClaimControllerResizeInProgress && hasCond(got, v1.PersistentVolumeClaimResizing),
			fmt.Sprintf("R=%q conditions %v", rstatus(got), got.Status.Conditions)
	})
	if n := e.drv.Calls("ControllerExpandVolume"); n != 0 {
		t.Fatalf("ControllerExpandVolume called %d times while the volume is in use", n)
	}
	zero := int64(0)
	e.drv.SetVolumeInUse(id, false)
	deleted := time.Now()
	if err := e.kube.CoreV1().Pods(e.ns).Delete(context.Background(), "app", metav1.DeleteOptions{GracePeriodSeconds: &zero}); err != nil {
		t.Fatal(err)
	}
	e.eventually(15*time.Second, "expanded after the pod left", func() (bool, string) {
		p := storage(e.pv(pv.Name).Spec.Capacity)
		return p == "2Gi", "PV " + p
	})
	t.Logf("expanded %v after the pod was deleted", time.Since(deleted).Round(time.Millisecond))
	if n := e.drv.Calls("ControllerExpandVolume"); n != 1 {
		t.Errorf("ControllerExpandVolume called %d times, want 1", n)
	}
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

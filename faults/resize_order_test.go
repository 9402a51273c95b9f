package faults

import (
	"context"
	"fmt"
	"testing"
	"time"

	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"

	"github.com/csi-kit/sidecars/csiconn"
	"github.com/csi-kit/sidecars/leaderelection"
	"github.com/csi-kit/sidecars/provisioner"
	"github.com/csi-kit/sidecars/resizer"
	"github.com/csi-kit/sidecars/testkit/fakedriver"
)

// TestResizeOrderLeaderChangeLoweredRequest: two resizers (default
// options) under leader election. A claim of 10Gi asks for 100Gi; the
// leader's ControllerExpandVolume hangs in the driver and the leader is
// cancelled. The user then lowers the request to 11Gi, the standby takes
// over, and the hung call takes effect: the backend volume is 100Gi.
//
// The claim must not end up recording less than the backend holds: the
// leader marked it (allocatedResources 100Gi, ControllerResizeInProgress)
// before calling the driver, so the standby keeps expanding to 100Gi
// instead of following the lowered request. At the end, allocatedResources,
// status capacity and the PV all match the backend, and nothing is left in
// progress.
func TestResizeOrderLeaderChangeLoweredRequest(t *testing.T) {
	e := newEnv(t, "leader", fakedriver.Options{Capabilities: resizerCaps()})
	sc := e.class("sc", nil)
	e.startProvisioner(e.ctx, provisioner.Options{}, e.connect(csiconn.Options{}))
	names := e.claims("o", sc.Name, "10Gi", 1)
	name := names[0]
	e.waitBound(60*time.Second, names...)

	lock := leaderelection.LockName(leaderelection.ComponentResizer, e.driver)
	cands := e.candidates(lock, 2, func(string) func(context.Context) error {
		drv, err := resizer.NewCSIDriver(e.ctx, e.connect(csiconn.Options{}))
		if err != nil {
			t.Fatal(err)
		}
		r, err := resizer.New(resizer.Options{RetryIntervalStart: 100 * time.Millisecond, RetryIntervalMax: 2 * time.Second,
			Timeout: 5 * time.Second}, kubernetes.NewForConfigOrDie(cp.Config()), drv)
		if err != nil {
			t.Fatal(err)
		}
		return r.Run
	})
	leader, standby := e.leaderOf(cands)

	e.drv.Hang("ControllerExpandVolume")
	e.request(name, "100Gi")
	e.eventually("expansion in flight", 30*time.Second, func() (bool, string) {
		f := e.drv.InFlight("ControllerExpandVolume")
		return f >= 1, fmt.Sprintf("%d in flight", f)
	})
	leader.run.cancel()
	e.fault(1)
	if err := leader.run.wait(t, 30*time.Second); err != nil {
		t.Errorf("cancelled leader: Run returned %v", err)
	}
	lowered := e.tryRequest(name, "11Gi")
	t.Logf("lowering the request to 11Gi: %v", lowered)
	e.eventually("standby leads", 20*time.Second, func() (bool, string) {
		return standby.elector.Leader() == standby.id, "leader " + standby.elector.Leader()
	})
	// Give the standby time to act on the claim (and hang, or decide)
	// before the abandoned call takes effect.
	time.Sleep(time.Second)
	e.drv.Unhang("ControllerExpandVolume")

	var pvc *v1.PersistentVolumeClaim
	var pv *v1.PersistentVolume
	var backend int64
	settled := poll(60*time.Second, func() (bool, string) {
		var msg string
		pvc, pv, backend, msg = e.resizeState(name)
		return msg == "", msg
	})
	if pvc == nil || pv == nil {
		t.Fatalf("claim or PV gone")
	}
	s := resizer.SizesOf(pvc, pv)
	summary := fmt.Sprintf("request %s, capacity %s, allocated %s (%q), PV %s, backend %d bytes",
		s.Spec.String(), s.Capacity.String(), s.Allocated.String(), s.Status, s.PV.String(), backend)
	t.Logf("final: %s", summary)
	if !settled {
		_, _, _, msg := e.resizeState(name)
		t.Errorf("claim did not settle: %s (%s)", msg, summary)
	}
	if s.HasAllocated && s.Allocated.Value() < backend {
		t.Errorf("allocatedResources %s is below the backend volume's %d bytes (%s)", s.Allocated.String(), backend, summary)
	}
	if s.PV.Value() != backend || s.Capacity.Value() != backend {
		t.Errorf("PV and status capacity must match the backend volume (%s)", summary)
	}
	e.check()
	e.drain()
}

// tryRequest sets a claim's storage request and returns the API server's
// answer (a lowered request may be refused).
func (e *env) tryRequest(name, size string) error {
	patch := fmt.Sprintf(`{"spec":{"resources":{"requests":{"storage":%q}}}}`, size)
	_, err := e.kube.CoreV1().PersistentVolumeClaims(e.ns).Patch(e.ctx, name, types.MergePatchType, []byte(patch), metav1.PatchOptions{})
	return err
}

// resizeState reads a claim, its PV and its backend volume size; msg is
// empty once no resize is pending or in progress: no storage status, no
// resize condition, status capacity at or above the request.
func (e *env) resizeState(name string) (pvc *v1.PersistentVolumeClaim, pv *v1.PersistentVolume, backend int64, msg string) {
	pvc, err := e.kube.CoreV1().PersistentVolumeClaims(e.ns).Get(e.ctx, name, metav1.GetOptions{})
	if err != nil {
		return nil, nil, 0, err.Error()
	}
	pv, err = e.kube.CoreV1().PersistentVolumes().Get(e.ctx, pvc.Spec.VolumeName, metav1.GetOptions{})
	if err != nil {
		return pvc, nil, 0, err.Error()
	}
	for _, v := range e.drv.Volumes() {
		if v.ID == pv.Spec.CSI.VolumeHandle {
			backend = v.CapacityBytes
		}
	}
	s := resizer.SizesOf(pvc, pv)
	switch {
	case s.Status != "":
		return pvc, pv, backend, fmt.Sprintf("storage status %s", s.Status)
	case s.Capacity.Cmp(s.Spec) < 0:
		return pvc, pv, backend, fmt.Sprintf("capacity %s below request %s", s.Capacity.String(), s.Spec.String())
	case e.drv.InFlight("ControllerExpandVolume") > 0:
		return pvc, pv, backend, "expansion in flight"
	}
	for _, c := range pvc.Status.Conditions {
		if c.Type == v1.PersistentVolumeClaimResizing || c.Type == v1.PersistentVolumeClaimControllerResizeError {
			return pvc, pv, backend, "condition " + string(c.Type)
		}
	}
	if q := *resource.NewQuantity(backend, resource.BinarySI); s.PV.Cmp(q) != 0 {
		return pvc, pv, backend, fmt.Sprintf("PV %s, backend %s", s.PV.String(), q.String())
	}
	return pvc, pv, backend, ""
}

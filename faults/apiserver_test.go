package faults

import (
	"fmt"
	"testing"
	"time"

	"github.com/container-storage-interface/spec/lib/go/csi"
	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/csi-kit/sidecars/csiconn"
	"github.com/csi-kit/sidecars/provisioner"
	"github.com/csi-kit/sidecars/testkit/fakedriver"
)

func resizerCaps() fakedriver.Capabilities {
	c := fakedriver.Resizer
	c.Modify = false
	return c
}

// TestAPIServerRestart: the API server goes away for two seconds while a
// provisioner and a resizer run, with resizes in flight. Afterwards more
// claims and resizes are made; everything completes, and CreateVolume is
// called exactly once per volume name.
func TestAPIServerRestart(t *testing.T) {
	e := newEnv(t, "apiserver", fakedriver.Options{Capabilities: resizerCaps()})
	conn := e.connect(csiconn.Options{})
	sc := e.class("sc", nil)
	e.startProvisioner(e.ctx, provisioner.Options{}, conn)
	e.startResizer(e.ctx, conn)

	first := e.claims("a", sc.Name, "1Gi", 20)
	e.waitBound(90*time.Second, first...)
	// Resizes in flight while the API server goes down.
	for _, n := range first[:5] {
		e.request(n, "2Gi")
	}
	if err := cp.StopAPIServer(); err != nil {
		t.Fatal(err)
	}
	e.fault(1)
	time.Sleep(2 * time.Second) // the outage itself
	if err := cp.StartAPIServer(e.ctx); err != nil {
		t.Fatal(err)
	}
	second := e.claims("b", sc.Name, "1Gi", 10)
	for _, n := range first[5:10] {
		e.request(n, "3Gi")
	}
	e.waitBound(90*time.Second, second...)
	want := map[string]string{}
	for _, n := range first[:5] {
		want[n] = "2Gi"
	}
	for _, n := range first[5:10] {
		want[n] = "3Gi"
	}
	e.waitResized(90*time.Second, want)

	// CreateVolume exactly once per volume name, one volume per claim.
	calls := map[string]int{}
	for _, r := range e.drv.Requests("CreateVolume") {
		calls[r.(*csi.CreateVolumeRequest).GetName()]++
	}
	pvs, err := e.pvs()
	if err != nil {
		t.Fatal(err)
	}
	if len(pvs) != len(first)+len(second) {
		t.Errorf("%d PVs of the driver, want %d", len(pvs), len(first)+len(second))
	}
	doubles := 0
	for _, pv := range pvs {
		if c := calls[pv.Name]; c != 1 {
			t.Errorf("CreateVolume called %d times for %s", c, pv.Name)
			if c > 1 {
				doubles++
			}
		}
	}
	if len(calls) != len(pvs) {
		t.Errorf("CreateVolume called for %d names, %d PVs", len(calls), len(pvs))
	}
	tallies.add(e.category, func(c *tally) { c.Doubles += doubles })
	e.check()
	e.drain()
}

// request sets a claim's storage request.
func (e *env) request(name, size string) {
	e.t.Helper()
	patch := fmt.Sprintf(`{"spec":{"resources":{"requests":{"storage":%q}}}}`, size)
	if _, err := e.kube.CoreV1().PersistentVolumeClaims(e.ns).Patch(e.ctx, name, types.MergePatchType, []byte(patch), metav1.PatchOptions{}); err != nil {
		e.t.Fatal(err)
	}
}

// waitResized waits until each claim's PV and backend volume have at least
// the wanted size and the claim no longer records a resize in progress.
func (e *env) waitResized(timeout time.Duration, want map[string]string) {
	e.t.Helper()
	e.eventually(fmt.Sprintf("%d resizes", len(want)), timeout, func() (bool, string) {
		backend := map[string]int64{}
		for _, v := range e.drv.Volumes() {
			backend[v.ID] = v.CapacityBytes
		}
		for name, size := range want {
			q := resource.MustParse(size)
			pvc, err := e.kube.CoreV1().PersistentVolumeClaims(e.ns).Get(e.ctx, name, metav1.GetOptions{})
			if err != nil {
				return false, err.Error()
			}
			pv, err := e.kube.CoreV1().PersistentVolumes().Get(e.ctx, pvc.Spec.VolumeName, metav1.GetOptions{})
			if err != nil {
				return false, err.Error()
			}
			got := pv.Spec.Capacity[v1.ResourceStorage]
			if got.Cmp(q) < 0 {
				return false, fmt.Sprintf("PV of %s has %s, want %s", name, got.String(), size)
			}
			if backend[pv.Spec.CSI.VolumeHandle] < q.Value() {
				return false, fmt.Sprintf("backend volume of %s has %d bytes, want %d", name, backend[pv.Spec.CSI.VolumeHandle], q.Value())
			}
			for _, c := range pvc.Status.Conditions {
				if c.Type == v1.PersistentVolumeClaimResizing || c.Type == v1.PersistentVolumeClaimControllerResizeError {
					return false, fmt.Sprintf("claim %s has condition %s", name, c.Type)
				}
			}
		}
		return true, ""
	})
}

// TestAPIServerDownDuringCreate: CreateVolume calls hang in the driver; the
// API server stops; the driver answers while it is down, so the provisioner
// cannot write the PVs; the API server comes back. Every claim ends Bound
// with exactly one backend volume, and no name gets a second volume.
func TestAPIServerDownDuringCreate(t *testing.T) {
	e := newEnv(t, "apiserver", fakedriver.Options{Capabilities: resizerCaps()})
	sc := e.class("sc", nil)
	e.startProvisioner(e.ctx, provisioner.Options{}, e.connect(csiconn.Options{}))
	e.drv.Hang("CreateVolume")
	names := e.claims("a", sc.Name, "1Gi", 5)
	e.waitHungCreates(len(names))
	if err := cp.StopAPIServer(); err != nil {
		t.Fatal(err)
	}
	e.fault(2)
	e.drv.Unhang("CreateVolume")
	e.eventually("hung calls answered", 10*time.Second, func() (bool, string) {
		return e.drv.InFlight("CreateVolume") == 0, "still in flight"
	})
	time.Sleep(2 * time.Second) // the outage itself, with answers pending
	if err := cp.StartAPIServer(e.ctx); err != nil {
		t.Fatal(err)
	}
	e.waitBound(90*time.Second, names...)
	byName := map[string]int{}
	for _, v := range e.drv.Volumes() {
		byName[v.Name]++
	}
	if len(byName) != len(names) {
		t.Errorf("%d backend volume names for %d claims: %v", len(byName), len(names), byName)
	}
	e.check()
	e.drain()
}

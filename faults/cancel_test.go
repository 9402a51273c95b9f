package faults

import (
	"fmt"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/container-storage-interface/spec/lib/go/csi"

	"github.com/csi-kit/sidecars/csiconn"
	"github.com/csi-kit/sidecars/provisioner"
	"github.com/csi-kit/sidecars/testkit/fakedriver"
)

// TestClaimDeletedDuringCreate: claims are deleted while their CreateVolume
// hangs in the driver; then the driver answers. The volumes it created must
// be deleted and the claims must go away (the intent finalizer released).
func TestClaimDeletedDuringCreate(t *testing.T) {
	e := newEnv(t, "cancel", fakedriver.Options{Capabilities: resizerCaps()})
	sc := e.class("sc", nil)
	e.startProvisioner(e.ctx, provisioner.Options{}, e.connect(csiconn.Options{}))
	e.drv.Hang("CreateVolume")
	names := e.claims("a", sc.Name, "1Gi", 5)
	e.waitHungCreates(len(names))
	if err := e.kube.CoreV1().PersistentVolumeClaims(e.ns).DeleteCollection(e.ctx, metav1.DeleteOptions{}, metav1.ListOptions{}); err != nil {
		t.Fatal(err)
	}
	e.fault(len(names))
	e.drv.Unhang("CreateVolume")
	e.drain()
	e.check()
}

// TestCreateTimeout: the driver answers CreateVolume only after the
// provisioner's timeout, so the first attempts time out while the volume is
// being made. Retries must find the same volume: one per claim, all Bound.
func TestCreateTimeout(t *testing.T) {
	e := newEnv(t, "cancel", fakedriver.Options{Capabilities: resizerCaps()})
	sc := e.class("sc", nil)
	e.drv.SetLatency("CreateVolume", 1500*time.Millisecond)
	e.startProvisioner(e.ctx, provisioner.Options{Timeout: time.Second}, e.connect(csiconn.Options{}))
	names := e.claims("a", sc.Name, "1Gi", 6)
	e.eventually("timed-out CreateVolume calls", 30*time.Second, func() (bool, string) {
		n := e.drv.Calls("CreateVolume")
		return n >= 2*len(names), fmt.Sprintf("%d calls", n)
	})
	e.fault(len(names))
	e.drv.SetLatency("CreateVolume", 0)
	e.waitBound(60*time.Second, names...)
	// Delayed calls still in the driver land later; deleting volumes before
	// they have is TestDeleteDuringCreateTimeout's case.
	e.eventually("delayed calls landed", 10*time.Second, func() (bool, string) {
		return e.drv.InFlight("CreateVolume") == 0, "calls in flight"
	})
	e.check()
	byName := map[string]int{}
	for _, v := range e.drv.Volumes() {
		byName[v.Name]++
	}
	if len(byName) != len(names) || len(e.drv.Volumes()) != len(names) {
		t.Errorf("%d backend volumes, %d names for %d claims", len(e.drv.Volumes()), len(byName), len(names))
	}
	e.drain()
}

// TestDeleteDuringCreateTimeout: claims are deleted while their CreateVolume
// calls time out in a slow driver, which completes each call after its
// client gave up. The cleanup's own CreateVolume (same name) is answered at
// once, its volume deleted, the finalizer dropped; a delayed earlier call
// that lands afterwards creates the volume again, and nothing owns it.
// Real drivers are expected to answer ABORTED while an operation on the
// same name is pending (CSI spec); the fake driver does not, and the
// provisioner cannot tell. Leaks are counted and reported, then removed.
func TestDeleteDuringCreateTimeout(t *testing.T) {
	e := newEnv(t, "cancel", fakedriver.Options{Capabilities: resizerCaps()})
	sc := e.class("sc", nil)
	e.drv.SetLatency("CreateVolume", 1500*time.Millisecond)
	conn := e.connect(csiconn.Options{})
	e.startProvisioner(e.ctx, provisioner.Options{Timeout: time.Second}, conn)
	names := e.claims("a", sc.Name, "1Gi", 3)
	e.eventually("first CreateVolume calls", 30*time.Second, func() (bool, string) {
		n := e.drv.Calls("CreateVolume")
		return n >= len(names), fmt.Sprintf("%d calls", n)
	})
	if err := e.kube.CoreV1().PersistentVolumeClaims(e.ns).DeleteCollection(e.ctx, metav1.DeleteOptions{}, metav1.ListOptions{}); err != nil {
		t.Fatal(err)
	}
	e.fault(len(names))
	e.drv.SetLatency("CreateVolume", 0)
	e.eventually("claims gone", 30*time.Second, func() (bool, string) {
		l, err := e.kube.CoreV1().PersistentVolumeClaims(e.ns).List(e.ctx, metav1.ListOptions{})
		if err != nil {
			return false, err.Error()
		}
		return len(l.Items) == 0, fmt.Sprintf("%d claims left", len(l.Items))
	})
	// Give delayed calls time to land, then count what they left.
	time.Sleep(2 * time.Second)
	leaked := e.drv.Volumes()
	if len(leaked) == 0 {
		e.check()
		return
	}
	tallies.add(e.category, func(c *tally) { c.Leaks += len(leaked) })
	for _, v := range leaked {
		if _, err := conn.Controller().DeleteVolume(e.ctx, &csi.DeleteVolumeRequest{VolumeId: v.ID}); err != nil {
			t.Fatal(err)
		}
	}
	e.check()
	knownBug(t, "%d of %d volumes leaked: a CreateVolume that timed out landed after the cleanup of its deleted claim "+
		"(fakedriver applies SetLatency before the call takes effect and never answers ABORTED for a pending name; "+
		"provisioner cleanup in claim.go trusts the first answer)", len(leaked), len(names))
}

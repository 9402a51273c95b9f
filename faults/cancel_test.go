package faults

import (
	"fmt"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

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
// client gave up. Each provisioning record's cleanup re-sends the same
// CreateVolume (answered ABORTED while the first is pending), then deletes
// the volume: nothing is left.
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
	// The records' cleanup waits for the driver to finish the timed-out
	// calls (it answers ABORTED while a call of that name is pending), so
	// a late create cannot land after it.
	if !poll(30*time.Second, func() (bool, string) { return len(e.drv.Volumes()) == 0, "" }) {
		leaked := e.drv.Volumes()
		tallies.add(e.category, func(c *tally) { c.Leaks += len(leaked) })
		t.Errorf("%d of %d volumes left on the backend 30s after their claims were deleted", len(leaked), len(names))
	}
	e.check()
}

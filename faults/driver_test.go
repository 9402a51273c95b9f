package faults

import (
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/csi-kit/sidecars/csiconn"
	"github.com/csi-kit/sidecars/provisioner"
	"github.com/csi-kit/sidecars/testkit/fakedriver"
)

// TestDriverCrash: the driver stops while a provisioner and a resizer run.
// Claims and a resize made while the driver is down make both controllers
// call it; both Runs then return an error wrapping csiconn.ErrConnectionLost
// within 30s. New controllers, started once the driver is back, provision
// the claims and apply the resize.
//
// Whether an idle connection's loss is noticed before any call is measured
// and logged (see idleLossBound): the gRPC client re-dials a closed unix
// socket only when a call needs it.
func TestDriverCrash(t *testing.T) {
	e := newEnv(t, "driver", fakedriver.Options{Capabilities: resizerCaps()})
	conn := e.connect(csiconn.Options{})
	sc := e.class("sc", nil)
	prov := e.startProvisioner(e.ctx, provisioner.Options{}, conn)
	res := e.startResizer(e.ctx, conn)
	before := e.claims("a", sc.Name, "1Gi", 5)
	e.waitBound(60*time.Second, before...)

	e.drv.Stop()
	e.fault(1)
	select {
	case <-conn.Lost():
		t.Logf("idle connection loss noticed without a call")
	case <-time.After(idleLossBound):
		t.Errorf("loss of an idle driver connection not noticed within %v", idleLossBound)
		idleLossMissed.Add(1)
	}
	during := e.claims("b", sc.Name, "1Gi", 5)
	e.request(before[0], "2Gi")
	for _, r := range []*runner{prov, res} {
		err := r.wait(t, 30*time.Second)
		if !errors.Is(err, csiconn.ErrConnectionLost) {
			t.Errorf("%s: Run returned %v, want an error wrapping csiconn.ErrConnectionLost", r.name, err)
		}
	}

	if err := e.drv.Restart(); err != nil {
		t.Fatal(err)
	}
	conn2 := e.connect(csiconn.Options{})
	e.startProvisioner(e.ctx, provisioner.Options{}, conn2)
	e.startResizer(e.ctx, conn2)
	e.waitBound(60*time.Second, during...)
	e.waitResized(60*time.Second, map[string]string{before[0]: "2Gi"})
	e.check()
	e.drain()
}

// idleLossBound is how long TestDriverCrash waits for an idle connection's
// loss to be noticed before it makes the controllers call the driver.
const idleLossBound = 3 * time.Second

// idleLossMissed counts cases where an idle connection's loss went
// unnoticed; printed with the tallies.
var idleLossMissed atomic.Int32

// TestDriverCrashMidCall: the driver stops while CreateVolume calls hang in
// it. The provisioner returns ErrConnectionLost instead of waiting for the
// calls, and a new provisioner finishes every claim with one volume each.
func TestDriverCrashMidCall(t *testing.T) {
	e := newEnv(t, "driver", fakedriver.Options{Capabilities: resizerCaps()})
	conn := e.connect(csiconn.Options{})
	sc := e.class("sc", nil)
	e.drv.Hang("CreateVolume")
	prov := e.startProvisioner(e.ctx, provisioner.Options{}, conn)
	names := e.claims("a", sc.Name, "1Gi", 5)
	e.eventually("CreateVolume in flight", 30*time.Second, func() (bool, string) {
		return e.drv.InFlight("CreateVolume") > 0, "none in flight"
	})
	e.drv.Stop()
	e.fault(2)
	if err := prov.wait(t, 30*time.Second); !errors.Is(err, csiconn.ErrConnectionLost) {
		t.Errorf("provisioner: Run returned %v, want an error wrapping csiconn.ErrConnectionLost", err)
	}
	e.drv.Unhang("CreateVolume")
	if err := e.drv.Restart(); err != nil {
		t.Fatal(err)
	}
	e.startProvisioner(e.ctx, provisioner.Options{}, e.connect(csiconn.Options{}))
	e.waitBound(60*time.Second, names...)
	e.check()
	e.drain()
}

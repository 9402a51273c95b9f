package provisioner

import (
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	v1 "k8s.io/api/core/v1"
	storagev1 "k8s.io/api/storage/v1"

	"github.com/csi-kit/sidecars/testkit/eventually"
	"github.com/csi-kit/sidecars/testkit/fakedriver"
)

// TestResourceExhaustedReschedule: the claim goes back to the scheduler.
func TestResourceExhaustedReschedule(t *testing.T) {
	key := "topology.example.com/node"
	e := newEnv(t, fakedriver.Options{Capabilities: fakedriver.Provisioner, NodeID: "n", Topology: map[string]string{key: "n"}})
	e.node(e.ns+"-n", map[string]string{key: "n", "test": e.ns}, key)
	e.drv.FailNext("CreateVolume", codes.ResourceExhausted, 1)
	e.start(Options{}, nil)
	sc := e.class("local", wffcMode)
	e.claim("data", sc.Name, "1Gi", nil)
	e.pod("app", map[string]string{"test": e.ns}, "data")
	e.waitEvent("data", ReasonProvisioningFailed, "the scheduler will pick another node")
	e.waitBound("data")
	if n := e.drv.Calls("CreateVolume"); n != 2 {
		t.Errorf("CreateVolume calls %d, want 2 (one exhausted, one after rescheduling)", n)
	}
}

// TestFaultTimeoutThenDelete: the driver hangs past the timeout, the claim
// is deleted, the driver recovers: nothing is left on the backend. With a
// negative IntentDelay the record is on the claim before the first call;
// with the default it is written while the slow call runs.
func TestFaultTimeoutThenDelete(t *testing.T) {
	for _, tc := range []struct {
		name  string
		delay time.Duration
	}{{"record-first", -1}, {"record-while-slow", 100 * time.Millisecond}} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, fakedriver.Options{Capabilities: noTopology()})
			e.drv.Hang("CreateVolume")
			e.start(Options{Timeout: 500 * time.Millisecond, IntentDelay: tc.delay}, nil)
			sc := e.class("std", nil)
			e.claim("data", sc.Name, "1Gi", nil)
			eventually.Require(e.t, 30*time.Second, "a create in flight", eventually.True("a create in flight", func() bool { return e.drv.InFlight("CreateVolume") > 0 }))
			uid := e.getClaim("data").UID
			recorded := func() bool { return e.record(uid) != nil }
			if tc.delay < 0 && !recorded() {
				t.Fatalf("no provisioning record before CreateVolume")
			}
			eventually.Require(e.t, 10*time.Second, "intent recorded during the call", eventually.True("intent recorded during the call", func() bool { return recorded() }))
			e.deleteClaim("data")
			time.Sleep(700 * time.Millisecond) // let the call time out on our side
			e.drv.Unhang("CreateVolume")
			eventually.Require(e.t, 30*time.Second, "claim gone", eventually.True("claim gone", func() bool { return e.getClaim("data") == nil }))
			eventually.Require(e.t, 30*time.Second, "backend empty and record gone", eventually.True("backend empty and record gone", func() bool {
				return len(e.drv.Volumes()) == 0 && e.record(uid) == nil
			}))
			if d := e.drv.Calls("DeleteVolume"); d == 0 {
				t.Errorf("no DeleteVolume call")
			}
		})
	}
}

// TestIntentOnlyWhenSlow: a driver that answers at once costs no claim
// write (no intent finalizer on the bound claim); a claim deleted during a
// slow call, before its record could be written, still leaves nothing on
// the backend, whether the call then succeeds or times out.
func TestIntentOnlyWhenSlow(t *testing.T) {
	t.Run("fast", func(t *testing.T) {
		e := newEnv(t, fakedriver.Options{Capabilities: noTopology()})
		e.start(Options{}, nil)
		sc := e.class("std", nil)
		e.claim("data", sc.Name, "1Gi", nil)
		e.waitBound("data")
		if r := e.record(e.getClaim("data").UID); r != nil {
			t.Errorf("fast create wrote a provisioning record: %s", r.Name)
		}
	})
	for _, tc := range []struct {
		name    string
		timeout time.Duration
	}{{"deleted-then-succeeds", 10 * time.Second}, {"deleted-then-times-out", 1500 * time.Millisecond}} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, fakedriver.Options{Capabilities: noTopology()})
			e.drv.Hang("CreateVolume")
			e.start(Options{Timeout: tc.timeout, IntentDelay: time.Second}, nil)
			sc := e.class("std", nil)
			e.claim("data", sc.Name, "1Gi", nil)
			eventually.Require(e.t, 30*time.Second, "a create in flight", eventually.True("a create in flight", func() bool { return e.drv.InFlight("CreateVolume") > 0 }))
			e.deleteClaim("data") // before IntentDelay: no record can be written
			eventually.Require(e.t, 30*time.Second, "claim gone", eventually.True("claim gone", func() bool { return e.getClaim("data") == nil }))
			time.Sleep(tc.timeout / 2)
			e.drv.Unhang("CreateVolume")
			eventually.Require(e.t, 30*time.Second, "backend empty", eventually.True("backend empty", func() bool {
				return len(e.drv.Volumes()) == 0 && e.drv.Calls("CreateVolume") > 0 && e.drv.Calls("DeleteVolume") > 0
			}))
		})
	}
}

// TestFaultRestartMidCreate: the provisioner stops while CreateVolume
// hangs; a new one finishes: one volume, bound.
func TestFaultRestartMidCreate(t *testing.T) {
	e := newEnv(t, fakedriver.Options{Capabilities: noTopology()})
	e.drv.Hang("CreateVolume")
	stop := e.start(Options{Timeout: 5 * time.Second}, nil)
	sc := e.class("std", nil)
	e.claim("data", sc.Name, "1Gi", nil)
	eventually.Require(e.t, 30*time.Second, "a create in flight", eventually.True("a create in flight", func() bool { return e.drv.InFlight("CreateVolume") > 0 }))
	stop()
	e.drv.Unhang("CreateVolume") // the first create completes on the backend, unseen
	e.start(Options{}, nil)
	pv := e.waitBound("data")
	if v := e.drv.Volumes(); len(v) != 1 || v[0].ID != pv.Spec.CSI.VolumeHandle {
		t.Errorf("backend volumes %v, want exactly the PV's %s", v, pv.Spec.CSI.VolumeHandle)
	}
}

// TestFaultClearEvents: each failure gives a clear event and no hot loop.
func TestFaultClearEvents(t *testing.T) {
	key := "topology.example.com/node"
	e := newEnv(t, fakedriver.Options{Capabilities: fakedriver.Provisioner, NodeID: "n", Topology: map[string]string{key: "n"}})
	e.node(e.ns+"-n", map[string]string{key: "n"}, key)
	e.start(Options{RetryIntervalStart: 500 * time.Millisecond, RetryIntervalMax: 5 * time.Second}, nil)
	missing := e.class("missing", func(sc *storagev1.StorageClass) {
		sc.Parameters = map[string]string{"csi.storage.k8s.io/provisioner-secret-name": "nope",
			"csi.storage.k8s.io/provisioner-secret-namespace": e.ns}
	})
	typo := e.class("typo", func(sc *storagev1.StorageClass) {
		sc.Parameters = map[string]string{"csi.storage.k8s.io/fs-type": "ext4"}
	})
	rejected := e.class("rejected", func(sc *storagev1.StorageClass) { sc.Parameters = map[string]string{"bogus": "1"} })
	wf := e.class("wffc", wffcMode)
	e.claim("missing", missing.Name, "1Gi", nil)
	e.claim("typo", typo.Name, "1Gi", nil)
	e.drv.SetError("CreateVolume", codes.InvalidArgument)
	e.claim("rejected", rejected.Name, "1Gi", nil)
	e.claim("badnode", wf.Name, "1Gi", func(c *v1.PersistentVolumeClaim) {
		c.Annotations = map[string]string{annSelectedNode: "no-such-node"}
	})
	e.waitEvent("missing", ReasonProvisioningFailed, `error getting secret nope in namespace `+e.ns)
	e.waitEvent("typo", ReasonProvisioningFailed, `unknown parameter key "csi.storage.k8s.io/fs-type"`)
	e.waitEvent("rejected", ReasonProvisioningFailed, "infeasible")
	e.waitEvent("badnode", ReasonProvisioningFailed, `selected node "no-such-node" not found`)
	eventually.Require(e.t, 10*time.Second, "selected-node removed", eventually.True("selected-node removed", func() bool {
		return e.getClaim("badnode").Annotations[annSelectedNode] == ""
	}))
	time.Sleep(3 * time.Second)
	for _, c := range []string{"missing", "typo", "rejected", "badnode"} {
		n := len(e.events(c, ReasonProvisioningFailed))
		if n == 0 || n > 6 {
			t.Errorf("claim %s: %d failure events in ~3s, want a few (backoff)", c, n)
		}
	}
	if n := len(e.events("badnode", ReasonProvisioningFailed)); n != 1 {
		t.Errorf("badnode: %d events, want 1 (handed back to the scheduler once)", n)
	}
	if n := e.drv.Calls("CreateVolume"); n == 0 || n > 8 {
		t.Errorf("CreateVolume calls for the rejected claim: %d, want a few", n)
	}

}

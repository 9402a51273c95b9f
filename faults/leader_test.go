package faults

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/container-storage-interface/spec/lib/go/csi"
	"k8s.io/client-go/kubernetes"

	"github.com/csi-kit/sidecars/csiconn"
	"github.com/csi-kit/sidecars/leaderelection"
	"github.com/csi-kit/sidecars/provisioner"
	"github.com/csi-kit/sidecars/testkit/fakedriver"
)

// candidate is one provisioner under leader election with its own driver
// connection.
type candidate struct {
	id      string
	elector *leaderelection.Elector
	run     *runner
}

// TestLeaderLossMidCreate: two provisioners compete for the lease (2s
// lease, 1s renew, 250ms retry). While the leader's CreateVolume calls
// hang in the driver, the leader is cancelled; then the driver answers.
// The standby takes over and finishes: every claim is Bound with exactly one
// backend volume.
func TestLeaderLossMidCreate(t *testing.T) {
	e := newEnv(t, "leader", fakedriver.Options{Capabilities: resizerCaps()})
	sc := e.class("sc", nil)
	lock := leaderelection.LockName(leaderelection.ComponentProvisioner, e.driver)
	var cands []*candidate
	for i := range 2 {
		c := &candidate{id: fmt.Sprintf("cand-%d", i)}
		el, err := leaderelection.New(leaderelection.Options{LockName: lock, Namespace: e.ns, Identity: c.id,
			LeaseDuration: 2 * time.Second, RenewDeadline: time.Second, RetryPeriod: 250 * time.Millisecond},
			kubernetes.NewForConfigOrDie(cp.Config()))
		if err != nil {
			t.Fatal(err)
		}
		c.elector = el
		p := e.newProvisioner(provisioner.Options{}, e.connect(csiconn.Options{}))
		c.run = e.run(c.id, e.ctx, func(ctx context.Context) error { return el.Run(ctx, p.Run) })
		cands = append(cands, c)
	}
	var leader, standby *candidate
	e.eventually("a leader", 20*time.Second, func() (bool, string) {
		for i, c := range cands {
			if c.elector.Leader() == c.id {
				leader, standby = c, cands[1-i]
				return true, ""
			}
		}
		return false, "no candidate leads"
	})

	e.drv.Hang("CreateVolume")
	names := e.claims("a", sc.Name, "1Gi", 3)
	e.waitHungCreates(len(names))
	leader.run.cancel()
	e.fault(1)
	if err := leader.run.wait(t, 30*time.Second); err != nil {
		t.Errorf("cancelled leader: Run returned %v", err)
	}
	e.eventually("standby leads", 20*time.Second, func() (bool, string) {
		return standby.elector.Leader() == standby.id, "leader " + standby.elector.Leader()
	})
	e.drv.Unhang("CreateVolume")
	e.waitBound(60*time.Second, names...)

	byName := map[string]int{}
	for _, v := range e.drv.Volumes() {
		byName[v.Name]++
	}
	pvs, err := e.pvs()
	if err != nil {
		t.Fatal(err)
	}
	if len(pvs) != len(names) || len(byName) != len(names) {
		t.Errorf("%d PVs and %d backend volume names for %d claims", len(pvs), len(byName), len(names))
	}
	for _, pv := range pvs {
		if byName[pv.Name] != 1 {
			t.Errorf("%d backend volumes named %s", byName[pv.Name], pv.Name)
		}
	}
	calls := map[string]int{}
	for _, r := range e.drv.Requests("CreateVolume") {
		calls[r.(*csi.CreateVolumeRequest).GetName()]++
	}
	t.Logf("CreateVolume calls per volume name (the abandoned call included): %v", calls)
	e.check()
	e.drain()
}

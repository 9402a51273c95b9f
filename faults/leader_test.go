package faults

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/container-storage-interface/spec/lib/go/csi"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/csi-kit/sidecars/csiconn"
	"github.com/csi-kit/sidecars/leaderelection"
	"github.com/csi-kit/sidecars/provisioner"
	"github.com/csi-kit/sidecars/resizer"
	"github.com/csi-kit/sidecars/snapshotter"
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
	cands := e.candidates(lock, 2, func(string) func(context.Context) error {
		return e.newProvisioner(provisioner.Options{}, e.connect(csiconn.Options{})).Run
	})
	leader, standby := e.leaderOf(cands)

	e.drv.Hang("CreateVolume")
	names := e.claims("a", sc.Name, "1Gi", 3)
	e.waitHungCreates(len(names))
	e.handOver(leader, standby)
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

// candidates starts n replicas of a controller under leader election on
// lock (2s lease, 1s renew, 250ms retry); work builds each replica's Run.
func (e *env) candidates(lock string, n int, work func(id string) func(context.Context) error) []*candidate {
	e.t.Helper()
	var cands []*candidate
	for i := range n {
		c := &candidate{id: fmt.Sprintf("cand-%d", i)}
		el, err := leaderelection.New(leaderelection.Options{LockName: lock, Namespace: e.ns, Identity: c.id,
			LeaseDuration: 2 * time.Second, RenewDeadline: time.Second, RetryPeriod: 250 * time.Millisecond},
			kubernetes.NewForConfigOrDie(cp.Config()))
		if err != nil {
			e.t.Fatal(err)
		}
		c.elector = el
		run := work(c.id)
		c.run = e.run(c.id, e.ctx, func(ctx context.Context) error { return el.Run(ctx, run) })
		cands = append(cands, c)
	}
	return cands
}

// leaderOf waits for one of two candidates to lead and returns it and the
// other.
func (e *env) leaderOf(cands []*candidate) (leader, standby *candidate) {
	e.t.Helper()
	e.eventually("a leader", 20*time.Second, func() (bool, string) {
		for i, c := range cands {
			if c.elector.Leader() == c.id {
				leader, standby = c, cands[1-i]
				return true, ""
			}
		}
		return false, "no candidate leads"
	})
	return leader, standby
}

// handOver cancels the leader, checks its Run returned cleanly, and waits
// for the standby to lead.
func (e *env) handOver(leader, standby *candidate) {
	e.t.Helper()
	leader.run.cancel()
	e.fault(1)
	if err := leader.run.wait(e.t, 30*time.Second); err != nil {
		e.t.Errorf("cancelled leader: Run returned %v", err)
	}
	e.eventually("standby leads", 20*time.Second, func() (bool, string) {
		return standby.elector.Leader() == standby.id, "leader " + standby.elector.Leader()
	})
}

// TestLeaderLossMidResize: two resizers under leader election; while the
// leader's ControllerExpandVolume calls hang, it is cancelled, then the
// driver answers. The standby finishes: every claim at the new size, every
// backend volume expanded once to exactly that size.
func TestLeaderLossMidResize(t *testing.T) {
	e := newEnv(t, "leader", fakedriver.Options{Capabilities: resizerCaps()})
	sc := e.class("sc", nil)
	e.startProvisioner(e.ctx, provisioner.Options{}, e.connect(csiconn.Options{}))
	names := e.claims("r", sc.Name, "1Gi", 3)
	e.waitBound(60*time.Second, names...)

	lock := leaderelection.LockName(leaderelection.ComponentResizer, e.driver)
	cands := e.candidates(lock, 2, func(string) func(context.Context) error {
		conn := e.connect(csiconn.Options{})
		drv, err := resizer.NewCSIDriver(e.ctx, conn)
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
	for _, n := range names {
		e.request(n, "2Gi")
	}
	e.eventually("expansions in flight", 30*time.Second, func() (bool, string) {
		f := e.drv.InFlight("ControllerExpandVolume")
		return f >= len(names), fmt.Sprintf("%d in flight", f)
	})
	e.handOver(leader, standby)
	e.drv.Unhang("ControllerExpandVolume")
	e.waitCapacity(60*time.Second, "2Gi", names...)
	want := resource.MustParse("2Gi")
	for _, v := range e.drv.Volumes() {
		if v.CapacityBytes != want.Value() {
			t.Errorf("backend volume %s has %d bytes, want %d", v.Name, v.CapacityBytes, want.Value())
		}
	}
	t.Logf("ControllerExpandVolume calls (the abandoned ones included): %d for %d claims", e.drv.Calls("ControllerExpandVolume"), len(names))
	e.check()
	e.drain()
}

// TestLeaderLossMidSnapshot: two snapshot sidecars under leader election;
// while the leader's CreateSnapshot calls hang, it is cancelled, then the
// driver answers. The standby finishes: every snapshot ready, exactly one
// backend snapshot per content.
func TestLeaderLossMidSnapshot(t *testing.T) {
	e := newEnv(t, "leader", fakedriver.Options{Capabilities: snapshotCaps()})
	sc := e.class("sc", nil)
	vscName := e.snapshotClass()
	e.startProvisioner(e.ctx, provisioner.Options{}, e.connect(csiconn.Options{}))
	ctl, err := snapshotter.NewController(snapshotter.ControllerOptions{SnapshotClient: e.snaps, RetryIntervalStart: 100 * time.Millisecond,
		RetryIntervalMax: 2 * time.Second}, e.kube)
	if err != nil {
		t.Fatal(err)
	}
	e.run("snapshot-controller", e.ctx, ctl.Run)
	names := e.claims("s", sc.Name, "1Gi", 3)
	e.waitBound(60*time.Second, names...)

	lock := leaderelection.LockName(leaderelection.ComponentSnapshotter, e.driver)
	cands := e.candidates(lock, 2, func(string) func(context.Context) error {
		return e.newSidecar(e.connect(csiconn.Options{})).Run
	})
	leader, standby := e.leaderOf(cands)

	e.drv.Hang("CreateSnapshot")
	var snaps []string
	for _, n := range names {
		e.snapshot("snap-"+n, n, vscName)
		snaps = append(snaps, "snap-"+n)
	}
	e.eventually("CreateSnapshot calls in flight", 30*time.Second, func() (bool, string) {
		f := e.drv.InFlight("CreateSnapshot")
		return f >= len(snaps), fmt.Sprintf("%d in flight", f)
	})
	e.handOver(leader, standby)
	e.drv.Unhang("CreateSnapshot")
	e.waitSnapshotsReady(60*time.Second, snaps...)
	if got := len(e.drv.Snapshots()); got != len(snaps) {
		t.Errorf("backend holds %d snapshots for %d VolumeSnapshots", got, len(snaps))
	}
	e.check()
	if err := e.snaps.SnapshotV1().VolumeSnapshots(e.ns).DeleteCollection(e.ctx, metav1.DeleteOptions{}, metav1.ListOptions{}); err != nil {
		t.Fatal(err)
	}
	e.eventually("backend snapshots deleted", 60*time.Second, func() (bool, string) {
		n := len(e.drv.Snapshots())
		return n == 0, fmt.Sprintf("%d backend snapshots", n)
	})
	e.drain()
}

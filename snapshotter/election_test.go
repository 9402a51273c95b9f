package snapshotter

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	crdv1 "github.com/kubernetes-csi/external-snapshotter/client/v8/apis/volumesnapshot/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/csi-kit/sidecars/leaderelection"
	"github.com/csi-kit/sidecars/testkit/eventually"
)

// Seed 004's deployment: two snapshot-controller replicas and three
// csi-snapshotter replicas, each set leader-elected on its own Lease.
// Exactly one of each works; when the leaders stop, standbys take over.
func TestIntegrationLeaderElectedReplicas(t *testing.T) {
	e := newEnv(t, envOptions{})
	e.class("gold", crdv1.VolumeSnapshotContentDelete, false, nil)
	e.volume("a")
	e.volume("b")
	leOpts := func(lock string) leaderelection.Options {
		return leaderelection.Options{LockName: lock, Namespace: e.ns, LeaseDuration: 3 * time.Second, RenewDeadline: 1500 * time.Millisecond, RetryPeriod: 250 * time.Millisecond}
	}
	ctlLock := leaderelection.LockName(leaderelection.ComponentSnapshotCtl, "")
	sideLock := leaderelection.LockName(leaderelection.ComponentSnapshotter, e.driver)
	if ctlLock != "snapshot-controller-leader" {
		t.Fatalf("controller lock = %q", ctlLock)
	}
	type replica struct {
		elector *leaderelection.Elector
		stop    func()
	}
	start := func(lock string, work func(context.Context) error) replica {
		el, err := leaderelection.New(leOpts(lock), e.kube)
		if err != nil {
			t.Fatal(err)
		}
		stop := e.run("replica "+el.Identity(), func(ctx context.Context) error {
			err := el.Run(ctx, work)
			if errors.Is(err, context.Canceled) {
				return nil
			}
			return err
		})
		return replica{el, stop}
	}
	var ctls, sides []replica
	for range 2 {
		ctls = append(ctls, start(ctlLock, func(ctx context.Context) error {
			c, err := NewController(ControllerOptions{SnapshotClient: e.snap, RetryIntervalStart: 100 * time.Millisecond, RetryIntervalMax: time.Second}, e.kube)
			if err != nil {
				return err
			}
			return c.Run(ctx)
		}))
	}
	drv := mustDriver(t, e.conn)
	for range 3 {
		sides = append(sides, start(sideLock, func(ctx context.Context) error {
			s, err := NewSidecar(SidecarOptions{SnapshotClient: e.snap, DriverName: e.driver, RetryIntervalStart: 100 * time.Millisecond, RetryIntervalMax: time.Second}, e.kube, drv)
			if err != nil {
				return err
			}
			return s.Run(ctx)
		}))
	}
	e.snapshot("first", "a", "gold")
	e.waitReady("first")
	holder := func(lock string) string {
		l, err := e.kube.CoordinationV1().Leases(e.ns).Get(e.ctx, lock, metav1.GetOptions{})
		if err != nil || l.Spec.HolderIdentity == nil {
			return ""
		}
		return *l.Spec.HolderIdentity
	}
	leaderOf := func(rs []replica, lock string) int {
		h := holder(lock)
		for i, r := range rs {
			if r.elector.Identity() == h {
				return i
			}
		}
		t.Fatalf("lease %s held by %q, not by a replica", lock, h)
		return -1
	}
	if n := e.drv.Calls("CreateSnapshot"); n != 1 {
		t.Errorf("CreateSnapshot calls = %d, want 1 (one active sidecar)", n)
	}
	// Stop both leaders; the standbys take over.
	ci, si := leaderOf(ctls, ctlLock), leaderOf(sides, sideLock)
	ctls[ci].stop()
	sides[si].stop()
	e.snapshot("second", "b", "gold")
	e.waitReady("second")
	eventually.Require(t, 10*time.Second, "new leaders", func(context.Context) error {
		if holder(ctlLock) == ctls[ci].elector.Identity() || holder(sideLock) == sides[si].elector.Identity() {
			return fmt.Errorf("old leaders still hold the leases")
		}
		return nil
	})
	if n := len(e.drv.Snapshots()); n != 2 {
		t.Errorf("backend snapshots = %d, want 2", n)
	}
}

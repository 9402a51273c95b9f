package faults

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	crdv1 "github.com/kubernetes-csi/external-snapshotter/client/v8/apis/volumesnapshot/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/csi-kit/sidecars/csiconn"
	"github.com/csi-kit/sidecars/provisioner"
	"github.com/csi-kit/sidecars/snapshotter"
	"github.com/csi-kit/sidecars/testkit/fakedriver"
)

// TestSnapshotterDriverCrash: a snapshot controller and a snapshotter
// sidecar cut snapshots; the driver stops and a new snapshot makes the
// sidecar call it. The sidecar's Run must return an error wrapping
// csiconn.ErrConnectionLost within sidecarLossBound, as the provisioner's and resizer's
// do (they return within seconds, so sidecarLossBound is 10s). Snapshots
// end ready and the backend matches the contents.
func TestSnapshotterDriverCrash(t *testing.T) {
	caps := snapshotCaps()
	e := newEnv(t, "driver", fakedriver.Options{Capabilities: caps})
	conn := e.connect(csiconn.Options{})
	sc := e.class("sc", nil)
	vscName := e.snapshotClass()
	e.startProvisioner(e.ctx, provisioner.Options{}, conn)
	ctl, err := snapshotter.NewController(snapshotter.ControllerOptions{SnapshotClient: e.snaps, RetryIntervalStart: 100 * time.Millisecond,
		RetryIntervalMax: 2 * time.Second}, e.kube)
	if err != nil {
		t.Fatal(err)
	}
	e.run("snapshot-controller", e.ctx, ctl.Run)
	sidecar := e.run("snapshotter", e.ctx, e.newSidecar(conn).Run)

	names := e.claims("a", sc.Name, "1Gi", 2)
	e.waitBound(60*time.Second, names...)
	e.snapshot("s-0", names[0], vscName)
	e.waitSnapshotsReady(60*time.Second, "s-0")
	e.check()

	e.drv.Stop()
	e.fault(1)
	e.snapshot("s-1", names[1], vscName)
	select {
	case err := <-sidecar.done:
		sidecar.once.Do(func() { sidecar.err = err })
		if !errors.Is(err, csiconn.ErrConnectionLost) {
			t.Errorf("snapshotter: Run returned %v, want an error wrapping csiconn.ErrConnectionLost", err)
		}
	case <-time.After(sidecarLossBound):
		// Let the rest of the case run, then report.
		defer knownBug(t, "snapshotter.Sidecar.Run does not return after the driver connection is lost "+
			"(snapshotter/sidecar.go Run never watches conn.WatchLoss; provisioner and resizer do)")
	}
	if err := e.drv.Restart(); err != nil {
		t.Fatal(err)
	}
	// The old sidecar's connection is dead; a new one finishes the work.
	conn2 := e.connect(csiconn.Options{})
	side2 := e.newSidecar(conn2)
	sidecar.cancel()
	e.run("snapshotter-2", e.ctx, side2.Run)
	e.startProvisioner(e.ctx, provisioner.Options{}, conn2)
	e.waitSnapshotsReady(60*time.Second, "s-0", "s-1")
	e.check()
	if err := e.snaps.SnapshotV1().VolumeSnapshots(e.ns).DeleteCollection(e.ctx, metav1.DeleteOptions{}, metav1.ListOptions{}); err != nil {
		t.Fatal(err)
	}
	e.eventually("snapshots deleted in the backend", 60*time.Second, func() (bool, string) {
		n := len(e.drv.Snapshots())
		return n == 0, fmt.Sprintf("%d backend snapshots", n)
	})
	e.check()
	e.drain()
}

const sidecarLossBound = 10 * time.Second

// newSidecar builds a snapshot sidecar of the case's driver on conn, with
// short retry and poll intervals.
func (e *env) newSidecar(conn *csiconn.Conn) *snapshotter.Sidecar {
	e.t.Helper()
	drv, err := snapshotter.NewCSIDriver(conn)
	if err != nil {
		e.t.Fatal(err)
	}
	side, err := snapshotter.NewSidecar(snapshotter.SidecarOptions{SnapshotClient: e.snaps, DriverName: e.driver, RetryIntervalStart: 100 * time.Millisecond,
		RetryIntervalMax: 2 * time.Second, ReadyPollStart: 100 * time.Millisecond}, e.kube, drv)
	if err != nil {
		e.t.Fatal(err)
	}
	return side
}

// snapshotCaps are resizerCaps plus snapshots.
func snapshotCaps() fakedriver.Capabilities {
	caps := resizerCaps()
	caps.Snapshots, caps.ListSnapshots, caps.GetSnapshot = true, true, true
	return caps
}

// snapshotClass creates a Delete-policy VolumeSnapshotClass of the case's
// driver, deleted at cleanup, and returns its name.
func (e *env) snapshotClass() string {
	e.t.Helper()
	vsc := &crdv1.VolumeSnapshotClass{ObjectMeta: metav1.ObjectMeta{Name: e.ns + "-vsc"}, Driver: e.driver,
		DeletionPolicy: crdv1.VolumeSnapshotContentDelete}
	if _, err := e.snaps.SnapshotV1().VolumeSnapshotClasses().Create(e.ctx, vsc, metav1.CreateOptions{}); err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(func() {
		_ = e.snaps.SnapshotV1().VolumeSnapshotClasses().Delete(context.Background(), vsc.Name, metav1.DeleteOptions{})
	})
	return vsc.Name
}

func (e *env) snapshot(name, claim, class string) {
	e.t.Helper()
	s := &crdv1.VolumeSnapshot{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: e.ns},
		Spec: crdv1.VolumeSnapshotSpec{Source: crdv1.VolumeSnapshotSource{PersistentVolumeClaimName: &claim},
			VolumeSnapshotClassName: &class}}
	if _, err := e.snaps.SnapshotV1().VolumeSnapshots(e.ns).Create(e.ctx, s, metav1.CreateOptions{}); err != nil {
		e.t.Fatal(err)
	}
}

func (e *env) waitSnapshotsReady(timeout time.Duration, names ...string) {
	e.t.Helper()
	e.eventually(fmt.Sprintf("snapshots %v ready", names), timeout, func() (bool, string) {
		for _, n := range names {
			s, err := e.snaps.SnapshotV1().VolumeSnapshots(e.ns).Get(e.ctx, n, metav1.GetOptions{})
			if err != nil {
				return false, err.Error()
			}
			if s.Status == nil || s.Status.ReadyToUse == nil || !*s.Status.ReadyToUse {
				return false, n + " not ready"
			}
		}
		return true, ""
	})
}

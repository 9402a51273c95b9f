package snapshotter

import (
	"context"
	"errors"
	"testing"
	"time"

	"go.uber.org/goleak"
	"k8s.io/client-go/tools/record"

	"github.com/csi-kit/sidecars/testkit/eventually"
)

var errLost = errors.New("connection lost")

// losingDriver reports a lost connection when lose is closed, or, with
// atShutdown, exactly when Run's context ends, as a driver whose socket
// closes during shutdown does.
type losingDriver struct {
	Driver
	lose       chan struct{}
	atShutdown bool
}

func (d losingDriver) WatchLoss(ctx context.Context) error {
	select {
	case <-ctx.Done():
		if d.atShutdown {
			return errLost
		}
		return nil
	case <-d.lose:
		return errLost
	}
}

// runSidecarUntil runs a sidecar on drv until it has started, calls stop,
// and returns what Run returned. Whatever Run started must have ended by
// then (the loss watcher included); under -race a late write by the
// watcher is reported here.
func runSidecarUntil(t *testing.T, e *env, drv Driver, stop func(cancel context.CancelFunc)) error {
	t.Helper()
	before := goleak.IgnoreCurrent()
	s, err := NewSidecar(SidecarOptions{SnapshotClient: e.snap, DriverName: e.driver, Recorder: &record.FakeRecorder{}}, e.kube, drv)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(e.ctx)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	eventually.Require(t, 30*time.Second, "sidecar started", eventually.True("caches synced", func() bool { return started(s.rt.Load()) }))
	stop(cancel)
	err = <-done
	goleak.VerifyNone(t, append([]goleak.Option{before}, leakOptions...)...)
	return err
}

// TestSidecarLossEndsRun: a driver that reports its connection lost ends
// Run with that error.
func TestSidecarLossEndsRun(t *testing.T) {
	e := newEnv(t, envOptions{})
	drv, err := NewCSIDriver(e.conn)
	if err != nil {
		t.Fatal(err)
	}
	d := losingDriver{Driver: drv, lose: make(chan struct{})}
	err = runSidecarUntil(t, e, d, func(context.CancelFunc) { close(d.lose) })
	if !errors.Is(err, errLost) {
		t.Errorf("Run = %v, want the loss its driver reported", err)
	}
}

// TestSidecarLossDuringShutdown: the loss watcher may answer while ctx
// ends for another reason. The caller asked Run to stop, so Run returns
// nil, after the watcher has returned; it used to read the answer
// unsynchronized (a data race under -race) and leave the watcher running.
func TestSidecarLossDuringShutdown(t *testing.T) {
	e := newEnv(t, envOptions{})
	drv, err := NewCSIDriver(e.conn)
	if err != nil {
		t.Fatal(err)
	}
	for range 3 {
		err := runSidecarUntil(t, e, losingDriver{Driver: drv, atShutdown: true}, func(cancel context.CancelFunc) { cancel() })
		if err != nil {
			t.Errorf("Run = %v, want nil: its context ended before the loss was reported", err)
		}
	}
}

package snapshotter

import (
	"context"
	"errors"
	"testing"
	"time"

	"go.uber.org/goleak"
	"k8s.io/client-go/tools/record"
)

var errLostAtShutdown = errors.New("connection lost while shutting down")

// shutdownLoser reports a lost connection exactly when Run's context
// ends, as a driver whose socket closes during shutdown does.
type shutdownLoser struct{ Driver }

func (shutdownLoser) WatchLoss(ctx context.Context) error {
	<-ctx.Done()
	return errLostAtShutdown
}

// TestSidecarLossDuringShutdown: the loss watcher may answer while ctx
// ends for another reason. Run must wait for it and return its answer;
// it used to read the answer unsynchronized (a data race under -race)
// and leave the watcher running after it returned.
func TestSidecarLossDuringShutdown(t *testing.T) {
	e := newEnv(t, envOptions{})
	drv, err := NewCSIDriver(e.conn)
	if err != nil {
		t.Fatal(err)
	}
	for range 3 {
		before := goleak.IgnoreCurrent()
		s, err := NewSidecar(SidecarOptions{DriverName: e.driver, Recorder: &record.FakeRecorder{}}, e.kube, e.snap, shutdownLoser{drv})
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(e.ctx)
		done := make(chan error, 1)
		go func() { done <- s.Run(ctx) }()
		deadline := time.Now().Add(30 * time.Second)
		for !s.synced.Load() && time.Now().Before(deadline) {
			time.Sleep(10 * time.Millisecond)
		}
		cancel()
		if err := <-done; !errors.Is(err, errLostAtShutdown) {
			t.Errorf("Run = %v, want the loss its watcher reported", err)
		}
		// Whatever Run started has ended (the watcher included); under
		// -race a late write by the watcher is reported here.
		goleak.VerifyNone(t, append([]goleak.Option{before}, leakOptions...)...)
	}
}

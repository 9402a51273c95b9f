package eventually

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"
)

func TestWaitReturnsOnceTheConditionHolds(t *testing.T) {
	var n atomic.Int32
	err := Wait(t.Context(), time.Minute, func(context.Context) error {
		if n.Add(1) < 3 {
			return errors.New("not three")
		}
		return nil
	})
	if err != nil || n.Load() != 3 {
		t.Fatalf("Wait = %v after %d checks, want nil after 3", err, n.Load())
	}
}

func TestWaitReturnsTheLastErrorOnTimeout(t *testing.T) {
	err := Wait(t.Context(), 50*time.Millisecond, func(context.Context) error { return errors.New("phase Pending") })
	if err == nil || err.Error() != "phase Pending" {
		t.Fatalf("Wait = %v, want the condition's last error", err)
	}
}

func TestTrue(t *testing.T) {
	if err := True("x", func() bool { return false })(t.Context()); err == nil {
		t.Fatal("false condition gave nil")
	}
	if err := True("x", func() bool { return true })(t.Context()); err != nil {
		t.Fatalf("true condition gave %v", err)
	}
}

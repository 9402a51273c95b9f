// Package eventually waits in tests for a condition that becomes true
// asynchronously (an object written by a controller, a status reached),
// without fixed sleeps. It is the one polling helper of this module's
// tests; driver authors can use it in theirs.
//
// The condition returns nil once it holds, or an error saying what it
// sees instead; on timeout the test fails with that last error, so the
// failure message says what state things were left in.
package eventually

import (
	"context"
	"errors"
	"testing"
	"time"
)

// Interval bounds: polls start at FirstInterval and double up to
// MaxInterval.
const (
	FirstInterval = 20 * time.Millisecond
	MaxInterval   = 500 * time.Millisecond
)

// Wait polls cond until it returns nil, ctx ends or timeout passes, and
// returns nil or the last error of cond.
func Wait(ctx context.Context, timeout time.Duration, cond func(ctx context.Context) error) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	d := FirstInterval
	for {
		err := cond(ctx)
		if err == nil {
			return nil
		}
		t := time.NewTimer(d)
		select {
		case <-ctx.Done():
			t.Stop()
			return err
		case <-t.C:
		}
		d = min(2*d, MaxInterval)
	}
}

// Require fails t (and stops the test) unless cond holds within timeout;
// what says what was awaited.
func Require(t testing.TB, timeout time.Duration, what string, cond func(ctx context.Context) error) {
	t.Helper()
	if err := Wait(t.Context(), timeout, cond); err != nil {
		t.Fatalf("timed out after %v waiting for %s: %v", timeout, what, err)
	}
}

// True adapts a boolean condition: false becomes an error naming what.
func True(what string, cond func() bool) func(context.Context) error {
	return func(context.Context) error {
		if cond() {
			return nil
		}
		return errors.New("not yet: " + what)
	}
}

package provisioner

import (
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	storagev1 "k8s.io/api/storage/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	testingclock "k8s.io/utils/clock/testing"

	"github.com/csi-kit/sidecars/testkit/eventually"
	"github.com/csi-kit/sidecars/testkit/fakedriver"
)

// TestSlowSet: the pure rules of the infeasible wait.
func TestSlowSet(t *testing.T) {
	now := time.Unix(1000, 0)
	a := &storagev1.StorageClass{ObjectMeta: metav1.ObjectMeta{Name: "gold", UID: "a"}}
	b := &storagev1.StorageClass{ObjectMeta: metav1.ObjectMeta{Name: "gold", UID: "b"}}
	var s slowSet
	if w := s.wait("c1", a, now); w != 0 {
		t.Errorf("claim not in the set waits %v", w)
	}
	s.add("c1", "ns/c1", "gold", a, now.Add(defaultInfeasibleRetryDelay))
	if w := s.wait("c1", a, now.Add(time.Minute)); w != 4*time.Minute {
		t.Errorf("same class after 1m: wait %v, want 4m", w)
	}
	if keys := s.changed("silver", nil); len(keys) != 0 {
		t.Errorf("another class's change requeued %v", keys)
	}
	if keys := s.changed("gold", a); len(keys) != 0 {
		t.Errorf("an unchanged class requeued %v", keys)
	}
	if keys := s.changed("gold", b); len(keys) != 1 || keys[0] != "ns/c1" {
		t.Errorf("class replaced: requeued %v, want [ns/c1]", keys)
	}
	if w := s.wait("c1", b, now); w != 0 {
		t.Errorf("after the class change the claim still waits %v", w)
	}
	s.add("c2", "ns/c2", "gold", a, now.Add(defaultInfeasibleRetryDelay))
	if w := s.wait("c2", b, now); w != 0 {
		t.Errorf("a claim now under another class UID waits %v", w)
	}
	s.add("c3", "ns/c3", "gold", a, now.Add(defaultInfeasibleRetryDelay))
	if w := s.wait("c3", a, now.Add(defaultInfeasibleRetryDelay)); w != 0 {
		t.Errorf("after the delay the claim still waits %v", w)
	}
	s.add("c4", "ns/c4", "gold", nil, now.Add(defaultInfeasibleRetryDelay))
	if keys := s.changed("gold", a); len(keys) != 1 {
		t.Errorf("a class created after the refusal must requeue the claim, got %v", keys)
	}
	if len(s.m) != 0 {
		t.Errorf("entries left: %v", s.m)
	}
}

// TestInfeasibleRetry: a CreateVolume refused with InvalidArgument is not
// retried on the normal backoff but after defaultInfeasibleRetryDelay (on the
// injected clock), and at once when the class is replaced.
func TestInfeasibleRetry(t *testing.T) {
	e := newEnv(t, fakedriver.Options{Capabilities: noTopology()})
	clk := testingclock.NewFakeClock(time.Now())
	e.start(Options{Clock: clk, RetryIntervalStart: 100 * time.Millisecond, RetryIntervalMax: time.Second}, nil)
	params := func(p map[string]string) func(*storagev1.StorageClass) {
		return func(sc *storagev1.StorageClass) { sc.Parameters = p }
	}
	sc := e.class("rejected", params(map[string]string{"size-class": "huge"}))
	e.drv.SetError("CreateVolume", codes.InvalidArgument)
	e.claim("data", sc.Name, "1Gi", nil)
	e.waitEvent("data", ReasonProvisioningFailed, "infeasible error. Retries will be delayed")
	if n := e.drv.Calls("CreateVolume"); n != 1 {
		t.Fatalf("%d CreateVolume calls before any retry, want 1", n)
	}

	// The normal backoff (100ms to 1s) passes: no retry.
	clk.Step(10 * time.Second)
	deadline := time.Now().Add(2 * time.Second)
	for time.Now().Before(deadline) {
		if n := e.drv.Calls("CreateVolume"); n != 1 {
			t.Fatalf("retried on the normal backoff: %d calls, want 1 until %v passed", n, defaultInfeasibleRetryDelay)
		}
		time.Sleep(50 * time.Millisecond)
	}

	// The delay passes: one more attempt, refused again.
	clk.Step(defaultInfeasibleRetryDelay)
	eventually.Require(e.t, 30*time.Second, "a second attempt after the delay", eventually.True("a second attempt after the delay", func() bool {
		return e.drv.Calls("CreateVolume") == 2
	}))

	// The class is replaced (its parameters are immutable): the claim
	// leaves the slow set and is tried again on the normal backoff (at
	// most RetryIntervalMax, 1s, after the class came back), long before
	// defaultInfeasibleRetryDelay.
	e.drv.ClearErrors()
	if err := e.kube.StorageV1().StorageClasses().Delete(e.ctx, sc.Name, metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	eventually.Require(e.t, 10*time.Second, "class gone", eventually.True("class gone", func() bool {
		_, err := e.kube.StorageV1().StorageClasses().Get(e.ctx, sc.Name, metav1.GetOptions{})
		return err != nil
	}))
	fixed := sc.DeepCopy()
	fixed.ResourceVersion, fixed.UID, fixed.Parameters = "", "", map[string]string{"size-class": "small"}
	if _, err := e.kube.StorageV1().StorageClasses().Create(e.ctx, fixed, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	// Step the fake clock by at most 60s in all, far below the delay.
	for step := 0; e.drv.Calls("CreateVolume") < 3; step++ {
		if step == 300 {
			t.Fatalf("no attempt with the new class within 60s of fake time: still waiting out %v?", defaultInfeasibleRetryDelay)
		}
		if step%5 == 0 {
			clk.Step(time.Second)
		}
		time.Sleep(100 * time.Millisecond)
	}
	e.waitBound("data")
}

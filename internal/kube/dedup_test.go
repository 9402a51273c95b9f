package kube

import (
	"testing"
	"time"

	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/record"
	testclock "k8s.io/utils/clock/testing"
)

func TestDeduplicatedWarnings(t *testing.T) {
	fake := record.NewFakeRecorder(100)
	clk := testclock.NewFakePassiveClock(time.Now())
	rec := Deduplicated(fake, clk)
	a := &v1.PersistentVolumeClaim{ObjectMeta: metav1.ObjectMeta{Name: "a", Namespace: "ns", UID: "1"}}
	b := &v1.PersistentVolumeClaim{ObjectMeta: metav1.ObjectMeta{Name: "b", Namespace: "ns", UID: "2"}}
	rec.Event(a, v1.EventTypeWarning, "Failed", "boom")
	rec.Eventf(a, v1.EventTypeWarning, "Failed", "%s", "boom") // repeat: held back
	rec.Event(b, v1.EventTypeWarning, "Failed", "boom")        // other object
	rec.Event(a, v1.EventTypeWarning, "Failed", "other")       // other message
	rec.Event(a, v1.EventTypeNormal, "Done", "ok")
	rec.Event(a, v1.EventTypeNormal, "Done", "ok") // repeat: held back too (e.g. Provisioning per attempt)
	clk.SetTime(clk.Now().Add(WarningWindow))
	rec.Event(a, v1.EventTypeWarning, "Failed", "boom") // window over
	want := []string{"Warning Failed boom", "Warning Failed boom", "Warning Failed other",
		"Normal Done ok", "Warning Failed boom"}
	for i, w := range want {
		select {
		case got := <-fake.Events:
			if got != w {
				t.Errorf("event %d = %q, want %q", i, got, w)
			}
		default:
			t.Fatalf("event %d missing, want %q", i, w)
		}
	}
	select {
	case got := <-fake.Events:
		t.Errorf("unexpected event %q", got)
	default:
	}
}

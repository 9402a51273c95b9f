package resizer_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/container-storage-interface/spec/lib/go/csi"

	"github.com/csi-kit/sidecars/resizer"
	"github.com/csi-kit/sidecars/testkit/fakedriver"
)

// TestRequestAboveInt64Bytes: the API server accepts a request of 10E, which
// is more bytes than CSI's int64 can carry (Quantity.Value gives 0). The
// resizer warns once on the PVC and never calls ControllerExpandVolume with
// a wrapped size; the PVC status is left alone. A sane request afterwards
// is served.
func TestRequestAboveInt64Bytes(t *testing.T) {
	e := newEnv(t, fakedriver.Options{Capabilities: fakedriver.Resizer, RequestHistory: 100}, resizer.Options{})
	id := e.backendVolume("disk", gi(1))
	pvc, pv := e.boundPair("data", "1Gi", id, nil)
	if err := e.request(pvc.Name, "10E"); err != nil {
		t.Fatalf("the API server refused 10E: %v", err)
	}
	ev := e.waitEvent(pvc.Name, resizer.EventResizeFailed, "10E")
	t.Logf("event: %s", ev)
	if n := e.drv.Calls("ControllerExpandVolume"); n != 0 {
		t.Errorf("ControllerExpandVolume called %d times for a 10E request", n)
	}
	got := e.pvc(pvc.Name)
	if a := storage(got.Status.AllocatedResources); a != "<unset>" || rstatus(got) != "" {
		t.Errorf("PVC status written for a refused size: allocated %s, status %q", a, rstatus(got))
	}

	if err := e.request(pvc.Name, "2Gi"); err != nil {
		t.Fatalf("lowering the request to 2Gi: %v", err)
	}
	e.eventually(30*time.Second, "expanded to 2Gi", func() (bool, string) {
		c := storage(e.pvc(pvc.Name).Status.Capacity)
		return c == "2Gi", fmt.Sprintf("capacity %s, PV %s, events %q", c, storage(e.pv(pv.Name).Spec.Capacity), e.events(pvc.Name))
	})
	for _, r := range e.drv.Requests("ControllerExpandVolume") {
		if b := r.(*csi.ControllerExpandVolumeRequest).GetCapacityRange().GetRequiredBytes(); b != gi(2) {
			t.Errorf("ControllerExpandVolume asked for %d bytes, want %d", b, gi(2))
		}
	}
	if evs := e.events(pvc.Name); countPrefix(evs, resizer.EventResizeFailed+": ") != 1 {
		t.Errorf("want exactly one %s event: %q", resizer.EventResizeFailed, evs)
	}
}

func countPrefix(list []string, prefix string) int {
	n := 0
	for _, s := range list {
		if len(s) >= len(prefix) && s[:len(prefix)] == prefix {
			n++
		}
	}
	return n
}

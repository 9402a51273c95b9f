package resizer_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"

	"github.com/csi-kit/sidecars/resizer"
	"github.com/csi-kit/sidecars/testkit/fakedriver"
)

// TestNormalEvents: by default a resize shows Resizing and
// VolumeResizeSuccessful on the claim, as upstream; with
// DisableNormalEvents (--normal-events=false) only Warnings are written.
func TestNormalEvents(t *testing.T) {
	for _, disable := range []bool{false, true} {
		name := map[bool]string{false: "default", true: "disabled"}[disable]
		t.Run(name, func(t *testing.T) {
			e := newEnv(t, fakedriver.Options{Capabilities: fakedriver.Resizer}, resizer.Options{DisableNormalEvents: disable})
			id := e.backendVolume("disk-1", gi(1))
			pvc, _ := e.boundPair("pvc-disk", "1Gi", id, nil)
			if err := e.request(pvc.Name, "2Gi"); err != nil {
				t.Fatal(err)
			}
			e.eventually(30*time.Second, "status capacity 2Gi", func() (bool, string) {
				return storage(e.pvc(pvc.Name).Status.Capacity) == "2Gi", storage(e.pvc(pvc.Name).Status.Capacity)
			})
			// A failing resize next: once its Warning is visible, every
			// earlier event of the claim has been written.
			e.drv.SetError("ControllerExpandVolume", codes.Internal)
			if err := e.request(pvc.Name, "3Gi"); err != nil {
				t.Fatal(err)
			}
			e.waitEvent(pvc.Name, resizer.EventResizeFailed, "")
			var normal []string
			for _, ev := range e.events(pvc.Name) {
				if strings.HasPrefix(ev, "Resizing"+": ") || strings.HasPrefix(ev, "VolumeResizeSuccessful"+": ") {
					normal = append(normal, ev)
				}
			}
			if disable && len(normal) != 0 {
				t.Errorf("Normal events written with DisableNormalEvents: %q", normal)
			}
			if !disable && len(normal) < 2 {
				t.Errorf("want Resizing and VolumeResizeSuccessful by default, got %q (all: %q)", normal, e.events(pvc.Name))
			}
		})
	}
}

// By default the upstream sequence is kept: the PVC is marked (Resizing
// event) before the call, then FileSystemResizeRequired.
func TestMarkInProgressEvents(t *testing.T) {
	for _, tc := range []struct {
		name    string
		disable bool
		want    []string
	}{
		{"default", false, []string{"Resizing: External resizer is resizing volume %s", "FileSystemResizeRequired: Require file system resize of volume on node"}},
		{"DisableMarkInProgress", true, []string{"FileSystemResizeRequired: Require file system resize of volume on node"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, fakedriver.Options{Capabilities: fakedriver.Resizer, NodeExpansionRequired: true},
				resizer.Options{DisableMarkInProgress: tc.disable})
			id := e.backendVolume("disk", gi(1))
			pvc, pv := e.boundPair("data", "1Gi", id, nil)
			if err := e.request(pvc.Name, "2Gi"); err != nil {
				t.Fatal(err)
			}
			e.waitEvent(pvc.Name, resizer.EventFileSystemResizeRequired, "")
			var want []string
			for _, w := range tc.want {
				if strings.Contains(w, "%s") {
					w = fmt.Sprintf(w, pv.Name)
				}
				want = append(want, w)
			}
			if evs := e.events(pvc.Name); strings.Join(evs, "|") != strings.Join(want, "|") {
				t.Errorf("events %q, want %q", evs, want)
			}
		})
	}
}

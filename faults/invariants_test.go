package faults

import (
	"fmt"
	"strings"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/csi-kit/sidecars/internal/kube"
	"github.com/csi-kit/sidecars/provisioner"
)

// settle is how long the invariants may take to hold after the work is done:
// deletes and binder syncs are asynchronous.
const settle = 30 * time.Second

// check verifies the invariants every case ends with (see the package
// documentation) and counts leaks, stuck finalizers and double volumes in
// the case's category. It fails the case on any violation.
func (e *env) check() {
	e.t.Helper()
	var last string
	ok := poll(settle, func() (bool, string) {
		last = e.volumesMatch()
		return last == "", last
	})
	if !ok {
		e.countVolumes()
		e.t.Errorf("volume invariant: %s", last)
	}
	ok = poll(settle, func() (bool, string) {
		last = e.snapshotsMatch()
		return last == "", last
	})
	if !ok {
		e.t.Errorf("snapshot invariant: %s", last)
	}
	ok = poll(settle, func() (bool, string) {
		last = e.stuckFinalizers()
		return last == "", last
	})
	if !ok {
		tallies.add(e.category, func(c *tally) { c.Stuck++ })
		e.t.Errorf("finalizer invariant: %s", last)
	}
}

// volumesMatch compares backend volumes with the PV handles of the driver.
// It counts leaks and doubles only when called for the last time, so it
// returns a description and leaves counting to countVolumes.
func (e *env) volumesMatch() string {
	pvs, err := e.pvs()
	if err != nil {
		return err.Error()
	}
	handles := map[string]bool{}
	var msgs []string
	for _, pv := range pvs {
		if handles[pv.Spec.CSI.VolumeHandle] {
			msgs = append(msgs, fmt.Sprintf("volume %s is the handle of more than one PV", pv.Spec.CSI.VolumeHandle))
		}
		handles[pv.Spec.CSI.VolumeHandle] = true
	}
	backend := map[string]bool{}
	names := map[string]int{}
	for _, v := range e.drv.Volumes() {
		backend[v.ID] = true
		names[v.Name]++
	}
	if leaked := diff(backend, handles); len(leaked) > 0 {
		msgs = append(msgs, fmt.Sprintf("backend volumes without PV: %v", leaked))
	}
	if lost := diff(handles, backend); len(lost) > 0 {
		msgs = append(msgs, fmt.Sprintf("PV handles without backend volume: %v", lost))
	}
	for n, c := range names {
		if c > 1 {
			msgs = append(msgs, fmt.Sprintf("%d backend volumes named %s", c, n))
		}
	}
	return strings.Join(msgs, "; ")
}

// countVolumes records the leaks and double volumes seen now; cases call
// it through check's failure path and drain.
func (e *env) countVolumes() {
	pvs, _ := e.pvs()
	handles := map[string]bool{}
	pvNames := map[string]bool{}
	leaks, doubles := 0, 0
	for _, pv := range pvs {
		if handles[pv.Spec.CSI.VolumeHandle] {
			doubles++
		}
		handles[pv.Spec.CSI.VolumeHandle] = true
		pvNames[pv.Name] = true
	}
	backend := map[string]bool{}
	seen := map[string]bool{}
	for _, v := range e.drv.Volumes() {
		backend[v.ID] = true
		if seen[v.Name] {
			doubles++
		}
		seen[v.Name] = true
		if !handles[v.ID] {
			leaks++
		}
	}
	if leaks+doubles > 0 {
		tallies.add(e.category, func(c *tally) { c.Leaks += leaks; c.Doubles += doubles })
	}
}

// snapshotsMatch compares backend snapshots with the snapshot handles of the
// driver's VolumeSnapshotContents.
func (e *env) snapshotsMatch() string {
	list, err := e.snaps.SnapshotV1().VolumeSnapshotContents().List(e.ctx, metav1.ListOptions{})
	if err != nil {
		return err.Error()
	}
	handles := map[string]bool{}
	for _, c := range list.Items {
		if c.Spec.Driver != e.driver {
			continue
		}
		if c.Status != nil && c.Status.SnapshotHandle != nil {
			handles[*c.Status.SnapshotHandle] = true
		} else if c.Spec.Source.SnapshotHandle != nil {
			handles[*c.Spec.Source.SnapshotHandle] = true
		}
	}
	backend := map[string]bool{}
	for _, s := range e.drv.Snapshots() {
		backend[s.ID] = true
	}
	var msgs []string
	if leaked := diff(backend, handles); len(leaked) > 0 {
		msgs = append(msgs, fmt.Sprintf("backend snapshots without content: %v", leaked))
	}
	if lost := diff(handles, backend); len(lost) > 0 {
		msgs = append(msgs, fmt.Sprintf("content handles without backend snapshot: %v", lost))
	}
	return strings.Join(msgs, "; ")
}

// stuckFinalizers lists claims, PVs, snapshots and contents of the case that
// are deleted but still held by a finalizer, claims that still carry the
// intent finalizer of earlier versions, and provisioning records left.
func (e *env) stuckFinalizers() string {
	var msgs []string
	claims, err := e.kube.CoreV1().PersistentVolumeClaims(e.ns).List(e.ctx, metav1.ListOptions{})
	if err != nil {
		return err.Error()
	}
	for _, c := range claims.Items {
		if c.DeletionTimestamp != nil && len(c.Finalizers) > 0 {
			msgs = append(msgs, fmt.Sprintf("claim %s deleted, finalizers %v", c.Name, c.Finalizers))
		}
		for _, f := range c.Finalizers {
			if f == provisioner.FinalizerIntent {
				msgs = append(msgs, fmt.Sprintf("claim %s still carries %s (the provisioner removes it from every claim)", c.Name, f))
			}
		}
	}
	// A provisioning record left over is a volume that may exist without
	// a PV: the case did not finish its cleanup.
	records, err := e.kube.CoreV1().Secrets(kube.OwnNamespace()).List(e.ctx, metav1.ListOptions{LabelSelector: provisioner.LabelRecord + "=" + e.drv.Name()})
	if err != nil {
		return err.Error()
	}
	for _, r := range records.Items {
		msgs = append(msgs, fmt.Sprintf("provisioning record %s left", r.Name))
	}
	pvs, err := e.pvs()
	if err != nil {
		return err.Error()
	}
	for _, pv := range pvs {
		if pv.DeletionTimestamp != nil && len(pv.Finalizers) > 0 {
			msgs = append(msgs, fmt.Sprintf("PV %s deleted, finalizers %v", pv.Name, pv.Finalizers))
		}
	}
	snaps, err := e.snaps.SnapshotV1().VolumeSnapshots(e.ns).List(e.ctx, metav1.ListOptions{})
	if err != nil {
		return err.Error()
	}
	for _, s := range snaps.Items {
		if s.DeletionTimestamp != nil && len(s.Finalizers) > 0 {
			msgs = append(msgs, fmt.Sprintf("snapshot %s deleted, finalizers %v", s.Name, s.Finalizers))
		}
	}
	contents, err := e.snaps.SnapshotV1().VolumeSnapshotContents().List(e.ctx, metav1.ListOptions{})
	if err != nil {
		return err.Error()
	}
	for _, c := range contents.Items {
		if c.Spec.Driver == e.driver && c.DeletionTimestamp != nil && len(c.Finalizers) > 0 {
			msgs = append(msgs, fmt.Sprintf("content %s deleted, finalizers %v", c.Name, c.Finalizers))
		}
	}
	return strings.Join(msgs, "; ")
}

// drain deletes every claim of the case while its provisioner still runs
// and waits until claims, PVs and backend volumes are all gone: a claim or
// PV that stays is a stuck finalizer, a volume that stays a leak.
func (e *env) drain() {
	e.t.Helper()
	if err := e.kube.CoreV1().PersistentVolumeClaims(e.ns).DeleteCollection(e.ctx, metav1.DeleteOptions{}, metav1.ListOptions{}); err != nil {
		e.t.Fatal(err)
	}
	var last string
	ok := poll(60*time.Second, func() (bool, string) {
		var msgs []string
		claims, err := e.kube.CoreV1().PersistentVolumeClaims(e.ns).List(e.ctx, metav1.ListOptions{})
		if err != nil {
			last = err.Error()
			return false, last
		}
		for _, c := range claims.Items {
			msgs = append(msgs, fmt.Sprintf("claim %s (finalizers %v)", c.Name, c.Finalizers))
		}
		pvs, err := e.pvs()
		if err != nil {
			last = err.Error()
			return false, last
		}
		for _, pv := range pvs {
			msgs = append(msgs, fmt.Sprintf("PV %s %s (finalizers %v)", pv.Name, pv.Status.Phase, pv.Finalizers))
		}
		if vols := e.drv.Volumes(); len(vols) > 0 {
			msgs = append(msgs, fmt.Sprintf("%d backend volumes", len(vols)))
		}
		last = strings.Join(msgs, "; ")
		return len(msgs) == 0, last
	})
	if !ok {
		e.countVolumes()
		if !strings.Contains(last, "backend volumes") || strings.Contains(last, "claim ") || strings.Contains(last, "PV ") {
			tallies.add(e.category, func(c *tally) { c.Stuck++ })
		}
		e.t.Errorf("drain: not empty after 60s: %s", truncate(last, 2000))
	}
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "..."
}

// Package faults holds the fault-injection suite of the sidecars: tests that
// run the real controllers (provisioner, resizer) against a real API server
// (testkit/controlplane) and the in-process CSI driver (testkit/fakedriver),
// break something on purpose, and then check that the system settled in a
// correct state. The package has no API of its own; it exists for its tests.
//
// # Categories
//
//   - apiserver: the API server stops and starts while controllers run.
//     Every claim ends Bound, every resize is applied, and CreateVolume is
//     called once per volume name.
//   - apiserver also covers an outage while CreateVolume answers are
//     pending, so the PVs cannot be written when the volumes appear.
//   - driver: the CSI driver goes away (idle, mid-call, and under the
//     snapshotter sidecar). Every controller's Run returns an error
//     wrapping csiconn.ErrConnectionLost within a bound; controllers
//     started after the driver is back finish the work.
//   - driver also covers every error code (14 of them) answered twice to
//     each of CreateVolume, ControllerExpandVolume, CreateSnapshot,
//     DeleteSnapshot and DeleteVolume (TestDriverAnswersEveryCode):
//     every object reaches its state; infeasible expansions are marked,
//     retried only on the backoff, and a lowered request recovers.
//   - apiserver also covers a conflict on the first write of every object
//     by every controller (TestConflictOnEveryUpdate).
//   - cancel: claims deleted while CreateVolume hangs or times out, and
//     CreateVolume slower than the provisioner's timeout.
//   - leader: the leading provisioner, resizer or snapshot sidecar is
//     cancelled while its CreateVolume, ControllerExpandVolume or
//     CreateSnapshot calls hang in the driver; the standby takes over and
//     finishes, with exactly one backend volume (at the new size) or
//     snapshot per object.
//   - input: generated bad input (odd sizes, unknown and malformed
//     annotations, classes with unknown reserved parameters, broken secret
//     templates, missing secrets) from a seeded generator. Each claim
//     reaches Bound or a Warning event within a bound, driver calls stay
//     bounded (no hot loop), nothing panics.
//   - secrets: a secret value given to the provisioner appears in no log
//     line (verbosity 5), no event and no metric.
//   - hostile: two tenants of one driver; the attacker, who may write any
//     object of its own namespace (claims, snapshots, their annotations and
//     finalizers) but nothing cluster-scoped, forges provisioning records,
//     names the victim's PV, restores from the victim's namespace and
//     forges snapshot objects (hostile_test.go). The victim's volumes,
//     snapshots and objects stay untouched and the attacker gains no
//     access to them.
//   - apierrors: every (verb, resource) pair the provisioner, resizer,
//     snapshot controller and sidecar use fails once with each answer of
//     the API server (403, 404, 409, 429 with Retry-After, 500, 503, or
//     none until a timeout) (TestAPIErrorOnEveryVerb, apierrors_test.go).
//     No controller crashes or wedges; every object reaches its state.
//   - group: a VolumeGroupSnapshot of three labelled claims through its
//     life with our snapshot controller and sidecar
//     (TestGroupSnapshotEndToEnd, groupsnapshot_test.go). Under Delete the
//     group turns ready with three member snapshots and contents as
//     upstream makes them (owner reference, status.volumeGroupSnapshotName,
//     the in-group finalizer, both-way binding to one backend group), a
//     claim restored from a member binds, a member deleted on its own is
//     held (SnapshotDeletePending) while its group exists, and deleting the
//     group removes group, content, members, member contents and the
//     backend group and snapshots. Under Retain the contents and the
//     backend stay, unheld. Deleting the namespace of a ready group ends
//     with the namespace gone and the backend empty.
//   - swap also covers volume group snapshots upstream's controller and
//     sidecar left fresh, being cut, created but not ready, ready with
//     members, and half-deleted, with upstream's finalizers and
//     annotations (TestSwapFromUpstreamGroups, swap_group_test.go): ours
//     finish each (ready with the one backend group upstream cut and the
//     members upstream named, or gone), and deleting them all empties the
//     backend.
//   - load: CSIKIT_LOAD_N claims (default 5000) provisioned, resized and
//     snapshotted by every controller in one process on one shared cache
//     and one Lease, while the leader is cancelled twice (once during
//     provisioning, once during resizing). It runs last (workload_test.go sorts last)
//     and reports the time of each phase and the peak RSS.
//
// # Invariants
//
// Every case ends with the same check: the driver's volumes are exactly the
// volume handles of the PVs of that driver, its snapshots exactly the
// snapshot handles of the VolumeSnapshotContents of that driver, and no
// claim, PV, VolumeSnapshot or VolumeSnapshotContent is left deleted but
// held by a finalizer once its controller had time to act; the group
// cases check the same of VolumeGroupSnapshots and their contents. Cases (but the
// load case) then delete their claims and wait until the backend is empty,
// which proves that no finalizer is stuck and no volume leaked.
//
// # Bugs found
//
// The first run found four bugs, all fixed with these cases as their tests:
// a user-written intent annotation choosing the backend volume name
// (TestForgedIntentAnnotation), a volume re-created by a late CreateVolume
// after the claim's cleanup (TestDeleteDuringCreateTimeout; the fake driver
// now answers ABORTED while an operation on the same name runs, as the CSI
// spec asks), the snapshot sidecar not returning on a lost driver
// (TestSnapshotterDriverCrash), and the loss of an idle connection going
// unnoticed until the next call (TestDriverCrash).
//
// # Caveats
//
// The suite needs the control-plane binaries; in -short mode it skips. The
// API server restart affects the whole package, so cases never run in
// parallel. Timings are short (retry intervals of 100ms to 2s, leases of 2s
// to 4s); without the load case the package takes under two minutes on a
// small machine, the load case adds several (CSIKIT_LOAD_N shrinks it).
package faults

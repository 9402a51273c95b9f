// Package fakedriver is an in-process fake CSI driver for tests and
// benchmarks of the sidecars. It serves the CSI Identity, Controller, Node
// and GroupController services over a real unix socket, so the code under
// test dials, probes, loses and regains its connection exactly as it would
// with a real driver, and it keeps volumes and snapshots in memory.
//
// # Basics
//
//	drv := fakedriver.Start(t, fakedriver.Options{Capabilities: fakedriver.Resizer})
//	drv.FailNext("ControllerExpandVolume", codes.Unavailable, 1) // first try fails, the retry succeeds
//	// ... run the resizer against drv.Endpoint() ...
//	if got := drv.Calls("ControllerExpandVolume"); got != 2 {
//		t.Errorf("expand calls = %d, want 2", got)
//	}
//
// Start serves on a fresh socket and stops in t.Cleanup. Outside tests,
// New then Serve (which returns once the socket accepts connections) and
// Stop, or Run(ctx).
//
// # Behaviour
//
// Zero Options give a driver advertising everything it implements (All).
// It follows the CSI spec where csi-sanity checks it, and passes csi-sanity
// with All, CreateTargetPaths, a MutableParameters allow-list and
// MaxVolumesPerNode set (see TestSanity):
//
//   - Requests are validated first: a missing name, ID, path or capability
//     is InvalidArgument.
//   - CreateVolume is idempotent by name; the same name with another size,
//     parameters or content source is AlreadyExists. Sizes follow the
//     capacity range, raised to Options.MinSize and rounded up to
//     Options.SizeStep; a limit below that is OutOfRange. A snapshot or
//     volume source must exist (NotFound), and the new volume is at least
//     as large (a smaller required_bytes is OutOfRange).
//   - With topology, a volume goes to the first preferred, then requisite,
//     segment whose pool has room, else ResourceExhausted. Every distinct
//     segment is a pool of Options.Capacity bytes unless a Node sizes it;
//     GetCapacity reports the free bytes of the requested segment.
//   - DeleteVolume and DeleteSnapshot of unknown IDs succeed. A volume is
//     in use while ControllerPublished, staged, NodePublished or flagged
//     by SetVolumeInUse; deleting it then is FailedPrecondition.
//   - ControllerExpandVolume: unknown volume NotFound; a smaller size is a
//     no-op returning the current size; an in-use volume without
//     ExpandOnline but with ExpandOffline is FailedPrecondition;
//     node_expansion_required is Options.NodeExpansionRequired.
//   - ControllerModifyVolume merges mutable parameters; the key "fail",
//     or a key outside Options.MutableParameters, is InvalidArgument and
//     changes nothing.
//   - Snapshots are idempotent by name and source volume. The first
//     Options.SnapshotNotReadyPolls answers about a snapshot say
//     ready_to_use=false; every CreateSnapshot, ListSnapshots and
//     GetSnapshot answer counts.
//   - Snapshots of a group snapshot answer the same way; the group is ready
//     when all its snapshots are.
//   - Probe says ready=false Options.NotReadyProbes times after every Serve
//     or Restart.
//   - An RPC whose capability is not advertised answers Unimplemented;
//     without Capabilities.Controller the Controller service is not
//     served at all.
//
// # Fault injection
//
// FailNext, SetError, SetLatency and Hang take the method's short name
// ("CreateVolume") and may be called from any goroutine while the driver
// serves. An unknown name panics, so a typo cannot silently inject
// nothing. Calls, InFlight, PeakInFlight and Requests show what the
// driver received; with SetLatency or Hang, PeakInFlight shows how many
// calls a client runs in parallel (calls to a service that is not served never reach the driver);
// Volumes, Snapshots and GroupSnapshots show the backend. A call is
// counted and recorded on arrival, then waits for Hang and latency, then
// fails if an error is injected, then checks Options.RequireSecrets, then
// runs. Waiting ignores the client's context: a call whose client timed out
// still takes effect later, like a real driver that finishes late. Stop
// abandons waiting calls without effect. Restart is a crash: the backend
// and the fault settings survive it, connections do not.
//
// # Scope and limitations
//
//   - Nothing is stored or mounted. Staging and publishing are bookkeeping;
//     only Options.CreateTargetPaths makes NodePublishVolume create the
//     target path, as csi-sanity requires.
//   - Only unary RPCs; the SnapshotMetadata service, volume and storage
//     health (ControllerGetVolumeHealth, ControllerListVolumeHealth,
//     NodeGetVolumeHealth, NodeGetStorageHealth), ControllerGetVolume,
//     snapshot accessibility constraints and VOLUME_MOUNT_GROUP are not
//     implemented; they answer Unimplemented and are not advertised.
//   - One process, one backend: two Drivers share nothing, so a
//     controller and a node plugin on separate sockets cannot be modelled
//     by two Drivers.
//   - Publication rules are simplified: any known node can attach any
//     volume regardless of topology unless Options.PublishWithinTopology
//     is set; otherwise only access modes and Options.MaxVolumesPerNode
//     are enforced.
//   - Durability is "the backend survives Restart", and with
//     Options.StateDir it survives the process too: the backend is read
//     from StateDir/StateFile at the first Serve and rewritten atomically
//     after every call that may change it. Fault settings and call
//     records are never saved. One Driver per directory: two processes
//     sharing a StateDir overwrite each other.
//   - Timing is real: latency uses the wall clock, so keep it short in
//     unit tests and prefer Hang with Unhang for ordering.
//
// # When not to use this package
//
// To test a real driver, run csi-sanity against that driver. To unit-test a
// decision, call the pure function with values; the fake is for code that
// talks gRPC.
package fakedriver

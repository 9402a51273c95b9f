// Package explain says in plain words why a PersistentVolumeClaim,
// PersistentVolume, VolumeSnapshot or VolumeSnapshotContent is not bound,
// not resized or not ready, and what to do about it.
//
// # Basics
//
//	rep, err := explain.Explain(ctx, kubeClient, snapClient, "pvc", "default", "data")
//	fmt.Print(rep) // object, state, and each finding with "why" and "do"
//
// Explain only reads: it fetches the object, its StorageClass or
// VolumeSnapshotClass, the PV, PVC or content it names, the pods using a
// claim, recent events of these objects, the Leases of the controllers that
// should act on it, CSIStorageCapacity objects, the selected Node and its
// CSINode, then hands them to [Diagnose].
//
// [Diagnose] is a pure function of an [Input]: tools that already hold the
// objects (an informer cache, a support bundle) can call it directly, and
// tests build the objects by hand. Every [Finding] carries a stable
// machine-readable Reason (the Reason* constants), a Message saying why and
// an Action saying what to do next.
//
// # Guarantees
//
//   - Explain never writes to the API server.
//   - Diagnose never returns an empty list: a healthy object yields one
//     Info finding (BoundOK, SnapshotReady).
//   - Findings are sorted by severity, errors first.
//
// # Caveats
//
//   - Controller health is read from Leases. A controller running without
//     leader election has no Lease; its absence is reported as a Warning,
//     not an Error, and the message says so. The Lease namespace is not
//     known to the caller, so every namespace is searched.
//   - Events expire (one hour by default); an old failure may be invisible.
//   - Whether a driver expands online or offline is not stored in the API;
//     an offline-only driver is recognised from the resizer's event or
//     condition text.
//   - Capacity is judged from CSIStorageCapacity objects, which exist only
//     when the provisioner runs with capacity tracking enabled.
package explain

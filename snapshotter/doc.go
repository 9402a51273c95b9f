// Package snapshotter implements Kubernetes CSI volume snapshots as two
// controllers that run in one process or apart, like upstream's
// snapshot-controller and csi-snapshotter:
//
//   - Controller (NewController) is the common controller, one per
//     cluster. It binds VolumeSnapshots to VolumeSnapshotContents (dynamic
//     contents are named "snapcontent-<snapshot UID>"; pre-provisioned
//     ones are bound both ways with the UID checked), picks the default
//     VolumeSnapshotClass, keeps snapshot status and finalizers, protects
//     the source PVC while its snapshot is being cut, and deletes contents
//     under deletionPolicy Delete. It never talks to a CSI driver. It also
//     handles VolumeGroupSnapshots (group_controller*.go): it creates the
//     content of a dynamic group ("groupsnapcontent-<group UID>") from the
//     PVCs its selector's matchLabels pick, binds pre-provisioned ones,
//     creates the member VolumeSnapshots and contents once the sidecar has
//     cut the group, mirrors the group status and deletes per policy. It
//     is on by default; ControllerOptions.DisableVolumeGroupSnapshots
//     turns it off, and it is off, with a warning, when the
//     groupsnapshot.storage.k8s.io/v1 CRDs are not served.
//   - Sidecar (NewSidecar) runs beside one CSI driver. For the contents of
//     that driver it calls CreateSnapshot (with the snapshotter secret and,
//     optionally, the extra create metadata), polls readiness, writes the
//     content's status, and calls DeleteSnapshot under policy Delete. For
//     the VolumeGroupSnapshotContents of its driver it does the same with
//     CreateVolumeGroupSnapshot, GetVolumeGroupSnapshot (pre-provisioned)
//     and DeleteVolumeGroupSnapshot, when the driver implements GroupDriver
//     with the GroupController capability and the group CRDs are served
//     (SidecarOptions.DisableVolumeGroupSnapshots turns this off).
//
// Both use the typed clients of
// github.com/kubernetes-csi/external-snapshotter/client/v8 (given as
// Options.SnapshotClient) and need its v1 CRDs; Run checks they are served
// and fails with ErrCRDsMissing otherwise. InstallCRDs applies them from a
// directory.
//
// # API
//
//   - NewController(ControllerOptions, kube) and NewSidecar(SidecarOptions,
//     kube, Driver) check every option at once and start nothing;
//     Controller.Run and Sidecar.Run block until ctx ends, and run once.
//   - Driver is what the sidecar needs of a CSI driver; NewCSIDriver gives
//     one over a csiconn.Conn, and SnapshotInfo is its answer. SnapshotName
//     is the backend name of a snapshot.
//   - ErrCRDsMissing and InstallCRDs for the CRDs.
//   - ControllerFlags, SidecarFlags, their Register functions,
//     FeatureGates and NodeNameEnv fill the Options from upstream's flags.
//   - The finalizer, annotation, label and event reason constants, and the
//     component names ControllerComponent and SidecarComponent (the event
//     sources).
//
// # Guarantees
//
//   - Objects are read and written exactly as upstream names them: the same
//     finalizers, annotations, event reasons and status fields, so either
//     implementation can take over from the other.
//   - No leaks: a content is released only after the driver gave a final
//     answer about its snapshot. A CreateSnapshot that timed out marks the
//     content "being created" and is repeated until it succeeds or fails
//     for good; a content deleted before it ever got a snapshot handle asks
//     the driver (CreateSnapshot is idempotent by name) and deletes what it
//     learns of. A restarted sidecar resumes from the objects alone.
//   - A dynamic snapshot that the driver cuts at once costs six object
//     writes for both controllers together (snapshot finalizers, PVC
//     finalizer on and off, content creation, content status, snapshot
//     status) and one event.
//   - Events are on by default: without Options.Recorder, Run writes them
//     through the kube client for the time of Run.
//   - Run returns when its context ends, and the sidecar's also when its
//     driver reports a lost connection (with that error, wrapping
//     csiconn.ErrConnectionLost for a CSIDriver); nothing exits the
//     process.
//
// # Caveats
//
//   - A sidecar run per node (SidecarOptions.NodeName) does not handle
//     group contents.
//   - Group snapshot selectors use matchLabels only (matchExpressions are
//     ignored, as upstream). The members of a pre-provisioned group are not
//     created (its content lists no member snapshots).
package snapshotter

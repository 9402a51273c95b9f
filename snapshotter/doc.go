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
//     content's status, and calls DeleteSnapshot under policy Delete.
//
// Both use the typed clients of
// github.com/kubernetes-csi/external-snapshotter/client/v8 and need its v1
// CRDs; Run checks they are served and fails with ErrCRDsMissing otherwise.
// InstallCRDs applies them from a directory.
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
//   - Run returns when its context ends; nothing exits the process.
//
// # Caveats
//
//   - Group snapshot selectors use matchLabels only (matchExpressions are
//     ignored, as upstream). The members of a pre-provisioned group are not
//     created (its content lists no member snapshots).
//   - There is no conversion webhook.
package snapshotter

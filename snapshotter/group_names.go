package snapshotter

// Names of the volume group snapshot API, spelled exactly as upstream so
// that objects written by either implementation are understood by the
// other.
const (
	// FinalizerGroupSnapshotBound is on a VolumeGroupSnapshot bound to its
	// content (any deletion policy) until deletion has dealt with it.
	FinalizerGroupSnapshotBound = "groupsnapshot.storage.kubernetes.io/volumegroupsnapshot-bound-protection"
	// FinalizerGroupContentBound is on a VolumeGroupSnapshotContent bound
	// to its group snapshot; the sidecar removes it once the backend group
	// snapshot is dealt with.
	FinalizerGroupContentBound = "groupsnapshot.storage.kubernetes.io/volumegroupsnapshotcontent-bound-protection"
	// FinalizerSnapshotInGroup is on every member VolumeSnapshot of a
	// group snapshot: a member goes only with its group.
	FinalizerSnapshotInGroup = "snapshot.storage.kubernetes.io/volumesnapshot-in-group-protection"

	// AnnDefaultGroupClass marks the default VolumeGroupSnapshotClass of
	// its driver (value "true").
	AnnDefaultGroupClass = "groupsnapshot.storage.kubernetes.io/is-default-class"
	// AnnGroupDeletionSecretName and AnnGroupDeletionSecretNamespace
	// reference the group snapshotter secret on a group content.
	AnnGroupDeletionSecretName      = "groupsnapshot.storage.kubernetes.io/deletion-secret-name"
	AnnGroupDeletionSecretNamespace = "groupsnapshot.storage.kubernetes.io/deletion-secret-namespace"
	// AnnGroupBeingCreated ("yes"): a CreateVolumeGroupSnapshot may be
	// running in the driver (written by the sidecar).
	AnnGroupBeingCreated = "groupsnapshot.storage.kubernetes.io/volumegroupsnapshot-being-created"
	// AnnGroupBeingDeleted ("yes") is set by the common controller when the
	// group snapshot of a content is deleted: the sidecar may release it.
	AnnGroupBeingDeleted = "groupsnapshot.storage.kubernetes.io/volumegroupsnapshot-being-deleted"

	// GroupContentNamePrefix + VolumeGroupSnapshot UID names a dynamic
	// group content.
	GroupContentNamePrefix = "groupsnapcontent-"
	// groupOwnerAPIVersion and groupOwnerKind make an owner reference count
	// as group membership; no other apiVersion does.
	groupOwnerAPIVersion = "groupsnapshot.storage.k8s.io/v1"
	groupOwnerKind       = "VolumeGroupSnapshot"

	// Extra create metadata of CreateVolumeGroupSnapshot
	// (SidecarOptions.ExtraCreateMetadata).
	metaGroupSnapshotName      = "csi.storage.k8s.io/volumegroupsnapshot/name"
	metaGroupSnapshotNamespace = "csi.storage.k8s.io/volumegroupsnapshot/namespace"
	metaGroupContentName       = "csi.storage.k8s.io/volumegroupsnapshotcontent/name"
)

// Event reasons of group snapshots, as upstream names them.
const (
	// The sidecar's, on group contents.
	ReasonGroupSnapshotCreationFailed        = "GroupSnapshotCreationFailed"
	ReasonGroupSnapshotContentCheckandUpdate = "GroupSnapshotContentCheckandUpdateFailed"
	ReasonGroupSnapshotDeleteError           = "GroupSnapshotDeleteError"
	// The controller's.
	ReasonCreatingGroupSnapshot              = "CreatingGroupSnapshot"
	ReasonGroupSnapshotCreated               = "GroupSnapshotCreated"
	ReasonGroupSnapshotReady                 = "GroupSnapshotReady"
	ReasonGetGroupSnapshotClassFailed        = "GetGroupSnapshotClassFailed"
	ReasonSetDefaultGroupSnapshotClassFailed = "SetDefaultGroupSnapshotClassFailed"
	ReasonGroupSnapshotValidationError       = "GroupSnapshotValidationError"
	ReasonGroupSnapshotFinalizerError        = "GroupSnapshotFinalizerError"
	ReasonGroupSnapshotContentMissing        = "GroupSnapshotContentMissing"
	ReasonGroupSnapshotMisbound              = "GroupSnapshotMisbound"
	ReasonGroupSnapshotContentMisbound       = "GroupSnapshotContentMisbound"
	ReasonGroupSnapshotContentMismatch       = "GroupSnapshotContentMismatch"
	ReasonGroupSnapshotBindFailed            = "GroupSnapshotBindFailed"
	ReasonGroupSnapshotStatusUpdateFailed    = "GroupSnapshotStatusUpdateFailed"
	ReasonGroupSnapshotHandleSet             = "GroupSnapshotHandleSet"
	ReasonGroupSnapshotContentCreationFailed = "GroupSnapshotContentCreationFailed"
	ReasonCreateGroupSnapshotContentFailed   = "CreateGroupSnapshotContentFailed"
	ReasonGroupSnapshotContentObjectDelete   = "GroupSnapshotContentObjectDeleteError"
	ReasonGroupContentValidationError        = "GroupContentValidationError"
)

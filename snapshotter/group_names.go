package snapshotter

// Names of the volume group snapshot API, spelled exactly as upstream.
const (
	// FinalizerGroupContentBound is on a VolumeGroupSnapshotContent bound
	// to a VolumeGroupSnapshot; the sidecar removes it once the backend
	// group snapshot is dealt with.
	FinalizerGroupContentBound = "groupsnapshot.storage.kubernetes.io/volumegroupsnapshotcontent-bound-protection"
	// AnnGroupDeletionSecretName and AnnGroupDeletionSecretNamespace
	// reference the group snapshotter secret on a group content; the
	// sidecar uses it for create and delete.
	AnnGroupDeletionSecretName      = "groupsnapshot.storage.kubernetes.io/deletion-secret-name"
	AnnGroupDeletionSecretNamespace = "groupsnapshot.storage.kubernetes.io/deletion-secret-namespace"
	// AnnGroupBeingCreated ("yes") says a CreateVolumeGroupSnapshot may be
	// running in the driver: the group content must not be released until
	// it has a final answer.
	AnnGroupBeingCreated = "groupsnapshot.storage.kubernetes.io/volumegroupsnapshot-being-created"
	// AnnGroupBeingDeleted ("yes") is set by the common controller when the
	// VolumeGroupSnapshot of a group content is deleted: the sidecar may
	// then release it.
	AnnGroupBeingDeleted = "groupsnapshot.storage.kubernetes.io/volumegroupsnapshot-being-deleted"

	// Extra create metadata of CreateVolumeGroupSnapshot
	// (SidecarOptions.ExtraCreateMetadata).
	metaGroupSnapshotName      = "csi.storage.k8s.io/volumegroupsnapshot/name"
	metaGroupSnapshotNamespace = "csi.storage.k8s.io/volumegroupsnapshot/namespace"
	metaGroupContentName       = "csi.storage.k8s.io/volumegroupsnapshotcontent/name"
)

// Event reasons of the sidecar on group contents, as upstream names them.
const (
	ReasonGroupSnapshotCreationFailed        = "GroupSnapshotCreationFailed"
	ReasonGroupSnapshotContentCheckandUpdate = "GroupSnapshotContentCheckandUpdateFailed"
	ReasonGroupSnapshotDeleteError           = "GroupSnapshotDeleteError"
)

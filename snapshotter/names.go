package snapshotter

import "github.com/csi-kit/sidecars/internal/names"

// Finalizers, annotations and labels, spelled exactly as upstream so that
// objects written by either implementation are understood by the other.
// Those other packages read too are defined in internal/names; these are
// aliases.
const (
	// FinalizerSnapshotAsSource is on every live VolumeSnapshot.
	FinalizerSnapshotAsSource = names.FinalizerSnapshotAsSource
	// FinalizerSnapshotBound is on a VolumeSnapshot bound to a content
	// with deletionPolicy Delete, until that content object is gone.
	FinalizerSnapshotBound = names.FinalizerSnapshotBound
	// FinalizerContentBound is on a content bound to a snapshot; the
	// sidecar removes it once the backend snapshot is dealt with.
	FinalizerContentBound = names.FinalizerContentBound
	// FinalizerPVCAsSource is on a PVC while a snapshot of it is being cut.
	FinalizerPVCAsSource = names.FinalizerPVCAsSource

	// AnnDefaultClass marks the default VolumeSnapshotClass (value "true").
	AnnDefaultClass = names.AnnDefaultSnapshotClass
	// AnnDeletionSecretName and AnnDeletionSecretNamespace reference the
	// snapshotter secret on a content; the sidecar uses it for create and
	// delete.
	AnnDeletionSecretName      = "snapshot.storage.kubernetes.io/deletion-secret-name"
	AnnDeletionSecretNamespace = "snapshot.storage.kubernetes.io/deletion-secret-namespace"
	// AnnBeingCreated ("yes") says a CreateSnapshot may be running in the
	// driver: the content must not be released until it has a final answer.
	AnnBeingCreated = "snapshot.storage.kubernetes.io/volumesnapshot-being-created"
	// AnnBeingDeleted ("yes") is set by the common controller when the
	// snapshot of a content is deleted: the sidecar may then release it.
	AnnBeingDeleted = "snapshot.storage.kubernetes.io/volumesnapshot-being-deleted"
	// AnnGroupSnapshotHandle marks a member content of a group snapshot;
	// the sidecar never calls CreateSnapshot or DeleteSnapshot for it.
	AnnGroupSnapshotHandle = "groupsnapshot.storage.k8s.io/volumeGroupSnapshotHandle"
	// LabelManagedBy is the node label of distributed snapshotting.
	LabelManagedBy = "snapshot.storage.kubernetes.io/managed-by"

	annYes = "yes"

	// ContentNamePrefix + VolumeSnapshot UID names a dynamic content.
	ContentNamePrefix = "snapcontent-"
)

// Parameters of a VolumeSnapshotClass that the libraries interpret.
const (
	prefixedParam         = "csi.storage.k8s.io/"
	paramSecretName       = "csi.storage.k8s.io/snapshotter-secret-name"
	paramSecretNamespace  = "csi.storage.k8s.io/snapshotter-secret-namespace"
	paramListSecretName   = "csi.storage.k8s.io/snapshotter-list-secret-name"
	paramListSecretNS     = "csi.storage.k8s.io/snapshotter-list-secret-namespace"
	paramGroupSecretName  = "csi.storage.k8s.io/group-snapshotter-secret-name"
	paramGroupSecretNS    = "csi.storage.k8s.io/group-snapshotter-secret-namespace"
	paramGroupGetSecret   = "csi.storage.k8s.io/group-snapshotter-get-secret-name"
	paramGroupGetSecretNS = "csi.storage.k8s.io/group-snapshotter-get-secret-namespace"
	metaSnapshotName      = "csi.storage.k8s.io/volumesnapshot/name"
	metaSnapshotNamespace = "csi.storage.k8s.io/volumesnapshot/namespace"
	metaContentName       = "csi.storage.k8s.io/volumesnapshotcontent/name"
)

// Event reasons, as upstream names them.
const (
	ReasonCreatingSnapshot              = "CreatingSnapshot"
	ReasonSnapshotCreated               = "SnapshotCreated"
	ReasonSnapshotReady                 = "SnapshotReady"
	ReasonGetSnapshotClassFailed        = "GetSnapshotClassFailed"
	ReasonSetDefaultSnapshotClassFailed = "SetDefaultSnapshotClassFailed"
	ReasonErrorPVCFinalizer             = "ErrorPVCFinalizer"
	ReasonSnapshotValidationError       = "SnapshotValidationError"
	ReasonSnapshotFinalizerError        = "SnapshotFinalizerError"
	ReasonSnapshotContentMissing        = "SnapshotContentMissing"
	ReasonSnapshotMisbound              = "SnapshotMisbound"
	ReasonSnapshotContentMisbound       = "SnapshotContentMisbound"
	ReasonSnapshotContentMismatch       = "SnapshotContentMismatch"
	ReasonSnapshotBindFailed            = "SnapshotBindFailed"
	ReasonSnapshotStatusUpdateFailed    = "SnapshotStatusUpdateFailed"
	ReasonSnapshotHandleSet             = "SnapshotHandleSet"
	ReasonSnapshotPVCSourceMissing      = "SnapshotPVCSourceMissing"
	ReasonSnapshotContentCreationFailed = "SnapshotContentCreationFailed"
	ReasonCreateSnapshotContentFailed   = "CreateSnapshotContentFailed"
	ReasonSnapshotDeletePending         = names.ReasonSnapshotDeletePending
	ReasonSnapshotContentObjectDelete   = "SnapshotContentObjectDeleteError"
	ReasonContentValidationError        = "ContentValidationError"

	ReasonSnapshotCreationFailed        = names.ReasonSnapshotCreationFailed
	ReasonSnapshotContentCheckandUpdate = names.ReasonSnapshotContentCheckandUpdateFailed
	ReasonSnapshotDeleteError           = names.ReasonSnapshotDeleteError
)

// Component names used as event sources.
const (
	ControllerComponent = "snapshot-controller"
	SidecarComponent    = "csi-snapshotter"
)

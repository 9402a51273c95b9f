package explain

// Finding reasons. They are stable: scripts may match on them.
const (
	// Healthy states.
	ReasonBoundOK       = "BoundOK"
	ReasonSnapshotReady = "SnapshotReady"

	// Objects not found.
	ReasonNotFound = "NotFound"

	// Binding and provisioning of claims.
	ReasonWaitForFirstConsumer  = "WaitForFirstConsumer"
	ReasonPodNotScheduled       = "PodNotScheduled"
	ReasonNoCapacity            = "NoCapacity"
	ReasonSelectedNodeMissing   = "SelectedNodeMissing"
	ReasonDriverNotOnNode       = "DriverNotOnNode"
	ReasonStorageClassMissing   = "StorageClassMissing"
	ReasonNoStorageClass        = "NoStorageClass"
	ReasonNoDynamicProvisioning = "NoDynamicProvisioning"
	ReasonNoProvisionerLeader   = "NoProvisionerLeader"
	ReasonProvisioningFailed    = "ProvisioningFailed"
	ReasonWaitingForProvisioner = "WaitingForProvisioner"
	ReasonSourceSnapshotMissing = "SourceSnapshotMissing"
	ReasonSourceSnapshotPending = "SourceSnapshotNotReady"
	ReasonClaimLost             = "ClaimLost"

	// Expansion and modification of claims.
	ReasonExpansionNotAllowed     = "ExpansionNotAllowed"
	ReasonExpansionInfeasible     = "ExpansionInfeasible"
	ReasonControllerResizeFailed  = "ControllerResizeFailed"
	ReasonOfflineExpansionInUse   = "OfflineExpansionInUse"
	ReasonFileSystemResizePending = "FileSystemResizePending"
	ReasonNodeResizeFailed        = "NodeResizeFailed"
	ReasonNodeExpansionInfeasible = "NodeExpansionInfeasible"
	ReasonNoResizerLeader         = "NoResizerLeader"
	ReasonResizing                = "Resizing"
	ReasonModifyVolumeFailed      = "ModifyVolumeFailed"
	ReasonModifyingVolume         = "ModifyingVolume"

	// Deletion.
	ReasonInUseByPods         = "InUseByPods"
	ReasonSnapshotSourceInUse = "SnapshotSourceInUse"
	ReasonCloneSourceInUse    = "CloneSourceInUse"
	ReasonProvisioningCleanup = "ProvisioningCleanup"
	ReasonDeletionPending     = "DeletionPending"
	ReasonDeletionFailed      = "DeletionFailed"
	ReasonReleased            = "Released"
	ReasonAvailable           = "Available"
	ReasonVolumeFailed        = "VolumeFailed"

	// Snapshots.
	ReasonSnapshotNotReady            = "SnapshotNotReady"
	ReasonSnapshotFailed              = "SnapshotFailed"
	ReasonSnapshotClassMissing        = "SnapshotClassMissing"
	ReasonSourcePVCMissing            = "SourcePVCMissing"
	ReasonSourcePVCNotBound           = "SourcePVCNotBound"
	ReasonContentMissing              = "ContentMissing"
	ReasonNoSnapshotControllerLeader  = "NoSnapshotControllerLeader"
	ReasonNoSnapshotterLeader         = "NoSnapshotterLeader"
	ReasonSnapshotCreationFailed      = "SnapshotCreationFailed"
	ReasonSnapshotDeletionBlocked     = "SnapshotDeletionBlocked"
	ReasonSnapshotContentDeleteFailed = "SnapshotDeleteFailed"
)

// Names the controllers write on API objects, spelled as they do.
const (
	annSelectedNode       = "volume.kubernetes.io/selected-node"
	annStorageProvisioner = "volume.kubernetes.io/storage-provisioner"
	annBetaProvisioner    = "volume.beta.kubernetes.io/storage-provisioner"
	annStorageResizer     = "volume.kubernetes.io/storage-resizer"
	annDefaultClass       = "storageclass.kubernetes.io/is-default-class"
	annDefaultSnapClass   = "snapshot.storage.kubernetes.io/is-default-class"

	finalizerPVCProtection    = "kubernetes.io/pvc-protection"
	finalizerPVProtection     = "kubernetes.io/pv-protection"
	finalizerPVCAsSource      = "snapshot.storage.kubernetes.io/pvc-as-source-protection"
	finalizerProvisionerPV    = "external-provisioner.volume.kubernetes.io/finalizer"
	finalizerSnapshotAsSource = "snapshot.storage.kubernetes.io/volumesnapshot-as-source-protection"
	finalizerSnapshotBound    = "snapshot.storage.kubernetes.io/volumesnapshot-bound-protection"
	finalizerContentBound     = "snapshot.storage.kubernetes.io/volumesnapshotcontent-bound-protection"

	finalizerIntent        = "csi-kit.io/provisioning-intent"
	finalizerCloneSource   = "provisioner.storage.kubernetes.io/cloning-protection"
	finalizerRestoreSource = "provisioner.storage.kubernetes.io/volumesnapshot-as-source-protection"
	annProvisioningVolume  = "volume.kubernetes.io/provisioning-volume-name"

	noProvisioner = "kubernetes.io/no-provisioner"
)

// Event reasons of the controllers, as they emit them.
const (
	eventProvisioningFailed       = "ProvisioningFailed"
	eventExternalProvisioning     = "ExternalProvisioning"
	eventWaitForFirstConsumer     = "WaitForFirstConsumer"
	eventVolumeResizeFailed       = "VolumeResizeFailed"
	eventFileSystemResizeRequired = "FileSystemResizeRequired"
	eventVolumeFailedDelete       = "VolumeFailedDelete"
	eventSnapshotCreationFailed   = "SnapshotCreationFailed"
	eventSnapshotContentCheck     = "SnapshotContentCheckandUpdateFailed"
	eventSnapshotDeleteError      = "SnapshotDeleteError"
	eventSnapshotDeletePending    = "SnapshotDeletePending"
	eventFailedScheduling         = "FailedScheduling"

	// offlineInUseText is part of the resizer's event and condition text
	// for a claim whose offline-only driver waits for its pods to go.
	offlineInUseText = "only supports offline expansion"
)

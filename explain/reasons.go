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

// Names only explain matches on; the names the controllers write are in
// internal/names.
const (
	annDefaultClass = "storageclass.kubernetes.io/is-default-class"

	finalizerPVCProtection = "kubernetes.io/pvc-protection"
	finalizerPVProtection  = "kubernetes.io/pv-protection"

	noProvisioner = "kubernetes.io/no-provisioner"
)

// Event reasons of kube-controller-manager and the scheduler.
const (
	eventExternalProvisioning = "ExternalProvisioning"
	eventWaitForFirstConsumer = "WaitForFirstConsumer"
	eventFailedScheduling     = "FailedScheduling"
)

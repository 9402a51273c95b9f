// Package names is the one source of the well-known strings that more than
// one of resizer, provisioner, snapshotter and explain read or write on API
// objects: annotation keys, finalizers and event reasons. They are spelled
// exactly as the upstream sidecars and kube-controller-manager spell them, so
// objects written by either implementation are understood by the other.
//
// A controller that exports one of these strings in its public API declares
// it as an alias (const X = names.Y); the value is defined only here. Strings
// that a single package uses stay in that package.
package names

// Annotations on claims.
const (
	// AnnStorageProvisioner names the driver expected to provision a claim
	// (set by kube-controller-manager).
	AnnStorageProvisioner = "volume.kubernetes.io/storage-provisioner"
	// AnnBetaStorageProvisioner is the deprecated spelling of
	// AnnStorageProvisioner, still written and read.
	AnnBetaStorageProvisioner = "volume.beta.kubernetes.io/storage-provisioner"
	// AnnStorageResizer names the driver expected to resize a claim.
	AnnStorageResizer = "volume.kubernetes.io/storage-resizer"
	// AnnSelectedNode is the node the scheduler chose for a claim of a
	// WaitForFirstConsumer class.
	AnnSelectedNode = "volume.kubernetes.io/selected-node"
	// AnnProvisioningVolumeName is the intent record of earlier provisioner
	// versions (see FinalizerIntent).
	AnnProvisioningVolumeName = "volume.kubernetes.io/provisioning-volume-name"
)

// Annotations on volumes.
const (
	// AnnModifySecretName and AnnModifySecretNamespace reference the secret
	// of ControllerModifyVolume: the provisioner writes them on a volume, the
	// resizer reads them.
	AnnModifySecretName      = "volume.kubernetes.io/controller-modify-secret-name"
	AnnModifySecretNamespace = "volume.kubernetes.io/controller-modify-secret-namespace"
)

// Annotations on classes.
const (
	// AnnDefaultSnapshotClass marks the default VolumeSnapshotClass (value
	// "true").
	AnnDefaultSnapshotClass = "snapshot.storage.kubernetes.io/is-default-class"
)

// Finalizers of the provisioner.
const (
	// FinalizerProvisionerPV keeps a dynamically provisioned volume until
	// the driver has deleted it.
	FinalizerProvisionerPV = "external-provisioner.volume.kubernetes.io/finalizer"
	// FinalizerIntent is the claim finalizer of earlier provisioner versions;
	// claims that still carry it are converted and it is removed.
	FinalizerIntent = "csi-kit.io/provisioning-intent"
	// FinalizerCloneSource protects a claim being cloned.
	FinalizerCloneSource = "provisioner.storage.kubernetes.io/cloning-protection"
	// FinalizerRestoreSource protects a VolumeSnapshot being restored.
	FinalizerRestoreSource = "provisioner.storage.kubernetes.io/volumesnapshot-as-source-protection"
)

// Finalizers of the snapshot controller and sidecar.
const (
	// FinalizerSnapshotAsSource is on every live VolumeSnapshot.
	FinalizerSnapshotAsSource = "snapshot.storage.kubernetes.io/volumesnapshot-as-source-protection"
	// FinalizerSnapshotBound is on a VolumeSnapshot bound to a content with
	// deletionPolicy Delete, until that content object is gone.
	FinalizerSnapshotBound = "snapshot.storage.kubernetes.io/volumesnapshot-bound-protection"
	// FinalizerContentBound is on a content bound to a snapshot, until the
	// backend snapshot is dealt with.
	FinalizerContentBound = "snapshot.storage.kubernetes.io/volumesnapshotcontent-bound-protection"
	// FinalizerPVCAsSource is on a claim while a snapshot of it is being cut.
	FinalizerPVCAsSource = "snapshot.storage.kubernetes.io/pvc-as-source-protection"
)

// Event reasons the controllers record and explain matches on.
const (
	ReasonProvisioningFailed       = "ProvisioningFailed"
	ReasonVolumeFailedDelete       = "VolumeFailedDelete"
	ReasonVolumeResizeFailed       = "VolumeResizeFailed"
	ReasonFileSystemResizeRequired = "FileSystemResizeRequired"

	ReasonSnapshotCreationFailed              = "SnapshotCreationFailed"
	ReasonSnapshotContentCheckandUpdateFailed = "SnapshotContentCheckandUpdateFailed"
	ReasonSnapshotDeleteError                 = "SnapshotDeleteError"
	ReasonSnapshotDeletePending               = "SnapshotDeletePending"
)

// Message fragments.
const (
	// OfflineExpansionText is part of the resizer's event and condition
	// message for an in-use claim whose driver only expands offline;
	// explain recognises the message by it.
	OfflineExpansionText = "only supports offline expansion"
)

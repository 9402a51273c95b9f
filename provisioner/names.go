package provisioner

import (
	"github.com/csi-kit/sidecars/internal/names"
	"github.com/csi-kit/sidecars/internal/params"
)

// Keys and values the provisioner reads and writes on API objects. Those
// other packages read or write too are defined in internal/names (and the
// parameter keys in internal/params); the exported ones here are aliases.
const (
	annStorageProvisioner     = names.AnnStorageProvisioner
	annBetaStorageProvisioner = names.AnnBetaStorageProvisioner
	annBetaStorageClass       = "volume.beta.kubernetes.io/storage-class"
	annSelectedNode           = names.AnnSelectedNode
	annMigratedTo             = "pv.kubernetes.io/migrated-to"
	annProvisionedBy          = "pv.kubernetes.io/provisioned-by"

	annDeletionSecretName      = "volume.kubernetes.io/provisioner-deletion-secret-name"
	annDeletionSecretNamespace = "volume.kubernetes.io/provisioner-deletion-secret-namespace"
	annModifySecretName        = names.AnnModifySecretName
	annModifySecretNamespace   = names.AnnModifySecretNamespace

	// AnnProvisioningVolumeName and FinalizerIntent are the intent record
	// of earlier versions, kept on the claim. Claims that carry them are
	// converted: a record naming the claim's own volume becomes a
	// provisioning record (see LabelRecord), any other is reported as
	// forged and ignored, and the finalizer is removed.
	AnnProvisioningVolumeName = names.AnnProvisioningVolumeName
	FinalizerIntent           = names.FinalizerIntent
	// FinalizerPV is upstream's PV deletion finalizer.
	FinalizerPV = names.FinalizerProvisionerPV
	// FinalizerCloneSource protects a PVC being cloned.
	FinalizerCloneSource = names.FinalizerCloneSource
	// FinalizerSnapshotSource protects a VolumeSnapshot being restored.
	FinalizerSnapshotSource = names.FinalizerRestoreSource

	annAllowVolumeModeChange = "snapshot.storage.k8s.io/allow-volume-mode-change"
	provisionerIDKey         = "storage.kubernetes.io/csiProvisionerIdentity"

	keyPVCName      = params.PVCNameKey
	keyPVCNamespace = params.PVCNamespaceKey
	keyPVName       = params.PVNameKey

	snapshotAPIGroup = "snapshot.storage.k8s.io"
)

// Event reasons, as upstream names them.
const (
	ReasonProvisioning          = "Provisioning"
	ReasonProvisioningFailed    = names.ReasonProvisioningFailed
	ReasonProvisioningSucceeded = "ProvisioningSucceeded"
	ReasonVolumeFailedDelete    = names.ReasonVolumeFailedDelete
	// ReasonForgedRecord: a claim carries a provisioning record the
	// provisioner did not write.
	ReasonForgedRecord = "ProvisioningRecordIgnored"
	// ReasonSnapshotReleaseFailed: the source-protection finalizer of a
	// snapshot could not be removed.
	ReasonSnapshotReleaseFailed = "SnapshotFinalizerRemovalFailed"
)

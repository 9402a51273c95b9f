package provisioner

// Keys and values the provisioner reads and writes on API objects.
const (
	annStorageProvisioner     = "volume.kubernetes.io/storage-provisioner"
	annBetaStorageProvisioner = "volume.beta.kubernetes.io/storage-provisioner"
	annBetaStorageClass       = "volume.beta.kubernetes.io/storage-class"
	annSelectedNode           = "volume.kubernetes.io/selected-node"
	annMigratedTo             = "pv.kubernetes.io/migrated-to"
	annProvisionedBy          = "pv.kubernetes.io/provisioned-by"

	annDeletionSecretName      = "volume.kubernetes.io/provisioner-deletion-secret-name"
	annDeletionSecretNamespace = "volume.kubernetes.io/provisioner-deletion-secret-namespace"
	annModifySecretName        = "volume.kubernetes.io/controller-modify-secret-name"
	annModifySecretNamespace   = "volume.kubernetes.io/controller-modify-secret-namespace"

	// AnnProvisioningVolumeName and FinalizerIntent are the intent record
	// of earlier versions, kept on the claim. Claims that carry them are
	// converted: a record naming the claim's own volume becomes a
	// provisioning record (see LabelRecord), any other is reported as
	// forged and ignored, and the finalizer is removed.
	AnnProvisioningVolumeName = "volume.kubernetes.io/provisioning-volume-name"
	FinalizerIntent           = "csi-kit.io/provisioning-intent"
	// FinalizerPV is upstream's PV deletion finalizer.
	FinalizerPV = "external-provisioner.volume.kubernetes.io/finalizer"
	// FinalizerCloneSource protects a PVC being cloned.
	FinalizerCloneSource = "provisioner.storage.kubernetes.io/cloning-protection"
	// FinalizerSnapshotSource protects a VolumeSnapshot being restored.
	FinalizerSnapshotSource = "provisioner.storage.kubernetes.io/volumesnapshot-as-source-protection"

	annAllowVolumeModeChange = "snapshot.storage.k8s.io/allow-volume-mode-change"
	provisionerIDKey         = "storage.kubernetes.io/csiProvisionerIdentity"

	keyPVCName      = "csi.storage.k8s.io/pvc/name"
	keyPVCNamespace = "csi.storage.k8s.io/pvc/namespace"
	keyPVName       = "csi.storage.k8s.io/pv/name"

	snapshotAPIGroup = "snapshot.storage.k8s.io"
)

// Event reasons, as upstream names them.
const (
	ReasonProvisioning          = "Provisioning"
	ReasonProvisioningFailed    = "ProvisioningFailed"
	ReasonProvisioningSucceeded = "ProvisioningSucceeded"
	ReasonVolumeFailedDelete    = "VolumeFailedDelete"
	// ReasonForgedRecord: a claim carries a provisioning record the
	// provisioner did not write.
	ReasonForgedRecord = "ProvisioningRecordIgnored"
	// ReasonSnapshotReleaseFailed: the source-protection finalizer of a
	// snapshot could not be removed.
	ReasonSnapshotReleaseFailed = "SnapshotFinalizerRemovalFailed"
)

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

	// AnnProvisioningVolumeName is the intent record: written on the PVC,
	// with FinalizerIntent, before the first CreateVolume. Its value is the
	// volume name sent to the driver.
	AnnProvisioningVolumeName = "volume.kubernetes.io/provisioning-volume-name"
	// FinalizerIntent keeps a PVC whose volume may exist on the backend
	// without a PV until the provisioner has either created the PV or
	// deleted the volume.
	FinalizerIntent = "csi-kit.io/provisioning-intent"
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
)

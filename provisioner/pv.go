package provisioner

import (
	"fmt"

	"github.com/container-storage-interface/spec/lib/go/csi"
	v1 "k8s.io/api/core/v1"
	storagev1 "k8s.io/api/storage/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/csi-kit/sidecars/internal/params"
)

// buildPV assembles the PV of a created volume, pre-bound to its claim.
// For a migrated in-tree class the PV is translated back to the in-tree
// source, annotated as migrated to this driver.
func (p *Provisioner) buildPV(pvc *v1.PersistentVolumeClaim, class *storagev1.StorageClass, a *attempt, vol *csi.Volume) (*v1.PersistentVolume, error) {
	size := vol.CapacityBytes
	if size == 0 {
		size = a.req.CapacityRange.GetRequiredBytes()
	}
	attrs := map[string]string{provisionerIDKey: p.identity}
	for k, v := range vol.VolumeContext {
		attrs[k] = v
	}
	src := &v1.CSIPersistentVolumeSource{
		Driver:           p.name,
		VolumeHandle:     vol.VolumeId,
		VolumeAttributes: attrs,
	}
	if !a.block {
		src.FSType = a.fsType
	}
	if p.opts.ControllerPublishReadOnly && len(pvc.Spec.AccessModes) == 1 && pvc.Spec.AccessModes[0] == v1.ReadOnlyMany {
		src.ReadOnly = true
	}
	src.ControllerPublishSecretRef = a.secretRefs[params.ControllerPublishSecret.Op]
	src.NodeStageSecretRef = a.secretRefs[params.NodeStageSecret.Op]
	src.NodePublishSecretRef = a.secretRefs[params.NodePublishSecret.Op]
	src.ControllerExpandSecretRef = a.secretRefs[params.ControllerExpandSecret.Op]
	src.NodeExpandSecretRef = a.secretRefs[params.NodeExpandSecret.Op]

	ann := map[string]string{annProvisionedBy: class.Provisioner, annDeletionSecretName: "", annDeletionSecretNamespace: ""}
	if ref := a.secretRefs[params.ProvisionerSecret.Op]; ref != nil {
		ann[annDeletionSecretName], ann[annDeletionSecretNamespace] = ref.Name, ref.Namespace
	}
	if ref := a.secretRefs[params.ControllerModifySecret.Op]; ref != nil {
		ann[annModifySecretName], ann[annModifySecretNamespace] = ref.Name, ref.Namespace
	}
	policy := v1.PersistentVolumeReclaimDelete
	if class.ReclaimPolicy != nil {
		policy = *class.ReclaimPolicy
	}
	pv := &v1.PersistentVolume{
		ObjectMeta: metav1.ObjectMeta{Name: a.pvName, Annotations: ann},
		Spec: v1.PersistentVolumeSpec{
			AccessModes: pvc.Spec.AccessModes,
			Capacity:    v1.ResourceList{v1.ResourceStorage: *resource.NewQuantity(size, resource.BinarySI)},
			ClaimRef: &v1.ObjectReference{Kind: "PersistentVolumeClaim", APIVersion: "v1", Namespace: pvc.Namespace,
				Name: pvc.Name, UID: pvc.UID, ResourceVersion: pvc.ResourceVersion},
			PersistentVolumeReclaimPolicy: policy,
			StorageClassName:              claimClass(pvc),
			MountOptions:                  class.MountOptions,
			VolumeMode:                    pvc.Spec.VolumeMode,
			PersistentVolumeSource:        v1.PersistentVolumeSource{CSI: src},
		},
	}
	if policy == v1.PersistentVolumeReclaimDelete {
		pv.Finalizers = []string{FinalizerPV}
	}
	if a.vac != "" {
		vac := a.vac
		pv.Spec.VolumeAttributesClassName = &vac
	}
	if p.topology() {
		pv.Spec.NodeAffinity = nodeAffinity(vol.AccessibleTopology)
	}
	if !a.migrated {
		return pv, nil
	}
	inTree, err := translator.TranslateCSIPVToInTree(pv)
	if err != nil {
		return nil, fmt.Errorf("translating the PV of volume %s back to in-tree plugin %s: %w", vol.VolumeId, class.Provisioner, err)
	}
	inTree.Annotations[annMigratedTo] = p.name
	return inTree, nil
}

package snapshotter

import (
	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/csi-kit/sidecars/internal/kube"
)

// stripCoreObject keeps only what the controller reads of PVCs and PVs:
// identity, finalizers and deletion state, binding, data source and the
// CSI source. Writes to them are patches, never updates of these copies.
func stripCoreObject(obj any) (any, error) {
	switch o := obj.(type) {
	case *v1.PersistentVolumeClaim:
		return &v1.PersistentVolumeClaim{
			ObjectMeta: slimMeta(o.ObjectMeta),
			Spec: v1.PersistentVolumeClaimSpec{
				VolumeName:    o.Spec.VolumeName,
				DataSource:    o.Spec.DataSource,
				DataSourceRef: o.Spec.DataSourceRef,
			},
			Status: v1.PersistentVolumeClaimStatus{Phase: o.Status.Phase},
		}, nil
	case *v1.PersistentVolume:
		pv := &v1.PersistentVolume{
			ObjectMeta: slimMeta(o.ObjectMeta),
			Spec: v1.PersistentVolumeSpec{
				ClaimRef:     o.Spec.ClaimRef,
				VolumeMode:   o.Spec.VolumeMode,
				NodeAffinity: o.Spec.NodeAffinity,
			},
			Status: v1.PersistentVolumeStatus{Phase: o.Status.Phase},
		}
		if csi := o.Spec.CSI; csi != nil {
			pv.Spec.CSI = &v1.CSIPersistentVolumeSource{Driver: csi.Driver, VolumeHandle: csi.VolumeHandle}
		}
		return pv, nil
	}
	return kube.StripForCache(obj)
}

func slimMeta(m metav1.ObjectMeta) metav1.ObjectMeta {
	return metav1.ObjectMeta{
		Name: m.Name, Namespace: m.Namespace, UID: m.UID, ResourceVersion: m.ResourceVersion,
		Finalizers: m.Finalizers, DeletionTimestamp: m.DeletionTimestamp, CreationTimestamp: m.CreationTimestamp,
	}
}

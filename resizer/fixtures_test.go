package resizer

import (
	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
)

const testDriver = "test.csi.k8s.io"

// claim builds a bound PVC "ns/claim" with request s, capacity c,
// allocatedResources a ("" = unset) and status r.
func claim(s, c, a string, r v1.ClaimResourceStatus, conds ...v1.PersistentVolumeClaimConditionType) *v1.PersistentVolumeClaim {
	pvc := &v1.PersistentVolumeClaim{
		ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "claim", UID: "uid-1", ResourceVersion: "1"},
		Spec: v1.PersistentVolumeClaimSpec{
			VolumeName: "pv",
			Resources:  v1.VolumeResourceRequirements{Requests: v1.ResourceList{v1.ResourceStorage: resource.MustParse(s)}},
		},
		Status: v1.PersistentVolumeClaimStatus{
			Phase:    v1.ClaimBound,
			Capacity: v1.ResourceList{v1.ResourceStorage: resource.MustParse(c)},
		},
	}
	if a != "" {
		pvc.Status.AllocatedResources = v1.ResourceList{v1.ResourceStorage: resource.MustParse(a)}
	}
	if r != "" {
		pvc.Status.AllocatedResourceStatuses = map[v1.ResourceName]v1.ClaimResourceStatus{v1.ResourceStorage: r}
	}
	for _, t := range conds {
		pvc.Status.Conditions = append(pvc.Status.Conditions, v1.PersistentVolumeClaimCondition{Type: t, Status: v1.ConditionTrue})
	}
	return pvc
}

// volume builds the CSI PV "pv" of testDriver bound to claim().
func volume(p string) *v1.PersistentVolume {
	return &v1.PersistentVolume{
		ObjectMeta: metav1.ObjectMeta{Name: "pv", UID: "pv-uid", ResourceVersion: "1"},
		Spec: v1.PersistentVolumeSpec{
			Capacity:    v1.ResourceList{v1.ResourceStorage: resource.MustParse(p)},
			AccessModes: []v1.PersistentVolumeAccessMode{v1.ReadWriteOnce},
			PersistentVolumeSource: v1.PersistentVolumeSource{CSI: &v1.CSIPersistentVolumeSource{
				Driver: testDriver, VolumeHandle: "vol-1",
			}},
			ClaimRef: &v1.ObjectReference{Namespace: "ns", Name: "claim", UID: types.UID("uid-1")},
		},
	}
}

func withPV(pv *v1.PersistentVolume, f func(pv *v1.PersistentVolume)) *v1.PersistentVolume {
	pv = pv.DeepCopy()
	f(pv)
	return pv
}

func withPVC(pvc *v1.PersistentVolumeClaim, f func(pvc *v1.PersistentVolumeClaim)) *v1.PersistentVolumeClaim {
	pvc = pvc.DeepCopy()
	f(pvc)
	return pvc
}

package resizer_test

import (
	"fmt"

	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/csi-kit/sidecars/resizer"
)

// Deciding what to do with a PVC whose request was raised from 20Gi to
// 30Gi, without a cluster.
func ExampleDecide() {
	pvc := &v1.PersistentVolumeClaim{
		ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "pvc-disk", UID: "u1"},
		Spec: v1.PersistentVolumeClaimSpec{
			VolumeName: "pv-1",
			Resources:  v1.VolumeResourceRequirements{Requests: v1.ResourceList{v1.ResourceStorage: resource.MustParse("30Gi")}},
		},
		Status: v1.PersistentVolumeClaimStatus{Phase: v1.ClaimBound, Capacity: v1.ResourceList{v1.ResourceStorage: resource.MustParse("20Gi")}},
	}
	pv := &v1.PersistentVolume{
		ObjectMeta: metav1.ObjectMeta{Name: "pv-1"},
		Spec: v1.PersistentVolumeSpec{
			Capacity:               v1.ResourceList{v1.ResourceStorage: resource.MustParse("20Gi")},
			PersistentVolumeSource: v1.PersistentVolumeSource{CSI: &v1.CSIPersistentVolumeSource{Driver: "disk.csi.example.com", VolumeHandle: "d-1"}},
			ClaimRef:               &v1.ObjectReference{Namespace: "default", Name: "pvc-disk", UID: "u1"},
		},
	}
	d := resizer.Decide(resizer.Input{PVC: pvc, PV: pv, DriverName: "disk.csi.example.com", ControllerExpansion: true})
	fmt.Println(d.Action, d.Target.String(), "-", d.Reason)

	done := resizer.MarkExpanded(pvc, d.Target, d.Target, true, metav1.Now())
	fmt.Println(done.Status.AllocatedResourceStatuses[v1.ResourceStorage], done.Status.Conditions[0].Type)
	// Output:
	// ExpandInController 30Gi - request above PV size
	// NodeResizePending FileSystemResizePending
}

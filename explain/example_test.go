package explain_test

import (
	"fmt"

	v1 "k8s.io/api/core/v1"
	storagev1 "k8s.io/api/storage/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	"github.com/csi-kit/sidecars/explain"
)

// Diagnose works on objects you already hold, here a claim of a
// WaitForFirstConsumer class whose pod waits for storage.
func ExampleDiagnose() {
	mode := storagev1.VolumeBindingWaitForFirstConsumer
	class := &storagev1.StorageClass{ObjectMeta: metav1.ObjectMeta{Name: "local"}, Provisioner: "lvm.csi.example.com", VolumeBindingMode: &mode}
	pvc := &v1.PersistentVolumeClaim{
		ObjectMeta: metav1.ObjectMeta{Name: "data", Namespace: "app"},
		Spec: v1.PersistentVolumeClaimSpec{StorageClassName: ptr.To("local"),
			Resources: v1.VolumeResourceRequirements{Requests: v1.ResourceList{v1.ResourceStorage: resource.MustParse("40Gi")}}},
	}
	zone := func(z, free string) storagev1.CSIStorageCapacity {
		return storagev1.CSIStorageCapacity{StorageClassName: "local", Capacity: ptr.To(resource.MustParse(free)),
			NodeTopology: &metav1.LabelSelector{MatchLabels: map[string]string{"topology.kubernetes.io/zone": z}}}
	}
	in := explain.Input{Kind: explain.KindPVC, PVC: pvc, StorageClass: class,
		Pods:       []v1.Pod{{ObjectMeta: metav1.ObjectMeta{Name: "db-0"}}},
		Capacities: []storagev1.CSIStorageCapacity{zone("a", "10Gi"), zone("b", "25Gi")}}
	for _, f := range explain.Diagnose(in) {
		fmt.Printf("%s %s\n  why: %s\n  do:  %s\n", f.Severity, f.Reason, f.Message, f.Action)
	}
	// Output:
	// Error NoCapacity
	//   why: no node in topology.kubernetes.io/zone=a or topology.kubernetes.io/zone=b has 40Gi free for class local (largest: 25Gi in topology.kubernetes.io/zone=b)
	//   do:  lower the request to at most 25Gi, free space on the backend, or add capacity (nodes, disks) in that topology
}

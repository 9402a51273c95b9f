package snapshotter

import (
	"testing"

	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// TestIntegrationForgedPVCFinalizerReleased: a user writes the
// pvc-as-source finalizer on a claim no snapshot is cut from, and deletes
// the claim. The controller must remove it, or the claim (and its
// namespace) would hang forever.
func TestIntegrationForgedPVCFinalizerReleased(t *testing.T) {
	e := newEnv(t, envOptions{})
	if !withKCM {
		t.Skip("needs kube-controller-manager's PVC protection controller")
	}
	e.startController(ControllerOptions{})
	noClass := ""
	pvc := &v1.PersistentVolumeClaim{
		ObjectMeta: metav1.ObjectMeta{Name: "forged", Namespace: e.ns, Finalizers: []string{FinalizerPVCAsSource}},
		Spec: v1.PersistentVolumeClaimSpec{
			StorageClassName: &noClass,
			AccessModes:      []v1.PersistentVolumeAccessMode{v1.ReadWriteOnce},
			Resources:        v1.VolumeResourceRequirements{Requests: v1.ResourceList{v1.ResourceStorage: resource.MustParse("1Gi")}},
		},
	}
	if _, err := e.kube.CoreV1().PersistentVolumeClaims(e.ns).Create(e.ctx, pvc, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := e.kube.CoreV1().PersistentVolumeClaims(e.ns).Delete(e.ctx, "forged", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	e.waitGone("PVC", func() error {
		_, err := e.kube.CoreV1().PersistentVolumeClaims(e.ns).Get(e.ctx, "forged", metav1.GetOptions{})
		return err
	})
}

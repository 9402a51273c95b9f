package resizer_test

import (
	"fmt"
	"testing"
	"time"

	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/csi-kit/sidecars/resizer"
	"github.com/csi-kit/sidecars/testkit/fakedriver"
)

// The controller-expand secret is read and sent with the call.
func TestExpandSecret(t *testing.T) {
	e := newEnv(t, fakedriver.Options{Capabilities: fakedriver.Resizer,
		RequireSecrets: map[string]map[string]string{"ControllerExpandVolume": {"token": "s3cret"}}}, resizer.Options{})
	if _, err := e.kube.CoreV1().Secrets(e.ns).Create(e.ctx, &v1.Secret{
		ObjectMeta: metav1.ObjectMeta{Name: "expand"}, StringData: map[string]string{"token": "s3cret"},
	}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	id := e.backendVolume("disk", gi(1))
	pvc, pv := e.boundPair("data", "1Gi", id, func(pv *v1.PersistentVolume) {
		pv.Spec.CSI.ControllerExpandSecretRef = &v1.SecretReference{Namespace: e.ns, Name: "expand"}
	})
	if err := e.request(pvc.Name, "2Gi"); err != nil {
		t.Fatal(err)
	}
	e.eventually(30*time.Second, "expanded", func() (bool, string) {
		p := storage(e.pv(pv.Name).Spec.Capacity)
		return p == "2Gi", fmt.Sprintf("PV %s, events %q", p, e.events(pvc.Name))
	})
	if n := e.drv.Calls("ControllerExpandVolume"); n != 1 {
		t.Errorf("%d calls, want 1", n)
	}
}

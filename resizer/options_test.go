package resizer_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/csi-kit/sidecars/resizer"
	"github.com/csi-kit/sidecars/testkit/fakedriver"
)

// By default the upstream sequence is kept: the PVC is marked (Resizing
// event) before the call, then FileSystemResizeRequired.
func TestMarkInProgressEvents(t *testing.T) {
	for _, tc := range []struct {
		name    string
		disable bool
		want    []string
	}{
		{"default", false, []string{"Resizing: External resizer is resizing volume %s", "FileSystemResizeRequired: Require file system resize of volume on node"}},
		{"DisableMarkInProgress", true, []string{"FileSystemResizeRequired: Require file system resize of volume on node"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, fakedriver.Options{Capabilities: fakedriver.Resizer, NodeExpansionRequired: true},
				resizer.Options{DisableMarkInProgress: tc.disable})
			id := e.backendVolume("disk", gi(1))
			pvc, pv := e.boundPair("data", "1Gi", id, nil)
			if err := e.request(pvc.Name, "2Gi"); err != nil {
				t.Fatal(err)
			}
			e.waitEvent(pvc.Name, resizer.EventFileSystemResizeRequired, "")
			var want []string
			for _, w := range tc.want {
				if strings.Contains(w, "%s") {
					w = fmt.Sprintf(w, pv.Name)
				}
				want = append(want, w)
			}
			if evs := e.events(pvc.Name); strings.Join(evs, "|") != strings.Join(want, "|") {
				t.Errorf("events %q, want %q", evs, want)
			}
		})
	}
}

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

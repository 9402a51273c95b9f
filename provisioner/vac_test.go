package provisioner

import (
	"maps"
	"os"
	"testing"
	"time"

	v1 "k8s.io/api/core/v1"
	storagev1 "k8s.io/api/storage/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/csi-kit/sidecars/testkit/controlplane"
	"github.com/csi-kit/sidecars/testkit/eventually"
	"github.com/csi-kit/sidecars/testkit/fakedriver"
)

// vacOffArgs turn the GA VolumeAttributesClass API off in kube-apiserver
// while the PVC field stays (its feature gate is locked on).
var vacOffArgs = []string{"--runtime-config=storage.k8s.io/v1/volumeattributesclasses=false"}

// TestVolumeAttributesClass: a claim's class reaches CreateVolume as
// mutable parameters and the PV as its class name; on an API server that
// does not serve storage.k8s.io/v1 VolumeAttributesClasses (a control
// plane of its own) the provisioner turns
// the support off by discovery and provisions such a claim as if it named
// no class, instead of failing to read the class.
func TestVolumeAttributesClass(t *testing.T) {
	caps := noTopology()
	caps.Modify = true
	gold := map[string]string{"iops": "3000"}
	volumeOf := func(e *env, pv *v1.PersistentVolume) fakedriver.Volume {
		for _, v := range e.drv.Volumes() {
			if v.ID == pv.Spec.CSI.VolumeHandle {
				return v
			}
		}
		e.t.Fatalf("no backend volume %s", pv.Spec.CSI.VolumeHandle)
		return fakedriver.Volume{}
	}
	withVAC := func(name string) func(*v1.PersistentVolumeClaim) {
		return func(c *v1.PersistentVolumeClaim) { c.Spec.VolumeAttributesClassName = &name }
	}
	t.Run("Served", func(t *testing.T) {
		e := newEnv(t, fakedriver.Options{Capabilities: caps})
		vac := "gold-" + e.ns
		if _, err := e.kube.StorageV1().VolumeAttributesClasses().Create(e.ctx, &storagev1.VolumeAttributesClass{
			ObjectMeta: metav1.ObjectMeta{Name: vac}, DriverName: e.driver, Parameters: gold}, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = e.kube.StorageV1().VolumeAttributesClasses().Delete(e.ctx, vac, metav1.DeleteOptions{}) })
		e.start(Options{}, nil)
		sc := e.class("std", nil)
		e.claim("c", sc.Name, "1Gi", withVAC(vac))
		pv := e.waitBound("c")
		if got := pv.Spec.VolumeAttributesClassName; got == nil || *got != vac {
			t.Errorf("PV class %v, want %s", got, vac)
		}
		if got := volumeOf(e, pv).MutableParameters; !maps.Equal(got, gold) {
			t.Errorf("mutable parameters %v, want %v", got, gold)
		}
	})
	t.Run("NotServed", func(t *testing.T) {
		needCluster(t)
		c := controlplane.StartT(t, controlplane.Options{ControllerManager: true, Progress: os.Stderr, ExtraAPIServerArgs: vacOffArgs})
		e := newEnvOn(t, c, fakedriver.Options{Capabilities: caps})
		if _, err := e.kube.StorageV1().VolumeAttributesClasses().List(e.ctx, metav1.ListOptions{}); err == nil {
			t.Fatal("the API server still serves VolumeAttributesClasses")
		}
		e.start(Options{}, c.Config())
		sc := e.class("std", nil)
		e.claim("c", sc.Name, "1Gi", withVAC("gold"))
		if got := e.getClaim("c").Spec.VolumeAttributesClassName; got == nil || *got != "gold" {
			t.Fatalf("the API server dropped the claim's class (%v): the test needs it kept", got)
		}
		// The binder of kube-controller-manager still matches class names,
		// so the claim stays Pending: wait for the PV instead.
		var pv *v1.PersistentVolume
		claim := e.getClaim("c")
		eventually.Require(t, 60*time.Second, "PV of claim c", eventually.True("PV of claim c", func() bool {
			list, err := e.kube.CoreV1().PersistentVolumes().List(e.ctx, metav1.ListOptions{})
			if err != nil {
				return false
			}
			for i := range list.Items {
				if ref := list.Items[i].Spec.ClaimRef; ref != nil && ref.UID == claim.UID {
					pv = &list.Items[i]
					return true
				}
			}
			return false
		}))
		if got := pv.Spec.VolumeAttributesClassName; got != nil {
			t.Errorf("PV class %q, want none", *got)
		}
		if got := volumeOf(e, pv).MutableParameters; len(got) != 0 {
			t.Errorf("mutable parameters %v, want none", got)
		}
	})
}

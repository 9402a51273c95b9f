package provisioner

import (
	"testing"

	storagev1 "k8s.io/api/storage/v1"

	"github.com/csi-kit/sidecars/testkit/fakedriver"
)

// TestNormalEvents: by default a provisioned claim shows Provisioning and
// ProvisioningSucceeded, as upstream; with DisableNormalEvents
// (--normal-events=false) only Warnings are written.
func TestNormalEvents(t *testing.T) {
	for _, disable := range []bool{false, true} {
		name := map[bool]string{false: "default", true: "disabled"}[disable]
		t.Run(name, func(t *testing.T) {
			e := newEnv(t, fakedriver.Options{Capabilities: noTopology()})
			e.start(Options{DisableNormalEvents: disable}, nil)
			sc := e.class("std", nil)
			e.claim("a", sc.Name, "1Gi", nil)
			e.waitBound("a")
			// A claim that fails next: once its Warning is visible, the
			// events of the first claim have been written.
			bad := e.class("bad", func(c *storagev1.StorageClass) {
				c.Parameters = map[string]string{"csi.storage.k8s.io/provisioner-secret-name": "nope",
					"csi.storage.k8s.io/provisioner-secret-namespace": e.ns}
			})
			e.claim("b", bad.Name, "1Gi", nil)
			e.waitEvent("b", ReasonProvisioningFailed, "nope")
			started, succeeded := e.events("a", ReasonProvisioning), e.events("a", ReasonProvisioningSucceeded)
			if disable && len(started)+len(succeeded) != 0 {
				t.Errorf("Normal events written with DisableNormalEvents: %q %q", started, succeeded)
			}
			if !disable && (len(started) == 0 || len(succeeded) == 0) {
				t.Errorf("want Provisioning and ProvisioningSucceeded by default, got %q %q", started, succeeded)
			}
		})
	}
}

package csiconn_test

import (
	"testing"

	"github.com/container-storage-interface/spec/lib/go/csi"
	"k8s.io/klog/v2/ktesting"

	"github.com/csi-kit/sidecars/csiconn"
	"github.com/csi-kit/sidecars/testkit/fakedriver"
)

// TestGroupControllerCapability checks that the GroupController service
// and its capability are read only from a driver that advertises them: the
// snapshot sidecar runs group snapshots on this answer alone.
func TestGroupControllerCapability(t *testing.T) {
	const want = csi.GroupControllerServiceCapability_RPC_CREATE_DELETE_GET_VOLUME_GROUP_SNAPSHOT
	noGroups := fakedriver.Snapshotter
	noGroups.GroupController = false
	for _, tc := range []struct {
		name string
		caps fakedriver.Capabilities
		has  bool
	}{
		{"group controller advertised", fakedriver.Snapshotter, true},
		{"no group controller", noGroups, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, ctx := ktesting.NewTestContext(t)
			drv := fakedriver.Start(t, fakedriver.Options{Capabilities: tc.caps})
			conn, err := csiconn.Connect(ctx, csiconn.Options{Address: drv.Endpoint()})
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			caps := conn.Capabilities()
			if caps.GroupService != tc.has || caps.HasGroup(want) != tc.has {
				t.Errorf("GroupService=%v HasGroup(%s)=%v, want both %v (capabilities %s)", caps.GroupService, want, caps.HasGroup(want), tc.has, caps)
			}
			if got := drv.Calls("GroupControllerGetCapabilities"); (got > 0) != tc.has {
				t.Errorf("GroupControllerGetCapabilities called %d times; want it called only when the service is advertised", got)
			}
		})
	}
}

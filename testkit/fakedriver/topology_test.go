package fakedriver_test

import (
	"testing"

	"github.com/container-storage-interface/spec/lib/go/csi"
	"google.golang.org/grpc/codes"

	"github.com/csi-kit/sidecars/testkit/fakedriver"
)

// TestZoneTopology: arbitrary segment keys, several nodes per zone sharing
// the zone's pool, and zonal attach with PublishWithinTopology.
func TestZoneTopology(t *testing.T) {
	const key = "topology.kubernetes.io/zone"
	za, zb := map[string]string{key: "zone-a"}, map[string]string{key: "zone-b"}
	_, c := start(t, fakedriver.Options{
		NodeID: "n1", Topology: za, Capacity: 10 * gi, PublishWithinTopology: true,
		Nodes: []fakedriver.Node{{ID: "n2", Topology: za}, {ID: "n3", Topology: zb}},
	})
	info, err := c.node.NodeGetInfo(ctx(t), &csi.NodeGetInfoRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if got := info.GetAccessibleTopology().GetSegments()[key]; got != "zone-a" {
		t.Errorf("NodeGetInfo zone = %q, want zone-a", got)
	}
	req := createReq("disk", 4*gi)
	req.AccessibilityRequirements = &csi.TopologyRequirement{Requisite: []*csi.Topology{{Segments: zb}}}
	vol := mustCreate(t, c, req)
	if got := vol.GetAccessibleTopology()[0].GetSegments()[key]; got != "zone-b" {
		t.Errorf("volume zone = %q, want zone-b", got)
	}
	publish := func(node string) error {
		_, err := c.ctl.ControllerPublishVolume(ctx(t), &csi.ControllerPublishVolumeRequest{
			VolumeId: vol.GetVolumeId(), NodeId: node, VolumeCapability: rwo})
		return err
	}
	wantCode(t, "attach across zones", publish("n1"), codes.FailedPrecondition)
	wantCode(t, "attach in the volume's zone", publish("n3"), codes.OK)

	// n1 and n2 share zone-a's 10Gi.
	local := createReq("a1", 6*gi)
	mustCreate(t, c, local)
	req = createReq("a2", 6*gi)
	req.AccessibilityRequirements = &csi.TopologyRequirement{Requisite: []*csi.Topology{{Segments: za}}}
	_, err = c.ctl.CreateVolume(ctx(t), req)
	wantCode(t, "second 6Gi in a 10Gi zone", err, codes.ResourceExhausted)
}

// TestNodeCapacity: the own node's pool has its own size.
func TestNodeCapacity(t *testing.T) {
	_, c := start(t, fakedriver.Options{
		NodeID: "n1", Capacity: 5 * gi, NodeCapacity: 2 * gi,
		Nodes: []fakedriver.Node{{ID: "n2"}},
	})
	for node, want := range map[string]int64{"n1": 2 * gi, "n2": 5 * gi} {
		rsp, err := c.ctl.GetCapacity(ctx(t), &csi.GetCapacityRequest{AccessibleTopology: &csi.Topology{
			Segments: map[string]string{"topology.fake.csi.k8s.io/node": node}}})
		if err != nil {
			t.Fatal(err)
		}
		if got := rsp.GetAvailableCapacity(); got != want {
			t.Errorf("GetCapacity(%s) = %d, want %d", node, got, want)
		}
	}
	_, err := c.ctl.CreateVolume(ctx(t), createReq("too-big", 3*gi))
	wantCode(t, "CreateVolume above NodeCapacity", err, codes.ResourceExhausted)
}

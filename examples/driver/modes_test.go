package main

import (
	"io"
	"path/filepath"
	"testing"

	"github.com/container-storage-interface/spec/lib/go/csi"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/csi-kit/sidecars/testkit/fakedriver"
)

// startMode serves the driver as the flags configure it and returns a
// client of its Controller service.
func startMode(t *testing.T, args ...string) csi.ControllerClient {
	t.Helper()
	args = append([]string{"--endpoint=" + filepath.Join(t.TempDir(), "csi.sock")}, args...)
	c, err := parseFlags(args, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	d := fakedriver.Start(t, c.opts)
	ctl, _ := dial(t, d.SocketPath())
	return ctl
}

func create(t *testing.T, ctl csi.ControllerClient, name string, size int64, seg map[string]string) (*csi.Volume, error) {
	t.Helper()
	req := &csi.CreateVolumeRequest{Name: name, CapacityRange: &csi.CapacityRange{RequiredBytes: size},
		VolumeCapabilities: []*csi.VolumeCapability{rwo}}
	if seg != nil {
		req.AccessibilityRequirements = &csi.TopologyRequirement{Requisite: []*csi.Topology{{Segments: seg}}}
	}
	rsp, err := ctl.CreateVolume(callCtx(t), req)
	return rsp.GetVolume(), err
}

func free(t *testing.T, ctl csi.ControllerClient, seg map[string]string) int64 {
	t.Helper()
	rsp, err := ctl.GetCapacity(callCtx(t), &csi.GetCapacityRequest{AccessibleTopology: &csi.Topology{Segments: seg}})
	if err != nil {
		t.Fatal(err)
	}
	return rsp.GetAvailableCapacity()
}

func wantCode(t *testing.T, what string, err error, want codes.Code) {
	t.Helper()
	if got := status.Code(err); got != want {
		t.Errorf("%s: %v (%v), want %v", what, got, err, want)
	}
}

// TestCloudDisk: zonal pools, the 20Gi minimum and 1Gi steps, online
// expansion of an attached disk.
func TestCloudDisk(t *testing.T) {
	ctl := startMode(t, "--nodeid=node-a", "--zones=node-a=zone-a,node-b=zone-b", "--capacity=100Gi")
	zb := map[string]string{"topology.disk.csi.example.com/zone": "zone-b"}
	for _, tc := range []struct {
		name      string
		req, want int64
	}{
		{"small", gi, 20 * gi},
		{"between steps", 20*gi + 1, 21 * gi},
		{"exact", 25 * gi, 25 * gi},
	} {
		v, err := create(t, ctl, tc.name, tc.req, zb)
		if err != nil {
			t.Fatal(err)
		}
		if v.GetCapacityBytes() != tc.want || v.GetAccessibleTopology()[0].GetSegments()["topology.disk.csi.example.com/zone"] != "zone-b" {
			t.Errorf("%s: %d bytes in %v, want %d in zone-b", tc.name, v.GetCapacityBytes(), v.GetAccessibleTopology(), tc.want)
		}
	}
	if got := free(t, ctl, zb); got != 34*gi {
		t.Errorf("zone-b free = %d, want 34Gi", got)
	}
	if got := free(t, ctl, map[string]string{"topology.disk.csi.example.com/zone": "zone-a"}); got != 100*gi {
		t.Errorf("zone-a free = %d, want 100Gi", got)
	}
	_, err := create(t, ctl, "too-big", 40*gi, zb)
	wantCode(t, "disk larger than the zone's free space", err, codes.ResourceExhausted)

	v, _ := create(t, ctl, "exact", 25*gi, zb)
	_, err = ctl.ControllerPublishVolume(callCtx(t), &csi.ControllerPublishVolumeRequest{
		VolumeId: v.GetVolumeId(), NodeId: "node-a", VolumeCapability: rwo})
	wantCode(t, "attaching a zone-b disk to node-a in zone-a", err, codes.FailedPrecondition)
	if _, err := ctl.ControllerPublishVolume(callCtx(t), &csi.ControllerPublishVolumeRequest{
		VolumeId: v.GetVolumeId(), NodeId: "node-b", VolumeCapability: rwo}); err != nil {
		t.Fatal(err)
	}
	rsp, err := ctl.ControllerExpandVolume(callCtx(t), &csi.ControllerExpandVolumeRequest{
		VolumeId: v.GetVolumeId(), CapacityRange: &csi.CapacityRange{RequiredBytes: 30 * gi}})
	if err != nil || rsp.GetCapacityBytes() != 30*gi {
		t.Errorf("online expansion of an attached disk: %v, %d bytes, want 30Gi", err, rsp.GetCapacityBytes())
	}
}

// TestLocal: every node has its own volume group, GetCapacity reports
// each one, and volumes grow online within it.
func TestLocal(t *testing.T) {
	ctl := startMode(t, "--mode=local", "--nodeid=node-a", "--node-capacity=node-a=1Gi,node-b=10Gi")
	key := "topology.disk.csi.example.com/node"
	a, b := map[string]string{key: "node-a"}, map[string]string{key: "node-b"}
	if fa, fb := free(t, ctl, a), free(t, ctl, b); fa != gi || fb != 10*gi {
		t.Errorf("free = %d on node-a, %d on node-b; want 1Gi and 10Gi", fa, fb)
	}
	_, err := create(t, ctl, "lvm-pvc", 2*gi, a)
	wantCode(t, "2Gi on a 1Gi volume group", err, codes.ResourceExhausted)
	v, err := create(t, ctl, "lvm-pvc", 2*gi, b)
	if err != nil {
		t.Fatal(err)
	}
	rsp, err := ctl.ControllerExpandVolume(callCtx(t), &csi.ControllerExpandVolumeRequest{
		VolumeId: v.GetVolumeId(), CapacityRange: &csi.CapacityRange{RequiredBytes: 4 * gi}})
	if err != nil || rsp.GetCapacityBytes() != 4*gi || rsp.GetNodeExpansionRequired() {
		t.Errorf("expansion: %v, %d bytes, node step %v; want 4Gi, no node step", err, rsp.GetCapacityBytes(), rsp.GetNodeExpansionRequired())
	}
	if got := free(t, ctl, b); got != 6*gi {
		t.Errorf("node-b free after expansion = %d, want 6Gi", got)
	}
	_, err = ctl.ControllerExpandVolume(callCtx(t), &csi.ControllerExpandVolumeRequest{
		VolumeId: v.GetVolumeId(), CapacityRange: &csi.CapacityRange{RequiredBytes: 20 * gi}})
	wantCode(t, "expansion beyond the volume group", err, codes.ResourceExhausted)
}

// TestOffline: an attached volume does not grow; once detached it does,
// and the node must finish the job.
func TestOffline(t *testing.T) {
	ctl := startMode(t, "--mode=offline", "--nodeid=node-a", "--zones=node-a=z,node-b=z")
	v, err := create(t, ctl, "rbd-pvc", 5*gi, nil)
	if err != nil {
		t.Fatal(err)
	}
	pub := &csi.ControllerPublishVolumeRequest{VolumeId: v.GetVolumeId(), NodeId: "node-b", VolumeCapability: rwo}
	if _, err := ctl.ControllerPublishVolume(callCtx(t), pub); err != nil {
		t.Fatal(err)
	}
	expand := &csi.ControllerExpandVolumeRequest{VolumeId: v.GetVolumeId(), CapacityRange: &csi.CapacityRange{RequiredBytes: 6 * gi}}
	_, err = ctl.ControllerExpandVolume(callCtx(t), expand)
	wantCode(t, "expansion while attached", err, codes.FailedPrecondition)
	if _, err := ctl.ControllerUnpublishVolume(callCtx(t), &csi.ControllerUnpublishVolumeRequest{
		VolumeId: v.GetVolumeId(), NodeId: "node-b"}); err != nil {
		t.Fatal(err)
	}
	rsp, err := ctl.ControllerExpandVolume(callCtx(t), expand)
	if err != nil || rsp.GetCapacityBytes() != 6*gi || !rsp.GetNodeExpansionRequired() {
		t.Errorf("expansion when detached: %v, %d bytes, node step %v; want 6Gi and a node step", err, rsp.GetCapacityBytes(), rsp.GetNodeExpansionRequired())
	}
}

package fakedriver_test

import (
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/container-storage-interface/spec/lib/go/csi"
	"google.golang.org/grpc/codes"

	"github.com/csi-kit/sidecars/testkit/fakedriver"
)

func TestNodeGetInfo(t *testing.T) {
	for _, tc := range []struct {
		name     string
		opts     fakedriver.Options
		wantNode string
		wantTop  map[string]string
	}{
		{"defaults", fakedriver.Options{}, fakedriver.DefaultNodeID, map[string]string{"topology.fake.csi.k8s.io/node": fakedriver.DefaultNodeID}},
		{"own topology", fakedriver.Options{NodeID: "n1", Topology: seg("a")}, "n1", seg("a")},
		{"no topology", fakedriver.Options{Capabilities: fakedriver.Resizer}, fakedriver.DefaultNodeID, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, c := start(t, tc.opts)
			rsp, err := c.node.NodeGetInfo(ctx(t), &csi.NodeGetInfoRequest{})
			if err != nil {
				t.Fatal(err)
			}
			got := rsp.GetAccessibleTopology().GetSegments()
			if rsp.GetNodeId() != tc.wantNode || len(got) != len(tc.wantTop) {
				t.Fatalf("NodeGetInfo = %v, want node %s topology %v", rsp, tc.wantNode, tc.wantTop)
			}
			for k, v := range tc.wantTop {
				if got[k] != v {
					t.Errorf("segment %s = %q, want %q", k, got[k], v)
				}
			}
		})
	}
}

// TestNodeLifecycle: stage, publish (creating the target), expand on the
// node, unpublish (removing it), unstage.
func TestNodeLifecycle(t *testing.T) {
	d, c := start(t, fakedriver.Options{CreateTargetPaths: true})
	v := mustCreate(t, c, createReq("v", gi))
	id := v.GetVolumeId()
	dir := t.TempDir()
	staging, target := filepath.Join(dir, "staging"), filepath.Join(dir, "target")

	_, err := c.node.NodePublishVolume(ctx(t), &csi.NodePublishVolumeRequest{VolumeId: id, TargetPath: target, StagingTargetPath: staging, VolumeCapability: rwo})
	wantCode(t, "publish before stage", err, codes.FailedPrecondition)
	_, err = c.node.NodeStageVolume(ctx(t), &csi.NodeStageVolumeRequest{VolumeId: id, StagingTargetPath: staging})
	wantCode(t, "stage without capability", err, codes.InvalidArgument)
	_, err = c.node.NodeStageVolume(ctx(t), &csi.NodeStageVolumeRequest{VolumeId: "nope", StagingTargetPath: staging, VolumeCapability: rwo})
	wantCode(t, "stage unknown volume", err, codes.NotFound)
	for range 2 {
		_, err = c.node.NodeStageVolume(ctx(t), &csi.NodeStageVolumeRequest{VolumeId: id, StagingTargetPath: staging, VolumeCapability: rwo})
		wantCode(t, "stage", err, codes.OK)
		_, err = c.node.NodePublishVolume(ctx(t), &csi.NodePublishVolumeRequest{VolumeId: id, TargetPath: target, StagingTargetPath: staging, VolumeCapability: rwo})
		wantCode(t, "publish", err, codes.OK)
	}
	if fi, err := os.Stat(target); err != nil || !fi.IsDir() {
		t.Errorf("target after publish: %v, want a directory", err)
	}
	_, err = c.node.NodePublishVolume(ctx(t), &csi.NodePublishVolumeRequest{VolumeId: id, TargetPath: target, StagingTargetPath: staging, VolumeCapability: rwo, Readonly: true})
	wantCode(t, "publish again read-only", err, codes.AlreadyExists)

	inv := d.Volumes()[0]
	if len(inv.StagingPaths) != 1 || len(inv.TargetPaths) != 1 {
		t.Errorf("inventory paths = %v, %v", inv.StagingPaths, inv.TargetPaths)
	}
	stats, err := c.node.NodeGetVolumeStats(ctx(t), &csi.NodeGetVolumeStatsRequest{VolumeId: id, VolumePath: target})
	if err != nil || stats.GetUsage()[0].GetTotal() != gi {
		t.Errorf("NodeGetVolumeStats = %v, %v", stats, err)
	}
	_, err = c.node.NodeGetVolumeStats(ctx(t), &csi.NodeGetVolumeStatsRequest{VolumeId: id, VolumePath: "/elsewhere"})
	wantCode(t, "stats elsewhere", err, codes.NotFound)

	// Node-only growth: asked for more than the volume has, the node grows it.
	exp, err := c.node.NodeExpandVolume(ctx(t), &csi.NodeExpandVolumeRequest{VolumeId: id, VolumePath: target, CapacityRange: &csi.CapacityRange{RequiredBytes: 2 * gi}})
	if err != nil || exp.GetCapacityBytes() != 2*gi {
		t.Errorf("NodeExpandVolume = %v, %v", exp, err)
	}
	if inv := d.Volumes()[0]; inv.CapacityBytes != 2*gi || inv.NodeCapacityBytes != 2*gi {
		t.Errorf("after node expansion: %d / %d bytes", inv.CapacityBytes, inv.NodeCapacityBytes)
	}
	_, err = c.node.NodeExpandVolume(ctx(t), &csi.NodeExpandVolumeRequest{VolumeId: "nope", VolumePath: target})
	wantCode(t, "node expand unknown", err, codes.NotFound)
	_, err = c.node.NodeExpandVolume(ctx(t), &csi.NodeExpandVolumeRequest{VolumeId: id})
	wantCode(t, "node expand without path", err, codes.InvalidArgument)

	for range 2 {
		_, err = c.node.NodeUnpublishVolume(ctx(t), &csi.NodeUnpublishVolumeRequest{VolumeId: id, TargetPath: target})
		wantCode(t, "unpublish", err, codes.OK)
		_, err = c.node.NodeUnstageVolume(ctx(t), &csi.NodeUnstageVolumeRequest{VolumeId: id, StagingTargetPath: staging})
		wantCode(t, "unstage", err, codes.OK)
	}
	if _, err := os.Stat(target); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("target after unpublish: %v, want it gone", err)
	}
	if inv := d.Volumes()[0]; len(inv.StagingPaths)+len(inv.TargetPaths) != 0 {
		t.Errorf("paths left: %v", inv)
	}
}

func TestSingleWriter(t *testing.T) {
	_, c := start(t, fakedriver.Options{Capabilities: fakedriver.Capabilities{Controller: true, CreateDelete: true, SingleNodeMultiWriter: true}})
	sw := mountCap(csi.VolumeCapability_AccessMode_SINGLE_NODE_SINGLE_WRITER)
	v := mustCreate(t, c, &csi.CreateVolumeRequest{Name: "v", VolumeCapabilities: []*csi.VolumeCapability{sw}})
	publish := func(target string) error {
		_, err := c.node.NodePublishVolume(ctx(t), &csi.NodePublishVolumeRequest{VolumeId: v.GetVolumeId(), TargetPath: target, VolumeCapability: sw})
		return err
	}
	wantCode(t, "first target", publish("/a"), codes.OK)
	wantCode(t, "second target", publish("/b"), codes.FailedPrecondition)
}

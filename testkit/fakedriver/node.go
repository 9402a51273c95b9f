package fakedriver

import (
	"context"
	"errors"
	"maps"
	"os"

	"github.com/container-storage-interface/spec/lib/go/csi"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// node serves the CSI Node service. Staging and publishing are
// bookkeeping on the backend's volumes; only Options.CreateTargetPaths
// touches the file system.
type node struct {
	csi.UnimplementedNodeServer
	d *Driver
}

var _ csi.NodeServer = node{}

// unadvertised is the answer of an RPC whose capability is off.
func unadvertised(method, capability string) error {
	return status.Errorf(codes.Unimplemented, "%s: %s not advertised", method, capability)
}

func (s node) NodeGetInfo(context.Context, *csi.NodeGetInfoRequest) (*csi.NodeGetInfoResponse, error) {
	out := &csi.NodeGetInfoResponse{NodeId: s.d.opts.NodeID, MaxVolumesPerNode: s.d.opts.MaxVolumesPerNode}
	if s.d.opts.Capabilities.Topology {
		out.AccessibleTopology = &csi.Topology{Segments: maps.Clone(s.d.opts.Topology)}
	}
	return out, nil
}

func (s node) NodeGetCapabilities(context.Context, *csi.NodeGetCapabilitiesRequest) (*csi.NodeGetCapabilitiesResponse, error) {
	c := s.d.opts.Capabilities
	var out []*csi.NodeServiceCapability
	for _, t := range advertised(
		on(c.NodeStage, csi.NodeServiceCapability_RPC_STAGE_UNSTAGE_VOLUME),
		on(c.NodeExpand, csi.NodeServiceCapability_RPC_EXPAND_VOLUME),
		on(c.VolumeStats, csi.NodeServiceCapability_RPC_GET_VOLUME_STATS),
		on(c.SingleNodeMultiWriter, csi.NodeServiceCapability_RPC_SINGLE_NODE_MULTI_WRITER),
	) {
		out = append(out, &csi.NodeServiceCapability{Type: &csi.NodeServiceCapability_Rpc{
			Rpc: &csi.NodeServiceCapability_RPC{Type: t},
		}})
	}
	return &csi.NodeGetCapabilitiesResponse{Capabilities: out}, nil
}

func (s node) NodeStageVolume(_ context.Context, req *csi.NodeStageVolumeRequest) (*csi.NodeStageVolumeResponse, error) {
	if !s.d.opts.Capabilities.NodeStage {
		return nil, unadvertised("NodeStageVolume", "STAGE_UNSTAGE_VOLUME")
	}
	if err := required("volume_id", req.GetVolumeId(), "staging_target_path", req.GetStagingTargetPath()); err != nil {
		return nil, err
	}
	if err := checkCapability(req.GetVolumeCapability(), s.d.opts.Capabilities.SingleNodeMultiWriter); err != nil {
		return nil, err
	}
	s.d.mu.Lock()
	defer s.d.mu.Unlock()
	v, ok := s.d.be.volumes[req.GetVolumeId()]
	if !ok {
		return nil, status.Errorf(codes.NotFound, "volume %q not found", req.GetVolumeId())
	}
	v.staged[req.GetStagingTargetPath()] = true
	return &csi.NodeStageVolumeResponse{}, nil
}

func (s node) NodeUnstageVolume(_ context.Context, req *csi.NodeUnstageVolumeRequest) (*csi.NodeUnstageVolumeResponse, error) {
	if !s.d.opts.Capabilities.NodeStage {
		return nil, unadvertised("NodeUnstageVolume", "STAGE_UNSTAGE_VOLUME")
	}
	if err := required("volume_id", req.GetVolumeId(), "staging_target_path", req.GetStagingTargetPath()); err != nil {
		return nil, err
	}
	s.d.mu.Lock()
	defer s.d.mu.Unlock()
	if v, ok := s.d.be.volumes[req.GetVolumeId()]; ok {
		delete(v.staged, req.GetStagingTargetPath())
	}
	return &csi.NodeUnstageVolumeResponse{}, nil
}

func (s node) NodePublishVolume(_ context.Context, req *csi.NodePublishVolumeRequest) (*csi.NodePublishVolumeResponse, error) {
	stage := s.d.opts.Capabilities.NodeStage
	switch {
	case req.GetVolumeId() == "":
		return nil, status.Error(codes.InvalidArgument, "volume_id is required")
	case req.GetTargetPath() == "":
		return nil, status.Error(codes.InvalidArgument, "target_path is required")
	case stage && req.GetStagingTargetPath() == "":
		return nil, status.Error(codes.InvalidArgument, "staging_target_path is required with STAGE_UNSTAGE_VOLUME")
	}
	c := req.GetVolumeCapability()
	if err := checkCapability(c, s.d.opts.Capabilities.SingleNodeMultiWriter); err != nil {
		return nil, err
	}
	s.d.mu.Lock()
	defer s.d.mu.Unlock()
	v, ok := s.d.be.volumes[req.GetVolumeId()]
	if !ok {
		return nil, status.Errorf(codes.NotFound, "volume %q not found", req.GetVolumeId())
	}
	if stage && !v.staged[req.GetStagingTargetPath()] {
		return nil, status.Errorf(codes.FailedPrecondition, "volume %q is not staged at %q", v.ID, req.GetStagingTargetPath())
	}
	pub := publication{readonly: req.GetReadonly(), mode: c.GetAccessMode().GetMode()}
	if old, ok := v.targets[req.GetTargetPath()]; ok {
		if old != pub {
			return nil, status.Errorf(codes.AlreadyExists, "volume %q is published at %q with other settings", v.ID, req.GetTargetPath())
		}
		return &csi.NodePublishVolumeResponse{}, nil
	}
	for path, old := range v.targets {
		if pub.mode == csi.VolumeCapability_AccessMode_SINGLE_NODE_SINGLE_WRITER || old.mode == csi.VolumeCapability_AccessMode_SINGLE_NODE_SINGLE_WRITER {
			return nil, status.Errorf(codes.FailedPrecondition, "volume %q is single-writer and already published at %q", v.ID, path)
		}
	}
	if s.d.opts.CreateTargetPaths {
		if err := createTarget(req.GetTargetPath(), c.GetBlock() != nil); err != nil {
			return nil, status.Errorf(codes.Internal, "creating target path: %v", err)
		}
	}
	v.targets[req.GetTargetPath()] = pub
	return &csi.NodePublishVolumeResponse{}, nil
}

func (s node) NodeUnpublishVolume(_ context.Context, req *csi.NodeUnpublishVolumeRequest) (*csi.NodeUnpublishVolumeResponse, error) {
	if err := required("volume_id", req.GetVolumeId(), "target_path", req.GetTargetPath()); err != nil {
		return nil, err
	}
	s.d.mu.Lock()
	defer s.d.mu.Unlock()
	v, ok := s.d.be.volumes[req.GetVolumeId()]
	if !ok {
		return nil, status.Errorf(codes.NotFound, "volume %q not found", req.GetVolumeId())
	}
	if _, ok := v.targets[req.GetTargetPath()]; ok && s.d.opts.CreateTargetPaths {
		if err := os.Remove(req.GetTargetPath()); err != nil && !errors.Is(err, os.ErrNotExist) {
			return nil, status.Errorf(codes.Internal, "removing target path: %v", err)
		}
	}
	delete(v.targets, req.GetTargetPath())
	return &csi.NodeUnpublishVolumeResponse{}, nil
}

func (s node) NodeGetVolumeStats(_ context.Context, req *csi.NodeGetVolumeStatsRequest) (*csi.NodeGetVolumeStatsResponse, error) {
	if !s.d.opts.Capabilities.VolumeStats {
		return nil, unadvertised("NodeGetVolumeStats", "GET_VOLUME_STATS")
	}
	if err := required("volume_id", req.GetVolumeId(), "volume_path", req.GetVolumePath()); err != nil {
		return nil, err
	}
	s.d.mu.Lock()
	defer s.d.mu.Unlock()
	v, ok := s.d.be.volumes[req.GetVolumeId()]
	if !ok {
		return nil, status.Errorf(codes.NotFound, "volume %q not found", req.GetVolumeId())
	}
	if _, ok := v.targets[req.GetVolumePath()]; !ok && !v.staged[req.GetVolumePath()] {
		return nil, status.Errorf(codes.NotFound, "volume %q is not at %q", v.ID, req.GetVolumePath())
	}
	total := max(v.NodeCapacityBytes, v.CapacityBytes)
	return &csi.NodeGetVolumeStatsResponse{Usage: []*csi.VolumeUsage{{
		Unit: csi.VolumeUsage_BYTES, Total: total, Available: total,
	}}}, nil
}

// NodeExpandVolume records the file system size. Without a capacity range
// it grows to the volume's size; asked for more (node-only expansion), it
// grows the volume too.
func (s node) NodeExpandVolume(_ context.Context, req *csi.NodeExpandVolumeRequest) (*csi.NodeExpandVolumeResponse, error) {
	if !s.d.opts.Capabilities.NodeExpand {
		return nil, unadvertised("NodeExpandVolume", "node EXPAND_VOLUME")
	}
	if err := required("volume_id", req.GetVolumeId(), "volume_path", req.GetVolumePath()); err != nil {
		return nil, err
	}
	s.d.mu.Lock()
	defer s.d.mu.Unlock()
	v, ok := s.d.be.volumes[req.GetVolumeId()]
	if !ok {
		return nil, status.Errorf(codes.NotFound, "volume %q not found", req.GetVolumeId())
	}
	size := v.CapacityBytes
	if req.GetCapacityRange() != nil {
		var err error
		if size, err = expandedSize(req.GetCapacityRange(), v.CapacityBytes, s.d.opts.MinSize, s.d.opts.SizeStep); err != nil {
			return nil, err
		}
		if err := s.d.growLocked(v, size); err != nil {
			return nil, err
		}
	}
	v.NodeCapacityBytes = max(v.NodeCapacityBytes, size)
	return &csi.NodeExpandVolumeResponse{CapacityBytes: v.NodeCapacityBytes}, nil
}

// createTarget makes the mount point (or the file a block device is bound
// to) at path; its parent must exist.
func createTarget(path string, block bool) error {
	if !block {
		if err := os.Mkdir(path, 0o750); err != nil && !errors.Is(err, os.ErrExist) {
			return err
		}
		return nil
	}
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDONLY, 0o640)
	if err != nil {
		return err
	}
	return f.Close()
}

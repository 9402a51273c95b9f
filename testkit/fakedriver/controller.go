package fakedriver

import (
	"context"
	"maps"

	"github.com/container-storage-interface/spec/lib/go/csi"
	"github.com/google/uuid"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
)

// controller serves the CSI Controller service: volumes here, snapshots in
// snapshots.go.
type controller struct {
	csi.UnimplementedControllerServer
	d *Driver
}

var _ csi.ControllerServer = controller{}

func (s controller) ControllerGetCapabilities(context.Context, *csi.ControllerGetCapabilitiesRequest) (*csi.ControllerGetCapabilitiesResponse, error) {
	c := s.d.opts.Capabilities
	var out []*csi.ControllerServiceCapability
	for _, t := range advertised(
		on(c.CreateDelete, csi.ControllerServiceCapability_RPC_CREATE_DELETE_VOLUME),
		on(c.PublishUnpublish, csi.ControllerServiceCapability_RPC_PUBLISH_UNPUBLISH_VOLUME),
		on(c.PublishReadonly, csi.ControllerServiceCapability_RPC_PUBLISH_READONLY),
		on(c.ListVolumes, csi.ControllerServiceCapability_RPC_LIST_VOLUMES),
		on(c.ListVolumes && c.PublishUnpublish, csi.ControllerServiceCapability_RPC_LIST_VOLUMES_PUBLISHED_NODES),
		on(c.GetCapacity, csi.ControllerServiceCapability_RPC_GET_CAPACITY),
		on(c.Snapshots, csi.ControllerServiceCapability_RPC_CREATE_DELETE_SNAPSHOT),
		on(c.ListSnapshots, csi.ControllerServiceCapability_RPC_LIST_SNAPSHOTS),
		on(c.GetSnapshot, csi.ControllerServiceCapability_RPC_GET_SNAPSHOT),
		on(c.Clone, csi.ControllerServiceCapability_RPC_CLONE_VOLUME),
		on(c.Expand, csi.ControllerServiceCapability_RPC_EXPAND_VOLUME),
		on(c.Modify, csi.ControllerServiceCapability_RPC_MODIFY_VOLUME),
		on(c.SingleNodeMultiWriter, csi.ControllerServiceCapability_RPC_SINGLE_NODE_MULTI_WRITER),
	) {
		out = append(out, &csi.ControllerServiceCapability{Type: &csi.ControllerServiceCapability_Rpc{
			Rpc: &csi.ControllerServiceCapability_RPC{Type: t},
		}})
	}
	return &csi.ControllerGetCapabilitiesResponse{Capabilities: out}, nil
}

func (s controller) CreateVolume(_ context.Context, req *csi.CreateVolumeRequest) (*csi.CreateVolumeResponse, error) {
	o := s.d.opts
	if !o.Capabilities.CreateDelete {
		return nil, unadvertised("CreateVolume", "CREATE_DELETE_VOLUME")
	}
	if req.GetName() == "" {
		return nil, status.Error(codes.InvalidArgument, "name is required")
	}
	if err := checkCapabilities(req.GetVolumeCapabilities(), o.Capabilities.SingleNodeMultiWriter); err != nil {
		return nil, err
	}
	if err := checkMutable(o.MutableParameters, req.GetMutableParameters()); err != nil {
		return nil, err
	}
	s.d.mu.Lock()
	defer s.d.mu.Unlock()
	if v := s.d.be.volumeByName(req.GetName()); v != nil {
		r := req.GetCapacityRange()
		if r.GetRequiredBytes() > v.CapacityBytes || (r.GetLimitBytes() > 0 && v.CapacityBytes > r.GetLimitBytes()) ||
			!equalParams(v.Parameters, req.GetParameters()) || !sameSource(v.volumeSource, req.GetVolumeContentSource()) {
			return nil, status.Errorf(codes.AlreadyExists, "volume %q exists with other size, parameters or source", req.GetName())
		}
		return &csi.CreateVolumeResponse{Volume: v.csi()}, nil
	}
	sourceSize, err := s.d.sourceSizeLocked(req.GetVolumeContentSource())
	if err != nil {
		return nil, err
	}
	size, err := newVolumeSize(req.GetCapacityRange(), sourceSize, o.MinSize, o.SizeStep)
	if err != nil {
		return nil, err
	}
	var candidates []map[string]string
	if o.Capabilities.Topology {
		candidates = candidateSegments(req.GetAccessibilityRequirements(), o.Topology)
	} else {
		candidates = []map[string]string{nil}
	}
	seg, err := s.d.placeLocked(candidates, size)
	if err != nil {
		return nil, err
	}
	v := &volume{
		Volume: Volume{
			ID:                "vol-" + uuid.NewString(),
			Name:              req.GetName(),
			CapacityBytes:     size,
			Parameters:        maps.Clone(req.GetParameters()),
			MutableParameters: maps.Clone(req.GetMutableParameters()),
			SourceSnapshotID:  req.GetVolumeContentSource().GetSnapshot().GetSnapshotId(),
			SourceVolumeID:    req.GetVolumeContentSource().GetVolume().GetVolumeId(),
			Topology:          maps.Clone(seg),
		},
		seq:          s.d.be.next(),
		published:    map[string]publication{},
		staged:       map[string]bool{},
		targets:      map[string]publication{},
		pool:         segmentKey(seg),
		volumeSource: proto.CloneOf(req.GetVolumeContentSource()),
	}
	s.d.be.addVolume(v)
	return &csi.CreateVolumeResponse{Volume: v.csi()}, nil
}

// sourceSizeLocked checks a content source and returns its size.
func (d *Driver) sourceSizeLocked(src *csi.VolumeContentSource) (int64, error) {
	switch {
	case src == nil:
		return 0, nil
	case src.GetSnapshot() != nil:
		if !d.opts.Capabilities.Snapshots {
			return 0, status.Error(codes.InvalidArgument, "snapshot sources need CREATE_DELETE_SNAPSHOT")
		}
		snap, ok := d.be.snapshots[src.GetSnapshot().GetSnapshotId()]
		if !ok {
			return 0, status.Errorf(codes.NotFound, "source snapshot %q not found", src.GetSnapshot().GetSnapshotId())
		}
		return snap.SizeBytes, nil
	case src.GetVolume() != nil:
		if !d.opts.Capabilities.Clone {
			return 0, status.Error(codes.InvalidArgument, "volume sources need CLONE_VOLUME")
		}
		v, ok := d.be.volumes[src.GetVolume().GetVolumeId()]
		if !ok {
			return 0, status.Errorf(codes.NotFound, "source volume %q not found", src.GetVolume().GetVolumeId())
		}
		return v.CapacityBytes, nil
	}
	return 0, status.Error(codes.InvalidArgument, "content source names neither a snapshot nor a volume")
}

func (s controller) DeleteVolume(_ context.Context, req *csi.DeleteVolumeRequest) (*csi.DeleteVolumeResponse, error) {
	if !s.d.opts.Capabilities.CreateDelete {
		return nil, unadvertised("DeleteVolume", "CREATE_DELETE_VOLUME")
	}
	if req.GetVolumeId() == "" {
		return nil, status.Error(codes.InvalidArgument, "volume_id is required")
	}
	s.d.mu.Lock()
	defer s.d.mu.Unlock()
	v, ok := s.d.be.volumes[req.GetVolumeId()]
	if !ok {
		return &csi.DeleteVolumeResponse{}, nil
	}
	if v.inUse() {
		return nil, status.Errorf(codes.FailedPrecondition, "volume %q is in use", v.ID)
	}
	s.d.be.removeVolume(v)
	return &csi.DeleteVolumeResponse{}, nil
}

func (s controller) ControllerPublishVolume(_ context.Context, req *csi.ControllerPublishVolumeRequest) (*csi.ControllerPublishVolumeResponse, error) {
	if !s.d.opts.Capabilities.PublishUnpublish {
		return nil, unadvertised("ControllerPublishVolume", "PUBLISH_UNPUBLISH_VOLUME")
	}
	switch {
	case req.GetVolumeId() == "":
		return nil, status.Error(codes.InvalidArgument, "volume_id is required")
	case req.GetNodeId() == "":
		return nil, status.Error(codes.InvalidArgument, "node_id is required")
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
	if !s.d.knownNode(req.GetNodeId()) {
		return nil, status.Errorf(codes.NotFound, "node %q not found", req.GetNodeId())
	}
	if seg := s.d.nodeTopology(req.GetNodeId()); s.d.opts.PublishWithinTopology && v.Topology != nil && !withinSegment(seg, v.Topology) {
		return nil, status.Errorf(codes.FailedPrecondition, "volume %q lives in %s and cannot be attached to node %q in %s",
			v.ID, segmentKey(v.Topology), req.GetNodeId(), segmentKey(seg))
	}
	pub := publication{readonly: req.GetReadonly(), mode: c.GetAccessMode().GetMode()}
	resp := &csi.ControllerPublishVolumeResponse{PublishContext: map[string]string{"devicePath": "/dev/fake/" + v.ID}}
	if old, ok := v.published[req.GetNodeId()]; ok {
		if old != pub {
			return nil, status.Errorf(codes.AlreadyExists, "volume %q is published to %q with other settings", v.ID, req.GetNodeId())
		}
		return resp, nil
	}
	if len(v.published) > 0 && singleNode(c) {
		return nil, status.Errorf(codes.FailedPrecondition, "volume %q is single-node and published elsewhere", v.ID)
	}
	if limit := s.d.opts.MaxVolumesPerNode; limit > 0 && s.d.be.attached(req.GetNodeId()) >= limit {
		return nil, status.Errorf(codes.ResourceExhausted, "node %q has its maximum of %d volumes", req.GetNodeId(), limit)
	}
	v.published[req.GetNodeId()] = pub
	return resp, nil
}

func (d *Driver) knownNode(id string) bool {
	if id == d.opts.NodeID {
		return true
	}
	for _, n := range d.opts.Nodes {
		if n.ID == id {
			return true
		}
	}
	return false
}

// nodeTopology is the segment of a known node; nil without topology.
func (d *Driver) nodeTopology(id string) map[string]string {
	if id == d.opts.NodeID {
		return d.opts.Topology
	}
	for _, n := range d.opts.Nodes {
		if n.ID == id {
			return n.Topology
		}
	}
	return nil
}

func (s controller) ControllerUnpublishVolume(_ context.Context, req *csi.ControllerUnpublishVolumeRequest) (*csi.ControllerUnpublishVolumeResponse, error) {
	if !s.d.opts.Capabilities.PublishUnpublish {
		return nil, unadvertised("ControllerUnpublishVolume", "PUBLISH_UNPUBLISH_VOLUME")
	}
	if req.GetVolumeId() == "" {
		return nil, status.Error(codes.InvalidArgument, "volume_id is required")
	}
	s.d.mu.Lock()
	defer s.d.mu.Unlock()
	// An unknown volume or node counts as unpublished, as the spec allows.
	if v, ok := s.d.be.volumes[req.GetVolumeId()]; ok {
		if req.GetNodeId() == "" {
			clear(v.published)
		}
		delete(v.published, req.GetNodeId())
	}
	return &csi.ControllerUnpublishVolumeResponse{}, nil
}

func (s controller) ValidateVolumeCapabilities(_ context.Context, req *csi.ValidateVolumeCapabilitiesRequest) (*csi.ValidateVolumeCapabilitiesResponse, error) {
	switch {
	case req.GetVolumeId() == "":
		return nil, status.Error(codes.InvalidArgument, "volume_id is required")
	case len(req.GetVolumeCapabilities()) == 0:
		return nil, status.Error(codes.InvalidArgument, "volume_capabilities are required")
	}
	s.d.mu.Lock()
	defer s.d.mu.Unlock()
	if _, ok := s.d.be.volumes[req.GetVolumeId()]; !ok {
		return nil, status.Errorf(codes.NotFound, "volume %q not found", req.GetVolumeId())
	}
	if err := checkCapabilities(req.GetVolumeCapabilities(), s.d.opts.Capabilities.SingleNodeMultiWriter); err != nil {
		return &csi.ValidateVolumeCapabilitiesResponse{Message: status.Convert(err).Message()}, nil
	}
	return &csi.ValidateVolumeCapabilitiesResponse{Confirmed: &csi.ValidateVolumeCapabilitiesResponse_Confirmed{
		VolumeContext:      req.GetVolumeContext(),
		VolumeCapabilities: req.GetVolumeCapabilities(),
		Parameters:         req.GetParameters(),
		MutableParameters:  req.GetMutableParameters(),
	}}, nil
}

func (s controller) ListVolumes(_ context.Context, req *csi.ListVolumesRequest) (*csi.ListVolumesResponse, error) {
	if !s.d.opts.Capabilities.ListVolumes {
		return nil, unadvertised("ListVolumes", "LIST_VOLUMES")
	}
	s.d.mu.Lock()
	defer s.d.mu.Unlock()
	vs := s.d.be.sortedVolumes()
	start, err := pageStart(req.GetStartingToken(), len(vs))
	if err != nil {
		return nil, err
	}
	end, next, err := pageEnd(start, len(vs), req.GetMaxEntries())
	if err != nil {
		return nil, err
	}
	out := &csi.ListVolumesResponse{NextToken: next}
	for _, v := range vs[start:end] {
		out.Entries = append(out.Entries, &csi.ListVolumesResponse_Entry{
			Volume: v.csi(),
			Status: &csi.ListVolumesResponse_VolumeStatus{PublishedNodeIds: v.export().PublishedNodes},
		})
	}
	return out, nil
}

func (s controller) ControllerExpandVolume(_ context.Context, req *csi.ControllerExpandVolumeRequest) (*csi.ControllerExpandVolumeResponse, error) {
	o := s.d.opts
	if !o.Capabilities.Expand {
		return nil, unadvertised("ControllerExpandVolume", "controller EXPAND_VOLUME")
	}
	if req.GetVolumeId() == "" {
		return nil, status.Error(codes.InvalidArgument, "volume_id is required")
	}
	if req.GetCapacityRange() == nil {
		return nil, status.Error(codes.InvalidArgument, "capacity_range is required")
	}
	s.d.mu.Lock()
	defer s.d.mu.Unlock()
	v, ok := s.d.be.volumes[req.GetVolumeId()]
	if !ok {
		return nil, status.Errorf(codes.NotFound, "volume %q not found", req.GetVolumeId())
	}
	size, err := expandedSize(req.GetCapacityRange(), v.CapacityBytes, o.MinSize, o.SizeStep)
	if err != nil {
		return nil, err
	}
	if size > v.CapacityBytes && v.inUse() && o.Capabilities.ExpandOffline && !o.Capabilities.ExpandOnline {
		return nil, status.Errorf(codes.FailedPrecondition, "volume %q is in use and the driver expands only offline", v.ID)
	}
	if err := s.d.growLocked(v, size); err != nil {
		return nil, err
	}
	return &csi.ControllerExpandVolumeResponse{CapacityBytes: v.CapacityBytes, NodeExpansionRequired: o.NodeExpansionRequired}, nil
}

// ControllerModifyVolume merges mutable parameters into the volume; a
// rejected key applies nothing.
func (s controller) ControllerModifyVolume(_ context.Context, req *csi.ControllerModifyVolumeRequest) (*csi.ControllerModifyVolumeResponse, error) {
	if !s.d.opts.Capabilities.Modify {
		return nil, unadvertised("ControllerModifyVolume", "MODIFY_VOLUME")
	}
	if req.GetVolumeId() == "" {
		return nil, status.Error(codes.InvalidArgument, "volume_id is required")
	}
	s.d.mu.Lock()
	defer s.d.mu.Unlock()
	v, ok := s.d.be.volumes[req.GetVolumeId()]
	if !ok {
		return nil, status.Errorf(codes.NotFound, "volume %q not found", req.GetVolumeId())
	}
	if err := checkMutable(s.d.opts.MutableParameters, req.GetMutableParameters()); err != nil {
		return nil, err
	}
	if len(req.GetMutableParameters()) > 0 && v.MutableParameters == nil {
		v.MutableParameters = map[string]string{}
	}
	maps.Copy(v.MutableParameters, req.GetMutableParameters())
	return &csi.ControllerModifyVolumeResponse{}, nil
}

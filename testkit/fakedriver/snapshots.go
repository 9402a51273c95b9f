package fakedriver

import (
	"context"
	"maps"
	"slices"

	"github.com/container-storage-interface/spec/lib/go/csi"
	"github.com/google/uuid"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/timestamppb"
)

// newSnapshotLocked cuts a snapshot of v. Its first answer is the caller's.
func (d *Driver) newSnapshotLocked(name string, v *volume, params map[string]string, group string) *snapshot {
	s := &snapshot{
		Snapshot: Snapshot{
			ID:              "snap-" + uuid.NewString(),
			Name:            name,
			SourceVolumeID:  v.ID,
			SizeBytes:       v.CapacityBytes,
			Parameters:      maps.Clone(params),
			GroupSnapshotID: group,
			CreatedAt:       d.opts.Now(),
		},
		seq:           d.be.next(),
		notReadyPolls: d.opts.SnapshotNotReadyPolls,
	}
	d.be.addSnapshot(s)
	s.poll()
	return s
}

func (s controller) CreateSnapshot(_ context.Context, req *csi.CreateSnapshotRequest) (*csi.CreateSnapshotResponse, error) {
	if !s.d.opts.Capabilities.Snapshots {
		return nil, unadvertised("CreateSnapshot", "CREATE_DELETE_SNAPSHOT")
	}
	switch {
	case req.GetName() == "":
		return nil, status.Error(codes.InvalidArgument, "name is required")
	case req.GetSourceVolumeId() == "":
		return nil, status.Error(codes.InvalidArgument, "source_volume_id is required")
	}
	s.d.mu.Lock()
	defer s.d.mu.Unlock()
	if snap := s.d.be.snapshotByName(req.GetName()); snap != nil {
		if snap.SourceVolumeID != req.GetSourceVolumeId() {
			return nil, status.Errorf(codes.AlreadyExists, "snapshot %q exists for volume %q", req.GetName(), snap.SourceVolumeID)
		}
		snap.poll()
		return &csi.CreateSnapshotResponse{Snapshot: snap.csi()}, nil
	}
	v, ok := s.d.be.volumes[req.GetSourceVolumeId()]
	if !ok {
		return nil, status.Errorf(codes.NotFound, "source volume %q not found", req.GetSourceVolumeId())
	}
	snap := s.d.newSnapshotLocked(req.GetName(), v, req.GetParameters(), "")
	return &csi.CreateSnapshotResponse{Snapshot: snap.csi()}, nil
}

func (s controller) DeleteSnapshot(_ context.Context, req *csi.DeleteSnapshotRequest) (*csi.DeleteSnapshotResponse, error) {
	if !s.d.opts.Capabilities.Snapshots {
		return nil, unadvertised("DeleteSnapshot", "CREATE_DELETE_SNAPSHOT")
	}
	if req.GetSnapshotId() == "" {
		return nil, status.Error(codes.InvalidArgument, "snapshot_id is required")
	}
	s.d.mu.Lock()
	defer s.d.mu.Unlock()
	s.d.deleteSnapshotLocked(req.GetSnapshotId())
	return &csi.DeleteSnapshotResponse{}, nil
}

func (d *Driver) deleteSnapshotLocked(id string) {
	snap, ok := d.be.snapshots[id]
	if !ok {
		return
	}
	d.be.removeSnapshot(snap)
	if g, ok := d.be.groups[snap.GroupSnapshotID]; ok {
		g.SnapshotIDs = slices.DeleteFunc(g.SnapshotIDs, func(s string) bool { return s == id })
	}
}

// ListSnapshots filters by snapshot or source volume ID and pages in
// creation order. Each snapshot listed counts as a readiness poll.
func (s controller) ListSnapshots(_ context.Context, req *csi.ListSnapshotsRequest) (*csi.ListSnapshotsResponse, error) {
	if !s.d.opts.Capabilities.ListSnapshots {
		return nil, unadvertised("ListSnapshots", "LIST_SNAPSHOTS")
	}
	s.d.mu.Lock()
	defer s.d.mu.Unlock()
	var snaps []*snapshot
	for _, snap := range s.d.be.sortedSnapshots() {
		if (req.GetSnapshotId() == "" || snap.ID == req.GetSnapshotId()) &&
			(req.GetSourceVolumeId() == "" || snap.SourceVolumeID == req.GetSourceVolumeId()) {
			snaps = append(snaps, snap)
		}
	}
	start, err := pageStart(req.GetStartingToken(), len(snaps))
	if err != nil {
		return nil, err
	}
	end, next, err := pageEnd(start, len(snaps), req.GetMaxEntries())
	if err != nil {
		return nil, err
	}
	out := &csi.ListSnapshotsResponse{NextToken: next}
	for _, snap := range snaps[start:end] {
		snap.poll()
		out.Entries = append(out.Entries, &csi.ListSnapshotsResponse_Entry{Snapshot: snap.csi()})
	}
	return out, nil
}

func (s controller) GetSnapshot(_ context.Context, req *csi.GetSnapshotRequest) (*csi.GetSnapshotResponse, error) {
	if !s.d.opts.Capabilities.GetSnapshot {
		return nil, unadvertised("GetSnapshot", "GET_SNAPSHOT")
	}
	if req.GetSnapshotId() == "" {
		return nil, status.Error(codes.InvalidArgument, "snapshot_id is required")
	}
	s.d.mu.Lock()
	defer s.d.mu.Unlock()
	snap, ok := s.d.be.snapshots[req.GetSnapshotId()]
	if !ok {
		return nil, status.Errorf(codes.NotFound, "snapshot %q not found", req.GetSnapshotId())
	}
	snap.poll()
	return &csi.GetSnapshotResponse{Snapshot: snap.csi()}, nil
}

// groupController serves the CSI GroupController service.
type groupController struct {
	csi.UnimplementedGroupControllerServer
	d *Driver
}

var _ csi.GroupControllerServer = groupController{}

func (s groupController) GroupControllerGetCapabilities(context.Context, *csi.GroupControllerGetCapabilitiesRequest) (*csi.GroupControllerGetCapabilitiesResponse, error) {
	return &csi.GroupControllerGetCapabilitiesResponse{Capabilities: []*csi.GroupControllerServiceCapability{{
		Type: &csi.GroupControllerServiceCapability_Rpc{Rpc: &csi.GroupControllerServiceCapability_RPC{
			Type: csi.GroupControllerServiceCapability_RPC_CREATE_DELETE_GET_VOLUME_GROUP_SNAPSHOT,
		}},
	}}}, nil
}

func (s groupController) CreateVolumeGroupSnapshot(_ context.Context, req *csi.CreateVolumeGroupSnapshotRequest) (*csi.CreateVolumeGroupSnapshotResponse, error) {
	switch {
	case req.GetName() == "":
		return nil, status.Error(codes.InvalidArgument, "name is required")
	case len(req.GetSourceVolumeIds()) == 0:
		return nil, status.Error(codes.InvalidArgument, "source_volume_ids are required")
	}
	d := s.d
	d.mu.Lock()
	defer d.mu.Unlock()
	if g := d.be.groupByName(req.GetName()); g != nil {
		if !sameSet(g.SourceVolumeIDs, req.GetSourceVolumeIds()) {
			return nil, status.Errorf(codes.AlreadyExists, "group snapshot %q exists for other volumes", req.GetName())
		}
		return &csi.CreateVolumeGroupSnapshotResponse{GroupSnapshot: d.pollGroupLocked(g)}, nil
	}
	var vols []*volume
	for _, id := range req.GetSourceVolumeIds() {
		v, ok := d.be.volumes[id]
		if !ok {
			return nil, status.Errorf(codes.NotFound, "source volume %q not found", id)
		}
		vols = append(vols, v)
	}
	g := &groupSnapshot{
		GroupSnapshot: GroupSnapshot{
			ID:              "group-" + uuid.NewString(),
			Name:            req.GetName(),
			SourceVolumeIDs: slices.Clone(req.GetSourceVolumeIds()),
			Parameters:      maps.Clone(req.GetParameters()),
			CreatedAt:       d.opts.Now(),
		},
		seq: d.be.next(),
	}
	var snaps []*csi.Snapshot
	for _, v := range vols {
		snap := d.newSnapshotLocked(req.GetName()+"-"+v.ID, v, req.GetParameters(), g.ID)
		g.SnapshotIDs = append(g.SnapshotIDs, snap.ID)
		snaps = append(snaps, snap.csi())
	}
	d.be.addGroup(g)
	return &csi.CreateVolumeGroupSnapshotResponse{GroupSnapshot: d.renderGroupLocked(g, snaps)}, nil
}

func (s groupController) DeleteVolumeGroupSnapshot(_ context.Context, req *csi.DeleteVolumeGroupSnapshotRequest) (*csi.DeleteVolumeGroupSnapshotResponse, error) {
	if req.GetGroupSnapshotId() == "" {
		return nil, status.Error(codes.InvalidArgument, "group_snapshot_id is required")
	}
	d := s.d
	d.mu.Lock()
	defer d.mu.Unlock()
	if g, ok := d.be.groups[req.GetGroupSnapshotId()]; ok {
		for _, id := range slices.Clone(g.SnapshotIDs) {
			d.deleteSnapshotLocked(id)
		}
		d.be.removeGroup(g)
	}
	return &csi.DeleteVolumeGroupSnapshotResponse{}, nil
}

func (s groupController) GetVolumeGroupSnapshot(_ context.Context, req *csi.GetVolumeGroupSnapshotRequest) (*csi.GetVolumeGroupSnapshotResponse, error) {
	if req.GetGroupSnapshotId() == "" {
		return nil, status.Error(codes.InvalidArgument, "group_snapshot_id is required")
	}
	d := s.d
	d.mu.Lock()
	defer d.mu.Unlock()
	g, ok := d.be.groups[req.GetGroupSnapshotId()]
	if !ok {
		return nil, status.Errorf(codes.NotFound, "group snapshot %q not found", req.GetGroupSnapshotId())
	}
	return &csi.GetVolumeGroupSnapshotResponse{GroupSnapshot: d.pollGroupLocked(g)}, nil
}

// pollGroupLocked answers about a group: one poll of each member.
func (d *Driver) pollGroupLocked(g *groupSnapshot) *csi.VolumeGroupSnapshot {
	var snaps []*csi.Snapshot
	for _, id := range g.SnapshotIDs {
		if snap, ok := d.be.snapshots[id]; ok {
			snap.poll()
			snaps = append(snaps, snap.csi())
		}
	}
	return d.renderGroupLocked(g, snaps)
}

func (d *Driver) renderGroupLocked(g *groupSnapshot, snaps []*csi.Snapshot) *csi.VolumeGroupSnapshot {
	return &csi.VolumeGroupSnapshot{
		GroupSnapshotId: g.ID,
		Snapshots:       snaps,
		CreationTime:    timestamppb.New(g.CreatedAt),
		ReadyToUse:      d.be.groupReady(g),
	}
}

package snapshotter

import (
	"context"
	"errors"
	"time"

	"github.com/container-storage-interface/spec/lib/go/csi"
	"google.golang.org/grpc/codes"

	"github.com/csi-kit/sidecars/csiconn"
)

// GroupDriver is what the sidecar needs from a CSI driver for volume group
// snapshots. *CSIDriver implements it; a Driver that does not, or whose
// SupportsGroupSnapshots is false, runs without group snapshots.
type GroupDriver interface {
	// SupportsGroupSnapshots reports the GroupController capability
	// CREATE_DELETE_GET_VOLUME_GROUP_SNAPSHOT.
	SupportsGroupSnapshots() bool
	// CreateGroupSnapshot cuts (or, called again with the same name,
	// returns) one snapshot of each of volumeIDs, together.
	CreateGroupSnapshot(ctx context.Context, name string, volumeIDs []string, params, secrets map[string]string) (GroupSnapshotInfo, error)
	// DeleteGroupSnapshot deletes a group snapshot and its members; an
	// unknown group is success.
	DeleteGroupSnapshot(ctx context.Context, groupID string, snapshotIDs []string, secrets map[string]string) error
	// GroupSnapshotStatus reports a pre-provisioned group snapshot.
	GroupSnapshotStatus(ctx context.Context, groupID string, snapshotIDs []string, secrets map[string]string) (GroupSnapshotInfo, error)
}

// GroupSnapshotInfo is what a driver said about one group snapshot.
type GroupSnapshotInfo struct {
	Handle       string
	Ready        bool
	CreationTime time.Time
	// Members are the snapshots of the group, one per source volume.
	Members []GroupMember
}

// GroupMember is one snapshot of a group snapshot.
type GroupMember struct {
	// VolumeHandle is the snapshot's source volume.
	VolumeHandle string
	SnapshotInfo
}

var _ GroupDriver = (*CSIDriver)(nil)

// SupportsGroupSnapshots reports whether the driver advertised the
// GroupController capability CREATE_DELETE_GET_VOLUME_GROUP_SNAPSHOT.
func (d *CSIDriver) SupportsGroupSnapshots() bool {
	return d.conn.Capabilities().HasGroup(csi.GroupControllerServiceCapability_RPC_CREATE_DELETE_GET_VOLUME_GROUP_SNAPSHOT)
}

func (d *CSIDriver) CreateGroupSnapshot(ctx context.Context, name string, volumeIDs []string, params, secrets map[string]string) (GroupSnapshotInfo, error) {
	ctx, cancel := d.conn.CallContext(ctx)
	defer cancel()
	resp, err := d.conn.GroupController().CreateVolumeGroupSnapshot(ctx, &csi.CreateVolumeGroupSnapshotRequest{
		Name: name, SourceVolumeIds: volumeIDs, Parameters: params, Secrets: secrets,
	})
	if err != nil {
		return GroupSnapshotInfo{}, csiconn.NewCallError(csiconn.OpCreateGroup, err)
	}
	return groupInfoOf(resp.GetGroupSnapshot()), nil
}

func (d *CSIDriver) DeleteGroupSnapshot(ctx context.Context, groupID string, snapshotIDs []string, secrets map[string]string) error {
	ctx, cancel := d.conn.CallContext(ctx)
	defer cancel()
	_, err := d.conn.GroupController().DeleteVolumeGroupSnapshot(ctx, &csi.DeleteVolumeGroupSnapshotRequest{
		GroupSnapshotId: groupID, SnapshotIds: snapshotIDs, Secrets: secrets,
	})
	if csiconn.Code(err) == codes.NotFound {
		return nil // the group snapshot is gone, which is what was asked
	}
	return csiconn.NewCallError(csiconn.OpDeleteGroup, err)
}

func (d *CSIDriver) GroupSnapshotStatus(ctx context.Context, groupID string, snapshotIDs []string, secrets map[string]string) (GroupSnapshotInfo, error) {
	ctx, cancel := d.conn.CallContext(ctx)
	defer cancel()
	resp, err := d.conn.GroupController().GetVolumeGroupSnapshot(ctx, &csi.GetVolumeGroupSnapshotRequest{
		GroupSnapshotId: groupID, SnapshotIds: snapshotIDs, Secrets: secrets,
	})
	if err != nil {
		return GroupSnapshotInfo{}, csiconn.NewCallError(csiconn.OpGetGroup, err)
	}
	if resp.GetGroupSnapshot() == nil {
		return GroupSnapshotInfo{}, errors.New("GetVolumeGroupSnapshot returned no group snapshot")
	}
	return groupInfoOf(resp.GetGroupSnapshot()), nil
}

func groupInfoOf(g *csi.VolumeGroupSnapshot) GroupSnapshotInfo {
	info := GroupSnapshotInfo{Handle: g.GetGroupSnapshotId(), Ready: g.GetReadyToUse()}
	if ts := g.GetCreationTime(); ts != nil && (ts.Seconds != 0 || ts.Nanos != 0) {
		info.CreationTime = ts.AsTime()
	}
	for _, s := range g.GetSnapshots() {
		info.Members = append(info.Members, GroupMember{VolumeHandle: s.GetSourceVolumeId(), SnapshotInfo: infoOf(s)})
	}
	return info
}

package snapshotter

import (
	"context"
	"fmt"

	"github.com/container-storage-interface/spec/lib/go/csi"
	"google.golang.org/grpc/codes"

	"github.com/csi-kit/sidecars/csiconn"
)

// Driver is all the sidecar needs from a CSI driver. *CSIDriver implements
// it over a csiconn connection; tests may bring their own.
type Driver interface {
	// CreateSnapshot cuts (or, called again with the same name, returns)
	// a snapshot of volumeID.
	CreateSnapshot(ctx context.Context, name, volumeID string, params, secrets map[string]string) (SnapshotInfo, error)
	// DeleteSnapshot deletes a snapshot; an unknown handle is success.
	// (The sidecar also counts a NotFound answer as success.)
	DeleteSnapshot(ctx context.Context, handle string, secrets map[string]string) error
	// SnapshotStatus reports a pre-provisioned snapshot. Drivers without
	// LIST_SNAPSHOTS report it ready.
	SnapshotStatus(ctx context.Context, handle string, secrets map[string]string) (SnapshotInfo, error)
}

// CSIDriver is a Driver on a CSI connection. Each call is bounded by the
// connection's call timeout.
type CSIDriver struct {
	conn *csiconn.Conn
}

// NewCSIDriver returns the Driver of conn. It fails when the driver does
// not advertise CREATE_DELETE_SNAPSHOT.
func NewCSIDriver(conn *csiconn.Conn) (*CSIDriver, error) {
	if !conn.Capabilities().HasController(csi.ControllerServiceCapability_RPC_CREATE_DELETE_SNAPSHOT) {
		return nil, fmt.Errorf("CSI driver %q does not advertise the controller capability CREATE_DELETE_SNAPSHOT: it cannot take snapshots", conn.DriverName())
	}
	return &CSIDriver{conn: conn}, nil
}

var _ Driver = (*CSIDriver)(nil)

// WatchLoss returns an error wrapping csiconn.ErrConnectionLost once the
// driver's connection is lost, or nil when ctx ends.
func (d *CSIDriver) WatchLoss(ctx context.Context) error { return d.conn.WatchLoss(ctx) }

func (d *CSIDriver) CreateSnapshot(ctx context.Context, name, volumeID string, params, secrets map[string]string) (SnapshotInfo, error) {
	ctx, cancel := d.conn.CallContext(ctx)
	defer cancel()
	resp, err := d.conn.Controller().CreateSnapshot(ctx, &csi.CreateSnapshotRequest{
		Name: name, SourceVolumeId: volumeID, Parameters: params, Secrets: secrets,
	})
	if err != nil {
		return SnapshotInfo{}, csiconn.NewCallError(csiconn.OpCreateSnapshot, err)
	}
	return infoOf(resp.GetSnapshot()), nil
}

func (d *CSIDriver) DeleteSnapshot(ctx context.Context, handle string, secrets map[string]string) error {
	ctx, cancel := d.conn.CallContext(ctx)
	defer cancel()
	_, err := d.conn.Controller().DeleteSnapshot(ctx, &csi.DeleteSnapshotRequest{SnapshotId: handle, Secrets: secrets})
	if csiconn.Code(err) == codes.NotFound {
		return nil // the snapshot is gone, which is what was asked
	}
	return csiconn.NewCallError(csiconn.OpDeleteSnapshot, err)
}

func (d *CSIDriver) SnapshotStatus(ctx context.Context, handle string, secrets map[string]string) (SnapshotInfo, error) {
	if !d.conn.Capabilities().HasController(csi.ControllerServiceCapability_RPC_LIST_SNAPSHOTS) {
		return SnapshotInfo{Handle: handle, Ready: true}, nil
	}
	ctx, cancel := d.conn.CallContext(ctx)
	defer cancel()
	resp, err := d.conn.Controller().ListSnapshots(ctx, &csi.ListSnapshotsRequest{SnapshotId: handle, Secrets: secrets})
	if err != nil {
		return SnapshotInfo{}, csiconn.NewCallError(csiconn.OpGetSnapshot, err)
	}
	if len(resp.GetEntries()) == 0 {
		return SnapshotInfo{}, fmt.Errorf("can not find snapshot for snapshotID %s", handle)
	}
	return infoOf(resp.GetEntries()[0].GetSnapshot()), nil
}

func infoOf(s *csi.Snapshot) SnapshotInfo {
	info := SnapshotInfo{
		Handle:      s.GetSnapshotId(),
		Ready:       s.GetReadyToUse(),
		Size:        s.GetSizeBytes(),
		GroupHandle: s.GetGroupSnapshotId(),
	}
	if ts := s.GetCreationTime(); ts != nil && (ts.Seconds != 0 || ts.Nanos != 0) {
		info.CreationTime = ts.AsTime()
	}
	return info
}

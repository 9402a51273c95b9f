package snapshotter

import (
	"context"
	"errors"
	"slices"
	"testing"

	"github.com/container-storage-interface/spec/lib/go/csi"
	"google.golang.org/grpc/codes"

	"github.com/csi-kit/sidecars/csiconn"
	"github.com/csi-kit/sidecars/testkit/fakedriver"
)

// TestGroupCSIDriver runs the group calls of CSIDriver against the fake
// driver over its socket.
func TestGroupCSIDriver(t *testing.T) {
	ctx := context.Background()
	drv, conn, vol := startDriver(t, fakedriver.Snapshotter)
	other, err := conn.Controller().CreateVolume(ctx, volumeRequest("v2"))
	if err != nil {
		t.Fatal(err)
	}
	vols := []string{vol, other.GetVolume().GetVolumeId()}
	d, err := NewCSIDriver(conn)
	if err != nil {
		t.Fatal(err)
	}
	if !d.SupportsGroupSnapshots() {
		t.Fatal("SupportsGroupSnapshots = false for a driver with the GroupController capability")
	}

	info, err := d.CreateGroupSnapshot(ctx, "g1", vols, map[string]string{"a": "b"}, map[string]string{"key": "val"})
	if err != nil || info.Handle == "" || !info.Ready || info.CreationTime.IsZero() || len(info.Members) != 2 {
		t.Fatalf("CreateGroupSnapshot = %+v, %v", info, err)
	}
	var ids []string
	for i, m := range info.Members {
		if m.VolumeHandle != vols[i] || m.Handle == "" || m.GroupHandle != info.Handle || m.Size != 1<<30 {
			t.Errorf("member %d = %+v", i, m)
		}
		ids = append(ids, m.Handle)
	}
	reqs := drv.Requests("CreateVolumeGroupSnapshot")
	req := reqs[len(reqs)-1].(*csi.CreateVolumeGroupSnapshotRequest)
	if req.GetName() != "g1" || !slices.Equal(req.GetSourceVolumeIds(), vols) || req.GetParameters()["a"] != "b" || req.GetSecrets()["key"] != "val" {
		t.Errorf("request %v", req)
	}

	st, err := d.GroupSnapshotStatus(ctx, info.Handle, ids, map[string]string{"get": "s"})
	if err != nil || st.Handle != info.Handle || !st.Ready || len(st.Members) != 2 {
		t.Errorf("GroupSnapshotStatus = %+v, %v", st, err)
	}
	if get := drv.Requests("GetVolumeGroupSnapshot")[0].(*csi.GetVolumeGroupSnapshotRequest); !slices.Equal(get.GetSnapshotIds(), ids) || get.GetSecrets()["get"] != "s" {
		t.Errorf("get request %v", get)
	}

	if err := d.DeleteGroupSnapshot(ctx, info.Handle, ids, nil); err != nil {
		t.Fatalf("DeleteGroupSnapshot: %v", err)
	}
	if n := len(drv.GroupSnapshots()); n != 0 {
		t.Errorf("%d group snapshots left after delete", n)
	}

	drv.FailNext("DeleteVolumeGroupSnapshot", codes.NotFound, 1)
	if err := d.DeleteGroupSnapshot(ctx, info.Handle, ids, nil); err != nil {
		t.Errorf("DeleteGroupSnapshot answered NotFound: %v, want success (the group is gone)", err)
	}
	drv.FailNext("DeleteVolumeGroupSnapshot", codes.Unavailable, 1)
	if err := d.DeleteGroupSnapshot(ctx, info.Handle, ids, nil); csiconn.ClassOf(err) != csiconn.Transient {
		t.Errorf("DeleteGroupSnapshot answered Unavailable: %v, want a transient error", err)
	}
	_, err = d.GroupSnapshotStatus(ctx, info.Handle, ids, nil)
	var ce *csiconn.CallError
	if !errors.As(err, &ce) || ce.Op != csiconn.OpGetGroup || ce.Class != csiconn.Final {
		t.Errorf("GroupSnapshotStatus of a deleted group = %v, want a final GetVolumeGroupSnapshot error", err)
	}
	drv.FailNext("CreateVolumeGroupSnapshot", codes.DeadlineExceeded, 1)
	if _, err := d.CreateGroupSnapshot(ctx, "g2", vols, nil, nil); csiconn.ClassOf(err) != csiconn.Transient {
		t.Errorf("CreateGroupSnapshot answered DeadlineExceeded: %v, want a transient error", err)
	}
}

func TestGroupCSIDriverWithoutCapability(t *testing.T) {
	caps := fakedriver.Snapshotter
	caps.GroupController = false
	_, conn, _ := startDriver(t, caps)
	d, err := NewCSIDriver(conn)
	if err != nil {
		t.Fatal(err)
	}
	if d.SupportsGroupSnapshots() {
		t.Fatal("SupportsGroupSnapshots = true for a driver without the GroupController service")
	}
}

package fakedriver_test

import (
	"slices"
	"testing"

	"github.com/container-storage-interface/spec/lib/go/csi"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/csi-kit/sidecars/testkit/fakedriver"
)

func TestCreateSnapshot(t *testing.T) {
	d, c := start(t, fakedriver.Options{})
	v1 := mustCreate(t, c, createReq("v1", 2*gi))
	v2 := mustCreate(t, c, createReq("v2", gi))
	for _, tc := range []struct {
		name, snap, source string
		want               codes.Code
	}{
		{"no name", "", v1.GetVolumeId(), codes.InvalidArgument},
		{"no source", "s", "", codes.InvalidArgument},
		{"unknown source", "s", "nope", codes.NotFound},
		{"create", "s", v1.GetVolumeId(), codes.OK},
		{"same name and source", "s", v1.GetVolumeId(), codes.OK},
		{"same name, other source", "s", v2.GetVolumeId(), codes.AlreadyExists},
	} {
		rsp, err := c.ctl.CreateSnapshot(ctx(t), &csi.CreateSnapshotRequest{Name: tc.snap, SourceVolumeId: tc.source})
		wantCode(t, tc.name, err, tc.want)
		if err == nil && (rsp.GetSnapshot().GetSizeBytes() != 2*gi || !rsp.GetSnapshot().GetReadyToUse()) {
			t.Errorf("%s: snapshot = %v, want 2Gi and ready", tc.name, rsp.GetSnapshot())
		}
	}
	snaps := d.Snapshots()
	if len(snaps) != 1 || snaps[0].SourceVolumeID != v1.GetVolumeId() || snaps[0].CreatedAt.IsZero() {
		t.Fatalf("Snapshots = %+v, want one of v1", snaps)
	}

	// Restoring: the snapshot must exist and the new volume is at least as large.
	_, err := c.ctl.CreateVolume(ctx(t), fromSnapshot(createReq("r1", gi), snaps[0].ID))
	wantCode(t, "restore smaller than the snapshot", err, codes.OutOfRange)
	r := mustCreate(t, c, fromSnapshot(createReq("r2", 0), snaps[0].ID))
	if r.GetCapacityBytes() != 2*gi || r.GetContentSource().GetSnapshot().GetSnapshotId() != snaps[0].ID {
		t.Errorf("restored volume = %v", r)
	}

	for _, id := range []string{snaps[0].ID, snaps[0].ID, "unknown"} {
		_, err := c.ctl.DeleteSnapshot(ctx(t), &csi.DeleteSnapshotRequest{SnapshotId: id})
		wantCode(t, "DeleteSnapshot "+id, err, codes.OK)
	}
	_, err = c.ctl.DeleteSnapshot(ctx(t), &csi.DeleteSnapshotRequest{})
	wantCode(t, "DeleteSnapshot without ID", err, codes.InvalidArgument)
	if n := len(d.Snapshots()); n != 0 {
		t.Errorf("%d snapshots left", n)
	}
}

// TestSnapshotReadiness: the first N answers say not ready, whichever RPC
// gives them.
func TestSnapshotReadiness(t *testing.T) {
	d, c := start(t, fakedriver.Options{SnapshotNotReadyPolls: 3})
	v := mustCreate(t, c, createReq("v", gi))
	req := &csi.CreateSnapshotRequest{Name: "s", SourceVolumeId: v.GetVolumeId()}
	var ready []bool
	rsp, err := c.ctl.CreateSnapshot(ctx(t), req)
	if err != nil {
		t.Fatal(err)
	}
	id := rsp.GetSnapshot().GetSnapshotId()
	ready = append(ready, rsp.GetSnapshot().GetReadyToUse())
	if d.Snapshots()[0].ReadyToUse {
		t.Error("inventory says ready too early")
	}
	rsp, err = c.ctl.CreateSnapshot(ctx(t), req)
	if err != nil {
		t.Fatal(err)
	}
	ready = append(ready, rsp.GetSnapshot().GetReadyToUse())
	list, err := c.ctl.ListSnapshots(ctx(t), &csi.ListSnapshotsRequest{SnapshotId: id})
	if err != nil {
		t.Fatal(err)
	}
	ready = append(ready, list.GetEntries()[0].GetSnapshot().GetReadyToUse())
	get, err := c.ctl.GetSnapshot(ctx(t), &csi.GetSnapshotRequest{SnapshotId: id})
	if err != nil {
		t.Fatal(err)
	}
	ready = append(ready, get.GetSnapshot().GetReadyToUse())
	if want := []bool{false, false, false, true}; !slices.Equal(ready, want) {
		t.Errorf("ready_to_use answers = %v, want %v", ready, want)
	}
	if !d.Snapshots()[0].ReadyToUse {
		t.Error("inventory says not ready after the polls")
	}
}

func TestListSnapshots(t *testing.T) {
	_, c := start(t, fakedriver.Options{})
	var vols, snaps []string
	for _, n := range []string{"a", "b", "c"} {
		v := mustCreate(t, c, createReq(n, gi))
		rsp, err := c.ctl.CreateSnapshot(ctx(t), &csi.CreateSnapshotRequest{Name: "snap-" + n, SourceVolumeId: v.GetVolumeId()})
		if err != nil {
			t.Fatal(err)
		}
		vols, snaps = append(vols, v.GetVolumeId()), append(snaps, rsp.GetSnapshot().GetSnapshotId())
	}
	ids := func(r *csi.ListSnapshotsResponse) []string {
		var out []string
		for _, e := range r.GetEntries() {
			out = append(out, e.GetSnapshot().GetSnapshotId())
		}
		return out
	}
	for _, tc := range []struct {
		name     string
		req      *csi.ListSnapshotsRequest
		want     []string
		wantNext bool
		wantCode codes.Code
	}{
		{name: "all", req: &csi.ListSnapshotsRequest{}, want: snaps},
		{name: "by ID", req: &csi.ListSnapshotsRequest{SnapshotId: snaps[1]}, want: snaps[1:2]},
		{name: "unknown ID", req: &csi.ListSnapshotsRequest{SnapshotId: "nope"}},
		{name: "by source", req: &csi.ListSnapshotsRequest{SourceVolumeId: vols[2]}, want: snaps[2:]},
		{name: "first page", req: &csi.ListSnapshotsRequest{MaxEntries: 2}, want: snaps[:2], wantNext: true},
		{name: "second page", req: &csi.ListSnapshotsRequest{StartingToken: "2"}, want: snaps[2:]},
		{name: "bad token", req: &csi.ListSnapshotsRequest{StartingToken: "x"}, wantCode: codes.Aborted},
	} {
		rsp, err := c.ctl.ListSnapshots(ctx(t), tc.req)
		if code := status.Code(err); code != tc.wantCode {
			t.Errorf("%s: code %v (%v), want %v", tc.name, code, err, tc.wantCode)
			continue
		}
		sameStrings(t, tc.name, ids(rsp), tc.want)
		if (rsp.GetNextToken() != "") != tc.wantNext {
			t.Errorf("%s: next token %q", tc.name, rsp.GetNextToken())
		}
	}
	_, err := c.ctl.GetSnapshot(ctx(t), &csi.GetSnapshotRequest{SnapshotId: "nope"})
	wantCode(t, "GetSnapshot unknown", err, codes.NotFound)
}

func TestGroupSnapshots(t *testing.T) {
	d, c := start(t, fakedriver.Options{SnapshotNotReadyPolls: 1})
	a := mustCreate(t, c, createReq("a", gi)).GetVolumeId()
	b := mustCreate(t, c, createReq("b", 2*gi)).GetVolumeId()
	create := func(name string, vols ...string) (*csi.VolumeGroupSnapshot, error) {
		rsp, err := c.grp.CreateVolumeGroupSnapshot(ctx(t), &csi.CreateVolumeGroupSnapshotRequest{Name: name, SourceVolumeIds: vols})
		return rsp.GetGroupSnapshot(), err
	}
	g, err := create("g", a, b)
	if err != nil || len(g.GetSnapshots()) != 2 || g.GetReadyToUse() {
		t.Fatalf("CreateVolumeGroupSnapshot = %v, %v; want 2 snapshots, not ready", g, err)
	}
	for _, s := range g.GetSnapshots() {
		if s.GetGroupSnapshotId() != g.GetGroupSnapshotId() {
			t.Errorf("member %v lacks the group ID", s)
		}
	}
	again, err := create("g", b, a)
	if err != nil || again.GetGroupSnapshotId() != g.GetGroupSnapshotId() || !again.GetReadyToUse() {
		t.Errorf("repeat = %v, %v; want the same group, now ready", again, err)
	}
	_, err = create("g", a)
	wantCode(t, "same name, other volumes", err, codes.AlreadyExists)
	_, err = create("", a)
	wantCode(t, "no name", err, codes.InvalidArgument)
	_, err = create("h", "nope")
	wantCode(t, "unknown volume", err, codes.NotFound)

	get, err := c.grp.GetVolumeGroupSnapshot(ctx(t), &csi.GetVolumeGroupSnapshotRequest{GroupSnapshotId: g.GetGroupSnapshotId()})
	if err != nil || len(get.GetGroupSnapshot().GetSnapshots()) != 2 {
		t.Errorf("GetVolumeGroupSnapshot = %v, %v", get, err)
	}
	_, err = c.grp.GetVolumeGroupSnapshot(ctx(t), &csi.GetVolumeGroupSnapshotRequest{GroupSnapshotId: "nope"})
	wantCode(t, "get unknown", err, codes.NotFound)
	if gs := d.GroupSnapshots(); len(gs) != 1 || len(gs[0].SnapshotIDs) != 2 || !gs[0].ReadyToUse {
		t.Errorf("GroupSnapshots = %+v", gs)
	}

	for _, id := range []string{g.GetGroupSnapshotId(), "unknown"} {
		_, err := c.grp.DeleteVolumeGroupSnapshot(ctx(t), &csi.DeleteVolumeGroupSnapshotRequest{GroupSnapshotId: id})
		wantCode(t, "delete "+id, err, codes.OK)
	}
	if len(d.GroupSnapshots()) != 0 || len(d.Snapshots()) != 0 {
		t.Errorf("left behind: %v, %v", d.GroupSnapshots(), d.Snapshots())
	}
}

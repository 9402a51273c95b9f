package fakedriver_test

import (
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/container-storage-interface/spec/lib/go/csi"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/csi-kit/sidecars/testkit/fakedriver"
)

// TestStateDirSurvivesProcess: a second Driver on the same StateDir, as a
// restarted process would be, sees the first one's volumes, snapshots,
// publications and pool usage, and answers repeated calls idempotently.
func TestStateDirSurvivesProcess(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "state") // created by Serve
	opts := fakedriver.Options{
		StateDir: dir, Capacity: 10 * gi, SnapshotNotReadyPolls: 2,
		Nodes: []fakedriver.Node{{ID: "other"}},
	}
	d1, c1 := start(t, opts)
	vol := mustCreate(t, c1, createReq("keep", 2*gi))
	seg := vol.GetAccessibleTopology()[0].GetSegments()
	snap, err := c1.ctl.CreateSnapshot(ctx(t), &csi.CreateSnapshotRequest{Name: "snap", SourceVolumeId: vol.GetVolumeId()})
	if err != nil {
		t.Fatal(err)
	}
	clone := mustCreate(t, c1, &csi.CreateVolumeRequest{
		Name: "clone", VolumeCapabilities: []*csi.VolumeCapability{rwo},
		VolumeContentSource: &csi.VolumeContentSource{Type: &csi.VolumeContentSource_Snapshot{
			Snapshot: &csi.VolumeContentSource_SnapshotSource{SnapshotId: snap.GetSnapshot().GetSnapshotId()}}},
	})
	if _, err := c1.ctl.ControllerPublishVolume(ctx(t), &csi.ControllerPublishVolumeRequest{
		VolumeId: vol.GetVolumeId(), NodeId: "other", VolumeCapability: rwo,
	}); err != nil {
		t.Fatal(err)
	}
	before := d1.Volumes()
	beforeSnaps := d1.Snapshots()
	d1.Stop()

	d2, c2 := start(t, opts)
	if got := d2.Volumes(); !reflect.DeepEqual(got, before) {
		t.Errorf("volumes after reload:\n%+v\nwant\n%+v", got, before)
	}
	if got := d2.Snapshots(); len(got) != 1 || got[0].ID != beforeSnaps[0].ID || got[0].ReadyToUse ||
		!got[0].CreatedAt.Equal(beforeSnaps[0].CreatedAt) {
		t.Errorf("snapshots after reload = %+v, want %+v", got, beforeSnaps)
	}
	// Same name, same everything: the same volume, not a new one.
	again := mustCreate(t, c2, createReq("keep", 2*gi))
	if again.GetVolumeId() != vol.GetVolumeId() {
		t.Errorf("CreateVolume after reload = %s, want %s", again.GetVolumeId(), vol.GetVolumeId())
	}
	cloneAgain := mustCreate(t, c2, &csi.CreateVolumeRequest{
		Name: "clone", VolumeCapabilities: []*csi.VolumeCapability{rwo},
		VolumeContentSource: clone.GetContentSource(),
	})
	if cloneAgain.GetVolumeId() != clone.GetVolumeId() {
		t.Errorf("clone after reload = %s, want %s", cloneAgain.GetVolumeId(), clone.GetVolumeId())
	}
	_, err = c2.ctl.CreateVolume(ctx(t), createReq("keep", 3*gi))
	wantCode(t, "CreateVolume with another size after reload", err, codes.AlreadyExists)
	// Still attached, so still in use.
	_, err = c2.ctl.DeleteVolume(ctx(t), &csi.DeleteVolumeRequest{VolumeId: vol.GetVolumeId()})
	wantCode(t, "DeleteVolume of a published volume after reload", err, codes.FailedPrecondition)
	// Pool usage is rebuilt: 2Gi + 2Gi of 10Gi are taken.
	capRsp, err := c2.ctl.GetCapacity(ctx(t), &csi.GetCapacityRequest{AccessibleTopology: &csi.Topology{Segments: seg}})
	if err != nil {
		t.Fatal(err)
	}
	if got := capRsp.GetAvailableCapacity(); got != 6*gi {
		t.Errorf("GetCapacity after reload = %d, want %d", got, 6*gi)
	}
	// Snapshot polls carry over: one was spent by CreateSnapshot, so the
	// next answer is the last not-ready one.
	for i, want := range []bool{false, true} {
		rsp, err := c2.ctl.ListSnapshots(ctx(t), &csi.ListSnapshotsRequest{SnapshotId: snap.GetSnapshot().GetSnapshotId()})
		if err != nil {
			t.Fatal(err)
		}
		if got := rsp.GetEntries()[0].GetSnapshot().GetReadyToUse(); got != want {
			t.Errorf("poll %d after reload: ready=%v, want %v", i, got, want)
		}
	}
}

// TestStateDirDeleteIsDurable: deletions are saved too.
func TestStateDirDeleteIsDurable(t *testing.T) {
	dir := t.TempDir()
	d1, c1 := start(t, fakedriver.Options{StateDir: dir})
	vol := mustCreate(t, c1, createReq("gone", gi))
	mustCreate(t, c1, createReq("stays", gi))
	if _, err := c1.ctl.DeleteVolume(ctx(t), &csi.DeleteVolumeRequest{VolumeId: vol.GetVolumeId()}); err != nil {
		t.Fatal(err)
	}
	d1.Stop()
	d2 := fakedriver.Start(t, fakedriver.Options{StateDir: dir})
	if vs := d2.Volumes(); len(vs) != 1 || vs[0].Name != "stays" {
		t.Errorf("volumes after reload = %+v, want only \"stays\"", vs)
	}
	if entries, _ := filepath.Glob(filepath.Join(dir, ".state-*")); len(entries) != 0 {
		t.Errorf("temporary files left behind: %v", entries)
	}
}

// TestStateDirConcurrentWrites: the file ends up with the last state, not
// one overtaken by a concurrent call.
func TestStateDirConcurrentWrites(t *testing.T) {
	dir := t.TempDir()
	d1, c1 := start(t, fakedriver.Options{StateDir: dir})
	var wg sync.WaitGroup
	for i := range 20 {
		wg.Go(func() {
			if _, err := c1.ctl.CreateVolume(ctx(t), createReq("v"+string(rune('a'+i)), gi)); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	d1.Stop()
	d2 := fakedriver.Start(t, fakedriver.Options{StateDir: dir})
	if n := len(d2.Volumes()); n != 20 {
		t.Errorf("volumes after reload = %d, want 20", n)
	}
}

func TestStateDirRefusesBadFiles(t *testing.T) {
	for _, tc := range []struct {
		name, content, want string
	}{
		{"not JSON", "{", "unexpected end"},
		{"other version", `{"version": 99, "driver": "fake.csi.k8s.io"}`, "version 99"},
		{"other driver", `{"version": 1, "driver": "other.csi.example.com"}`, "other.csi.example.com"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			if err := os.WriteFile(filepath.Join(dir, fakedriver.StateFile), []byte(tc.content), 0o600); err != nil {
				t.Fatal(err)
			}
			d, err := fakedriver.New(fakedriver.Options{StateDir: dir})
			if err != nil {
				t.Fatal(err)
			}
			if err := d.Serve(); err == nil || !strings.Contains(err.Error(), tc.want) {
				d.Stop()
				t.Errorf("Serve error = %v, want one mentioning %q", err, tc.want)
			}
		})
	}
}

// TestStateDirUnwritable: a state directory that cannot be written fails
// Serve, not the first CreateVolume.
func TestStateDirUnwritable(t *testing.T) {
	file := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(file, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	d, err := fakedriver.New(fakedriver.Options{StateDir: filepath.Join(file, "sub")})
	if err != nil {
		t.Fatal(err)
	}
	if err := d.Serve(); err == nil {
		d.Stop()
		t.Error("Serve with a state directory under a file succeeded")
	}
}

// TestObserve: every answered call is reported with its outcome.
func TestObserve(t *testing.T) {
	var mu sync.Mutex
	seen := map[string][]codes.Code{}
	d, c := start(t, fakedriver.Options{Observe: func(method string, err error, _ time.Duration) {
		mu.Lock()
		defer mu.Unlock()
		seen[method] = append(seen[method], status.Code(err))
	}})
	d.FailNext("CreateVolume", codes.Unavailable, 1)
	_, err := c.ctl.CreateVolume(ctx(t), createReq("a", gi))
	wantCode(t, "injected CreateVolume", err, codes.Unavailable)
	mustCreate(t, c, createReq("a", gi))
	_, err = c.ctl.DeleteVolume(ctx(t), &csi.DeleteVolumeRequest{})
	wantCode(t, "DeleteVolume without ID", err, codes.InvalidArgument)
	mu.Lock()
	defer mu.Unlock()
	if got, want := seen["CreateVolume"], []codes.Code{codes.Unavailable, codes.OK}; !slices.Equal(got, want) {
		t.Errorf("observed CreateVolume = %v, want %v", got, want)
	}
	if got, want := seen["DeleteVolume"], []codes.Code{codes.InvalidArgument}; !slices.Equal(got, want) {
		t.Errorf("observed DeleteVolume = %v, want %v", got, want)
	}
}

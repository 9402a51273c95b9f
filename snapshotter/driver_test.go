package snapshotter

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/container-storage-interface/spec/lib/go/csi"
	"google.golang.org/grpc/codes"

	"github.com/csi-kit/sidecars/csiconn"
	"github.com/csi-kit/sidecars/testkit/fakedriver"
)

func startDriver(t *testing.T, caps fakedriver.Capabilities) (*fakedriver.Driver, *csiconn.Conn, string) {
	t.Helper()
	drv := fakedriver.Start(t, fakedriver.Options{Capabilities: caps, RequireSecrets: map[string]map[string]string{}})
	conn, err := csiconn.Connect(context.Background(), csiconn.Options{Address: drv.Endpoint(), CallTimeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	vol, err := conn.Controller().CreateVolume(context.Background(), volumeRequest("v"))
	if err != nil && caps.CreateDelete {
		t.Fatal(err)
	}
	return drv, conn, vol.GetVolume().GetVolumeId()
}

func TestNewCSIDriverNeedsSnapshots(t *testing.T) {
	caps := fakedriver.Snapshotter
	caps.Snapshots = false
	_, conn, _ := startDriver(t, caps)
	if _, err := NewCSIDriver(conn); err == nil || !strings.Contains(err.Error(), "CREATE_DELETE_SNAPSHOT") {
		t.Fatalf("NewCSIDriver = %v, want an error naming CREATE_DELETE_SNAPSHOT", err)
	}
}

func TestCSIDriver(t *testing.T) {
	ctx := context.Background()
	drv, conn, vol := startDriver(t, fakedriver.Snapshotter)
	d, err := NewCSIDriver(conn)
	if err != nil {
		t.Fatal(err)
	}
	t.Run("success and attributes", func(t *testing.T) {
		info, err := d.CreateSnapshot(ctx, "s1", vol, map[string]string{"a": "b"}, map[string]string{"key": "val"})
		if err != nil || info.Handle == "" || !info.Ready || info.Size != 1<<30 || info.CreationTime.IsZero() {
			t.Fatalf("CreateSnapshot = %+v, %v", info, err)
		}
		reqs := drv.Requests("CreateSnapshot")
		req, ok := reqs[len(reqs)-1].(*csi.CreateSnapshotRequest)
		if !ok || req.GetParameters()["a"] != "b" || req.GetSecrets()["key"] != "val" {
			t.Errorf("request %v lacks parameters or secrets", reqs[len(reqs)-1])
		}
		st, err := d.SnapshotStatus(ctx, info.Handle, nil)
		if err != nil || st.Handle != info.Handle || !st.Ready {
			t.Errorf("SnapshotStatus = %+v, %v", st, err)
		}
		if err := d.DeleteSnapshot(ctx, info.Handle, nil); err != nil {
			t.Fatal(err)
		}
		if len(drv.Snapshots()) != 0 {
			t.Errorf("backend %+v after delete", drv.Snapshots())
		}
	})
	for _, tc := range []struct {
		code codes.Code
		want csiconn.Class
	}{
		{codes.Unavailable, csiconn.Transient},
		{codes.DeadlineExceeded, csiconn.Transient},
		{codes.ResourceExhausted, csiconn.Transient},
		{codes.InvalidArgument, csiconn.Final},
	} {
		t.Run("create error "+tc.code.String(), func(t *testing.T) {
			drv.FailNext("CreateSnapshot", tc.code, 1)
			_, err := d.CreateSnapshot(ctx, "s2", vol, nil, nil)
			if err == nil || classify(err) != tc.want {
				t.Fatalf("CreateSnapshot err = %v, class %v, want %v", err, classify(err), tc.want)
			}
		})
	}
	t.Run("delete error", func(t *testing.T) {
		drv.FailNext("DeleteSnapshot", codes.Internal, 1)
		if err := d.DeleteSnapshot(ctx, "x", nil); err == nil {
			t.Fatal("DeleteSnapshot succeeded")
		}
	})
	t.Run("delete answered NotFound is success", func(t *testing.T) {
		drv.FailNext("DeleteSnapshot", codes.NotFound, 1)
		if err := d.DeleteSnapshot(ctx, "gone", nil); err != nil {
			t.Fatalf("DeleteSnapshot = %v, want success: the snapshot is gone", err)
		}
	})
	t.Run("status of unknown snapshot", func(t *testing.T) {
		if _, err := d.SnapshotStatus(ctx, "nope", nil); err == nil {
			t.Fatal("SnapshotStatus of an unknown snapshot succeeded")
		}
	})
}

func TestCSIDriverWithoutListSnapshots(t *testing.T) {
	caps := fakedriver.Snapshotter
	caps.ListSnapshots = false
	drv, conn, _ := startDriver(t, caps)
	d, err := NewCSIDriver(conn)
	if err != nil {
		t.Fatal(err)
	}
	info, err := d.SnapshotStatus(context.Background(), "h", nil)
	if err != nil || !info.Ready || info.Size != 0 || info.Handle != "h" {
		t.Fatalf("SnapshotStatus = %+v, %v: want ready without asking", info, err)
	}
	if n := drv.Calls("ListSnapshots"); n != 0 {
		t.Errorf("ListSnapshots called %d times", n)
	}
}

func TestClassifyNonCSIError(t *testing.T) {
	if classify(errors.New("plain")) != csiconn.Transient {
		t.Error("a non-gRPC error must keep the being-created annotation")
	}
}

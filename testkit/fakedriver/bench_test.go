package fakedriver_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/container-storage-interface/spec/lib/go/csi"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/csi-kit/sidecars/testkit/fakedriver"
)

// BenchmarkCreateDeleteVolume measures one CreateVolume plus DeleteVolume
// round trip through the socket, with a backend already holding n volumes:
// the floor under any sidecar benchmark that uses the fake. With
// state=dir every call also rewrites and syncs the state file.
func BenchmarkCreateDeleteVolume(b *testing.B) {
	for _, tc := range []struct {
		n     int
		state bool
	}{{0, false}, {1000, false}, {0, true}, {1000, true}} {
		n, where := tc.n, "memory"
		if tc.state {
			where = "dir"
		}
		b.Run(fmt.Sprintf("existing=%d/state=%s", n, where), func(b *testing.B) {
			opts := fakedriver.Options{Capabilities: fakedriver.Provisioner}
			if tc.state {
				opts.StateDir = b.TempDir()
			}
			d := fakedriver.Start(b, opts)
			conn, err := grpc.NewClient(d.Endpoint(), grpc.WithTransportCredentials(insecure.NewCredentials()))
			if err != nil {
				b.Fatal(err)
			}
			defer conn.Close()
			ctl := csi.NewControllerClient(conn)
			ctx := context.Background()
			for i := range n {
				if _, err := ctl.CreateVolume(ctx, createReq(fmt.Sprintf("old-%d", i), gi)); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportAllocs()
			for i := 0; b.Loop(); i++ {
				rsp, err := ctl.CreateVolume(ctx, createReq(fmt.Sprintf("v-%d", i), gi))
				if err != nil {
					b.Fatal(err)
				}
				if _, err := ctl.DeleteVolume(ctx, &csi.DeleteVolumeRequest{VolumeId: rsp.GetVolume().GetVolumeId()}); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

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
// the floor under any sidecar benchmark that uses the fake.
func BenchmarkCreateDeleteVolume(b *testing.B) {
	for _, n := range []int{0, 1000} {
		b.Run(fmt.Sprintf("existing=%d", n), func(b *testing.B) {
			d := fakedriver.Start(b, fakedriver.Options{Capabilities: fakedriver.Provisioner})
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

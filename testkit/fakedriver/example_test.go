package fakedriver_test

import (
	"context"
	"fmt"
	"log"

	"github.com/container-storage-interface/spec/lib/go/csi"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"

	"github.com/csi-kit/sidecars/testkit/fakedriver"
)

// A driver outside a test: New, Serve, Stop. The first CreateVolume fails
// as injected, the retry succeeds, and the calls are counted.
func Example() {
	d, err := fakedriver.New(fakedriver.Options{Capabilities: fakedriver.Resizer, SizeStep: 1 << 30})
	if err != nil {
		log.Fatal(err)
	}
	if err := d.Serve(); err != nil {
		log.Fatal(err)
	}
	defer d.Stop()

	conn, err := grpc.NewClient(d.Endpoint(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		log.Fatal(err)
	}
	defer conn.Close()
	ctl := csi.NewControllerClient(conn)

	d.FailNext("CreateVolume", codes.Unavailable, 1)
	req := &csi.CreateVolumeRequest{
		Name:          "pvc-1",
		CapacityRange: &csi.CapacityRange{RequiredBytes: 1500 << 20}, // rounded up to 2Gi
		VolumeCapabilities: []*csi.VolumeCapability{{
			AccessMode: &csi.VolumeCapability_AccessMode{Mode: csi.VolumeCapability_AccessMode_SINGLE_NODE_WRITER},
			AccessType: &csi.VolumeCapability_Mount{Mount: &csi.VolumeCapability_MountVolume{}},
		}},
	}
	_, err = ctl.CreateVolume(context.Background(), req)
	fmt.Println("first try:", status.Code(err))
	rsp, err := ctl.CreateVolume(context.Background(), req)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("retry:", rsp.GetVolume().GetCapacityBytes()>>30, "GiB")
	fmt.Println("calls:", d.Calls("CreateVolume"), "volumes:", len(d.Volumes()))
	// Output:
	// first try: Unavailable
	// retry: 2 GiB
	// calls: 2 volumes: 1
}

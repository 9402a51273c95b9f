package fakedriver_test

import (
	"context"
	"fmt"
	"log"
	"os"

	"github.com/container-storage-interface/spec/lib/go/csi"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/csi-kit/sidecars/testkit/fakedriver"
)

// A driver with a state directory keeps its volumes when a new process
// (here: a new Driver) starts on the same directory.
func ExampleOptions_stateDir() {
	dir, err := os.MkdirTemp("", "fakedriver-state")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)

	serve := func() *fakedriver.Driver {
		d, err := fakedriver.New(fakedriver.Options{StateDir: dir})
		if err != nil {
			log.Fatal(err)
		}
		if err := d.Serve(); err != nil {
			log.Fatal(err)
		}
		return d
	}
	d := serve()
	conn, err := grpc.NewClient(d.Endpoint(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		log.Fatal(err)
	}
	defer conn.Close()
	_, err = csi.NewControllerClient(conn).CreateVolume(context.Background(), &csi.CreateVolumeRequest{
		Name: "pvc-1",
		VolumeCapabilities: []*csi.VolumeCapability{{
			AccessMode: &csi.VolumeCapability_AccessMode{Mode: csi.VolumeCapability_AccessMode_SINGLE_NODE_WRITER},
			AccessType: &csi.VolumeCapability_Mount{Mount: &csi.VolumeCapability_MountVolume{}},
		}},
	})
	if err != nil {
		log.Fatal(err)
	}
	d.Stop()

	d = serve() // as a restarted process would
	defer d.Stop()
	for _, v := range d.Volumes() {
		fmt.Println(v.Name, v.CapacityBytes>>30, "GiB")
	}
	// Output:
	// pvc-1 1 GiB
}

package controlplane_test

import (
	"context"
	"fmt"
	"log"
	"os"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/csi-kit/sidecars/testkit/controlplane"
)

// A control plane with the snapshot CRDs and one Ready node. Not run by go
// test (no Output line): it takes seconds and may build binaries.
func ExampleStart() {
	ctx := context.Background()
	cp, err := controlplane.Start(ctx, controlplane.Options{
		Scheduler:    true,
		SnapshotCRDs: true,
		Progress:     os.Stderr,
	})
	if err != nil {
		log.Fatal(err) // says which log to read and what to try
	}
	defer cp.Stop()

	kube := kubernetes.NewForConfigOrDie(cp.Config())
	if err := controlplane.CreateNode(ctx, kube, "node-1", nil); err != nil {
		log.Fatal(err)
	}
	nodes, err := kube.CoreV1().Nodes().List(ctx, metav1.ListOptions{})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(len(nodes.Items), "node; kubectl works with KUBECONFIG="+cp.KubeconfigPath())
}

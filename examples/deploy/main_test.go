package deploy

import (
	"flag"
	"fmt"
	"os"
	"testing"

	snapfake "github.com/kubernetes-csi/external-snapshotter/client/v8/clientset/versioned/fake"
	kubefake "k8s.io/client-go/kubernetes/fake"
	"k8s.io/klog/v2"

	"github.com/csi-kit/sidecars/snapshotter"

	"github.com/csi-kit/sidecars/testkit/controlplane"
)

// cp enforces RBAC; nil in -short mode.
var cp *controlplane.ControlPlane

func TestMain(m *testing.M) {
	klog.InitFlags(nil)
	flag.Parse()
	// The snapshotter package adds its types to client-go's global scheme
	// in its first NewController/NewSidecar; do it before the tests'
	// clients decode with that scheme from other goroutines.
	if _, err := snapshotter.NewController(snapshotter.ControllerOptions{SnapshotClient: snapfake.NewSimpleClientset()}, kubefake.NewClientset()); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	os.Exit(controlplane.RunTests(m, controlplane.Options{RBAC: true, SnapshotCRDs: true, Progress: os.Stderr}, &cp))
}

func needCluster(tb testing.TB) {
	tb.Helper()
	if cp == nil {
		tb.Skip("integration test: needs the control plane, skipped in -short mode")
	}
}

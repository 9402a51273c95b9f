package explain_test

import (
	"flag"
	"fmt"
	"os"
	"testing"

	"go.uber.org/goleak"

	"github.com/csi-kit/sidecars/testkit/controlplane"
)

// cp is the package's control plane; nil in -short mode.
var cp *controlplane.ControlPlane

func TestMain(m *testing.M) {
	flag.Parse()
	code := controlplane.RunTests(m, controlplane.Options{ControllerManager: true, SnapshotCRDs: true, Progress: os.Stderr}, &cp)
	if code == 0 {
		if err := goleak.Find(goleak.IgnoreTopFunction("k8s.io/klog/v2.(*flushDaemon).run.func1")); err != nil {
			fmt.Fprintf(os.Stderr, "goroutine leak: %v\n", err)
			code = 1
		}
	}
	os.Exit(code)
}

// needCluster skips a test in -short mode.
func needCluster(t testing.TB) {
	t.Helper()
	if cp == nil {
		t.Skip("needs the control plane (not in -short mode)")
	}
}

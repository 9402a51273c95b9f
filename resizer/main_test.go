package resizer_test

import (
	"context"
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
	code := run(m)
	if code == 0 {
		if err := goleak.Find(goleak.IgnoreTopFunction("k8s.io/klog/v2.(*flushDaemon).run.func1")); err != nil {
			fmt.Fprintf(os.Stderr, "goroutine leak: %v\n", err)
			code = 1
		}
	}
	os.Exit(code)
}

func run(m *testing.M) int {
	if testing.Short() {
		return m.Run()
	}
	var err error
	cp, err = controlplane.Start(context.Background(), controlplane.Options{ControllerManager: true, Progress: os.Stderr})
	if err != nil {
		fmt.Fprintf(os.Stderr, "starting control plane: %v\n", err)
		return 1
	}
	defer func() {
		if err := cp.Stop(); err != nil {
			fmt.Fprintf(os.Stderr, "stopping control plane: %v\n", err)
		}
	}()
	return m.Run()
}

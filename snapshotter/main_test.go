package snapshotter

import (
	"flag"
	"fmt"
	"os"
	"testing"

	"go.uber.org/goleak"
	"k8s.io/klog/v2"

	"github.com/csi-kit/sidecars/testkit/controlplane"
)

// cp is the package's control plane; nil in -short mode, where the
// integration tests and benchmarks skip.
var cp *controlplane.ControlPlane

// withKCM tells whether kube-controller-manager runs.
var withKCM bool

var leakOptions = []goleak.Option{
	goleak.IgnoreTopFunction("k8s.io/klog/v2.(*flushDaemon).run.func1"),
	goleak.IgnoreAnyFunction("k8s.io/apimachinery/pkg/watch.(*Broadcaster).loop"),
}

func TestMain(m *testing.M) {
	klog.InitFlags(nil)
	flag.Parse()
	extendBenchTimeout()
	// The PVC protection controller of kube-controller-manager removes
	// kubernetes.io/pvc-protection from a deleted PVC; the protection test
	// needs it. CSIKIT_SNAPSHOTTER_NO_KCM=1 leaves it out (that test then
	// skips).
	withKCM = !testing.Short() && os.Getenv("CSIKIT_SNAPSHOTTER_NO_KCM") == ""
	code := controlplane.RunTests(m, controlplane.Options{SnapshotCRDs: true, ControllerManager: withKCM, Progress: os.Stderr}, &cp)
	if code == 0 {
		if err := goleak.Find(leakOptions...); err != nil {
			fmt.Fprintf(os.Stderr, "goleak: %v\n", err)
			code = 1
		}
	}
	os.Exit(code)
}

func needCluster(tb testing.TB) {
	tb.Helper()
	if cp == nil {
		tb.Skip("integration test: needs the control plane, skipped in -short mode")
	}
}

// extendBenchTimeout raises go test's default 10-minute timeout to 40
// minutes when benchmarks run and no -timeout was given: the benchmarks
// build 10,000-object clusters on a real apiserver.
func extendBenchTimeout() {
	bench := flag.Lookup("test.bench")
	if bench == nil || bench.Value.String() == "" {
		return
	}
	explicit := false
	flag.Visit(func(f *flag.Flag) { explicit = explicit || f.Name == "test.timeout" })
	if !explicit {
		_ = flag.Set("test.timeout", "40m")
	}
}

package faults

import (
	"context"
	"flag"
	"fmt"
	"os"
	"sort"
	"strings"
	"sync"
	"testing"

	"go.uber.org/goleak"

	"github.com/csi-kit/sidecars/testkit/controlplane"
)

// cp is the package's control plane: apiserver and controller-manager (PV
// binder, expander, protection controllers) with the snapshot CRDs; nil in
// -short mode.
var cp *controlplane.ControlPlane

func TestMain(m *testing.M) {
	flag.Parse()
	code := func() int {
		if !testing.Short() {
			c, err := controlplane.Start(context.Background(), controlplane.Options{
				ControllerManager: true, SnapshotCRDs: true, Progress: os.Stderr})
			if err != nil {
				fmt.Fprintf(os.Stderr, "starting control plane: %v\n", err)
				return 1
			}
			cp = c
			defer func() {
				if err := c.Stop(); err != nil {
					fmt.Fprintf(os.Stderr, "stopping control plane: %v\n", err)
				}
			}()
		}
		return m.Run()
	}()
	fmt.Fprint(os.Stderr, tallies.String())
	if n := idleLossMissed.Load(); n > 0 {
		fmt.Fprintf(os.Stderr, "faults: driver    idle connection loss unnoticed without a CSI call in %d case(s)\n", n)
	}
	if code == 0 {
		if err := goleak.Find(leakOptions()...); err != nil {
			fmt.Fprintf(os.Stderr, "goleak: %v\n", err)
			code = 1
		}
	}
	os.Exit(code)
}

// leakOptions ignores long-lived goroutines that are not ours: klog's flush
// daemon, client-go's idle keep-alive connections (cached per transport) and
// the shared event broadcaster and queue loops that client-go leaves behind.
func leakOptions() []goleak.Option {
	return []goleak.Option{
		goleak.IgnoreTopFunction("k8s.io/klog/v2.(*flushDaemon).run.func1"),
		goleak.IgnoreAnyFunction("k8s.io/klog/v2.(*flushDaemon).run"),
		goleak.IgnoreAnyFunction("golang.org/x/net/http2.(*ClientConn).readLoop"),
		goleak.IgnoreAnyFunction("net/http.(*persistConn).readLoop"),
		goleak.IgnoreAnyFunction("net/http.(*persistConn).writeLoop"),
		goleak.IgnoreAnyFunction("k8s.io/client-go/util/workqueue.(*delayingType[...]).waitingLoop"),
		goleak.IgnoreAnyFunction("k8s.io/apimachinery/pkg/watch.(*Broadcaster).loop"),
		goleak.IgnoreAnyFunction("k8s.io/client-go/tools/record.(*eventBroadcasterImpl).StartEventWatcher.func1"),
	}
}

// tally counts, per category, what the suite did and what it found. The
// totals are printed when the package ends.
type tally struct {
	Cases, Faults, Leaks, Stuck, Doubles int
}

type tallyBook struct {
	mu sync.Mutex
	by map[string]*tally
}

var tallies = &tallyBook{by: map[string]*tally{}}

func (b *tallyBook) add(category string, f func(*tally)) {
	b.mu.Lock()
	defer b.mu.Unlock()
	t := b.by[category]
	if t == nil {
		t = &tally{}
		b.by[category] = t
	}
	f(t)
}

func (b *tallyBook) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	var names []string
	for n := range b.by {
		names = append(names, n)
	}
	sort.Strings(names)
	var s strings.Builder
	for _, n := range names {
		t := b.by[n]
		fmt.Fprintf(&s, "faults: %-9s cases=%d faults=%d leaks=%d stuck-finalizers=%d double-ops=%d\n",
			n, t.Cases, t.Faults, t.Leaks, t.Stuck, t.Doubles)
	}
	return s.String()
}

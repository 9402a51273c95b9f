package cmdutil

import (
	"flag"
	"fmt"
	"io"
	"runtime"
	"strings"
	"testing"
	"time"

	"k8s.io/klog/v2/textlogger"
)

// TestReleaseGate: --feature-gates=ReleaseLeaderElectionOnExit reaches the
// election whatever parser the binary uses for its other gates, and the
// binary still sees every gate.
func TestReleaseGate(t *testing.T) {
	for _, tc := range []struct {
		name     string
		args     []string
		wantKeep bool
	}{
		{"unset releases", nil, false},
		{"true releases", []string{"--feature-gates=ReleaseLeaderElectionOnExit=true"}, false},
		{"false keeps", []string{"--feature-gates=Topology=true,ReleaseLeaderElectionOnExit=false"}, true},
		{"last value wins", []string{"--feature-gates=ReleaseLeaderElectionOnExit=false", "--feature-gates=ReleaseLeaderElectionOnExit=true"}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fs := flag.NewFlagSet("test", flag.ContinueOnError)
			var c Common
			Register(fs, &c, Defaults{Timeout: time.Second})
			gates := &binaryGates{}
			fs.Var(gates, "feature-gates", "gates")
			Parse(fs, tc.args)
			if got := c.LeaderElection.Options.KeepOnCancel; got != tc.wantKeep {
				t.Errorf("KeepOnCancel = %v, want %v", got, tc.wantKeep)
			}
			if strings.Contains(strings.Join(tc.args, " "), "Topology=true") && !strings.Contains(gates.seen, "Topology=true") {
				t.Error("the binary's own gate parser did not see Topology=true")
			}
		})
	}
}

// TestLeaderElectionTimingsChecked: Check rejects a lease duration less than
// 1s above the renew deadline and names both flags' values.
func TestLeaderElectionTimingsChecked(t *testing.T) {
	fs := flag.NewFlagSet("test", flag.ContinueOnError)
	var c Common
	Register(fs, &c, Defaults{Timeout: time.Second})
	Parse(fs, []string{"--leader-election", "--leader-election-lease-duration=15s", "--leader-election-renew-deadline=14500ms"})
	err := c.Check()
	if err == nil || !strings.Contains(err.Error(), "lease duration 15s must exceed renew deadline 14.5s by at least 1s") {
		t.Errorf("Check = %v", err)
	}
}

// binaryGates stands for a binary's own --feature-gates parser.
type binaryGates struct{ seen string }

func (g *binaryGates) String() string     { return g.seen }
func (g *binaryGates) Set(s string) error { g.seen += s + ","; return nil }

// TestRemovedFlags: a removed flag fails parsing with its reason, with or
// without a value; --connection-timeout is one for every binary that talks
// to a driver.
func TestRemovedFlags(t *testing.T) {
	for _, args := range [][]string{{"--gone"}, {"--gone=x"}, {"--gone", "x"}, {"--connection-timeout=15s"}, {"--connection-timeout", "15s"}} {
		fs := flag.NewFlagSet("test", flag.ContinueOnError)
		fs.SetOutput(io.Discard)
		var c Common
		Register(fs, &c, Defaults{Timeout: time.Second})
		Removed(fs, "gone", "removed upstream in v9: use --other")
		err := fs.Parse(args)
		want := "use --other"
		if strings.Contains(args[0], "connection-timeout") {
			want = "removed upstream in v2.0"
		}
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%q: Parse = %v, want an error containing %q", args, err, want)
		}
	}
	fs := flag.NewFlagSet("test", flag.ContinueOnError)
	Removed(fs, "gone", "removed upstream in v9: use --other")
	if u := fs.Lookup("gone").Usage; !strings.HasPrefix(u, "Refused: removed upstream in v9") {
		t.Errorf("usage %q", u)
	}
}

// TestAutomaxprocs: --automaxprocs parses and, set, logs GOMAXPROCS at
// start; unset, nothing is logged.
func TestAutomaxprocs(t *testing.T) {
	fs := flag.NewFlagSet("test", flag.ContinueOnError)
	var c Common
	Register(fs, &c, Defaults{Timeout: time.Second})
	if err := fs.Parse([]string{"--automaxprocs"}); err != nil || !c.Automaxprocs {
		t.Fatalf("Parse = %v, Automaxprocs %v", err, c.Automaxprocs)
	}
	for _, on := range []bool{true, false} {
		var buf strings.Builder
		logMaxProcs(textlogger.NewLogger(textlogger.NewConfig(textlogger.Output(&buf))), on)
		if got := strings.Contains(buf.String(), fmt.Sprintf("value=%d", runtime.GOMAXPROCS(0))); got != on {
			t.Errorf("automaxprocs %v: log %q", on, buf.String())
		}
	}
}

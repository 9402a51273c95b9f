package compflags

import (
	"flag"
	"io"
	"strings"
	"testing"
)

func parseSidecarFlags(t *testing.T, args ...string) *SnapshotSidecar {
	t.Helper()
	fs := flag.NewFlagSet("x", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	var f SnapshotSidecar
	RegisterSnapshotSidecar(fs, &f)
	if err := fs.Parse(args); err != nil {
		t.Fatal(err)
	}
	return &f
}

// TestNodeDeploymentFlag: --node-deployment takes the node from NODE_NAME,
// refuses to run without it or with leader election.
func TestNodeDeploymentFlag(t *testing.T) {
	t.Setenv(NodeNameEnv, "")
	err := parseSidecarFlags(t, "--node-deployment").Check(false)
	if err == nil || !strings.Contains(err.Error(), "NODE_NAME") || !strings.Contains(err.Error(), "spec.nodeName") || !strings.Contains(err.Error(), "downward API") {
		t.Errorf("without NODE_NAME: Check = %v, want an error telling to set NODE_NAME from spec.nodeName with the downward API", err)
	}
	t.Setenv(NodeNameEnv, "node-7")
	if err := parseSidecarFlags(t, "--node-deployment").Check(true); err == nil || !strings.Contains(err.Error(), "--leader-election") {
		t.Errorf("with leader election: Check = %v, want a refusal", err)
	}
	f := parseSidecarFlags(t, "--node-deployment")
	if err := f.Check(false); err != nil {
		t.Fatal(err)
	}
	if f.Options.NodeName != "node-7" {
		t.Errorf("NodeName = %q, want node-7", f.Options.NodeName)
	}
	f = parseSidecarFlags(t)
	if err := f.Check(true); err != nil {
		t.Fatal(err)
	}
	if f.Options.NodeName != "" {
		t.Errorf("without --node-deployment NodeName = %q, want empty", f.Options.NodeName)
	}
}

func TestDistributedSnapshottingFlag(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want bool
	}{{nil, false}, {[]string{"--enable-distributed-snapshotting"}, true}} {
		fs := flag.NewFlagSet("x", flag.ContinueOnError)
		var f SnapshotController
		RegisterSnapshotController(fs, &f)
		if err := fs.Parse(tc.args); err != nil {
			t.Fatal(err)
		}
		if err := f.Check(); err != nil {
			t.Fatalf("%q: %v", tc.args, err)
		}
		if f.Options.DistributedSnapshotting != tc.want {
			t.Errorf("%q: DistributedSnapshotting = %v", tc.args, f.Options.DistributedSnapshotting)
		}
	}
}

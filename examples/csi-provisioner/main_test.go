package main

import (
	"flag"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/csi-kit/sidecars/internal/cmdutil"
)

// TestSeedFlags parses the flag set of seed 001, old spellings included.
func TestSeedFlags(t *testing.T) {
	fs := flag.NewFlagSet("csi-provisioner", flag.ContinueOnError)
	var c cmdutil.Common
	cmdutil.Register(fs, &c, cmdutil.Defaults{Timeout: 10 * time.Second})
	f := registerFlags(fs)
	args := []string{"--csi-address=/csi/csi.sock", "--feature-gates=Topology=True", "--volume-name-prefix=local",
		"--strict-topology=true", "--timeout=150s", "--extra-create-metadata=true", "--enable-leader-election=true",
		"--leader-election-type=leases", "--retry-interval-start=500ms", "--v=5"}
	if err := fs.Parse(args); err != nil {
		t.Fatalf("parse: %v", err)
	}
	o, err := f.options("")
	if err != nil {
		t.Fatal(err)
	}
	if o.VolumeNamePrefix != "local" || !o.StrictTopology || !o.ExtraCreateMetadata || o.RetryIntervalStart != 500*time.Millisecond ||
		o.DisableTopology || c.Timeout != 150*time.Second || !c.LeaderElection.Enabled || c.CSIAddress != "/csi/csi.sock" {
		t.Errorf("options %+v, common %+v", o, c)
	}
}

func TestGates(t *testing.T) {
	for _, tc := range []struct {
		in string
		ok bool
	}{
		{"Topology=True", true}, {"Topology=false,VolumeAttributesClass=true", true}, {"Nope=true", false},
		{"HonorPVReclaimPolicy=true", false}, {"Topology", false}, {"Topology=maybe", false},
	} {
		if err := newGates().Set(tc.in); (err == nil) != tc.ok {
			t.Errorf("Set(%q) = %v", tc.in, err)
		}
	}
	g := newGates()
	_ = g.Set("Topology=false")
	if g.On("Topology") || !g.On("VolumeAttributesClass") || g.On("CrossNamespaceVolumeDataSource") {
		t.Errorf("gates %v", g)
	}
}

// TestCrossNamespaceGate: the gate is off by default and sets
// Options.CrossNamespaceDataSources when on.
func TestCrossNamespaceGate(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want bool
	}{{nil, false}, {[]string{"--feature-gates=CrossNamespaceVolumeDataSource=true"}, true},
		{[]string{"--feature-gates=CrossNamespaceVolumeDataSource=false"}, false}} {
		fs := flag.NewFlagSet("csi-provisioner", flag.ContinueOnError)
		var c cmdutil.Common
		cmdutil.Register(fs, &c, cmdutil.Defaults{Timeout: 10 * time.Second})
		f := registerFlags(fs)
		if err := fs.Parse(tc.args); err != nil {
			t.Fatal(err)
		}
		o, err := f.options("")
		if err != nil {
			t.Fatalf("%q: %v", tc.args, err)
		}
		if o.CrossNamespaceDataSources != tc.want {
			t.Errorf("%q: CrossNamespaceDataSources = %v, want %v", tc.args, o.CrossNamespaceDataSources, tc.want)
		}
	}
}

// TestRefusedFlags: the flags upstream removed fail parsing with the reason,
// never parsed and ignored.
func TestRefusedFlags(t *testing.T) {
	for _, tc := range []struct{ arg, want string }{
		{"--provisioner=x", "the provisioner name is the driver's name"},
		{"--connection-timeout=15s", "removed upstream in v2.0"},
		{"--capacity-controller-deployment-mode=central", "use --enable-capacity"},
	} {
		fs := flag.NewFlagSet("csi-provisioner", flag.ContinueOnError)
		fs.SetOutput(io.Discard)
		var c cmdutil.Common
		cmdutil.Register(fs, &c, cmdutil.Defaults{Timeout: 10 * time.Second})
		registerFlags(fs)
		if err := fs.Parse([]string{tc.arg}); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: Parse = %v, want an error containing %q", tc.arg, err, tc.want)
		}
	}
}

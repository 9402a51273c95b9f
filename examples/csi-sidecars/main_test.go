package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"strings"
	"testing"
	"time"

	"github.com/container-storage-interface/spec/lib/go/csi"

	"github.com/csi-kit/sidecars/csiconn"
	"github.com/csi-kit/sidecars/resizer"
)

func parse(t *testing.T, args ...string) *flags {
	t.Helper()
	fs := flag.NewFlagSet("csi-sidecars", flag.ContinueOnError)
	f := registerFlags(fs)
	if err := fs.Parse(args); err != nil {
		t.Fatalf("parse %q: %v", args, err)
	}
	if err := f.check(); err != nil {
		t.Fatalf("check %q: %v", args, err)
	}
	return f
}

// TestSeedFlags parses the seeds' sidecar arguments, each binary's in turn,
// into the all-in-one's flag set.
func TestSeedFlags(t *testing.T) {
	// seed 000: csi-resizer
	f := parse(t, "--v=5", "--csi-address=/csi/csi.sock", "--leader-election")
	if !f.common.LeaderElection.Enabled || f.common.CSIAddress != "/csi/csi.sock" {
		t.Errorf("seed 000: leader election %v, address %q", f.common.LeaderElection.Enabled, f.common.CSIAddress)
	}
	// seed 001: csi-provisioner
	f = parse(t, "--csi-address=/csi/csi.sock", "--feature-gates=Topology=True", "--volume-name-prefix=local",
		"--strict-topology=true", "--timeout=150s", "--extra-create-metadata=true", "--enable-leader-election=true",
		"--leader-election-type=leases", "--retry-interval-start=500ms", "--v=5")
	p := f.prov.Options
	if p.VolumeNamePrefix != "local" || !p.StrictTopology || p.Timeout != 150*time.Second || !p.ExtraCreateMetadata ||
		p.RetryIntervalStart != 500*time.Millisecond || p.DisableTopology || !f.common.LeaderElection.Enabled {
		t.Errorf("seed 001 provisioner options: %+v", p)
	}
	if f.res.Options.Timeout != 150*time.Second || f.res.Options.RetryIntervalStart != 500*time.Millisecond {
		t.Errorf("seed 001: resizer timeout %v, retry start %v: want the shared flags", f.res.Options.Timeout, f.res.Options.RetryIntervalStart)
	}
	if !f.side.ExtraCreateMetadata {
		t.Errorf("--extra-create-metadata should reach the snapshot sidecar too")
	}
	// csi-snapshotter and snapshot-controller flags.
	parse(t, "--snapshot-name-prefix=snap", "--snapshot-name-uuid-length=8", "--retry-crd-interval-max=10s",
		"--log-text-split-stream", "--groupsnapshot-name-prefix=g", "--feature-gates=CSIVolumeGroupSnapshot=false,ReleaseLeaderElectionOnExit=true")
	// csi-resizer's old spellings and flags.
	f = parse(t, "--csiTimeout=20s", "--workers=3", "--handle-volume-inuse-error=false", "--feature-gates=AnnotateFsResize=false,VolumeAttributesClass=false",
		"--leader-election-identity=replica-a")
	if f.res.Options.Workers != 3 || !f.res.Options.DisableVolumeInUseHandling || !f.res.Options.DisablePreResizeAnnotation || !f.res.Options.DisableModify || f.res.Options.Timeout != 20*time.Second ||
		f.common.LeaderElection.Options.Identity != "replica-a" {
		t.Errorf("resizer options: %+v", f.res.Options)
	}
}

// TestSharedDefaults pins the choices made where binaries disagree.
func TestSharedDefaults(t *testing.T) {
	f := parse(t)
	if f.common.Timeout != 10*time.Second || f.snapshotTimeout != time.Minute {
		t.Errorf("timeouts: %v and snapshot %v, want 10s and 1m", f.common.Timeout, f.snapshotTimeout)
	}
	if f.prov.Options.Workers != 100 || f.res.Options.Workers != 10 || f.side.Workers != 10 || f.ctl.Workers != 10 {
		t.Errorf("workers: provisioner %d resizer %d sidecar %d controller %d", f.prov.Options.Workers, f.res.Options.Workers, f.side.Workers, f.ctl.Workers)
	}
	if f.enableController || !f.enableProvisioner || !f.enableResizer || !f.enableSnapshotter {
		t.Errorf("enable defaults: %+v", f)
	}
	if f.ctl.PreventVolumeModeConversion == nil || !*f.ctl.PreventVolumeModeConversion || f.prov.Options.AllowVolumeModeConversion {
		t.Errorf("volume mode conversion should be prevented by default")
	}
	if !f.ctl.DisableVolumeGroupSnapshots {
		t.Errorf("group snapshots should be off in the controller of csi-sidecars unless CSIVolumeGroupSnapshot=true")
	}
	if f := parse(t, "--feature-gates=CSIVolumeGroupSnapshot=true"); f.ctl.DisableVolumeGroupSnapshots {
		t.Errorf("CSIVolumeGroupSnapshot=true should turn group snapshots on in the controller")
	}
}

// TestCrossNamespaceGate: the gate is accepted, off by default, and sets
// the provisioner's CrossNamespaceDataSources when on.
func TestCrossNamespaceGate(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want bool
	}{{nil, false}, {[]string{"--feature-gates=CrossNamespaceVolumeDataSource=true"}, true}} {
		fs := flag.NewFlagSet("x", flag.ContinueOnError)
		f := registerFlags(fs)
		if err := fs.Parse(tc.args); err != nil {
			t.Fatal(err)
		}
		if err := f.check(); err != nil {
			t.Fatalf("%q: %v", tc.args, err)
		}
		if got := f.prov.Options.CrossNamespaceDataSources; got != tc.want {
			t.Errorf("%q: CrossNamespaceDataSources = %v, want %v", tc.args, got, tc.want)
		}
	}
}

func TestRefusedFlags(t *testing.T) {
	for _, args := range [][]string{{"--node-deployment"}, {"--snapshot-timeout=0"}} {
		fs := flag.NewFlagSet("x", flag.ContinueOnError)
		f := registerFlags(fs)
		if err := fs.Parse(args); err != nil {
			t.Fatal(err)
		}
		if err := f.check(); err == nil {
			t.Errorf("%q accepted", args)
		}
	}
	fs := flag.NewFlagSet("x", flag.ContinueOnError)
	fs.SetOutput(&bytes.Buffer{})
	registerFlags(fs)
	if err := fs.Parse([]string{"--feature-gates=NoSuchGate=true"}); err == nil {
		t.Error("unknown gate accepted")
	}
	// Removed upstream: refused while parsing, with the reason.
	for _, tc := range []struct{ arg, want string }{
		{"--provisioner=x", "the provisioner name is the driver's name"},
		{"--connection-timeout=15s", "removed upstream in v2.0"},
		{"--capacity-controller-deployment-mode=central", "use --enable-capacity"},
		// --node-deployment is refused, so are the flags that tune it.
		{"--node-deployment-base-delay=5s", "--node-deployment is not supported by csi-sidecars"},
		{"--node-deployment-max-delay=1m", "--node-deployment is not supported by csi-sidecars"},
		{"--node-deployment-immediate-binding=false", "--node-deployment is not supported by csi-sidecars"},
		{"--node-deployment-immediate-binding", "--node-deployment is not supported by csi-sidecars"},
	} {
		fs := flag.NewFlagSet("x", flag.ContinueOnError)
		fs.SetOutput(&bytes.Buffer{})
		registerFlags(fs)
		if err := fs.Parse([]string{tc.arg}); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: Parse = %v, want an error containing %q", tc.arg, err, tc.want)
		}
	}
}

func TestDecidePlan(t *testing.T) {
	ctrl := func(ts ...csi.ControllerServiceCapability_RPC_Type) csiconn.Capabilities {
		c := csiconn.Capabilities{ControllerService: true, Controller: map[csi.ControllerServiceCapability_RPC_Type]bool{}}
		for _, t := range ts {
			c.Controller[t] = true
		}
		return c
	}
	all := ctrl(csi.ControllerServiceCapability_RPC_CREATE_DELETE_VOLUME, csi.ControllerServiceCapability_RPC_CREATE_DELETE_SNAPSHOT)
	for _, tc := range []struct {
		name    string
		args    []string
		caps    csiconn.Capabilities
		res     resizer.DriverCapabilities
		want    plan
		skipped int
	}{
		{"everything", nil, all, resizer.DriverCapabilities{ControllerExpand: true}, plan{true, true, true, false}, 0},
		{"with controller", []string{"--enable-snapshot-controller"}, all, resizer.DriverCapabilities{Modify: true}, plan{true, true, true, true}, 0},
		{"node expand only", nil, all, resizer.DriverCapabilities{NodeExpand: true}, plan{true, true, true, false}, 0},
		{"no expansion", nil, all, resizer.DriverCapabilities{}, plan{true, false, true, false}, 1},
		{"no snapshots", nil, ctrl(csi.ControllerServiceCapability_RPC_CREATE_DELETE_VOLUME), resizer.DriverCapabilities{}, plan{Provisioner: true}, 2},
		{"switched off", []string{"--enable-provisioner=false", "--enable-snapshotter=false"}, all, resizer.DriverCapabilities{ControllerExpand: true}, plan{Resizer: true}, 0},
		{"no controller service", nil, csiconn.Capabilities{}, resizer.DriverCapabilities{NodeExpand: true}, plan{Resizer: true}, 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, skipped := decidePlan(parse(t, tc.args...), tc.caps, tc.res)
			if got != tc.want || len(skipped) != tc.skipped {
				t.Errorf("got %v skipped %q, want %v and %d skipped", got, skipped, tc.want, tc.skipped)
			}
		})
	}
}

func TestRunAllFirstErrorStopsOthers(t *testing.T) {
	boom := errors.New("boom")
	stopped := make(chan struct{})
	err := runAll(context.Background(), []namedRunner{
		{"waits", func(ctx context.Context) error { <-ctx.Done(); close(stopped); return nil }},
		{"fails", func(ctx context.Context) error { return boom }},
	})
	if !errors.Is(err, boom) || !strings.Contains(err.Error(), "fails") {
		t.Errorf("err %v, want the failing runner's, named", err)
	}
	select {
	case <-stopped:
	default:
		t.Error("the other runner was not stopped")
	}
	// One that stops by itself while the context is live is an error too.
	if err := runAll(context.Background(), []namedRunner{{"quits", func(context.Context) error { return nil }}}); err == nil {
		t.Error("a runner returning early went unnoticed")
	}
	// Cancelling the context is a clean stop.
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := runAll(ctx, []namedRunner{{"waits", func(ctx context.Context) error { <-ctx.Done(); return nil }}}); err != nil {
		t.Errorf("clean stop: %v", err)
	}
}
func TestDistributedSnapshottingFlag(t *testing.T) {
	if f := parse(t, "--enable-snapshot-controller"); f.ctl.DistributedSnapshotting {
		t.Error("distributed snapshotting on by default")
	}
	if f := parse(t, "--enable-snapshot-controller", "--enable-distributed-snapshotting"); !f.ctl.DistributedSnapshotting {
		t.Error("--enable-distributed-snapshotting did not reach the controller's options")
	}
}

// TestGateWarnings: --feature-gates=RecoverVolumeExpansionFailure=false is
// accepted with csi-resizer's warning that it has no effect.
func TestGateWarnings(t *testing.T) {
	if f := parse(t); len(f.warnings) != 0 {
		t.Errorf("warnings without gates: %q", f.warnings)
	}
	f := parse(t, "--feature-gates=RecoverVolumeExpansionFailure=false")
	if len(f.warnings) != 1 || !strings.Contains(f.warnings[0], "RecoverVolumeExpansionFailure") {
		t.Errorf("warnings %q, want the RecoverVolumeExpansionFailure one", f.warnings)
	}
}

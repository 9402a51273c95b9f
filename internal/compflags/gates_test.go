package compflags

import (
	"strings"
	"testing"

	"k8s.io/component-base/featuregate"
)

func testGates() *Gates {
	return NewGates(map[featuregate.Feature]featuregate.FeatureSpec{
		"A":      {Default: true, PreRelease: featuregate.GA},
		"B":      {Default: false, PreRelease: featuregate.Alpha},
		"Locked": {Default: true, PreRelease: featuregate.GA, LockToDefault: true},
	}, map[string]string{"Old": "always on"})
}

func TestGatesSet(t *testing.T) {
	for _, tc := range []struct {
		in, wantErr string
	}{
		{"A=false, B=True", ""}, {"", ""}, {"Locked=true", ""}, {"AllAlpha=true", ""},
		{"A", "missing bool value for A"}, {"A=maybe", "invalid value of A=maybe"},
		{"C=true", "unrecognized feature gate: C (known: A, B, Locked)"},
		{"A=true,Old=true", "Old was removed: always on"},
		{"Locked=false", "locked to true"},
	} {
		err := testGates().Set(tc.in)
		if (err == nil) != (tc.wantErr == "") || (err != nil && !strings.Contains(err.Error(), tc.wantErr)) {
			t.Errorf("Set(%q) = %v, want error %q", tc.in, err, tc.wantErr)
		}
	}
}

func TestGatesOn(t *testing.T) {
	g := testGates()
	if g.String() != "" {
		t.Errorf("String before Set = %q, want empty (no default in the help)", g.String())
	}
	if !g.On("A") || g.On("B") || g.On("C") {
		t.Errorf("defaults: A=%t B=%t C=%t, want true false false", g.On("A"), g.On("B"), g.On("C"))
	}
	if err := g.Set("A=false,B=true"); err != nil {
		t.Fatal(err)
	}
	if err := g.Set("B=false"); err != nil {
		t.Fatal(err)
	}
	if g.On("A") || g.On("B") {
		t.Errorf("after A=false,B=true then B=false: A=%t B=%t", g.On("A"), g.On("B"))
	}
	g = testGates()
	if err := g.Set("AllAlpha=true"); err != nil {
		t.Fatal(err)
	}
	if !g.On("B") {
		t.Error("AllAlpha=true did not enable the alpha gate B")
	}
	var zero Gates
	if zero.String() != "" {
		t.Error("zero Gates must print empty for the flag package")
	}
}

// TestBinaryGates: each binary knows the gates its docs list, with their
// defaults.
func TestBinaryGates(t *testing.T) {
	for _, tc := range []struct {
		name     string
		g        *Gates
		on, off  []string
		refusals []string
	}{
		{"provisioner", ProvisionerGates(), []string{"Topology", "VolumeAttributesClass"}, []string{"CrossNamespaceVolumeDataSource", "ReleaseLeaderElectionOnExit"}, []string{"HonorPVReclaimPolicy=true", "AnnotateFsResize=true"}},
		{"resizer", ResizerGates(), []string{"AnnotateFsResize", "RecoverVolumeExpansionFailure", "VolumeAttributesClass"}, []string{"ReleaseLeaderElectionOnExit"}, []string{"Topology=true"}},
		{"snapshotter", SnapshotterGates(), []string{"CSIVolumeGroupSnapshot"}, []string{"ReleaseLeaderElectionOnExit"}, []string{"Topology=true"}},
		{"all", AllGates(), []string{"Topology", "VolumeAttributesClass", "AnnotateFsResize", "RecoverVolumeExpansionFailure", "CSIVolumeGroupSnapshot"}, []string{"CrossNamespaceVolumeDataSource", "ReleaseLeaderElectionOnExit"}, []string{"HonorPVReclaimPolicy=true", "NoSuchGate=true"}},
	} {
		if n := len(tc.g.Names()); n != len(tc.on)+len(tc.off) {
			t.Errorf("%s: %d gates %v, want %d", tc.name, n, tc.g.Names(), len(tc.on)+len(tc.off))
		}
		for _, n := range tc.on {
			if !tc.g.On(n) {
				t.Errorf("%s: %s off by default", tc.name, n)
			}
		}
		for _, n := range tc.off {
			if tc.g.On(n) {
				t.Errorf("%s: %s on by default", tc.name, n)
			}
		}
		for _, s := range tc.refusals {
			if err := tc.g.Set(s); err == nil {
				t.Errorf("%s: --feature-gates=%s accepted", tc.name, s)
			}
		}
	}
}

// TestGateWarnings: RecoverVolumeExpansionFailure=false is accepted with a
// warning that it has no effect, by csi-resizer's and csi-sidecars' gates.
func TestGateWarnings(t *testing.T) {
	for name, g := range map[string]func() *Gates{"resizer": ResizerGates, "all": AllGates} {
		for _, tc := range []struct {
			set  string
			want bool
		}{{"", false}, {"RecoverVolumeExpansionFailure=true", false}, {"RecoverVolumeExpansionFailure=false", true}} {
			gates := g()
			if tc.set != "" {
				if err := gates.Set(tc.set); err != nil {
					t.Fatalf("%s: Set(%q): %v", name, tc.set, err)
				}
			}
			w := gates.Warnings()
			if got := len(w) == 1 && strings.Contains(w[0], "has no effect"); got != tc.want || (!tc.want && len(w) != 0) {
				t.Errorf("%s %q: warnings %q", name, tc.set, w)
			}
		}
	}
}

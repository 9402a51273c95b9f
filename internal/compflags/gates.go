package compflags

import (
	"fmt"
	"maps"
	"slices"
	"strings"

	"k8s.io/component-base/featuregate"
)

// Gates is a binary's --feature-gates: a component-base feature gate over
// the gates the binary knows, so values parse, and GA, deprecated and locked
// gates behave, as in every Kubernetes component (GA gates log a warning
// when set; a locked gate refuses the other value; AllAlpha and AllBeta set
// every alpha or beta gate not set by name). On top of that, a gate the
// binary no longer accepts is refused with the reason, and an unknown gate's
// error lists the known ones.
//
// This is the one --feature-gates parser of the binaries; cmdutil takes the
// logging gates and ReleaseLeaderElectionOnExit out of it before it parses.
type Gates struct {
	fg      featureGate
	known   []string
	removed map[string]string
	err     error // from building fg; returned by every Set
}

// featureGate is component-base's gate with the String of its flag value.
type featureGate interface {
	featuregate.MutableFeatureGate
	String() string
}

// NewGates returns the gates known (name → spec) and removed (name →
// why it is refused).
func NewGates(known map[featuregate.Feature]featuregate.FeatureSpec, removed map[string]string) *Gates {
	g := &Gates{fg: featuregate.NewFeatureGate(), removed: removed}
	if err := g.fg.Add(known); err != nil {
		g.err = fmt.Errorf("feature gates: %w", err)
	}
	for k := range known {
		g.known = append(g.known, string(k))
	}
	slices.Sort(g.known)
	return g
}

// Names returns the known gates, sorted.
func (g *Gates) Names() []string { return slices.Clone(g.known) }

// String lists the gates set so far ("A=true,B=false"); nothing before
// parsing, so the help shows no default.
func (g *Gates) String() string {
	if g == nil || g.fg == nil {
		return ""
	}
	return g.fg.String()
}

// Set parses one --feature-gates value of comma-separated Name=bool pairs;
// later values override earlier ones.
func (g *Gates) Set(s string) error {
	if g.err != nil {
		return g.err
	}
	for _, kv := range strings.Split(s, ",") {
		k, _, _ := strings.Cut(kv, "=")
		k = strings.TrimSpace(k)
		if why, ok := g.removed[k]; ok {
			return fmt.Errorf("feature gate %s was removed: %s; drop it from --feature-gates", k, why)
		}
	}
	if err := g.fg.Set(s); err != nil {
		return fmt.Errorf("%w (known: %s)", err, strings.Join(g.known, ", "))
	}
	return nil
}

// On tells whether the gate is enabled: as set, else its default. An
// unknown name is off.
func (g *Gates) On(name string) bool {
	if !slices.Contains(g.known, name) {
		return false
	}
	return g.fg.Enabled(featuregate.Feature(name))
}

// Explicit tells whether --feature-gates named the gate, and its value if
// so (for binaries whose default differs from the gate's).
func (g *Gates) Explicit(name string) (on, set bool) {
	for _, kv := range strings.Split(g.String(), ",") {
		if k, v, ok := strings.Cut(kv, "="); ok && k == name {
			return v == "true", true
		}
	}
	return false, false
}

// Warnings returns what a binary should print about the gates as parsed:
// RecoverVolumeExpansionFailure=false cannot turn off the resizer's
// recovery from failed expansions (the gate is GA, and locked on in
// Kubernetes 1.34), so it is accepted, as upstream accepts a GA gate, and
// said to have no effect.
func (g *Gates) Warnings() []string {
	var w []string
	if on, set := g.Explicit(GateRecoverVolumeExpansionFailure); set && !on {
		w = append(w, "RecoverVolumeExpansionFailure is GA and always on here: --feature-gates=RecoverVolumeExpansionFailure=false has no effect (a lowered request can always recover from a failed expansion)")
	}
	return w
}

// Gate names the binaries accept.
const (
	GateTopology                       = "Topology"
	GateVolumeAttributesClass          = "VolumeAttributesClass"
	GateCrossNamespaceVolumeDataSource = "CrossNamespaceVolumeDataSource"
	GateAnnotateFsResize               = "AnnotateFsResize"
	GateRecoverVolumeExpansionFailure  = "RecoverVolumeExpansionFailure"
	GateCSIVolumeGroupSnapshot         = "CSIVolumeGroupSnapshot"
	// GateReleaseLeaderElectionOnExit is read by cmdutil, which hands it to
	// the election; every binary accepts it.
	GateReleaseLeaderElectionOnExit = "ReleaseLeaderElectionOnExit"
)

var releaseOnExit = map[featuregate.Feature]featuregate.FeatureSpec{
	GateReleaseLeaderElectionOnExit: {Default: false, PreRelease: featuregate.Alpha},
}

// ProvisionerGates are csi-provisioner's: Topology and
// VolumeAttributesClass (GA, on), CrossNamespaceVolumeDataSource (alpha,
// off; the binary refuses =true), ReleaseLeaderElectionOnExit; the removed
// HonorPVReclaimPolicy is refused.
func ProvisionerGates() *Gates {
	return NewGates(provisionerGates(), map[string]string{"HonorPVReclaimPolicy": "the deletion finalizer is always used"})
}

func provisionerGates() map[featuregate.Feature]featuregate.FeatureSpec {
	g := map[featuregate.Feature]featuregate.FeatureSpec{
		GateTopology:                       {Default: true, PreRelease: featuregate.GA},
		GateVolumeAttributesClass:          {Default: true, PreRelease: featuregate.GA},
		GateCrossNamespaceVolumeDataSource: {Default: false, PreRelease: featuregate.Alpha},
	}
	maps.Copy(g, releaseOnExit)
	return g
}

// ResizerGates are csi-resizer's: AnnotateFsResize (beta, on),
// RecoverVolumeExpansionFailure and VolumeAttributesClass (GA, on),
// ReleaseLeaderElectionOnExit.
func ResizerGates() *Gates { return NewGates(resizerGates(), nil) }

func resizerGates() map[featuregate.Feature]featuregate.FeatureSpec {
	g := map[featuregate.Feature]featuregate.FeatureSpec{
		GateAnnotateFsResize:              {Default: true, PreRelease: featuregate.Beta},
		GateRecoverVolumeExpansionFailure: {Default: true, PreRelease: featuregate.GA},
		GateVolumeAttributesClass:         {Default: true, PreRelease: featuregate.GA},
	}
	maps.Copy(g, releaseOnExit)
	return g
}

// SnapshotterGates are csi-snapshotter's and snapshot-controller's:
// CSIVolumeGroupSnapshot (GA, on; =false turns volume group snapshots
// off) and ReleaseLeaderElectionOnExit.
func SnapshotterGates() *Gates { return NewGates(snapshotterGates(), nil) }

func snapshotterGates() map[featuregate.Feature]featuregate.FeatureSpec {
	g := map[featuregate.Feature]featuregate.FeatureSpec{
		GateCSIVolumeGroupSnapshot: {Default: true, PreRelease: featuregate.GA},
	}
	maps.Copy(g, releaseOnExit)
	return g
}

// AllGates are csi-sidecars' gates: the union of the separate binaries'
// (a gate two of them know has the same spec in both), with the
// provisioner's removed gates.
func AllGates() *Gates {
	g := provisionerGates()
	maps.Copy(g, resizerGates())
	maps.Copy(g, snapshotterGates())
	return NewGates(g, map[string]string{"HonorPVReclaimPolicy": "the deletion finalizer is always used"})
}

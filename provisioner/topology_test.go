package provisioner

import (
	"fmt"
	"reflect"
	"testing"

	"github.com/container-storage-interface/spec/lib/go/csi"
	v1 "k8s.io/api/core/v1"
)

func sel(exprs ...v1.TopologySelectorLabelRequirement) v1.TopologySelectorTerm {
	return v1.TopologySelectorTerm{MatchLabelExpressions: exprs}
}

func req(k string, vals ...string) v1.TopologySelectorLabelRequirement {
	return v1.TopologySelectorLabelRequirement{Key: k, Values: vals}
}

func terms(ts ...term) []term { return ts }

// TestAllowedTopologies follows upstream's cases of flattening.
func TestAllowedTopologies(t *testing.T) {
	for _, tc := range []struct {
		name string
		in   []v1.TopologySelectorTerm
		want []term
	}{
		{"single expression, single value", []v1.TopologySelectorTerm{sel(req("z", "a"))}, terms(term{"z": "a"})},
		{"single expression, multiple values", []v1.TopologySelectorTerm{sel(req("z", "b", "a"))}, terms(term{"z": "a"}, term{"z": "b"})},
		{"multiple expressions, single value", []v1.TopologySelectorTerm{sel(req("z", "a"), req("r", "x"))}, terms(term{"z": "a", "r": "x"})},
		{"multiple expressions, 1 single value, 1 multiple values", []v1.TopologySelectorTerm{sel(req("z", "a"), req("r", "x", "y"))},
			terms(term{"z": "a", "r": "x"}, term{"z": "a", "r": "y"})},
		{"multiple expressions, both multiple values", []v1.TopologySelectorTerm{sel(req("z", "a", "b"), req("r", "x", "y"))},
			terms(term{"z": "a", "r": "x"}, term{"z": "b", "r": "x"}, term{"z": "a", "r": "y"}, term{"z": "b", "r": "y"})},
		{"multiple terms: single expression, single values", []v1.TopologySelectorTerm{sel(req("z", "a")), sel(req("z", "b"))},
			terms(term{"z": "a"}, term{"z": "b"})},
		{"multiple terms: single expression, overlapping keys, distinct values", []v1.TopologySelectorTerm{sel(req("z", "a")), sel(req("z", "b", "c"))},
			terms(term{"z": "a"}, term{"z": "b"}, term{"z": "c"})},
		{"multiple terms: single expression, overlapping keys, overlapping values", []v1.TopologySelectorTerm{sel(req("z", "a", "b")), sel(req("z", "b", "c"))},
			terms(term{"z": "a"}, term{"z": "b"}, term{"z": "c"})},
		{"multiple terms: 1 single expression, 1 multiple expressions; contains a subset duplicate",
			[]v1.TopologySelectorTerm{sel(req("z", "a")), sel(req("z", "a"), req("r", "x"))},
			terms(term{"z": "a"}, term{"z": "a", "r": "x"})},
		{"multiple terms: both contains multiple expressions; contains an identical duplicate",
			[]v1.TopologySelectorTerm{sel(req("z", "a"), req("r", "x")), sel(req("r", "x"), req("z", "a"))},
			terms(term{"z": "a", "r": "x"})},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := flatten(tc.in); !reflect.DeepEqual(got, tc.want) {
				t.Errorf("flatten = %v, want %v", got, tc.want)
			}
		})
	}
}

func TestTopologyTermSubset(t *testing.T) {
	for _, tc := range []struct {
		name string
		a, b term
		want bool
	}{
		{"empty", term{}, term{}, true},
		{"shorter", term{"z": "a"}, term{"z": "a", "r": "x"}, true},
		{"longer", term{"z": "a", "r": "x"}, term{"z": "a"}, false},
		{"same", term{"z": "a"}, term{"z": "a"}, true},
		{"unrelated", term{"z": "a"}, term{"z": "b"}, false},
	} {
		if got := subset(tc.a, tc.b); got != tc.want {
			t.Errorf("%s: subset = %v, want %v", tc.name, got, tc.want)
		}
	}
}

func TestTopologyTermSort(t *testing.T) {
	got := dedupe(terms(term{"z": "b", "r": "x"}, term{"z": "b"}, term{"z": "a"}, term{"a": "z", "r": "x"}))
	want := terms(term{"z": "a"}, term{"z": "b"}, term{"a": "z", "r": "x"}, term{"r": "x", "z": "b"})
	if !reflect.DeepEqual(got, want) {
		t.Errorf("sorted = %v, want %v", got, want)
	}
}

func TestRequirement(t *testing.T) {
	zoneA, zoneB, zoneC := term{"z": "a"}, term{"z": "b"}, term{"z": "c"}
	for _, tc := range []struct {
		name          string
		in            topologyInput
		wantReq, pref []term
		wantErr       bool
	}{
		{"selected node; same keys and values across cluster", topologyInput{Selected: zoneA, Aggregate: terms(zoneA), Immediate: true},
			terms(zoneA), terms(zoneA), false},
		{"selected node; different values across cluster", topologyInput{Selected: zoneB, Aggregate: terms(zoneA, zoneB, zoneC), Immediate: true},
			terms(zoneA, zoneB, zoneC), terms(zoneB, zoneC, zoneA), false},
		{"selected node; strict", topologyInput{Selected: zoneB, Aggregate: terms(zoneA, zoneB), Strict: true},
			terms(zoneB), terms(zoneB), false},
		{"allowedTopologies specified", topologyInput{Selected: zoneB, Allowed: []v1.TopologySelectorTerm{sel(req("z", "a", "b"))}},
			terms(zoneA, zoneB), terms(zoneB, zoneA), false},
		{"allowedTopologies specified; strict", topologyInput{Selected: zoneB, Strict: true, Allowed: []v1.TopologySelectorTerm{sel(req("z", "a", "b"))}},
			terms(zoneB), terms(zoneB), false},
		{"topology from selected node is not in allowedTopologies", topologyInput{Selected: zoneC, Allowed: []v1.TopologySelectorTerm{sel(req("z", "a", "b"))}},
			nil, nil, true},
		{"strict, selected node not allowed", topologyInput{Selected: zoneC, Strict: true, Allowed: []v1.TopologySelectorTerm{sel(req("z", "a"))}},
			nil, nil, true},
		{"allowedTopologies is subset of selected node's topology", topologyInput{Selected: term{"z": "a", "r": "x"},
			Allowed: []v1.TopologySelectorTerm{sel(req("z", "b")), sel(req("z", "a"))}},
			terms(zoneA, zoneB), terms(zoneA, zoneB), false},
		{"allowedTopologies is subset of selected node's topology; strict", topologyInput{Selected: term{"z": "a", "r": "x"}, Strict: true,
			Allowed: []v1.TopologySelectorTerm{sel(req("z", "a"))}}, terms(term{"z": "a", "r": "x"}), terms(term{"z": "a", "r": "x"}), false},
		{"immediate, allowed", topologyInput{Allowed: []v1.TopologySelectorTerm{sel(req("z", "a"))}, Immediate: true, ClaimName: "x"},
			terms(zoneA), terms(zoneA), false},
		{"immediate, aggregate", topologyInput{Aggregate: terms(zoneB, zoneA), Immediate: true, ClaimName: "x"},
			terms(zoneA, zoneB), nil, false},
		{"immediate topology off", topologyInput{Aggregate: terms(zoneA)}, nil, nil, false},
		{"topology aggregation with no topology info", topologyInput{Immediate: true}, nil, nil, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r, p, err := requirement(tc.in)
			if (err != nil) != tc.wantErr {
				t.Fatalf("requirement err = %v, want error %v", err, tc.wantErr)
			}
			if !reflect.DeepEqual(r, tc.wantReq) {
				t.Errorf("requisite = %v, want %v", r, tc.wantReq)
			}
			if tc.pref != nil && !reflect.DeepEqual(p, tc.pref) {
				t.Errorf("preferred = %v, want %v", p, tc.pref)
			}
			if len(r) > 0 && len(p) != len(r) {
				t.Errorf("preferred %v is not a rotation of requisite %v", p, r)
			}
		})
	}
}

// TestStatefulSetSpreading: consecutive ordinals of one set land on
// consecutive segments; the claim template name does not matter.
func TestStatefulSetSpreading(t *testing.T) {
	n := 4
	base := spreadIndex("testpvcA-testset-1", n)
	if got := spreadIndex("testpvcB-testset-1", n); got != base {
		t.Errorf("claim template changed the index: %d vs %d", got, base)
	}
	for i := 2; i <= 4; i++ {
		if got, want := spreadIndex(fmt.Sprintf("testpvc-testset-%d", i), n), (base+i-1)%n; got != want {
			t.Errorf("ordinal %d: index %d, want %d", i, got, want)
		}
	}
	if got := spreadIndex("plain", 1); got != 0 {
		t.Errorf("one segment: %d", got)
	}
}

func TestGenerateVolumeNodeAffinity(t *testing.T) {
	if nodeAffinity(nil) != nil {
		t.Error("nil topology gave affinity")
	}
	if nodeAffinity([]*csi.Topology{{}}) != nil {
		t.Error("nil segment gave affinity")
	}
	a := nodeAffinity([]*csi.Topology{{Segments: map[string]string{"z": "a", "r": "x"}}, {Segments: map[string]string{"z": "b"}}})
	terms := a.Required.NodeSelectorTerms
	if len(terms) != 2 || len(terms[0].MatchExpressions) != 2 || terms[0].MatchExpressions[0].Key != "r" ||
		terms[1].MatchExpressions[0].Values[0] != "b" || terms[1].MatchExpressions[0].Operator != v1.NodeSelectorOpIn {
		t.Errorf("affinity = %+v", a)
	}
}

func TestNodeSegment(t *testing.T) {
	n := &v1.Node{}
	n.Name = "n1"
	n.Labels = map[string]string{"z": "a", "r": "x"}
	if s, err := nodeSegment(n, []string{"z"}); err != nil || !reflect.DeepEqual(s, term{"z": "a"}) {
		t.Errorf("nodeSegment = %v, %v", s, err)
	}
	if _, err := nodeSegment(n, []string{"missing"}); err == nil {
		t.Error("missing label accepted")
	}
}

package provisioner

import (
	"errors"
	"fmt"
	"hash/fnv"
	"math/rand/v2"
	"sort"
	"strconv"
	"strings"

	"github.com/container-storage-interface/spec/lib/go/csi"
	v1 "k8s.io/api/core/v1"
	storagev1 "k8s.io/api/storage/v1"
)

// term is one topology segment: key → value.
type term map[string]string

// topologyInput is everything the requirement decision reads.
type topologyInput struct {
	// Selected is the selected node's segment; nil without a selected node.
	Selected term
	// Allowed is the class's allowedTopologies.
	Allowed []v1.TopologySelectorTerm
	// Aggregate is every segment of the cluster's nodes (for Immediate
	// claims without allowedTopologies); nil when not computed.
	Aggregate []term
	Strict    bool
	// Immediate is false for --immediate-topology=false.
	Immediate bool
	// ClaimName picks the preferred rotation (StatefulSet spreading).
	ClaimName string
}

// requirement computes requisite and preferred topologies (nil, nil: none).
func requirement(in topologyInput) (requisite, preferred []term, err error) {
	allowed := flatten(in.Allowed)
	if in.Selected != nil {
		if in.Strict {
			if len(allowed) > 0 && !anySubset(allowed, in.Selected) {
				return nil, nil, fmt.Errorf("topology of selected node %v is not in allowedTopologies", in.Selected)
			}
			return []term{in.Selected}, []term{in.Selected}, nil
		}
		requisite = allowed
		if len(requisite) == 0 {
			requisite = dedupe(in.Aggregate)
			if len(requisite) == 0 {
				requisite = []term{in.Selected}
			}
		}
		for i, t := range requisite {
			if subset(t, in.Selected) {
				return requisite, rotate(requisite, i), nil
			}
		}
		return nil, nil, fmt.Errorf("topology of selected node %v is not in requisite topologies %v", in.Selected, requisite)
	}
	switch {
	case len(allowed) > 0:
		requisite = allowed
	case !in.Immediate:
		return nil, nil, nil
	default:
		requisite = dedupe(in.Aggregate)
		if len(requisite) == 0 {
			return nil, nil, errors.New("no topology key found on any node")
		}
	}
	return requisite, rotate(requisite, spreadIndex(in.ClaimName, len(requisite))), nil
}

// flatten expands allowedTopologies terms into single-valued segments,
// sorted, exact duplicates removed.
func flatten(terms []v1.TopologySelectorTerm) []term {
	var out []term
	for _, t := range terms {
		partial := []term{{}}
		for _, e := range t.MatchLabelExpressions {
			var next []term
			for _, p := range partial {
				for _, val := range e.Values {
					n := term{}
					for k, v := range p {
						n[k] = v
					}
					n[e.Key] = val
					next = append(next, n)
				}
			}
			partial = next
		}
		for _, p := range partial {
			if len(p) > 0 {
				out = append(out, p)
			}
		}
	}
	return dedupe(out)
}

func (t term) String() string {
	keys := make([]string, 0, len(t))
	for k := range t {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = k + "=" + t[k]
	}
	return strings.Join(parts, ",")
}

// less orders terms by length, then key/value text.
func less(a, b term) bool {
	if len(a) != len(b) {
		return len(a) < len(b)
	}
	return a.String() < b.String()
}

func dedupe(in []term) []term {
	seen := map[string]bool{}
	var out []term
	for _, t := range in {
		if s := t.String(); !seen[s] {
			seen[s] = true
			out = append(out, t)
		}
	}
	sort.Slice(out, func(i, j int) bool { return less(out[i], out[j]) })
	return out
}

// subset reports whether every pair of a is in b.
func subset(a, b term) bool {
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}

func anySubset(list []term, of term) bool {
	for _, t := range list {
		if subset(t, of) {
			return true
		}
	}
	return false
}

func rotate(list []term, i int) []term {
	if len(list) == 0 {
		return nil
	}
	i %= len(list)
	out := append([]term{}, list[i:]...)
	return append(out, list[:i]...)
}

// spreadIndex spreads StatefulSet claims ("<tmpl>-<set>-<ordinal>") over n
// segments: hash of the set name plus the ordinal. Other names hash whole;
// an empty name picks at random.
func spreadIndex(name string, n int) int {
	if n <= 1 {
		return 0
	}
	if name == "" {
		return rand.IntN(n)
	}
	ordinal := uint32(0)
	base := name
	if i := strings.LastIndex(name, "-"); i >= 0 {
		if o, err := strconv.ParseUint(name[i+1:], 10, 32); err == nil {
			ordinal = uint32(o)
			base = name[:i]
			if j := strings.LastIndex(base, "-"); j >= 0 {
				base = base[j+1:]
			}
		}
	}
	h := fnv.New32()
	h.Write([]byte(base))
	return int((h.Sum32() + ordinal) % uint32(n))
}

// nodeSegment returns the segment of node for keys; error if a label is missing.
func nodeSegment(node *v1.Node, keys []string) (term, error) {
	t := term{}
	for _, k := range keys {
		v, ok := node.Labels[k]
		if !ok {
			return nil, fmt.Errorf("node %s has no label %q required by the driver's topology", node.Name, k)
		}
		t[k] = v
	}
	return t, nil
}

// csiNodeKeys returns the driver's topology keys on a CSINode.
func csiNodeKeys(cn *storagev1.CSINode, driver string) []string {
	if cn == nil {
		return nil
	}
	for _, d := range cn.Spec.Drivers {
		if d.Name == driver {
			return d.TopologyKeys
		}
	}
	return nil
}

func toCSI(list []term) []*csi.Topology {
	var out []*csi.Topology
	for _, t := range list {
		seg := map[string]string{}
		for k, v := range t {
			seg[k] = v
		}
		out = append(out, &csi.Topology{Segments: seg})
	}
	return out
}

// nodeAffinity turns accessible topology into a PV node affinity: one term
// per segment, one In expression per key; nil without segments.
func nodeAffinity(topos []*csi.Topology) *v1.VolumeNodeAffinity {
	var terms []v1.NodeSelectorTerm
	for _, t := range topos {
		if t == nil || len(t.Segments) == 0 {
			continue
		}
		keys := make([]string, 0, len(t.Segments))
		for k := range t.Segments {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		var exprs []v1.NodeSelectorRequirement
		for _, k := range keys {
			exprs = append(exprs, v1.NodeSelectorRequirement{Key: k, Operator: v1.NodeSelectorOpIn, Values: []string{t.Segments[k]}})
		}
		terms = append(terms, v1.NodeSelectorTerm{MatchExpressions: exprs})
	}
	if len(terms) == 0 {
		return nil
	}
	return &v1.VolumeNodeAffinity{Required: &v1.NodeSelector{NodeSelectorTerms: terms}}
}

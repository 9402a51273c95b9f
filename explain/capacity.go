package explain

import (
	"fmt"
	"sort"
	"strings"

	v1 "k8s.io/api/core/v1"
	storagev1 "k8s.io/api/storage/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
)

// segment is one CSIStorageCapacity entry reduced to what a decision needs.
type segment struct {
	desc string             // "topology.kubernetes.io/zone=a", or "all nodes"
	free *resource.Quantity // nil: unknown
	max  *resource.Quantity // maximumVolumeSize, nil if not reported
	sel  labels.Selector
}

// fits reports whether a volume of size fits in the segment.
func (s segment) fits(size resource.Quantity) bool {
	if s.free == nil || s.free.Cmp(size) < 0 {
		return false
	}
	return s.max == nil || s.max.Cmp(size) >= 0
}

// usable is the largest volume the segment can take.
func (s segment) usable() resource.Quantity {
	if s.free == nil {
		return resource.Quantity{}
	}
	u := s.free.DeepCopy()
	if s.max != nil && s.max.Cmp(u) < 0 {
		u = s.max.DeepCopy()
	}
	return u
}

// segmentsOf returns the capacity segments of a class, sorted by
// description.
func segmentsOf(caps []storagev1.CSIStorageCapacity, class string) []segment {
	var out []segment
	for i := range caps {
		c := &caps[i]
		if c.StorageClassName != class {
			continue
		}
		s := segment{desc: describeSelector(c.NodeTopology), free: c.Capacity, max: c.MaximumVolumeSize, sel: labels.Nothing()}
		if c.NodeTopology != nil {
			if sel, err := metav1.LabelSelectorAsSelector(c.NodeTopology); err == nil {
				s.sel = sel
			}
		}
		out = append(out, s)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].desc < out[j].desc })
	return out
}

func describeSelector(ls *metav1.LabelSelector) string {
	if ls == nil {
		return "no nodes"
	}
	if len(ls.MatchLabels) == 0 && len(ls.MatchExpressions) == 0 {
		return "all nodes"
	}
	return metav1.FormatLabelSelector(ls)
}

// allowedBy reports whether a segment can hold volumes of a class with
// allowedTopologies: true when the class has none, or when some term's
// every key is either absent from the segment's labels or has an allowed
// value there.
func allowedBy(s segment, class *storagev1.StorageClass, segLabels map[string]string) bool {
	if class == nil || len(class.AllowedTopologies) == 0 {
		return true
	}
	for _, term := range class.AllowedTopologies {
		ok := true
		for _, e := range term.MatchLabelExpressions {
			v, has := segLabels[e.Key]
			if has && !contains(e.Values, v) {
				ok = false
				break
			}
		}
		if ok {
			return true
		}
	}
	return false
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// capacityFinding judges the claim's request against the capacity of its
// class: on the selected node if there is one, else across all segments
// the class allows. nil when there is no capacity data or the request fits.
func capacityFinding(in *Input, pvc *v1.PersistentVolumeClaim, node *v1.Node) *Finding {
	if in.StorageClass == nil {
		return nil
	}
	size, ok := pvc.Spec.Resources.Requests[v1.ResourceStorage]
	if !ok {
		return nil
	}
	segs := segmentsOf(in.Capacities, in.StorageClass.Name)
	if len(segs) == 0 {
		return nil
	}
	if node != nil {
		var here []segment
		for _, s := range segs {
			if s.sel.Matches(labels.Set(node.Labels)) {
				here = append(here, s)
			}
		}
		if len(here) == 0 {
			return nil
		}
		for _, s := range here {
			if s.fits(size) {
				return nil
			}
		}
		best := largest(here)
		return &Finding{Severity: Error, Reason: ReasonNoCapacity,
			Message: fmt.Sprintf("node %s (%s) has %s free for class %s, less than the %s requested", node.Name, best.desc, fmtQ(best.usable()), in.StorageClass.Name, fmtQ(size)),
			Action:  "free space on that node's storage, lower the request, or delete the pod so the scheduler picks another node (the provisioner then clears volume.kubernetes.io/selected-node)"}
	}
	var allowed []segment
	for _, s := range segs {
		if allowedBy(s, in.StorageClass, selectorLabels(s)) {
			allowed = append(allowed, s)
		}
	}
	if len(allowed) == 0 {
		return &Finding{Severity: Error, Reason: ReasonNoCapacity,
			Message: fmt.Sprintf("no CSIStorageCapacity of class %s covers a topology the class allows", in.StorageClass.Name),
			Action:  "check the class's allowedTopologies against the driver's node topology labels"}
	}
	for _, s := range allowed {
		if s.fits(size) {
			return nil
		}
	}
	best := largest(allowed)
	return &Finding{Severity: Error, Reason: ReasonNoCapacity,
		Message: fmt.Sprintf("no node in %s has %s free for class %s (largest: %s in %s)", describeSegments(allowed), fmtQ(size), in.StorageClass.Name, fmtQ(best.usable()), best.desc),
		Action:  fmt.Sprintf("lower the request to at most %s, free space on the backend, or add capacity (nodes, disks) in that topology", fmtQ(best.usable()))}
}

func selectorLabels(s segment) map[string]string {
	reqs, _ := s.sel.Requirements()
	out := map[string]string{}
	for _, r := range reqs {
		if vals := r.Values().List(); len(vals) == 1 {
			out[r.Key()] = vals[0]
		}
	}
	return out
}

func largest(segs []segment) segment {
	best := segs[0]
	for _, s := range segs[1:] {
		u, b := s.usable(), best.usable()
		if u.Cmp(b) > 0 {
			best = s
		}
	}
	return best
}

func describeSegments(segs []segment) string {
	if len(segs) == 1 {
		return segs[0].desc
	}
	descs := make([]string, 0, len(segs))
	for _, s := range segs {
		descs = append(descs, s.desc)
	}
	if len(descs) > 4 {
		return fmt.Sprintf("any of %d topology segments (%s, ...)", len(descs), strings.Join(descs[:3], ", "))
	}
	return strings.Join(descs, " or ")
}

// fmtQ prints a quantity in binary units when it is a whole number of them.
func fmtQ(q resource.Quantity) string {
	v := q.Value()
	for _, u := range []struct {
		n    int64
		name string
	}{{1 << 40, "Ti"}, {1 << 30, "Gi"}, {1 << 20, "Mi"}, {1 << 10, "Ki"}} {
		if v >= u.n && v%u.n == 0 {
			return fmt.Sprintf("%d%s", v/u.n, u.name)
		}
	}
	return q.String()
}

package explain

import (
	"fmt"
	"strings"

	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// String renders the report as a readable block:
//
//	PersistentVolumeClaim default/data: Pending, class fast, request 40Gi
//	  Error NoCapacity
//	    why: no node in topology.kubernetes.io/zone=a has 40Gi free ...
//	    do:  lower the request to at most 10Gi, ...
func (r Report) String() string {
	var b strings.Builder
	name := r.Name
	if r.Namespace != "" {
		name = r.Namespace + "/" + r.Name
	}
	fmt.Fprintf(&b, "%s %s: %s\n", r.Kind, name, r.State)
	for _, f := range r.Findings {
		fmt.Fprintf(&b, "  %s %s\n", f.Severity, f.Reason)
		fmt.Fprintf(&b, "    why: %s\n", f.Message)
		if f.Action != "" {
			fmt.Fprintf(&b, "    do:  %s\n", f.Action)
		}
	}
	for _, u := range r.Unread {
		fmt.Fprintf(&b, "  (not read: %s)\n", u)
	}
	return b.String()
}

// stateOf summarises the target in one line.
func stateOf(in *Input) string {
	switch in.Kind {
	case KindPVC:
		if in.PVC == nil {
			return "not found"
		}
		pvc := in.PVC
		s := string(pvc.Status.Phase)
		if s == "" {
			s = string(v1.ClaimPending)
		}
		switch c := claimClass(pvc); {
		case c == nil:
		case *c == "":
			// storageClassName: "" asks for no class at all.
			s += `, class "" (static binding only)`
		default:
			s += ", class " + *c
		}
		req, hasReq := pvc.Spec.Resources.Requests[v1.ResourceStorage]
		capa, hasCap := pvc.Status.Capacity[v1.ResourceStorage]
		switch {
		case hasReq && hasCap && req.Cmp(capa) != 0:
			s += fmt.Sprintf(", capacity %s, request %s", fmtQ(capa), fmtQ(req))
		case hasCap:
			s += ", capacity " + fmtQ(capa)
		case hasReq:
			s += ", request " + fmtQ(req)
		}
		if pvc.DeletionTimestamp != nil {
			s += ", being deleted"
		}
		return s
	case KindPV:
		if in.PV == nil {
			return "not found"
		}
		s := string(in.PV.Status.Phase)
		if ref := in.PV.Spec.ClaimRef; ref != nil {
			s += ", claim " + ref.Namespace + "/" + ref.Name
		}
		if in.PV.DeletionTimestamp != nil {
			s += ", being deleted"
		}
		return s
	case KindSnapshot:
		if in.Snapshot == nil {
			return "not found"
		}
		return readyState(in.Snapshot.Status != nil && in.Snapshot.Status.ReadyToUse != nil && *in.Snapshot.Status.ReadyToUse, in.Snapshot.DeletionTimestamp)
	case KindSnapshotContent:
		if in.Content == nil {
			return "not found"
		}
		return readyState(in.Content.Status != nil && in.Content.Status.ReadyToUse != nil && *in.Content.Status.ReadyToUse, in.Content.DeletionTimestamp)
	}
	return ""
}

func readyState(ready bool, deleting *metav1.Time) string {
	s := "not ready to use"
	if ready {
		s = "ready to use"
	}
	if deleting != nil {
		s += ", being deleted"
	}
	return s
}

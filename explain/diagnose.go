package explain

import (
	"fmt"
	"strings"

	v1 "k8s.io/api/core/v1"
)

// Diagnose explains the state of in's target from the objects in in. It
// never returns an empty list and sorts findings by severity, errors first.
func Diagnose(in Input) []Finding {
	var fs []Finding
	switch in.Kind {
	case KindPVC:
		fs = diagnosePVC(&in)
	case KindPV:
		fs = diagnosePV(&in)
	case KindSnapshot:
		fs = diagnoseSnapshot(&in)
	case KindSnapshotContent:
		fs = diagnoseContent(&in)
	default:
		fs = []Finding{{Severity: Error, Reason: ReasonNotFound,
			Message: fmt.Sprintf("kind %q is not one explain understands", in.Kind),
			Action:  "ask about a PersistentVolumeClaim, PersistentVolume, VolumeSnapshot or VolumeSnapshotContent"}}
	}
	sortFindings(fs)
	return fs
}

func notFound(in *Input) []Finding {
	name := in.Name
	if in.Namespace != "" {
		name = in.Namespace + "/" + name
	}
	return []Finding{{Severity: Error, Reason: ReasonNotFound,
		Message: fmt.Sprintf("%s %s does not exist", in.Kind, name),
		Action:  "check the name and namespace"}}
}

// podsUsing returns the names of the pods in in.Pods that still run or may
// run (not Succeeded or Failed).
func activePods(pods []v1.Pod) []string {
	var names []string
	for i := range pods {
		p := &pods[i]
		if p.Status.Phase == v1.PodSucceeded || p.Status.Phase == v1.PodFailed {
			continue
		}
		names = append(names, p.Name)
	}
	return names
}

func list(names []string) string {
	if len(names) > 5 {
		return strings.Join(names[:5], ", ") + fmt.Sprintf(" and %d more", len(names)-5)
	}
	return strings.Join(names, ", ")
}

func hasFinalizer(fins []string, f string) bool { return contains(fins, f) }

// problems reports whether any finding is a Warning or an Error.
func problems(fs []Finding) bool {
	for _, f := range fs {
		if f.Severity > Info {
			return true
		}
	}
	return false
}

// inTree reports whether a provisioner name is an in-tree one that no CSI
// sidecar serves.
func inTree(provisioner string) bool {
	return strings.HasPrefix(provisioner, "kubernetes.io/")
}

package explain

import (
	"sort"
	"time"

	snapv1 "github.com/kubernetes-csi/external-snapshotter/client/v8/apis/volumesnapshot/v1"
	coordinationv1 "k8s.io/api/coordination/v1"
	v1 "k8s.io/api/core/v1"
	storagev1 "k8s.io/api/storage/v1"
)

// Kind names the kind of object to explain.
type Kind string

// The kinds Explain and Diagnose understand.
const (
	KindPVC             Kind = "PersistentVolumeClaim"
	KindPV              Kind = "PersistentVolume"
	KindSnapshot        Kind = "VolumeSnapshot"
	KindSnapshotContent Kind = "VolumeSnapshotContent"
)

// ParseKind accepts the kind names and short names kubectl accepts
// ("pvc", "persistentvolumeclaims", "vs", "vsc", ...), case-insensitively.
func ParseKind(s string) (Kind, bool) {
	switch lower(s) {
	case "pvc", "pvcs", "persistentvolumeclaim", "persistentvolumeclaims":
		return KindPVC, true
	case "pv", "pvs", "persistentvolume", "persistentvolumes":
		return KindPV, true
	case "vs", "volumesnapshot", "volumesnapshots":
		return KindSnapshot, true
	case "vsc", "vscs", "volumesnapshotcontent", "volumesnapshotcontents":
		return KindSnapshotContent, true
	}
	return "", false
}

// Severity ranks a finding.
type Severity int

// Severities, from least to most serious.
const (
	// Info: nothing is wrong, or the object is progressing normally.
	Info Severity = iota
	// Warning: the object waits for something that may or may not come.
	Warning
	// Error: the object will not progress until someone acts.
	Error
)

func (s Severity) String() string {
	switch s {
	case Info:
		return "Info"
	case Warning:
		return "Warning"
	case Error:
		return "Error"
	}
	return "Unknown"
}

// Finding is one reason why an object is in its state.
type Finding struct {
	Severity Severity `json:"severity"`
	// Reason is a short machine-readable code, one of the Reason* constants.
	Reason string `json:"reason"`
	// Message says why, in plain words.
	Message string `json:"message"`
	// Action says what to do next; empty when nothing needs doing.
	Action string `json:"action,omitempty"`
}

// Input holds the objects Diagnose reasons about. Only the target is
// required; every other field may be empty, and a finding that needs a
// missing object is simply not made.
type Input struct {
	// Kind of the target; the matching field below is the target.
	Kind Kind
	// Name and Namespace of the target, used when the target was not found
	// (its field is nil).
	Namespace, Name string

	// PVC: the target claim, the claim bound to the target PV, or the
	// source claim of the target snapshot.
	PVC *v1.PersistentVolumeClaim
	// PV: the target volume or the volume bound to the claim.
	PV *v1.PersistentVolume
	// StorageClass of the claim or volume; nil if unset or not found.
	StorageClass *storagev1.StorageClass
	// StorageClassMissing is set when the claim names a class that does
	// not exist.
	StorageClassMissing bool
	// DefaultStorageClass is the cluster's default class, if any.
	DefaultStorageClass *storagev1.StorageClass
	// Pods that use the claim (spec.volumes[].persistentVolumeClaim),
	// whatever their phase.
	Pods []v1.Pod
	// Events of the target and the objects it names (PV, content,
	// snapshot), any age; Diagnose uses the newest per reason.
	Events []v1.Event
	// Leases whose names match the controllers that should act on the
	// target, from any namespace.
	Leases []coordinationv1.Lease
	// Capacities are the CSIStorageCapacity objects of the claim's class.
	Capacities []storagev1.CSIStorageCapacity
	// Nodes and CSINodes of the cluster (or at least the selected node).
	Nodes    []v1.Node
	CSINodes []storagev1.CSINode

	// Snapshot: the target snapshot or the one bound to the target content.
	Snapshot *snapv1.VolumeSnapshot
	// Content: the target content or the one bound to the target snapshot.
	Content *snapv1.VolumeSnapshotContent
	// SnapshotClass named by the snapshot or content; nil if unset or not
	// found.
	SnapshotClass *snapv1.VolumeSnapshotClass
	// SnapshotClasses are all VolumeSnapshotClasses, used to find the
	// default class.
	SnapshotClasses []snapv1.VolumeSnapshotClass
	// DataSourceSnapshot is the VolumeSnapshot a claim restores from, nil
	// if it has none or it does not exist.
	DataSourceSnapshot *snapv1.VolumeSnapshot
	// DataSourceClaim is the claim a claim clones, nil if it has none or
	// it does not exist.
	DataSourceClaim *v1.PersistentVolumeClaim

	// Now is the time leases are judged against; zero means time.Now().
	Now time.Time
}

// Report is what Explain found about one object.
//
// Its JSON form (see the field tags) is stable: kind, namespace (omitted
// for cluster-scoped kinds), name, state, findings with severity ("Info",
// "Warning", "Error"), reason, message and action (omitted when empty),
// and unread (omitted when empty).
type Report struct {
	Kind      Kind   `json:"kind"`
	Namespace string `json:"namespace,omitempty"`
	Name      string `json:"name"`
	// State is a one-line summary such as "Pending" or "Bound, resize
	// 1Gi -> 2Gi pending".
	State    string    `json:"state"`
	Findings []Finding `json:"findings"`
	// Unread lists the related objects Explain could not read (for
	// example for lack of RBAC); the findings are made without them.
	Unread []string `json:"unread,omitempty"`
}

// Worst is the highest severity among the findings.
func (r Report) Worst() Severity {
	w := Info
	for _, f := range r.Findings {
		if f.Severity > w {
			w = f.Severity
		}
	}
	return w
}

// Has reports whether a finding with the reason is present.
func (r Report) Has(reason string) bool { return hasReason(r.Findings, reason) }

func hasReason(fs []Finding, reason string) bool {
	for _, f := range fs {
		if f.Reason == reason {
			return true
		}
	}
	return false
}

func sortFindings(fs []Finding) {
	sort.SliceStable(fs, func(i, j int) bool { return fs[i].Severity > fs[j].Severity })
}

func lower(s string) string {
	b := []byte(s)
	for i, c := range b {
		if c >= 'A' && c <= 'Z' {
			b[i] = c + 'a' - 'A'
		}
	}
	return string(b)
}

package explain

import (
	"context"
	"fmt"
	"sort"

	snapclient "github.com/kubernetes-csi/external-snapshotter/client/v8/clientset/versioned"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
)

// ExplainAll explains every PersistentVolumeClaim or every VolumeSnapshot
// of a namespace, and returns the reports sorted by [SortReports]: problems
// first. kind accepts the same names as [Explain], but only the namespaced
// kinds; an empty namespace gives no reports, not every namespace.
//
// The error is for an unknown or cluster-scoped kind, for failing to list
// the objects and for failing to read one of them (an object deleted
// between the list and its read gives a NotFound report instead).
func ExplainAll(ctx context.Context, kube kubernetes.Interface, snap snapclient.Interface, kind, namespace string) ([]Report, error) {
	k, ok := ParseKind(kind)
	if !ok {
		return nil, fmt.Errorf("explain: unknown kind %q (want pvc or volumesnapshot)", kind)
	}
	if namespace == "" {
		return nil, fmt.Errorf("explain: no namespace given to sweep (name one)")
	}
	var names []string
	switch k {
	case KindPVC:
		l, err := kube.CoreV1().PersistentVolumeClaims(namespace).List(ctx, metav1.ListOptions{})
		if err != nil {
			return nil, fmt.Errorf("explain: listing PersistentVolumeClaims in %s: %w", namespace, err)
		}
		for _, o := range l.Items {
			names = append(names, o.Name)
		}
	case KindSnapshot:
		if snap == nil {
			return nil, fmt.Errorf("explain: a snapshot client is needed to explain a %s", k)
		}
		l, err := snap.SnapshotV1().VolumeSnapshots(namespace).List(ctx, metav1.ListOptions{})
		if err != nil {
			return nil, fmt.Errorf("explain: listing VolumeSnapshots in %s: %w", namespace, err)
		}
		for _, o := range l.Items {
			names = append(names, o.Name)
		}
	default:
		return nil, fmt.Errorf("explain: only PersistentVolumeClaims and VolumeSnapshots are swept by namespace, not %s (name the object instead)", k)
	}
	reps := make([]Report, 0, len(names))
	for _, name := range names {
		r, err := Explain(ctx, kube, snap, string(k), namespace, name)
		if err != nil {
			return nil, err
		}
		reps = append(reps, r)
	}
	SortReports(reps)
	return reps, nil
}

// SortReports orders reports by their worst severity, errors first, then by
// namespace and name.
func SortReports(reps []Report) {
	sort.SliceStable(reps, func(i, j int) bool {
		a, b := reps[i], reps[j]
		if wa, wb := a.Worst(), b.Worst(); wa != wb {
			return wa > wb
		}
		if a.Namespace != b.Namespace {
			return a.Namespace < b.Namespace
		}
		return a.Name < b.Name
	})
}

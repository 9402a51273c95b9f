package conversion

import (
	"encoding/json"
	"fmt"
	"strings"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	utiljson "k8s.io/apimachinery/pkg/util/json"
)

// Group is the API group whose VolumeGroupSnapshotContents are converted.
const Group = "groupsnapshot.storage.k8s.io"

// Kind is the one kind converted.
const Kind = "VolumeGroupSnapshotContent"

// AnnotationVolumeSnapshotInfoList holds, in the v1beta1 view of a
// VolumeGroupSnapshotContent, the status.volumeSnapshotInfoList of the newer
// versions as JSON, so that the fields v1beta1 lacks (creationTime,
// readyToUse, restoreSize per member) survive a round trip through v1beta1.
// It never appears in the v1 or v1beta2 view.
const AnnotationVolumeSnapshotInfoList = "groupsnapshot.storage.kubernetes.io/volume-snapshot-info-list"

// Served API versions. v1 and v1beta2 have the same schema; v1beta1 lists
// members in status.volumeSnapshotHandlePairList (handles only) where the
// others have status.volumeSnapshotInfoList.
const (
	V1      = Group + "/v1"
	V1beta1 = Group + "/v1beta1"
	V1beta2 = Group + "/v1beta2"
)

const (
	fieldInfoList = "volumeSnapshotInfoList"
	fieldPairList = "volumeSnapshotHandlePairList"
	fieldVolume   = "volumeHandle"
	fieldSnapshot = "snapshotHandle"
)

// shapes maps each known apiVersion to whether it has the v1beta1 shape.
var shapes = map[string]bool{V1: false, V1beta2: false, V1beta1: true}

// Convert returns a copy of obj, a VolumeGroupSnapshotContent in any of the
// versions V1, V1beta1 and V1beta2, converted to apiVersion (one of the
// same). obj is not modified. Converting to its own version returns an
// unchanged copy.
//
// Converting to v1beta1 copies each member's handles into
// volumeSnapshotHandlePairList and keeps the whole volumeSnapshotInfoList in
// the AnnotationVolumeSnapshotInfoList annotation. Converting from v1beta1
// builds volumeSnapshotInfoList from the handle pairs, which win when a
// v1beta1 client changed them, and takes the other fields of each member
// from the annotation entry with the same handles; the annotation is
// dropped. So newer → v1beta1 → newer gives back the original object.
//
// The error says which object and field is wrong; it is the message the API
// server shows to the client whose request needed the conversion.
func Convert(obj *unstructured.Unstructured, apiVersion string) (*unstructured.Unstructured, error) {
	from := obj.GetAPIVersion()
	if kind := obj.GetKind(); kind != Kind {
		return nil, fmt.Errorf("object %q has kind %q: this webhook converts only %s; set spec.conversion.strategy None on the other CRDs", obj.GetName(), kind, Kind)
	}
	fromOld, ok := shapes[from]
	if !ok {
		return nil, fmt.Errorf("%s %q has apiVersion %q: %w", Kind, obj.GetName(), from, errUnknownVersion)
	}
	toOld, ok := shapes[apiVersion]
	if !ok {
		return nil, fmt.Errorf("cannot convert %s %q to %q: %w", Kind, obj.GetName(), apiVersion, errUnknownVersion)
	}
	out := obj.DeepCopy()
	var err error
	switch {
	case !fromOld && toOld:
		err = toV1beta1(out)
	case fromOld && !toOld:
		err = fromV1beta1(out)
	}
	if err != nil {
		return nil, fmt.Errorf("converting %s %q from %s to %s: %w", Kind, obj.GetName(), from, apiVersion, err)
	}
	out.SetAPIVersion(apiVersion)
	return out, nil
}

// errUnknownVersion is wrapped by Convert for a version it does not know.
var errUnknownVersion = fmt.Errorf("unsupported version: the webhook knows %s, %s and %s; list only these in the CRD's versions, or run a newer webhook", V1, V1beta1, V1beta2)

// toV1beta1 turns the v1/v1beta2 shape into the v1beta1 shape in place.
func toV1beta1(obj *unstructured.Unstructured) error {
	// A stale annotation must not be mistaken for this object's list.
	setAnnotation(obj, "")
	infos, found, err := moveStatusList(obj, fieldInfoList, fieldPairList, func(m map[string]any) map[string]any {
		p := map[string]any{}
		for _, f := range []string{fieldVolume, fieldSnapshot} {
			if v, ok := m[f]; ok {
				p[f] = v
			}
		}
		return p
	})
	if err != nil || !found {
		return err
	}
	raw, err := json.Marshal(infos)
	if err != nil {
		return fmt.Errorf("encoding status.%s: %w", fieldInfoList, err)
	}
	setAnnotation(obj, string(raw))
	return nil
}

// fromV1beta1 turns the v1beta1 shape into the v1/v1beta2 shape in place.
func fromV1beta1(obj *unstructured.Unstructured) error {
	saved, err := savedInfos(obj)
	if err != nil {
		return err
	}
	setAnnotation(obj, "")
	_, _, err = moveStatusList(obj, fieldPairList, fieldInfoList, func(p map[string]any) map[string]any {
		info := map[string]any{}
		if q := saved[handleKey(p)]; len(q) > 0 {
			info, saved[handleKey(p)] = q[0], q[1:]
		}
		for _, f := range []string{fieldVolume, fieldSnapshot} {
			delete(info, f)
			if v, ok := p[f]; ok {
				info[f] = v
			}
		}
		return info
	})
	return err
}

// moveStatusList replaces the list status.<from> by status.<to>, whose
// entries are each's results over the old ones in order, and returns the old
// list. When status.<from> is absent it changes nothing and found is false.
func moveStatusList(obj *unstructured.Unstructured, from, to string, each func(map[string]any) map[string]any) (old []any, found bool, err error) {
	old, found, err = unstructured.NestedSlice(obj.Object, "status", from)
	if err != nil {
		return nil, false, fmt.Errorf("status.%s: %w", from, err)
	}
	if !found {
		return nil, false, nil
	}
	moved := make([]any, 0, len(old))
	for i, e := range old {
		m, ok := e.(map[string]any)
		if !ok {
			return nil, false, fmt.Errorf("status.%s[%d] is a %T, want an object", from, i, e)
		}
		moved = append(moved, each(m))
	}
	unstructured.RemoveNestedField(obj.Object, "status", from)
	return old, true, unstructured.SetNestedSlice(obj.Object, moved, "status", to)
}

// savedInfos decodes the annotation into its entries grouped by handles, in
// order; nil when the annotation is absent.
func savedInfos(obj *unstructured.Unstructured) (map[string][]map[string]any, error) {
	raw, ok := obj.GetAnnotations()[AnnotationVolumeSnapshotInfoList]
	if !ok {
		return nil, nil
	}
	// utiljson keeps integers as int64: nanosecond timestamps do not fit a
	// float64 exactly.
	var entries []any
	if err := utiljson.Unmarshal([]byte(raw), &entries); err != nil {
		return nil, fmt.Errorf("annotation %s is not a JSON list (%v): remove it or restore the value the webhook wrote", AnnotationVolumeSnapshotInfoList, err)
	}
	saved := map[string][]map[string]any{}
	for i, e := range entries {
		m, ok := e.(map[string]any)
		if !ok {
			return nil, fmt.Errorf("annotation %s: entry %d is a %T, want an object: remove the annotation or restore the value the webhook wrote", AnnotationVolumeSnapshotInfoList, i, e)
		}
		saved[handleKey(m)] = append(saved[handleKey(m)], m)
	}
	return saved, nil
}

// handleKey identifies a member by its two handles.
func handleKey(m map[string]any) string {
	v, _ := m[fieldVolume].(string)
	s, _ := m[fieldSnapshot].(string)
	return strings.Join([]string{v, s}, "\x00")
}

// setAnnotation sets the info-list annotation to value, or removes it when
// value is empty.
func setAnnotation(obj *unstructured.Unstructured, value string) {
	a := obj.GetAnnotations()
	if value == "" {
		if _, ok := a[AnnotationVolumeSnapshotInfoList]; !ok {
			return
		}
		delete(a, AnnotationVolumeSnapshotInfoList)
	} else {
		if a == nil {
			a = map[string]string{}
		}
		a[AnnotationVolumeSnapshotInfoList] = value
	}
	obj.SetAnnotations(a)
}

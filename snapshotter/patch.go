package snapshotter

import (
	"encoding/json"
	"slices"

	crdv1 "github.com/kubernetes-csi/external-snapshotter/client/v8/apis/volumesnapshot/v1"

	"github.com/csi-kit/sidecars/internal/kube"
)

// Patches are JSON merge patches. A patch that carries the object's
// resourceVersion fails with a conflict if the object changed meanwhile;
// status patches carry none, since only one worker writes a given status.

// finalizersPatch is kube.FinalizersPatch, the one finalizer patch.
func finalizersPatch(rv string, finalizers []string) []byte {
	return kube.FinalizersPatch(rv, finalizers)
}

func withFinalizers(list []string, add ...string) []string {
	out := slices.Clone(list)
	for _, f := range add {
		if !slices.Contains(out, f) {
			out = append(out, f)
		}
	}
	return out
}

func withoutFinalizers(list []string, remove ...string) []string {
	return slices.DeleteFunc(slices.Clone(list), func(f string) bool { return slices.Contains(remove, f) })
}

func annotationPatch(key, value string) []byte {
	var v any = value
	if value == "" {
		v = nil
	}
	return mustJSON(map[string]any{"metadata": map[string]any{"annotations": map[string]any{key: v}}})
}

// snapshotStatusPatch replaces the fields of st; an absent error is
// cleared explicitly.
func snapshotStatusPatch(st *crdv1.VolumeSnapshotStatus) []byte {
	m := map[string]any{}
	_ = json.Unmarshal(mustJSON(st), &m)
	if st.Error == nil {
		m["error"] = nil
	}
	return mustJSON(map[string]any{"status": m})
}

// contentStatusPatch is snapshotStatusPatch for a content.
func contentStatusPatch(st *crdv1.VolumeSnapshotContentStatus) []byte {
	m := map[string]any{}
	_ = json.Unmarshal(mustJSON(st), &m)
	if st.Error == nil {
		m["error"] = nil
	}
	return mustJSON(map[string]any{"status": m})
}

func mustJSON(v any) []byte {
	data, err := json.Marshal(v)
	if err != nil {
		panic(err) // only maps, strings and API types are marshalled
	}
	return data
}

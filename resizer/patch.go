package resizer

import (
	"context"
	"encoding/json"
	"fmt"

	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/strategicpatch"

	"github.com/csi-kit/sidecars/internal/kube"
)

// patchData is the strategic merge patch that turns old into updated. With
// precondition, it carries old's resourceVersion so the apiserver refuses
// it if the object changed in between.
func patchData(old, updated any, dataStruct any, precondition string) ([]byte, error) {
	oldJSON, err := json.Marshal(old)
	if err != nil {
		return nil, err
	}
	newJSON, err := json.Marshal(updated)
	if err != nil {
		return nil, err
	}
	patch, err := strategicpatch.CreateTwoWayMergePatch(oldJSON, newJSON, dataStruct)
	if err != nil {
		return nil, err
	}
	if precondition == "" {
		return patch, nil
	}
	var m map[string]any
	if err := json.Unmarshal(patch, &m); err != nil {
		return nil, err
	}
	meta, _ := m["metadata"].(map[string]any)
	if meta == nil {
		meta = map[string]any{}
	}
	meta["resourceVersion"] = precondition
	m["metadata"] = meta
	return json.Marshal(m)
}

// patchPVC writes the status and annotations of updated through the status
// subresource. Nothing is sent when nothing changed.
func (r *Resizer) patchPVC(ctx context.Context, old, updated *v1.PersistentVolumeClaim, precondition bool) (*v1.PersistentVolumeClaim, error) {
	if equality.Semantic.DeepEqual(old.Status, updated.Status) && equality.Semantic.DeepEqual(old.Annotations, updated.Annotations) {
		return old, nil
	}
	rv := ""
	if precondition {
		rv = old.ResourceVersion
	}
	data, err := patchData(old, updated, v1.PersistentVolumeClaim{}, rv)
	if err != nil {
		return nil, fmt.Errorf("patch of PVC %s/%s: %w", old.Namespace, old.Name, err)
	}
	got, err := r.kube.CoreV1().PersistentVolumeClaims(old.Namespace).Patch(ctx, old.Name,
		types.StrategicMergePatchType, data, metav1.PatchOptions{}, "status")
	if err != nil {
		return nil, fmt.Errorf("updating PVC %s/%s: %w", old.Namespace, old.Name, err)
	}
	_, _ = kube.StripForCache(got)
	r.freshPVCs.Remember(string(got.UID), got)
	return got, nil
}

// patchPV writes the spec and annotations of updated.
func (r *Resizer) patchPV(ctx context.Context, old, updated *v1.PersistentVolume) (*v1.PersistentVolume, error) {
	if equality.Semantic.DeepEqual(old.Spec, updated.Spec) && equality.Semantic.DeepEqual(old.Annotations, updated.Annotations) {
		return old, nil
	}
	data, err := patchData(old, updated, v1.PersistentVolume{}, "")
	if err != nil {
		return nil, fmt.Errorf("patch of PV %s: %w", old.Name, err)
	}
	got, err := r.kube.CoreV1().PersistentVolumes().Patch(ctx, old.Name, types.StrategicMergePatchType, data, metav1.PatchOptions{})
	if err != nil {
		return nil, fmt.Errorf("updating PV %s: %w", old.Name, err)
	}
	_, _ = kube.StripForCache(got)
	r.freshPVs.Remember(string(got.UID), got)
	return got, nil
}

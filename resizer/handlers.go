package resizer

import (
	"strings"

	v1 "k8s.io/api/core/v1"
	storagev1 "k8s.io/api/storage/v1"
	"k8s.io/client-go/tools/cache"

	"github.com/csi-kit/sidecars/internal/kube"
)

const vacIndex = "resizer/vac"

func indexByVAC(obj any) ([]string, error) {
	pvc, ok := obj.(*v1.PersistentVolumeClaim)
	if !ok || pvc.Spec.VolumeAttributesClassName == nil || *pvc.Spec.VolumeAttributesClassName == "" {
		return nil, nil
	}
	return []string{*pvc.Spec.VolumeAttributesClassName}, nil
}

func keyOf(ns, name string) string  { return ns + "/" + name }
func namespaceOf(key string) string { ns, _, _ := strings.Cut(key, "/"); return ns }
func nameOf(key string) string      { _, n, _ := strings.Cut(key, "/"); return n }

func (r *Resizer) pvcHandlers() cache.ResourceEventHandler {
	return cache.ResourceEventHandlerFuncs{
		AddFunc: func(obj any) {
			if pvc, ok := obj.(*v1.PersistentVolumeClaim); ok {
				r.queue.Add(keyOf(pvc.Namespace, pvc.Name))
			}
		},
		UpdateFunc: func(oldObj, newObj any) {
			oldPVC, ok1 := oldObj.(*v1.PersistentVolumeClaim)
			pvc, ok2 := newObj.(*v1.PersistentVolumeClaim)
			if !ok1 || !ok2 {
				return
			}
			if oldPVC.ResourceVersion == pvc.ResourceVersion || relevantChange(oldPVC, pvc) {
				r.queue.Add(keyOf(pvc.Namespace, pvc.Name))
			}
		},
		DeleteFunc: func(obj any) {
			obj = kube.Unwrap(obj)
			pvc, ok := obj.(*v1.PersistentVolumeClaim)
			if !ok {
				return
			}
			r.queue.Forget(keyOf(pvc.Namespace, pvc.Name))
			r.mu.Lock()
			delete(r.state, pvc.UID)
			r.mu.Unlock()
			r.freshPVCs.Forget(string(pvc.UID))
		},
	}
}

// relevantChange reports an update that may change a decision: request,
// capacity, allocation, conditions, annotations, phase, volume or VAC.
func relevantChange(a, b *v1.PersistentVolumeClaim) bool {
	sa, sb := SizesOf(a, nil), SizesOf(b, nil)
	return sa.Spec.Cmp(sb.Spec) != 0 || sa.Capacity.Cmp(sb.Capacity) != 0 ||
		sa.Allocated.Cmp(sb.Allocated) != 0 || sa.Status != sb.Status ||
		a.Status.Phase != b.Status.Phase || a.Spec.VolumeName != b.Spec.VolumeName ||
		a.Annotations[AnnStorageResizer] != b.Annotations[AnnStorageResizer] ||
		len(a.Status.Conditions) != len(b.Status.Conditions) ||
		ptrString(a.Spec.VolumeAttributesClassName) != ptrString(b.Spec.VolumeAttributesClassName) ||
		ptrString(a.Status.CurrentVolumeAttributesClassName) != ptrString(b.Status.CurrentVolumeAttributesClassName) ||
		(a.Status.ModifyVolumeStatus == nil) != (b.Status.ModifyVolumeStatus == nil)
}

func ptrString(p *string) string {
	if p == nil {
		return ""
	}
	return *p
}

// pvHandlers enqueue the claim of a PV of this driver when the PV appears
// or changes, so a PVC seen before its PV is not forgotten.
func (r *Resizer) pvHandlers() cache.ResourceEventHandler {
	enqueue := func(obj any) {
		pv, ok := obj.(*v1.PersistentVolume)
		if !ok || pv.Spec.ClaimRef == nil || (!migratedTo(pv, r.name) && (pv.Spec.CSI == nil || pv.Spec.CSI.Driver != r.name)) {
			return
		}
		r.queue.Add(keyOf(pv.Spec.ClaimRef.Namespace, pv.Spec.ClaimRef.Name))
	}
	return cache.ResourceEventHandlerFuncs{
		AddFunc: enqueue,
		UpdateFunc: func(oldObj, newObj any) {
			o, ok1 := oldObj.(*v1.PersistentVolume)
			n, ok2 := newObj.(*v1.PersistentVolume)
			if ok1 && ok2 && o.ResourceVersion != n.ResourceVersion &&
				ptrString(o.Spec.VolumeAttributesClassName) == ptrString(n.Spec.VolumeAttributesClassName) &&
				o.Spec.ClaimRef != nil && n.Spec.ClaimRef != nil && o.Spec.ClaimRef.UID == n.Spec.ClaimRef.UID &&
				len(o.Annotations) == len(n.Annotations) {
				// Capacity changes are ours; nothing else here matters.
				return
			}
			enqueue(newObj)
		},
		DeleteFunc: func(obj any) {
			obj = kube.Unwrap(obj)
			if pv, ok := obj.(*v1.PersistentVolume); ok {
				r.freshPVs.Forget(string(pv.UID))
			}
		},
	}
}

// vacHandlers requeue the PVCs that name a VolumeAttributesClass when it
// appears or changes, so a PVC left Pending on a missing class proceeds.
func (r *Resizer) vacHandlers() cache.ResourceEventHandler {
	enqueue := func(obj any) {
		vac, ok := obj.(*storagev1.VolumeAttributesClass)
		if !ok || vac.DriverName != r.name {
			return
		}
		objs, err := r.pvcIndex.ByIndex(vacIndex, vac.Name)
		if err != nil {
			return
		}
		for _, o := range objs {
			if pvc, ok := o.(*v1.PersistentVolumeClaim); ok {
				r.queue.Add(keyOf(pvc.Namespace, pvc.Name))
			}
		}
	}
	return cache.ResourceEventHandlerFuncs{
		AddFunc:    enqueue,
		UpdateFunc: func(_, obj any) { enqueue(obj) },
	}
}

package resizer

import (
	"context"
	"fmt"

	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/klog/v2"

	"github.com/csi-kit/sidecars/internal/names"
)

// InUseMessage is the text of the event and condition of a PVC whose
// expansion waits for its pods to go.
func InUseMessage(namespace, name, driver string) string {
	return fmt.Sprintf("Unable to expand %s/%s because CSI driver %s "+names.OfflineExpansionText+" and volume is currently in-use", namespace, name, driver)
}

// inUseGate holds back the expansion of a PVC in use when the driver
// cannot expand it online: always for offline-only drivers, and after a
// FailedPrecondition for drivers that declare no expansion mode. A held PVC
// is marked once (event and Resizing condition) and requeued when its last
// pod goes. Nothing is decided before every pod has been listed once.
func (r *Resizer) inUseGate(ctx context.Context, pvc *v1.PersistentVolumeClaim, target resource.Quantity) (bool, error) {
	if r.pods == nil {
		return false, nil
	}
	if err := r.pods.waitListed(ctx); err != nil {
		return false, err
	}
	key := keyOf(pvc.Namespace, pvc.Name)
	var flagged bool
	r.withState(pvc.UID, func(s *claimState) { flagged = s.failedInUse })
	if !r.pods.InUse(key) || (!r.caps.offlineOnly() && !flagged) {
		r.withState(pvc.UID, func(s *claimState) { s.blocked = false })
		return false, nil
	}
	var first bool
	r.withState(pvc.UID, func(s *claimState) { first, s.blocked = !s.blocked, true })
	if !r.pods.InUse(key) {
		// The last pod left while we were marking: go on at once.
		r.withState(pvc.UID, func(s *claimState) { s.blocked = false })
		return false, nil
	}
	msg := InUseMessage(pvc.Namespace, pvc.Name, r.name)
	klog.FromContext(ctx).V(2).Info("Expansion waits for the pods using the volume", "target", target.String())
	if first {
		r.recorder.Event(pvc, v1.EventTypeWarning, EventResizeFailed, msg)
	}
	_, err := r.patchPVC(ctx, pvc, MarkBlocked(pvc, target, msg+"; it will be expanded as soon as no pod uses it", r.now()), false)
	return true, err
}

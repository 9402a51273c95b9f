package provisioner

import (
	"context"
	"fmt"

	v1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/client-go/tools/cache"
	"k8s.io/klog/v2"
)

// DefaultCloneProtectionWorkers is the default Options.CloneProtectionWorkers,
// as upstream's --cloning-protection-threads.
const DefaultCloneProtectionWorkers = 1

// The clone-source queue holds the claims that were deleted while they
// carry FinalizerCloneSource. Its workers (Options.CloneProtectionWorkers)
// drop the finalizer once no Pending claim clones from the claim any more;
// until then the key is retried with the queue's backoff, and a clone that
// binds or goes requeues its source at once (enqueueCloneSource).

// syncCloneSource handles one key of the clone-source queue.
func (p *Provisioner) syncCloneSource(ctx context.Context, key string) error {
	ns, name, err := cache.SplitMetaNamespaceKey(key)
	if err != nil {
		return nil
	}
	src, err := p.claims.PersistentVolumeClaims(ns).Get(name)
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return err
	}
	if src.DeletionTimestamp == nil || !hasFinalizer(src.Finalizers, FinalizerCloneSource) {
		return nil
	}
	ctx = klog.NewContext(ctx, klog.FromContext(ctx).WithValues("pvc", klog.KObj(src)))
	return p.releaseCloneSource(ctx, src)
}

// releaseCloneSource drops the clone-protection finalizer from a deleted
// source claim once no Pending claim clones from it (see clonePending).
func (p *Provisioner) releaseCloneSource(ctx context.Context, src *v1.PersistentVolumeClaim) error {
	pending, err := p.clonePending(src)
	if err != nil {
		return err
	}
	if pending {
		return fmt.Errorf("a pending claim clones from %s: the clone-protection finalizer stays until it is bound or deleted", klog.KObj(src))
	}
	if err := p.patchFinalizers(ctx, src, withoutFinalizer(src.Finalizers, FinalizerCloneSource)); err != nil {
		return err
	}
	klog.FromContext(ctx).V(2).Info("Removed the clone-protection finalizer: no pending claim clones from this claim")
	return nil
}

// enqueueCloneSource queues the source claim of clone c when that source
// has been deleted and waits, with its finalizer, for its clones.
func (p *Provisioner) enqueueCloneSource(c *v1.PersistentVolumeClaim) {
	var ns, name string
	switch ds, ref := c.Spec.DataSource, c.Spec.DataSourceRef; {
	case ds != nil && ds.Kind == "PersistentVolumeClaim" && (ds.APIGroup == nil || *ds.APIGroup == ""):
		ns, name = c.Namespace, ds.Name
	case ds == nil && ref != nil && ref.Kind == "PersistentVolumeClaim" && (ref.APIGroup == nil || *ref.APIGroup == ""):
		ns, name = refNamespace(c), ref.Name
	default:
		return
	}
	src, err := p.claims.PersistentVolumeClaims(ns).Get(name)
	if err != nil || src.DeletionTimestamp == nil || !hasFinalizer(src.Finalizers, FinalizerCloneSource) {
		return
	}
	p.cloneQueue.Retry(ns + "/" + name) // at once, whatever its backoff
}

package provisioner

import (
	"context"
	"strings"
	"time"

	snapv1 "github.com/kubernetes-csi/external-snapshotter/client/v8/apis/volumesnapshot/v1"
	v1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/klog/v2"
)

// restoresFrom reports whether claim pvc restores from snapshot ns/name
// (dataSource in its own namespace, or dataSourceRef in the namespace it
// names; snapshot API group).
func restoresFrom(pvc *v1.PersistentVolumeClaim, ns, name string) bool {
	if ds := pvc.Spec.DataSource; ds != nil {
		return ds.Kind == "VolumeSnapshot" && ds.Name == name && ds.APIGroup != nil &&
			*ds.APIGroup == snapshotAPIGroup && pvc.Namespace == ns
	}
	ref := pvc.Spec.DataSourceRef
	return ref != nil && ref.Kind == "VolumeSnapshot" && ref.Name == name && ref.APIGroup != nil &&
		*ref.APIGroup == snapshotAPIGroup && refNamespace(pvc) == ns
}

// snapshotInUse reports whether a restore still needs snapshot ns/name: a
// claim other than except that restores from it, is not bound and is not
// being deleted (of namespace ns, or of any namespace with
// Options.CrossNamespaceDataSources), or a provisioning record naming it.
func (p *Provisioner) snapshotInUse(ns, name string, except types.UID) bool {
	lister := p.claims.PersistentVolumeClaims(ns).List
	if p.opts.CrossNamespaceDataSources {
		lister = p.claims.List
	}
	claims, err := lister(everything())
	if err != nil {
		return true
	}
	for _, c := range claims {
		if c.UID != except && c.DeletionTimestamp == nil && c.Spec.VolumeName == "" && restoresFrom(c, ns, name) {
			return true
		}
	}
	want := ns + "/" + name
	p.records.mu.Lock()
	defer p.records.mu.Unlock()
	for uid, rec := range p.records.m {
		if uid != except && rec.meta.Snapshot == want {
			return true
		}
	}
	return false
}

// releaseSnapshotIfUnused removes the source-protection finalizer from
// snapshot ns/name once no restore needs it (except the claim whose
// restore just finished). Best effort: the sweeper retries. A Forbidden
// answer is a Warning on the snapshot, as the finalizer then stays until
// someone removes it.
func (p *Provisioner) releaseSnapshotIfUnused(ctx context.Context, ns, name string, except types.UID) {
	if p.snaps == nil || p.snapshots == nil || p.snapshotInUse(ns, name, except) {
		return
	}
	snap, err := p.snaps.SnapshotV1().VolumeSnapshots(ns).Get(ctx, name, metav1.GetOptions{})
	if err != nil || !hasFinalizer(snap.Finalizers, FinalizerSnapshotSource) {
		return
	}
	snap.Finalizers = withoutFinalizer(snap.Finalizers, FinalizerSnapshotSource)
	_, err = p.snaps.SnapshotV1().VolumeSnapshots(ns).Update(ctx, snap, metav1.UpdateOptions{})
	switch {
	case err == nil:
		klog.FromContext(ctx).V(2).Info("Released the source-protection finalizer", "snapshot", klog.KRef(ns, name))
	case apierrors.IsForbidden(err):
		p.rec.Eventf(snap, v1.EventTypeWarning, ReasonSnapshotReleaseFailed,
			"Cannot remove finalizer %s: %v. Grant the provisioner update on volumesnapshots, or remove the finalizer by hand", FinalizerSnapshotSource, err)
	default:
		klog.FromContext(ctx).V(2).Info("Could not remove the snapshot source-protection finalizer", "snapshot", klog.KRef(ns, name), "err", err)
	}
}

// sweepSnapshots removes the source-protection finalizer from every
// snapshot no restore needs any more (a restore that failed and whose
// claim was deleted leaves it behind), every Options.SnapshotSweepInterval.
func (p *Provisioner) sweepSnapshots(ctx context.Context) {
	if p.opts.SnapshotSweepInterval <= 0 || p.snapshots == nil {
		return
	}
	t := p.opts.Clock.NewTicker(p.opts.SnapshotSweepInterval)
	defer t.Stop()
	for {
		p.sweepOnce(ctx)
		select {
		case <-ctx.Done():
			return
		case <-t.C():
		}
	}
}

func (p *Provisioner) sweepOnce(ctx context.Context) {
	snaps, err := p.snapshots.List(everything())
	if err != nil {
		return
	}
	for _, s := range snaps {
		if ctx.Err() != nil {
			return
		}
		if hasFinalizer(s.Finalizers, FinalizerSnapshotSource) {
			p.releaseSnapshotIfUnused(ctx, s.Namespace, s.Name, "")
		}
	}
}

// enqueueSnapshot queues a deleted snapshot that carries the
// source-protection finalizer: whoever put it there (a restore, or a user),
// it must go as soon as no restore needs the snapshot.
func (p *Provisioner) enqueueSnapshot(o any) {
	s, ok := o.(*snapv1.VolumeSnapshot)
	if ok && s.DeletionTimestamp != nil && hasFinalizer(s.Finalizers, FinalizerSnapshotSource) {
		p.snapshotQueue.Add(s.Namespace + "/" + s.Name)
	}
}

// enqueueSource queues the snapshot a deleted claim restored from.
func (p *Provisioner) enqueueSource(pvc *v1.PersistentVolumeClaim) {
	if ds := pvc.Spec.DataSource; ds != nil && ds.Kind == "VolumeSnapshot" {
		p.snapshotQueue.Add(pvc.Namespace + "/" + ds.Name)
	}
	if ref := pvc.Spec.DataSourceRef; ref != nil && ref.Kind == "VolumeSnapshot" {
		p.snapshotQueue.Add(refNamespace(pvc) + "/" + ref.Name)
	}
}

// syncSnapshot releases one queued snapshot if no restore needs it.
func (p *Provisioner) syncSnapshot(ctx context.Context, key string) error {
	ns, name := snapshotOf(key)
	p.releaseSnapshotIfUnused(ctx, ns, name, "")
	return nil
}

// snapshotOf splits a record's "namespace/name" snapshot reference.
func snapshotOf(ref string) (ns, name string) {
	ns, name, _ = strings.Cut(ref, "/")
	return ns, name
}

// DefaultSnapshotSweepInterval is how often orphaned source-protection
// finalizers are swept, as upstream's --snapshot-orphan-sweep-interval.
const DefaultSnapshotSweepInterval = 5 * time.Minute

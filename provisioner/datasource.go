package provisioner

import (
	"context"
	"errors"
	"fmt"
	"strconv"

	"github.com/container-storage-interface/spec/lib/go/csi"
	v1 "k8s.io/api/core/v1"
	storagev1 "k8s.io/api/storage/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
)

// sourceInfo describes the content source of a claim.
type sourceInfo struct {
	kind      string // "VolumeSnapshot" or "PersistentVolumeClaim"
	namespace string // the source's namespace: the claim's, or another one's with a ReferenceGrant
	name      string
	content   *csi.VolumeContentSource
}

// errPopulator marks a claim whose data source belongs to a populator.
var errPopulator = errors.New("assuming an external populator will provision the volume")

func everything() labels.Selector { return labels.Everything() }

// dataSource checks the claim's data source and returns the content
// source; nil without one. A dataSourceRef naming another namespace is
// refused unless Options.CrossNamespaceDataSources is set and a
// ReferenceGrant in that namespace allows it (see refgrant.go); the grant
// is checked before the source is read or given a finalizer.
func (p *Provisioner) dataSource(ctx context.Context, pvc *v1.PersistentVolumeClaim, class *storagev1.StorageClass) (*sourceInfo, error) {
	var kind, name, group string
	ns := pvc.Namespace
	switch {
	case pvc.Spec.DataSource != nil:
		ds := pvc.Spec.DataSource
		kind, name = ds.Kind, ds.Name
		if ds.APIGroup != nil {
			group = *ds.APIGroup
		}
	case pvc.Spec.DataSourceRef != nil:
		ds := pvc.Spec.DataSourceRef
		kind, name = ds.Kind, ds.Name
		if ds.APIGroup != nil {
			group = *ds.APIGroup
		}
		if other := refNamespace(pvc); other != pvc.Namespace {
			if !p.opts.CrossNamespaceDataSources {
				return nil, final(fmt.Errorf("cross-namespace data source %s/%s is not supported: the provisioner runs without feature gate CrossNamespaceVolumeDataSource", other, ds.Name))
			}
			ns = other
		}
	default:
		return nil, nil
	}
	if name == "" {
		return nil, final(errors.New("data source has an empty name"))
	}
	switch {
	case kind == "VolumeSnapshot" && group == snapshotAPIGroup:
		if ns != pvc.Namespace {
			if err := p.checkGrant(ctx, pvc.Namespace, sourceRef{group: group, kind: kind, namespace: ns, name: name}); err != nil {
				return nil, err
			}
		}
		return p.snapshotSource(ctx, pvc, class, ns, name)
	case kind == "VolumeSnapshot":
		return nil, final(fmt.Errorf("the claim's data source VolumeSnapshot has API group %q, want %q", group, snapshotAPIGroup))
	case kind == "PersistentVolumeClaim" && group == "":
		if ns != pvc.Namespace {
			if err := p.checkGrant(ctx, pvc.Namespace, sourceRef{kind: kind, namespace: ns, name: name}); err != nil {
				return nil, err
			}
		}
		return p.cloneSource(ctx, pvc, class, ns, name)
	}
	return nil, errPopulator
}

// refNamespace returns the namespace of the claim's dataSourceRef: its
// own when the reference names none.
func refNamespace(pvc *v1.PersistentVolumeClaim) string {
	if ref := pvc.Spec.DataSourceRef; ref != nil && ref.Namespace != nil && *ref.Namespace != "" {
		return *ref.Namespace
	}
	return pvc.Namespace
}

func (p *Provisioner) snapshotSource(ctx context.Context, pvc *v1.PersistentVolumeClaim, class *storagev1.StorageClass, ns, name string) (*sourceInfo, error) {
	if !p.caps.HasController(csi.ControllerServiceCapability_RPC_CREATE_DELETE_SNAPSHOT) {
		return nil, final(fmt.Errorf("driver %s does not support snapshots (CREATE_DELETE_SNAPSHOT)", p.name))
	}
	if p.snapshots == nil {
		return nil, final(errors.New("the VolumeSnapshot API is not available: cannot restore from a VolumeSnapshot"))
	}
	snap, err := p.snapshots.VolumeSnapshots(ns).Get(name)
	if err != nil {
		return nil, fmt.Errorf("error getting snapshot %s/%s: %w", ns, name, err)
	}
	if snap.DeletionTimestamp != nil && !hasFinalizer(snap.Finalizers, FinalizerSnapshotSource) {
		return nil, fmt.Errorf("snapshot %s/%s is being deleted", ns, name)
	}
	if snap.Status == nil || snap.Status.BoundVolumeSnapshotContentName == nil || *snap.Status.BoundVolumeSnapshotContentName == "" {
		return nil, fmt.Errorf("snapshot %s/%s is not bound to a content yet", ns, name)
	}
	if snap.Status.ReadyToUse == nil || !*snap.Status.ReadyToUse {
		return nil, fmt.Errorf("snapshot %s/%s is not ready to use", ns, name)
	}
	content, err := p.contents.Get(*snap.Status.BoundVolumeSnapshotContentName)
	if err != nil {
		return nil, fmt.Errorf("error getting snapshot content %s: %w", *snap.Status.BoundVolumeSnapshotContentName, err)
	}
	ref := content.Spec.VolumeSnapshotRef
	if ref.UID != snap.UID || ref.Namespace != snap.Namespace || ref.Name != snap.Name {
		return nil, fmt.Errorf("snapshot content %s does not point back to snapshot %s/%s", content.Name, snap.Namespace, snap.Name)
	}
	if content.Spec.Driver != class.Provisioner {
		return nil, fmt.Errorf("snapshot content %s is of driver %q, the class provisions with %q", content.Name, content.Spec.Driver, class.Provisioner)
	}
	if content.Status == nil || content.Status.SnapshotHandle == nil || *content.Status.SnapshotHandle == "" {
		return nil, fmt.Errorf("snapshot content %s has no snapshot handle", content.Name)
	}
	if snap.Status.RestoreSize != nil {
		req := pvc.Spec.Resources.Requests[v1.ResourceStorage]
		if req.Cmp(*snap.Status.RestoreSize) < 0 {
			return nil, fmt.Errorf("requested volume size %d is less than the size %d of snapshot %s/%s", req.Value(), snap.Status.RestoreSize.Value(), snap.Namespace, snap.Name)
		}
	}
	if !p.opts.AllowVolumeModeConversion && content.Spec.SourceVolumeMode != nil && pvc.Spec.VolumeMode != nil &&
		*content.Spec.SourceVolumeMode != *pvc.Spec.VolumeMode {
		if ok, _ := strconv.ParseBool(content.Annotations[annAllowVolumeModeChange]); !ok {
			return nil, fmt.Errorf("requested volume %s/%s modifies the mode of the source volume but does not have permission to do so: %s is not set to true on VolumeSnapshotContent %s",
				pvc.Namespace, pvc.Name, annAllowVolumeModeChange, content.Name)
		}
	}
	if !hasFinalizer(snap.Finalizers, FinalizerSnapshotSource) {
		if err := p.protectSnapshot(ctx, snap.Namespace, snap.Name); err != nil {
			return nil, err
		}
	}
	return &sourceInfo{kind: "VolumeSnapshot", namespace: ns, name: name, content: &csi.VolumeContentSource{
		Type: &csi.VolumeContentSource_Snapshot{Snapshot: &csi.VolumeContentSource_SnapshotSource{SnapshotId: *content.Status.SnapshotHandle}}}}, nil
}

func (p *Provisioner) cloneSource(ctx context.Context, pvc *v1.PersistentVolumeClaim, class *storagev1.StorageClass, ns, name string) (*sourceInfo, error) {
	if !p.caps.HasController(csi.ControllerServiceCapability_RPC_CLONE_VOLUME) {
		return nil, final(fmt.Errorf("driver %s does not support cloning (CLONE_VOLUME)", p.name))
	}
	src, err := p.claims.PersistentVolumeClaims(ns).Get(name)
	if err != nil {
		return nil, fmt.Errorf("error getting source PVC %s/%s: %w", ns, name, err)
	}
	if src.DeletionTimestamp != nil {
		return nil, fmt.Errorf("source PVC %s/%s is being deleted", src.Namespace, src.Name)
	}
	if src.Status.Phase != v1.ClaimBound || src.Spec.VolumeName == "" {
		return nil, fmt.Errorf("source PVC %s/%s is not bound", src.Namespace, src.Name)
	}
	if claimClass(src) == "" || claimClass(pvc) == "" {
		return nil, final(errors.New("source and target PVC must both have a storage class"))
	}
	srcReq, req := src.Spec.Resources.Requests[v1.ResourceStorage], pvc.Spec.Resources.Requests[v1.ResourceStorage]
	if req.Cmp(srcReq) < 0 {
		return nil, final(fmt.Errorf("requested size %d is smaller than the source PVC's %d", req.Value(), srcReq.Value()))
	}
	pv, err := p.kube.CoreV1().PersistentVolumes().Get(ctx, src.Spec.VolumeName, metav1.GetOptions{})
	if err != nil {
		return nil, fmt.Errorf("error getting PV %s of source PVC %s/%s: %w", src.Spec.VolumeName, src.Namespace, src.Name, err)
	}
	switch {
	case pv.Spec.CSI == nil || pv.Spec.CSI.Driver != class.Provisioner:
		return nil, final(fmt.Errorf("source PV %s is not a volume of driver %s", pv.Name, class.Provisioner))
	case pv.Spec.ClaimRef == nil || pv.Spec.ClaimRef.UID != src.UID || pv.Spec.ClaimRef.Namespace != src.Namespace || pv.Spec.ClaimRef.Name != src.Name:
		return nil, fmt.Errorf("source PV %s is not bound to PVC %s/%s", pv.Name, src.Namespace, src.Name)
	case pv.Status.Phase != v1.VolumeBound:
		return nil, fmt.Errorf("source PV %s is not Bound (phase %s)", pv.Name, pv.Status.Phase)
	case modeOf(src.Spec.VolumeMode) != modeOf(pvc.Spec.VolumeMode):
		return nil, final(fmt.Errorf("the source PVC's volume mode %s differs from the requested %s", modeOf(src.Spec.VolumeMode), modeOf(pvc.Spec.VolumeMode)))
	}
	if !hasFinalizer(src.Finalizers, FinalizerCloneSource) {
		c := src.DeepCopy()
		c.Finalizers = append(c.Finalizers, FinalizerCloneSource)
		if _, err := p.kube.CoreV1().PersistentVolumeClaims(c.Namespace).Update(ctx, c, metav1.UpdateOptions{}); err != nil {
			return nil, fmt.Errorf("adding the clone-protection finalizer to PVC %s/%s: %w", c.Namespace, c.Name, err)
		}
	}
	return &sourceInfo{kind: "PersistentVolumeClaim", namespace: ns, name: name, content: &csi.VolumeContentSource{
		Type: &csi.VolumeContentSource_Volume{Volume: &csi.VolumeContentSource_VolumeSource{VolumeId: pv.Spec.CSI.VolumeHandle}}}}, nil
}

func modeOf(m *v1.PersistentVolumeMode) v1.PersistentVolumeMode {
	if m == nil {
		return v1.PersistentVolumeFilesystem
	}
	return *m
}

// protectSnapshot adds the source-protection finalizer to a snapshot being
// restored, so it is not deleted under the restore. Forbidden is tolerated
// (no RBAC for updates: restore without protection, as upstream).
func (p *Provisioner) protectSnapshot(ctx context.Context, ns, name string) error {
	snap, err := p.snaps.SnapshotV1().VolumeSnapshots(ns).Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		return fmt.Errorf("error getting snapshot %s/%s: %w", ns, name, err)
	}
	if hasFinalizer(snap.Finalizers, FinalizerSnapshotSource) {
		return nil
	}
	snap.Finalizers = append(snap.Finalizers, FinalizerSnapshotSource)
	_, err = p.snaps.SnapshotV1().VolumeSnapshots(ns).Update(ctx, snap, metav1.UpdateOptions{})
	switch {
	case err == nil:
		return nil
	case apierrors.IsForbidden(err):
		// Restore without protection, as upstream does, but say so.
		p.rec.Eventf(snap, v1.EventTypeWarning, ReasonSnapshotReleaseFailed,
			"Restoring without finalizer %s: %v. The snapshot can be deleted during the restore; grant the provisioner update on volumesnapshots", FinalizerSnapshotSource, err)
		return nil
	}
	return fmt.Errorf("adding the source-protection finalizer to snapshot %s/%s: %w", ns, name, err)
}

// clonePending reports whether a Pending claim still clones from src: one
// of its namespace by dataSource or dataSourceRef, or, with
// Options.CrossNamespaceDataSources, one of any namespace whose
// dataSourceRef names src.
func (p *Provisioner) clonePending(src *v1.PersistentVolumeClaim) (bool, error) {
	lister := p.claims.PersistentVolumeClaims(src.Namespace).List
	if p.opts.CrossNamespaceDataSources {
		lister = p.claims.List
	}
	list, err := lister(everything())
	if err != nil {
		return false, err
	}
	for _, c := range list {
		if c.Status.Phase == v1.ClaimPending && clonesFrom(c, src.Namespace, src.Name) {
			return true, nil
		}
	}
	return false, nil
}

// clonesFrom reports whether claim c's data source is PVC ns/name.
func clonesFrom(c *v1.PersistentVolumeClaim, ns, name string) bool {
	if ds := c.Spec.DataSource; ds != nil {
		return ds.Kind == "PersistentVolumeClaim" && (ds.APIGroup == nil || *ds.APIGroup == "") && ds.Name == name && c.Namespace == ns
	}
	ref := c.Spec.DataSourceRef
	return ref != nil && ref.Kind == "PersistentVolumeClaim" && (ref.APIGroup == nil || *ref.APIGroup == "") && ref.Name == name && refNamespace(c) == ns
}

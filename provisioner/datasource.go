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
	kind    string // "VolumeSnapshot" or "PersistentVolumeClaim"
	name    string
	content *csi.VolumeContentSource
}

// errPopulator marks a claim whose data source belongs to a populator.
var errPopulator = errors.New("assuming an external populator will provision the volume")

func everything() labels.Selector { return labels.Everything() }

// dataSource checks the claim's data source and returns the content
// source; nil without one. Cross-namespace sources are refused.
func (p *Provisioner) dataSource(ctx context.Context, pvc *v1.PersistentVolumeClaim, class *storagev1.StorageClass) (*sourceInfo, error) {
	var kind, name, group string
	switch {
	case pvc.Spec.DataSource != nil:
		ds := pvc.Spec.DataSource
		kind, name = ds.Kind, ds.Name
		if ds.APIGroup != nil {
			group = *ds.APIGroup
		}
	case pvc.Spec.DataSourceRef != nil:
		ds := pvc.Spec.DataSourceRef
		if ds.Namespace != nil && *ds.Namespace != "" && *ds.Namespace != pvc.Namespace {
			return nil, final(fmt.Errorf("cross-namespace data source %s/%s is not supported", *ds.Namespace, ds.Name))
		}
		kind, name = ds.Kind, ds.Name
		if ds.APIGroup != nil {
			group = *ds.APIGroup
		}
	default:
		return nil, nil
	}
	if name == "" {
		return nil, final(errors.New("data source has an empty name"))
	}
	switch {
	case kind == "VolumeSnapshot" && group == snapshotAPIGroup:
		return p.snapshotSource(ctx, pvc, class, name)
	case kind == "VolumeSnapshot":
		return nil, final(fmt.Errorf("the claim's data source VolumeSnapshot has API group %q, want %q", group, snapshotAPIGroup))
	case kind == "PersistentVolumeClaim" && group == "":
		return p.cloneSource(ctx, pvc, class, name)
	}
	return nil, errPopulator
}

func (p *Provisioner) snapshotSource(ctx context.Context, pvc *v1.PersistentVolumeClaim, class *storagev1.StorageClass, name string) (*sourceInfo, error) {
	if !p.caps.HasController(csi.ControllerServiceCapability_RPC_CREATE_DELETE_SNAPSHOT) {
		return nil, final(fmt.Errorf("driver %s does not support snapshots (CREATE_DELETE_SNAPSHOT)", p.name))
	}
	if p.snapshots == nil {
		return nil, final(errors.New("the VolumeSnapshot API is not available: cannot restore from a VolumeSnapshot"))
	}
	snap, err := p.snapshots.VolumeSnapshots(pvc.Namespace).Get(name)
	if err != nil {
		return nil, fmt.Errorf("error getting snapshot %s/%s: %w", pvc.Namespace, name, err)
	}
	if snap.DeletionTimestamp != nil && !hasFinalizer(snap.Finalizers, FinalizerSnapshotSource) {
		return nil, fmt.Errorf("snapshot %s/%s is being deleted", pvc.Namespace, name)
	}
	if snap.Status == nil || snap.Status.BoundVolumeSnapshotContentName == nil || *snap.Status.BoundVolumeSnapshotContentName == "" {
		return nil, fmt.Errorf("snapshot %s/%s is not bound to a content yet", pvc.Namespace, name)
	}
	if snap.Status.ReadyToUse == nil || !*snap.Status.ReadyToUse {
		return nil, fmt.Errorf("snapshot %s/%s is not ready to use", pvc.Namespace, name)
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
	return &sourceInfo{kind: "VolumeSnapshot", name: name, content: &csi.VolumeContentSource{
		Type: &csi.VolumeContentSource_Snapshot{Snapshot: &csi.VolumeContentSource_SnapshotSource{SnapshotId: *content.Status.SnapshotHandle}}}}, nil
}

func (p *Provisioner) cloneSource(ctx context.Context, pvc *v1.PersistentVolumeClaim, class *storagev1.StorageClass, name string) (*sourceInfo, error) {
	if !p.caps.HasController(csi.ControllerServiceCapability_RPC_CLONE_VOLUME) {
		return nil, final(fmt.Errorf("driver %s does not support cloning (CLONE_VOLUME)", p.name))
	}
	src, err := p.claims.PersistentVolumeClaims(pvc.Namespace).Get(name)
	if err != nil {
		return nil, fmt.Errorf("error getting source PVC %s/%s: %w", pvc.Namespace, name, err)
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
	return &sourceInfo{kind: "PersistentVolumeClaim", name: name, content: &csi.VolumeContentSource{
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

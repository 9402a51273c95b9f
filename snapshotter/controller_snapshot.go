package snapshotter

import (
	"context"
	"fmt"
	"strings"
	"time"

	crdv1 "github.com/kubernetes-csi/external-snapshotter/client/v8/apis/volumesnapshot/v1"
	v1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/cache"
	"k8s.io/klog/v2"

	"github.com/csi-kit/sidecars/internal/ctrl"
	"github.com/csi-kit/sidecars/internal/params"
)

// pvcKeyPrefix marks a snapshot-queue key that only re-checks the
// protection finalizer of a PVC.
const pvcKeyPrefix = "pvc:"

func (c *Controller) syncSnapshotKey(ctx context.Context, key string) (ctrl.Result, error) {
	if pvcKey, ok := strings.CutPrefix(key, pvcKeyPrefix); ok {
		ns, name, _ := cache.SplitMetaNamespaceKey(pvcKey)
		return ctrl.Result{}, c.releasePVC(ctx, ns, name, "")
	}
	ns, name, err := cache.SplitMetaNamespaceKey(key)
	if err != nil {
		return ctrl.Result{}, nil
	}
	vs, err := c.vsLister.VolumeSnapshots(ns).Get(name)
	if apierrors.IsNotFound(err) {
		c.freshVS.Forget(key)
		return ctrl.Result{}, nil
	}
	if err != nil {
		return ctrl.Result{}, err
	}
	return c.syncSnapshot(ctx, c.freshVS.Latest(key, vs).DeepCopy())
}

// syncSnapshot brings one snapshot a step closer to its desired state.
func (c *Controller) syncSnapshot(ctx context.Context, vs *crdv1.VolumeSnapshot) (ctrl.Result, error) {
	if vs.DeletionTimestamp != nil {
		return ctrl.Result{}, c.deleteSnapshot(ctx, vs)
	}
	if isGroupMember(vs) { // the group part cut it (group_controller_members.go)
		return c.syncMemberSnapshot(ctx, vs)
	}
	pvcName, contentName, p := snapshotSource(vs)
	if p != nil {
		return ctrl.Result{}, c.reportProblem(ctx, vs, p, true)
	}
	vs, class, err := c.resolveClass(ctx, vs, pvcName)
	if err != nil {
		return ctrl.Result{}, err
	}
	c.startCreateMetrics(vs, class)
	if pvcName != "" {
		return c.syncDynamic(ctx, vs, pvcName, class)
	}
	return c.syncStatic(ctx, vs, contentName)
}

func (c *Controller) startCreateMetrics(vs *crdv1.VolumeSnapshot, class *crdv1.VolumeSnapshotClass) {
	if vs.Status != nil && vs.Status.ReadyToUse != nil && *vs.Status.ReadyToUse {
		return
	}
	driver, typ := driverUnknown, typeStatic
	if class != nil {
		driver = class.Driver
	}
	if isDynamic(vs) {
		typ = typeDynamic
	}
	now := c.opts.Clock.Now()
	if vs.Status == nil || vs.Status.CreationTime == nil {
		c.metrics.start(opCreate, vs.UID, driver, typ, now)
	}
	c.metrics.start(opCreateAndReady, vs.UID, driver, typ, now)
}

// resolveClass returns the snapshot's class: the named one, or for a
// dynamic snapshot without one the single default class of its volume's
// driver, which is then written into the snapshot's spec.
func (c *Controller) resolveClass(ctx context.Context, vs *crdv1.VolumeSnapshot, pvcName string) (*crdv1.VolumeSnapshot, *crdv1.VolumeSnapshotClass, error) {
	if n := vs.Spec.VolumeSnapshotClassName; n != nil && *n != "" {
		class, err := c.classLister.Get(*n)
		if err != nil {
			return vs, nil, c.reportProblem(ctx, vs, &problem{ReasonGetSnapshotClassFailed, fmt.Sprintf("Failed to get snapshot class with error %v", err)}, false)
		}
		return vs, class, nil
	}
	if pvcName == "" {
		return vs, nil, nil
	}
	_, _, src, err := c.sourceVolume(vs.Namespace, pvcName)
	var name string
	if err == nil {
		var classes []*crdv1.VolumeSnapshotClass
		classes, err = c.classLister.List(labels.Everything())
		if err == nil {
			name, err = chooseDefaultClass(classes, src.Driver)
		}
	}
	if err != nil {
		return vs, nil, c.reportProblem(ctx, vs, &problem{ReasonSetDefaultSnapshotClassFailed, fmt.Sprintf("Failed to set default snapshot class with error %v", err)}, false)
	}
	patch := mustJSON(map[string]any{"spec": map[string]any{"volumeSnapshotClassName": name}})
	updated, err := c.snap.SnapshotV1().VolumeSnapshots(vs.Namespace).Patch(ctx, vs.Name, types.MergePatchType, patch, metav1.PatchOptions{})
	if err != nil {
		return vs, nil, fmt.Errorf("setting default snapshot class %q: %w", name, err)
	}
	c.freshVS.Remember(key(vs), updated)
	klog.FromContext(ctx).V(2).Info("Default snapshot class set", "class", name)
	class, err := c.classLister.Get(name)
	return updated.DeepCopy(), class, err
}

// sourceVolume returns the PVC and PV of a dynamic snapshot, checked.
func (c *Controller) sourceVolume(ns, pvcName string) (*v1.PersistentVolumeClaim, *v1.PersistentVolume, *v1.CSIPersistentVolumeSource, error) {
	pvc, err := c.pvcLister.PersistentVolumeClaims(ns).Get(pvcName)
	if err != nil {
		if apierrors.IsNotFound(err) {
			return nil, nil, nil, fmt.Errorf("source PVC %s/%s does not exist", ns, pvcName)
		}
		return nil, nil, nil, err
	}
	var pv *v1.PersistentVolume
	if pvc.Spec.VolumeName != "" {
		pv, err = c.pvLister.Get(pvc.Spec.VolumeName)
		if err != nil && !apierrors.IsNotFound(err) {
			return nil, nil, nil, err
		}
	}
	src, err := checkSourceVolume(pvc, pv)
	return pvc, pv, src, err
}

func (c *Controller) syncDynamic(ctx context.Context, vs *crdv1.VolumeSnapshot, pvcName string, class *crdv1.VolumeSnapshotClass) (ctrl.Result, error) {
	vsc, err := c.content(dynamicContentName(vs))
	if err != nil {
		return ctrl.Result{}, err
	}
	if vsc != nil {
		if p := checkDynamicContent(vs, vsc); p != nil {
			return ctrl.Result{}, c.reportProblem(ctx, vs, p, false)
		}
	}
	if vs, err = c.addSnapshotFinalizers(ctx, vs, vsc, class); err != nil {
		return ctrl.Result{}, err
	}
	if vsc == nil {
		if vs.Status != nil && vs.Status.ReadyToUse != nil && *vs.Status.ReadyToUse {
			return ctrl.Result{}, c.reportProblem(ctx, vs, &problem{ReasonSnapshotContentMissing, "VolumeSnapshotContent is missing"}, true)
		}
		return c.createContent(ctx, vs, pvcName, class)
	}
	return c.updateStatus(ctx, vs, vsc)
}

func (c *Controller) syncStatic(ctx context.Context, vs *crdv1.VolumeSnapshot, contentName string) (ctrl.Result, error) {
	vsc, err := c.content(contentName)
	if err != nil {
		return ctrl.Result{}, err
	}
	if vsc == nil {
		return ctrl.Result{}, c.reportProblem(ctx, vs, &problem{ReasonSnapshotContentMissing, "VolumeSnapshotContent is missing"}, true)
	}
	if p := checkStaticContent(vs, vsc); p != nil {
		return ctrl.Result{}, c.reportProblem(ctx, vs, p, false)
	}
	if setUID, setClass, addFin := staticBindPatch(vs, vsc); setUID || setClass != nil || addFin {
		spec := map[string]any{}
		if setUID {
			spec["volumeSnapshotRef"] = map[string]any{"uid": string(vs.UID)}
		}
		if setClass != nil {
			spec["volumeSnapshotClassName"] = *setClass
		}
		patch := map[string]any{"metadata": map[string]any{
			"resourceVersion": vsc.ResourceVersion,
			"finalizers":      withFinalizers(vsc.Finalizers, FinalizerContentBound),
		}}
		if len(spec) > 0 {
			patch["spec"] = spec
		}
		updated, err := c.snap.SnapshotV1().VolumeSnapshotContents().Patch(ctx, vsc.Name, types.MergePatchType, mustJSON(patch), metav1.PatchOptions{})
		if err != nil {
			c.rec.Event(vs, v1.EventTypeWarning, ReasonSnapshotBindFailed, fmt.Sprintf("Snapshot failed to bind VolumeSnapshotContent, %v", err))
			return ctrl.Result{}, err
		}
		c.freshVSC.Remember(vsc.Name, updated)
		vsc = updated
	}
	if vs, err = c.addSnapshotFinalizers(ctx, vs, vsc, nil); err != nil {
		return ctrl.Result{}, err
	}
	return c.updateStatus(ctx, vs, vsc)
}

// content returns the freshest copy of a content, or nil.
func (c *Controller) content(name string) (*crdv1.VolumeSnapshotContent, error) {
	vsc, err := c.vscLister.Get(name)
	if apierrors.IsNotFound(err) {
		// Created by this controller and not cached yet; after a minute
		// the cache is trusted again (the object may have been deleted
		// before the informer ever saw it).
		if mine, ok := c.freshVSC.Get(name); ok && mine.DeletionTimestamp == nil && c.opts.Clock.Since(mine.CreationTimestamp.Time) < time.Minute {
			return mine, nil
		}
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	return c.freshVSC.Latest(name, vsc), nil
}

func (c *Controller) addSnapshotFinalizers(ctx context.Context, vs *crdv1.VolumeSnapshot, vsc *crdv1.VolumeSnapshotContent, class *crdv1.VolumeSnapshotClass) (*crdv1.VolumeSnapshot, error) {
	missing := wantSnapshotFinalizers(vs, vsc, class)
	if len(missing) == 0 {
		return vs, nil
	}
	updated, err := c.snap.SnapshotV1().VolumeSnapshots(vs.Namespace).Patch(ctx, vs.Name, types.MergePatchType,
		finalizersPatch(vs.ResourceVersion, withFinalizers(vs.Finalizers, missing...)), metav1.PatchOptions{})
	if err != nil {
		if !apierrors.IsConflict(err) {
			c.rec.Event(vs, v1.EventTypeWarning, ReasonSnapshotFinalizerError, fmt.Sprintf("Failed to check and update snapshot: %v", err))
		}
		return vs, err
	}
	c.freshVS.Remember(key(vs), updated)
	return updated.DeepCopy(), nil
}

// createContent creates the content of a dynamic snapshot, after
// protecting its source PVC. The snapshot's status is written once the
// content has one (see updateStatus).
func (c *Controller) createContent(ctx context.Context, vs *crdv1.VolumeSnapshot, pvcName string, class *crdv1.VolumeSnapshotClass) (ctrl.Result, error) {
	fail := func(err error) (ctrl.Result, error) {
		return ctrl.Result{}, c.reportProblem(ctx, vs, &problem{ReasonSnapshotContentCreationFailed, fmt.Sprintf("Failed to create snapshot content with error %v", err)}, true)
	}
	if class == nil {
		return fail(fmt.Errorf("no snapshot class for dynamic snapshot %s/%s", vs.Namespace, vs.Name))
	}
	pvc, pv, src, err := c.sourceVolume(vs.Namespace, pvcName)
	if err != nil {
		return fail(err)
	}
	if src.Driver != class.Driver {
		return fail(fmt.Errorf("volume CSI driver (%s) mismatch with VolumeSnapshotClass (%s) %s", src.Driver, class.Driver, class.Name))
	}
	name := dynamicContentName(vs)
	secret, err := params.SnapshotterSecret.Resolve(class.Parameters, params.SnapshotVars(name, vs.Name, vs.Namespace))
	if err != nil {
		return fail(err)
	}
	if err := c.protectPVC(ctx, pvc); err != nil {
		return fail(err)
	}
	vsc := &crdv1.VolumeSnapshotContent{
		ObjectMeta: metav1.ObjectMeta{Name: name, Finalizers: []string{FinalizerContentBound}},
		Spec: crdv1.VolumeSnapshotContentSpec{
			VolumeSnapshotRef: v1.ObjectReference{
				Kind: "VolumeSnapshot", APIVersion: crdv1.SchemeGroupVersion.String(),
				Namespace: vs.Namespace, Name: vs.Name, UID: vs.UID, ResourceVersion: vs.ResourceVersion,
			},
			DeletionPolicy:          class.DeletionPolicy,
			Driver:                  class.Driver,
			VolumeSnapshotClassName: ptr(class.Name),
			Source:                  crdv1.VolumeSnapshotContentSource{VolumeHandle: ptr(src.VolumeHandle)},
		},
	}
	if *c.opts.PreventVolumeModeConversion && pv.Spec.VolumeMode != nil {
		vsc.Spec.SourceVolumeMode = ptr(*pv.Spec.VolumeMode)
	}
	if secret != nil {
		vsc.Annotations = map[string]string{AnnDeletionSecretName: secret.Name, AnnDeletionSecretNamespace: secret.Namespace}
	}
	if err := c.labelManagedBy(ctx, vsc, pv); err != nil {
		return fail(err)
	}
	created, err := c.snap.SnapshotV1().VolumeSnapshotContents().Create(ctx, vsc, metav1.CreateOptions{})
	switch {
	case apierrors.IsAlreadyExists(err):
		return ctrl.Result{RequeueAfter: c.opts.BindStatusDelay}, nil
	case err != nil:
		c.rec.Event(vs, v1.EventTypeWarning, ReasonCreateSnapshotContentFailed, fmt.Sprintf("Error creating volume snapshot content object for snapshot %s/%s: %v.", vs.Namespace, vs.Name, err))
		return fail(err)
	}
	c.freshVSC.Remember(name, created)
	klog.FromContext(ctx).V(2).Info("Created snapshot content", "content", name)
	if !c.opts.DisableNormalEvents {
		c.rec.Event(vs, v1.EventTypeNormal, ReasonCreatingSnapshot, fmt.Sprintf("Waiting for a snapshot %s/%s to be created by the CSI driver.", vs.Namespace, vs.Name))
	}
	return ctrl.Result{RequeueAfter: c.opts.BindStatusDelay}, nil
}

// updateStatus mirrors the content into the snapshot's status. While the
// content has no status of its own yet and is younger than
// BindStatusDelay, it waits: a snapshot cut at once then gets one status
// write instead of two.
func (c *Controller) updateStatus(ctx context.Context, vs *crdv1.VolumeSnapshot, vsc *crdv1.VolumeSnapshotContent) (ctrl.Result, error) {
	ch := mirrorStatus(vs, vsc)
	if ch == nil {
		return ctrl.Result{}, c.releaseIfReady(ctx, vs)
	}
	if vs.Status == nil && vsc.Status == nil {
		if age := c.opts.Clock.Since(vsc.CreationTimestamp.Time); age < c.opts.BindStatusDelay {
			return ctrl.Result{RequeueAfter: c.opts.BindStatusDelay - age}, nil
		}
	}
	updated, err := c.snap.SnapshotV1().VolumeSnapshots(vs.Namespace).Patch(ctx, vs.Name, types.MergePatchType,
		snapshotStatusPatch(ch.Status), metav1.PatchOptions{}, "status")
	if err != nil {
		c.rec.Event(vs, v1.EventTypeWarning, ReasonSnapshotStatusUpdateFailed, fmt.Sprintf("Snapshot status update failed, %v", err))
		return ctrl.Result{}, err
	}
	c.freshVS.Remember(key(vs), updated)
	now := c.opts.Clock.Now()
	id := vs.Namespace + "/" + vs.Name
	if !c.opts.DisableNormalEvents {
		// A snapshot cut and ready at once gets both events, in this
		// order, as upstream sends them.
		if ch.Created {
			c.rec.Event(updated, v1.EventTypeNormal, ReasonSnapshotCreated, fmt.Sprintf("Snapshot %s was successfully created by the CSI driver.", id))
		}
		if ch.Ready {
			c.rec.Event(updated, v1.EventTypeNormal, ReasonSnapshotReady, fmt.Sprintf("Snapshot %s is ready to use.", id))
		}
	}
	if ch.Created {
		c.metrics.finish(opCreate, vs.UID, statusSuccess, now)
	}
	if ch.Ready {
		c.metrics.finish(opCreateAndReady, vs.UID, statusSuccess, now)
	}
	return ctrl.Result{}, c.releaseIfReady(ctx, updated)
}

func (c *Controller) releaseIfReady(ctx context.Context, vs *crdv1.VolumeSnapshot) error {
	if !isDynamic(vs) || vs.Status == nil || vs.Status.ReadyToUse == nil || !*vs.Status.ReadyToUse {
		return nil
	}
	return c.releasePVC(ctx, vs.Namespace, *vs.Spec.Source.PersistentVolumeClaimName, "")
}

// reportProblem records p as a Warning event and in the snapshot's status
// (skipped when the same message is there). It returns p as the error, so
// the snapshot is retried with backoff.
func (c *Controller) reportProblem(ctx context.Context, vs *crdv1.VolumeSnapshot, p *problem, unready bool) error {
	c.rec.Event(vs, v1.EventTypeWarning, p.Reason, p.Message)
	if st := errorStatus(vs, p.Message, unready, c.opts.Clock.Now()); st != nil {
		updated, err := c.snap.SnapshotV1().VolumeSnapshots(vs.Namespace).Patch(ctx, vs.Name, types.MergePatchType,
			snapshotStatusPatch(st), metav1.PatchOptions{}, "status")
		if err != nil {
			klog.FromContext(ctx).Error(err, "Failed to record snapshot error in status", "error", p.Message)
		} else {
			c.freshVS.Remember(key(vs), updated)
		}
	}
	return p
}

func key(vs *crdv1.VolumeSnapshot) string { return vs.Namespace + "/" + vs.Name }

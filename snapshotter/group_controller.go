package snapshotter

import (
	"context"
	"fmt"
	"slices"
	"time"

	groupv1 "github.com/kubernetes-csi/external-snapshotter/client/v8/apis/volumegroupsnapshot/v1"
	crdv1 "github.com/kubernetes-csi/external-snapshotter/client/v8/apis/volumesnapshot/v1"
	grouplisters "github.com/kubernetes-csi/external-snapshotter/client/v8/listers/volumegroupsnapshot/v1"
	v1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/record"
	"k8s.io/klog/v2"

	"github.com/csi-kit/sidecars/internal/ctrl"
)

// groupPart is the volume group snapshot half of the common controller:
// it binds VolumeGroupSnapshots to VolumeGroupSnapshotContents, creates
// the content of a dynamic group, cuts the member VolumeSnapshots and
// contents once the sidecar has cut the group, mirrors the content's
// status, and deletes per policy. It runs on a ctrl.Runtime of its own
// beside the snapshot queues (see Controller.Run) and shares their cache.
type groupPart struct {
	vgsLister   grouplisters.VolumeGroupSnapshotLister
	vgscLister  grouplisters.VolumeGroupSnapshotContentLister
	classLister grouplisters.VolumeGroupSnapshotClassLister
	pvIndex     cache.Indexer // PVs by driver^volumeHandle
	vsIndex     cache.Indexer // member snapshots by namespace^group
	vgsQueue    *ctrl.Queue
	vgscQueue   *ctrl.Queue
	rec         record.EventRecorder

	// Fresh stores of this part's own writes. The rule is ctrl.Fresh's:
	// every object a write returns is remembered under its key (ns/name or
	// name), reads go through Latest(key, cached), and a created object
	// the cache has not seen yet is found with Get.
	freshVGS  *ctrl.Fresh[*groupv1.VolumeGroupSnapshot]
	freshVGSC *ctrl.Fresh[*groupv1.VolumeGroupSnapshotContent]
	freshVS   *ctrl.Fresh[*crdv1.VolumeSnapshot]
	freshVSC  *ctrl.Fresh[*crdv1.VolumeSnapshotContent]
}

const (
	indexPVByHandle     = "snapshotter/pvByDriverHandle"
	indexMembersByGroup = "snapshotter/membersByGroup"
)

// groupsEnabled reports whether the group part runs; it is off when
// ControllerOptions.
// DisableVolumeGroupSnapshots is set, or the group CRDs are not served
// (a warning, as upstream: the snapshot part runs on). Discovery errors
// are retried for up to ControllerOptions.CRDWait; if they last, groups
// are off with a warning too.
func (c *Controller) groupsEnabled(ctx context.Context) bool {
	logger := klog.FromContext(ctx)
	if c.opts.DisableVolumeGroupSnapshots {
		logger.V(2).Info("Volume group snapshots disabled by the options")
		return false
	}
	var missing []string
	var lastErr error
	err := wait.PollUntilContextTimeout(ctx, 200*time.Millisecond, max(c.opts.CRDWait, time.Millisecond), true, func(context.Context) (bool, error) {
		missing, lastErr = groupCRDsMissing(c.snap.Discovery())
		return lastErr == nil, nil
	})
	switch {
	case ctx.Err() != nil:
		return false // Run is ending
	case err != nil:
		logger.Info("WARNING: cannot tell whether the VolumeGroupSnapshot CRDs are served; volume group snapshots are disabled until the controller restarts", "err", lastErr)
		return false
	case len(missing) > 0:
		logger.Info("WARNING: VolumeGroupSnapshot CRDs are not served; volume group snapshots are disabled. "+crdHint, "missing", missing)
		return false
	}
	return true
}

// groupCRDsMissing lists the group resources groupsnapshot.storage.k8s.io/v1
// does not serve.
func groupCRDsMissing(disco discovery.DiscoveryInterface) ([]string, error) {
	need := []string{"volumegroupsnapshots", "volumegroupsnapshotcontents", "volumegroupsnapshotclasses"}
	list, err := disco.ServerResourcesForGroupVersion(groupv1.SchemeGroupVersion.String())
	if err != nil && !apierrors.IsNotFound(err) {
		return nil, err
	}
	var missing []string
	for _, r := range need {
		if list == nil || !slices.ContainsFunc(list.APIResources, func(a metav1.APIResource) bool { return a.Name == r }) {
			missing = append(missing, r)
		}
	}
	return missing, nil
}

// watchGroups asks rt for the group informers, indexes, queues and
// handlers. The snapshot part's listers (c.vsLister and others) must be
// set already.
func (c *Controller) watchGroups(rt *ctrl.Runtime) error {
	sc := rt.Cache()
	if sc.Snapshot == nil {
		return fmt.Errorf("snapshot controller: the cache has no snapshot informers")
	}
	gi := sc.Snapshot.Groupsnapshot().V1()
	vgsInf, vgscInf, classInf := gi.VolumeGroupSnapshots(), gi.VolumeGroupSnapshotContents(), gi.VolumeGroupSnapshotClasses()
	vsInf := sc.Snapshot.Snapshot().V1().VolumeSnapshots()
	pvInf := sc.Kube.Core().V1().PersistentVolumes()
	pvcInf := sc.Kube.Core().V1().PersistentVolumeClaims()
	rt.Index(pvInf.Informer(), indexPVByHandle, pvByHandle)
	rt.Index(vsInf.Informer(), indexMembersByGroup, membersByGroup)
	g := &groupPart{
		vgsLister: vgsInf.Lister(), vgscLister: vgscInf.Lister(), classLister: classInf.Lister(),
		pvIndex: pvInf.Informer().GetIndexer(), vsIndex: vsInf.Informer().GetIndexer(),
		rec:       rt.Recorder(),
		freshVGS:  ctrl.NewFresh[*groupv1.VolumeGroupSnapshot](),
		freshVGSC: ctrl.NewFresh[*groupv1.VolumeGroupSnapshotContent](),
		freshVS:   ctrl.NewFresh[*crdv1.VolumeSnapshot](),
		freshVSC:  ctrl.NewFresh[*crdv1.VolumeSnapshotContent](),
	}
	qo := func(name, logKey string) ctrl.QueueOptions {
		return ctrl.QueueOptions{Name: name, LogKey: logKey, Workers: c.opts.Workers, RetryStart: c.opts.RetryIntervalStart, RetryMax: c.opts.RetryIntervalMax}
	}
	g.vgsQueue = rt.Queue(qo("snapshot-controller-groupsnapshot", "volumegroupsnapshot"), ctrl.ReconcileFunc(c.reconcileGroup))
	g.vgscQueue = rt.Queue(qo("snapshot-controller-groupcontent", "volumegroupsnapshotcontent"), ctrl.ReconcileFunc(c.reconcileGroupContent))
	c.groups = g

	rt.Watch(vgsInf.Informer(), ctrl.Typed(g.groupChanged, nil, c.groupGone), c.opts.ResyncPeriod)
	rt.Watch(vgscInf.Informer(), ctrl.Typed(g.groupContentChanged, nil, g.groupContentGone), c.opts.ResyncPeriod)
	// A member that changes or goes may move its group's deletion on.
	rt.Watch(vsInf.Informer(), ctrl.Updates(g.memberChanged, g.memberGone), 0)
	rt.Watch(sc.Snapshot.Snapshot().V1().VolumeSnapshotContents().Informer(), ctrl.Typed(nil, nil, g.memberContentGone), 0)
	// A restore from a member that ends may unblock its group's deletion.
	rt.Watch(pvcInf.Informer(), ctrl.Updates(c.restoreChanged, c.restoreChanged), 0)
	_ = classInf.Informer() // read from the lister only
	return nil
}

func (g *groupPart) groupChanged(vgs *groupv1.VolumeGroupSnapshot) { g.vgsQueue.Add(groupKey(vgs)) }

// groupGone also queues the group's members: a deleted member waits for
// its group to be gone (memberDeletion), and would otherwise wait out its
// retry backoff, up to RetryIntervalMax, before it is looked at again.
func (c *Controller) groupGone(vgs *groupv1.VolumeGroupSnapshot) {
	g := c.groups
	g.freshVGS.Forget(groupKey(vgs))
	g.vgsQueue.Add(groupKey(vgs))
	g.vgscQueue.Add(groupContentNameOf(vgs))
	members, _ := c.membersOf(vgs) // fails only for an index never registered
	for _, vs := range members {
		c.enqueueSnapshot(vs)
	}
}

func (g *groupPart) groupContentChanged(vgsc *groupv1.VolumeGroupSnapshotContent) {
	g.vgscQueue.Add(vgsc.Name)
	if ref := vgsc.Spec.VolumeGroupSnapshotRef; ref.Name != "" && ref.Namespace != "" {
		g.vgsQueue.Add(ref.Namespace + "/" + ref.Name)
	}
}

func (g *groupPart) groupContentGone(vgsc *groupv1.VolumeGroupSnapshotContent) {
	g.freshVGSC.Forget(vgsc.Name)
	g.groupContentChanged(vgsc)
}

func (g *groupPart) memberChanged(vs *crdv1.VolumeSnapshot) {
	if name, _, ok := groupOf(vs); ok {
		g.vgsQueue.Add(vs.Namespace + "/" + name)
	}
}

func (g *groupPart) memberGone(vs *crdv1.VolumeSnapshot) {
	g.freshVS.Forget(key(vs))
	g.memberChanged(vs)
}

func (g *groupPart) memberContentGone(vsc *crdv1.VolumeSnapshotContent) { g.freshVSC.Forget(vsc.Name) }

// restoreChanged wakes the group of a member snapshot a PVC restores from.
func (c *Controller) restoreChanged(pvc *v1.PersistentVolumeClaim) {
	for _, ds := range []*v1.TypedLocalObjectReference{pvc.Spec.DataSource, typedRef(pvc.Spec.DataSourceRef)} {
		if ds == nil || ds.Kind != "VolumeSnapshot" {
			continue
		}
		if vs, err := c.vsLister.VolumeSnapshots(pvc.Namespace).Get(ds.Name); err == nil {
			c.groups.memberChanged(vs)
		}
	}
}

func pvByHandle(obj any) ([]string, error) {
	pv, ok := obj.(*v1.PersistentVolume)
	if !ok || pv.Spec.CSI == nil {
		return nil, nil
	}
	return []string{pv.Spec.CSI.Driver + "^" + pv.Spec.CSI.VolumeHandle}, nil
}

func membersByGroup(obj any) ([]string, error) {
	vs, ok := obj.(*crdv1.VolumeSnapshot)
	if !ok {
		return nil, nil
	}
	if name, _, ok := groupOf(vs); ok {
		return []string{vs.Namespace + "^" + name}, nil
	}
	return nil, nil
}

// reconcileGroup brings one VolumeGroupSnapshot a step closer to what it
// should be.
func (c *Controller) reconcileGroup(ctx context.Context, key string) (ctrl.Result, error) {
	g := c.groups
	ns, name, err := cache.SplitMetaNamespaceKey(key)
	if err != nil {
		return ctrl.Result{}, nil
	}
	cached, err := g.vgsLister.VolumeGroupSnapshots(ns).Get(name)
	if apierrors.IsNotFound(err) {
		g.freshVGS.Forget(key)
		return ctrl.Result{}, nil
	}
	if err != nil {
		return ctrl.Result{}, err
	}
	vgs := g.freshVGS.Latest(key, cached).DeepCopy()
	if vgs.DeletionTimestamp != nil {
		return ctrl.Result{}, c.deleteGroup(ctx, vgs)
	}
	sel, contentName, p := groupSource(vgs)
	if p != nil {
		return ctrl.Result{}, c.reportGroupProblem(ctx, vgs, p, true)
	}
	if contentName != "" {
		return ctrl.Result{}, c.syncStaticGroup(ctx, vgs, contentName)
	}
	return ctrl.Result{}, c.syncDynamicGroup(ctx, vgs, sel)
}

// groupContent returns the freshest copy of a group content, or nil.
func (c *Controller) groupContent(name string) (*groupv1.VolumeGroupSnapshotContent, error) {
	g := c.groups
	vgsc, err := g.vgscLister.Get(name)
	if apierrors.IsNotFound(err) {
		// Created here and not cached yet; after a minute the cache is
		// trusted again (it may have been deleted unseen).
		if mine, ok := g.freshVGSC.Get(name); ok && mine.DeletionTimestamp == nil && c.opts.Clock.Since(mine.CreationTimestamp.Time) < minuteOfTrust {
			return mine, nil
		}
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	return g.freshVGSC.Latest(name, vgsc), nil
}

// reconcileGroupContent checks a group content: its source, and its
// finalizer once bound.
func (c *Controller) reconcileGroupContent(ctx context.Context, name string) (ctrl.Result, error) {
	g := c.groups
	vgsc, err := c.groupContent(name)
	if err != nil || vgsc == nil {
		if vgsc == nil && err == nil {
			g.freshVGSC.Forget(name)
		}
		return ctrl.Result{}, err
	}
	if (vgsc.Spec.Source.GroupSnapshotHandles != nil) == (len(vgsc.Spec.Source.VolumeHandles) > 0) {
		g.rec.Event(vgsc, v1.EventTypeWarning, ReasonGroupContentValidationError, "Exactly one of GroupSnapshotHandles and VolumeHandles should be specified")
		return ctrl.Result{}, nil
	}
	if vgsc.Spec.VolumeGroupSnapshotRef.UID == "" || vgsc.DeletionTimestamp != nil || slices.Contains(vgsc.Finalizers, FinalizerGroupContentBound) {
		return ctrl.Result{}, nil
	}
	updated, err := c.snap.GroupsnapshotV1().VolumeGroupSnapshotContents().Patch(ctx, vgsc.Name, mergePatch,
		finalizersPatch(vgsc.ResourceVersion, withFinalizers(vgsc.Finalizers, FinalizerGroupContentBound)), metav1.PatchOptions{})
	if err != nil {
		return ctrl.Result{}, fmt.Errorf("adding finalizer to group content %s: %w", vgsc.Name, err)
	}
	g.freshVGSC.Remember(name, updated)
	return ctrl.Result{}, nil
}

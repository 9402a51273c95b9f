package snapshotter

import (
	"context"
	"errors"
	"fmt"
	"slices"

	groupv1 "github.com/kubernetes-csi/external-snapshotter/client/v8/apis/volumegroupsnapshot/v1"
	grouplisters "github.com/kubernetes-csi/external-snapshotter/client/v8/listers/volumegroupsnapshot/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/tools/record"
	"k8s.io/klog/v2"

	"github.com/csi-kit/sidecars/internal/ctrl"
)

// groupSidecar is the sidecar's group content controller: for the
// VolumeGroupSnapshotContents of its driver it calls
// CreateVolumeGroupSnapshot (dynamic, polled until ready),
// GetVolumeGroupSnapshot (pre-provisioned) and DeleteVolumeGroupSnapshot
// (policy Delete), and removes the group content finalizer.
type groupSidecar struct {
	s        *Sidecar
	drv      GroupDriver
	rec      record.EventRecorder
	contents grouplisters.VolumeGroupSnapshotContentLister
	classes  grouplisters.VolumeGroupSnapshotClassLister
	// fresh holds the group contents this process wrote until the informer
	// has them (the ctrl.Fresh rule).
	fresh *ctrl.Fresh[*groupv1.VolumeGroupSnapshotContent]
	queue *ctrl.Queue

	polls *ctrl.Polls // readiness polls of dynamic group contents
}

// groupQueueName names the group content queue in logs and metrics.
const groupQueueName = "csi-snapshotter-groupsnapshotcontent"

// watchGroups plugs the group content controller into rt: informers of
// group contents and classes from rt.Cache(), one queue, one handler. Call
// it only when groupsEnabled said yes.
func (s *Sidecar) watchGroups(rt *ctrl.Runtime) error {
	drv, ok := s.drv.(GroupDriver)
	if !ok {
		return errors.New("csi-snapshotter: the driver does not implement GroupDriver")
	}
	f := rt.Cache().Snapshot
	if f == nil {
		return errors.New("csi-snapshotter: the cache has no snapshot informers: create it with a snapshot client")
	}
	contentInf := f.Groupsnapshot().V1().VolumeGroupSnapshotContents()
	classInf := f.Groupsnapshot().V1().VolumeGroupSnapshotClasses()
	g := &groupSidecar{
		s: s, drv: drv, rec: rt.Recorder(),
		contents: contentInf.Lister(), classes: classInf.Lister(),
		fresh: ctrl.NewFresh[*groupv1.VolumeGroupSnapshotContent](),
		polls: &ctrl.Polls{Start: s.opts.ReadyPollStart, Max: s.opts.ReadyPollMax},
	}
	g.queue = rt.Queue(ctrl.QueueOptions{
		Name: groupQueueName, LogKey: "groupSnapshotContent", Workers: s.opts.Workers,
		RetryStart: s.opts.RetryIntervalStart, RetryMax: s.opts.RetryIntervalMax,
	}, ctrl.ReconcileFunc(g.steps().reconcile))
	rt.Watch(contentInf.Informer(), ctrl.Typed(g.enqueue, shouldEnqueueGroupContentChange, func(c *groupv1.VolumeGroupSnapshotContent) {
		g.fresh.Forget(c.Name)
		g.polls.Reset(c.Name)
	}), s.opts.ResyncPeriod)
	_ = classInf.Informer() // read through the lister; started and synced with the cache
	return nil
}

func (g *groupSidecar) enqueue(c *groupv1.VolumeGroupSnapshotContent) {
	if handlesGroup(c, g.s.opts.DriverName) {
		g.queue.Add(c.Name)
	}
}

// groupsEnabled reports whether this sidecar handles volume group
// snapshots, logging why not: they are on unless
// SidecarOptions.DisableVolumeGroupSnapshots is set, the sidecar runs per
// node, the driver lacks the GroupController capability
// CREATE_DELETE_GET_VOLUME_GROUP_SNAPSHOT, the API server does not serve
// the group snapshot CRDs, or the sidecar may not list group contents and
// classes.
func (s *Sidecar) groupsEnabled(ctx context.Context) bool {
	logger := klog.FromContext(ctx)
	if s.opts.DisableVolumeGroupSnapshots {
		logger.V(2).Info("Volume group snapshots are disabled by the options")
		return false
	}
	if s.opts.NodeName != "" {
		logger.Info("Volume group snapshots are not handled by a per-node sidecar; run one without NodeName (--node-deployment) for them")
		return false
	}
	drv, ok := s.drv.(GroupDriver)
	if !ok || !drv.SupportsGroupSnapshots() {
		logger.Info("Warning: the CSI driver does not advertise the GroupController capability CREATE_DELETE_GET_VOLUME_GROUP_SNAPSHOT; volume group snapshots are disabled")
		return false
	}
	if err := groupCRDsServed(s.snap.Discovery()); err != nil {
		logger.Info("Warning: volume group snapshots are disabled: "+err.Error(), "hint", crdHint)
		return false
	}
	// Informers that may not list would never sync, and the snapshot
	// informers of the same cache would wait for them forever.
	_, err := s.snap.GroupsnapshotV1().VolumeGroupSnapshotContents().List(ctx, metav1.ListOptions{Limit: 1})
	if err == nil {
		_, err = s.snap.GroupsnapshotV1().VolumeGroupSnapshotClasses().List(ctx, metav1.ListOptions{Limit: 1})
	}
	if apierrors.IsForbidden(err) {
		logger.Info("Warning: volume group snapshots are disabled: grant get, list, watch, update and patch on volumegroupsnapshotcontents, update and patch on their status, and get, list and watch on volumegroupsnapshotclasses to enable them", "err", err)
		return false
	}
	return true
}

// groupCRDsServed checks once that groupsnapshot.storage.k8s.io/v1 serves
// the group contents and classes.
func groupCRDsServed(disco discovery.DiscoveryInterface) error {
	gv := groupv1.SchemeGroupVersion.String()
	list, err := disco.ServerResourcesForGroupVersion(gv)
	if err != nil && !apierrors.IsNotFound(err) {
		return fmt.Errorf("checking for the VolumeGroupSnapshot CRDs: %w", err)
	}
	for _, r := range []string{"volumegroupsnapshotcontents", "volumegroupsnapshotclasses"} {
		if list == nil || !slices.ContainsFunc(list.APIResources, func(a metav1.APIResource) bool { return a.Name == r }) {
			return fmt.Errorf("the VolumeGroupSnapshot CRDs are not installed: %s does not serve %s", gv, r)
		}
	}
	return nil
}

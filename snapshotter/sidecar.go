package snapshotter

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	crdv1 "github.com/kubernetes-csi/external-snapshotter/client/v8/apis/volumesnapshot/v1"
	snapclient "github.com/kubernetes-csi/external-snapshotter/client/v8/clientset/versioned"
	snapinformersv1 "github.com/kubernetes-csi/external-snapshotter/client/v8/informers/externalversions/volumesnapshot/v1"
	snaplisters "github.com/kubernetes-csi/external-snapshotter/client/v8/listers/volumesnapshot/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/record"
	"k8s.io/klog/v2"

	"github.com/csi-kit/sidecars/internal/ctrl"
)

// Sidecar is the CSI snapshotter of one driver: for the contents of its
// driver it cuts snapshots (CreateSnapshot, polled until ready), reports
// them in the content's status, and deletes them under policy Delete once
// the common controller lets go of the content.
type Sidecar struct {
	opts SidecarOptions
	kube kubernetes.Interface
	snap snapclient.Interface
	drv  Driver
	once ctrl.Once

	// Set by Run before the workers start.
	rec         record.EventRecorder
	vscLister   snaplisters.VolumeSnapshotContentLister
	classLister snaplisters.VolumeSnapshotClassLister
	queue       *ctrl.Queue
	rt          atomic.Pointer[ctrl.Runtime] // stored once the above are set

	// fresh holds the contents this sidecar wrote, by ctrl.Fresh's rule.
	fresh *ctrl.Fresh[*crdv1.VolumeSnapshotContent]

	polls *ctrl.Polls // readiness polls of dynamic contents
}

// NewSidecar checks opts, the kube client and drv, reporting every
// problem at once; nothing starts until Run. A drv that reports a lost
// connection (WatchLoss, as *CSIDriver does) ends Run with that error.
func NewSidecar(opts SidecarOptions, kube kubernetes.Interface, drv Driver) (*Sidecar, error) {
	opts = opts.withDefaults()
	var noDriver error
	if drv == nil {
		noDriver = errors.New("driver is nil: use NewCSIDriver on the driver's connection")
	}
	if err := errors.Join(opts.Validate(), checkClients(kube, opts.SnapshotClient), noDriver); err != nil {
		return nil, fmt.Errorf("%s: %w", SidecarComponent, err)
	}
	s := &Sidecar{
		opts: opts, kube: kube, snap: opts.SnapshotClient, drv: drv,
		fresh: ctrl.NewFresh[*crdv1.VolumeSnapshotContent](),
		polls: &ctrl.Polls{Start: opts.ReadyPollStart, Max: opts.ReadyPollMax},
	}
	return s, nil
}

// Run checks the CRDs, starts the informers and workers and blocks until
// ctx ends or the driver's connection is lost; it returns nil or the loss
// (wrapping csiconn.ErrConnectionLost for a *CSIDriver). A Sidecar runs
// once.
func (s *Sidecar) Run(ctx context.Context) error {
	if err := s.once.Begin(SidecarComponent); err != nil {
		return err
	}
	logger := klog.FromContext(ctx).WithName(SidecarComponent).WithValues("driver", s.opts.DriverName)
	ctx = klog.NewContext(ctx, logger)
	if err := checkCRDs(ctx, s.snap.Discovery(), 30*time.Second); err != nil {
		return err
	}
	rt, err := ctrl.New(ctrl.Config{Name: SidecarComponent, Kube: s.kube, Snapshot: s.snap, Cache: s.opts.Cache,
		Recorder: s.opts.Recorder, EventSource: SidecarComponent + " " + s.opts.DriverName, Driver: s.drv, Clock: s.opts.Clock})
	if err != nil {
		return err
	}
	s.rec = rt.Recorder()
	s.queue = rt.Queue(ctrl.QueueOptions{Name: "csi-snapshotter-content", Workers: s.opts.Workers,
		RetryStart: s.opts.RetryIntervalStart, RetryMax: s.opts.RetryIntervalMax}, ctrl.ReconcileFunc(s.steps().reconcile))
	vscInf := rt.Cache().Snapshot.Snapshot().V1().VolumeSnapshotContents()
	if s.opts.NodeName != "" {
		var stop func()
		vscInf, stop = s.nodeContents(ctx, rt)
		defer stop()
	}
	s.vscLister = vscInf.Lister()
	s.classLister = rt.Cache().Snapshot.Snapshot().V1().VolumeSnapshotClasses().Lister()
	rt.Watch(vscInf.Informer(), ctrl.Typed(s.enqueue, shouldEnqueueContentChange, func(vsc *crdv1.VolumeSnapshotContent) {
		s.fresh.Forget(vsc.Name)
		s.polls.Reset(vsc.Name)
	}), s.opts.ResyncPeriod)
	if s.groupsEnabled(ctx) {
		if err := s.watchGroups(rt); err != nil {
			return err
		}
		logger.Info("Volume group snapshots enabled")
	}
	s.rt.Store(rt)
	err = rt.Run(ctx, func(context.Context) error {
		logger.Info("CSI snapshotter started", "workers", s.opts.Workers, "node", s.opts.NodeName)
		return nil
	})
	logger.Info("CSI snapshotter stopped")
	return err
}

// nodeContents starts the informer of the node's contents (see
// nodeContentFactory) and has rt wait for it; stop ends it once rt.Run
// has returned.
func (s *Sidecar) nodeContents(ctx context.Context, rt *ctrl.Runtime) (snapinformersv1.VolumeSnapshotContentInformer, func()) {
	ctx, cancel := context.WithCancel(ctx)
	f := nodeContentFactory(s.snap, s.opts.NodeName)
	inf := f.Snapshot().V1().VolumeSnapshotContents()
	rt.WaitFor(inf.Informer().HasSynced)
	f.Start(ctx.Done())
	return inf, func() { cancel(); f.Shutdown() }
}

// handles reports whether vsc is for this sidecar's driver.
func (s *Sidecar) handles(vsc *crdv1.VolumeSnapshotContent) bool {
	if vsc.Spec.Driver != s.opts.DriverName {
		return false
	}
	if s.opts.NodeName != "" && vsc.Labels[LabelManagedBy] != s.opts.NodeName {
		return false
	}
	return vsc.Spec.Source.VolumeHandle != nil || vsc.Spec.Source.SnapshotHandle != nil
}

func (s *Sidecar) enqueue(vsc *crdv1.VolumeSnapshotContent) {
	if s.handles(vsc) {
		s.queue.Add(vsc.Name)
	}
}

// call bounds one driver call by Timeout, when set.
func (s *Sidecar) call(ctx context.Context) (context.Context, context.CancelFunc) {
	if s.opts.Timeout > 0 {
		return context.WithTimeout(ctx, s.opts.Timeout)
	}
	return ctx, func() {}
}

package snapshotter

import (
	"context"
	"errors"

	groupv1 "github.com/kubernetes-csi/external-snapshotter/client/v8/apis/volumegroupsnapshot/v1"
	crdv1 "github.com/kubernetes-csi/external-snapshotter/client/v8/apis/volumesnapshot/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/klog/v2"

	"github.com/csi-kit/sidecars/csiconn"
	"github.com/csi-kit/sidecars/internal/ctrl"
)

// contentSide is what syncSteps needs from a sidecar for its kind of
// content T: the snapshot sidecar's VolumeSnapshotContents, the group
// sidecar's VolumeGroupSnapshotContents. Each write returns the updated
// object.
type contentSide[T metav1.Object] interface {
	decide(T) contentAction
	// mayRelease reports whether a deleted content may let go of its
	// backend snapshot.
	mayRelease(T) bool
	setBeingCreated(ctx context.Context, c T, on bool) (T, error)
	// cut creates the snapshot (static: asks about a pre-provisioned one)
	// and records the answer; ready says whether it is ready to use.
	cut(ctx context.Context, c T, static bool) (next T, ready bool, err error)
	deleteBackend(ctx context.Context, c T) (T, error)
	release(ctx context.Context, c T) error
}

var (
	_ contentSide[*crdv1.VolumeSnapshotContent]        = (*Sidecar)(nil)
	_ contentSide[*groupv1.VolumeGroupSnapshotContent] = (*groupSidecar)(nil)
)

// syncSteps takes the steps side.decide picks for c until none is left
// (create, then delete, then release, for a content deleted while its
// snapshot was being cut). fresh holds side's writes; polls spaces the
// readiness polls.
func syncSteps[T metav1.Object](ctx context.Context, side contentSide[T], fresh *ctrl.Fresh[T], polls *ctrl.Polls, c T) (ctrl.Result, error) {
	logger := klog.FromContext(ctx)
	for range 4 {
		act := side.decide(c)
		logger.V(4).Info("Content step", "action", act)
		switch act {
		case actNone:
			return ctrl.Result{}, nil
		case actClearBeingCreated:
			_, err := side.setBeingCreated(ctx, c, false)
			return ctrl.Result{}, err
		case actCreate, actPoll:
			next, ready, err := side.cut(ctx, c, act == actPoll)
			if err != nil {
				if act == actCreate && c.GetDeletionTimestamp() != nil && side.mayRelease(c) && refusedForGood(err) {
					// The driver refused for good: nothing was cut.
					return ctrl.Result{}, side.release(ctx, fresh.Latest(c.GetName(), c))
				}
				return ctrl.Result{}, err
			}
			c = next
			if c.GetDeletionTimestamp() != nil {
				continue
			}
			if !ready {
				return ctrl.Result{RequeueAfter: polls.Next(c.GetName())}, nil
			}
			polls.Reset(c.GetName())
			return ctrl.Result{}, nil
		case actDelete:
			next, err := side.deleteBackend(ctx, c)
			if err != nil {
				return ctrl.Result{}, err
			}
			return ctrl.Result{}, side.release(ctx, next)
		case actRelease:
			return ctrl.Result{}, side.release(ctx, c)
		}
	}
	return ctrl.Result{}, nil
}

// refusedForGood reports whether err is the driver's own answer, and not
// one worth retrying.
func refusedForGood(err error) bool {
	var ce *csiError
	return errors.As(err, &ce) && classify(ce.err) != csiconn.Transient
}

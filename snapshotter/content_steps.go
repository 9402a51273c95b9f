package snapshotter

import (
	"context"
	"errors"
	"fmt"

	groupv1 "github.com/kubernetes-csi/external-snapshotter/client/v8/apis/volumegroupsnapshot/v1"
	crdv1 "github.com/kubernetes-csi/external-snapshotter/client/v8/apis/volumesnapshot/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/klog/v2"

	"github.com/csi-kit/sidecars/csiconn"
	"github.com/csi-kit/sidecars/internal/ctrl"
)

// content is a kind of content a sidecar takes care of:
// *crdv1.VolumeSnapshotContent or *groupv1.VolumeGroupSnapshotContent.
type content[T any] interface {
	metav1.Object
	DeepCopy() T
}

// contentSide is what contentSync needs from a sidecar for its kind of
// content T (the snapshot sidecar's VolumeSnapshotContents, the group
// sidecar's VolumeGroupSnapshotContents), and I, what its driver says of a
// snapshot. Each write returns the updated object.
type contentSide[T content[T], I driverAnswer] interface {
	lookup(name string) (T, error) // from the informer's cache
	handles(T) bool                // for this sidecar's driver
	create(ctx context.Context, c T) (I, error)
	poll(ctx context.Context, c T) (I, error) // a pre-provisioned snapshot
	// createFailed records a failed create (static: poll) in c and returns
	// err.
	createFailed(ctx context.Context, c T, err error, static bool) error
	statusPatch(c T, info I) []byte // what info changes in c's status; nil: nothing
	setBeingCreated(ctx context.Context, c T, on bool) (T, error)
	deleteBackend(ctx context.Context, c T) (T, error)
	release(ctx context.Context, c T) error
}

// contentClient is the typed client of T: what record writes the status
// through.
type contentClient[T any] interface {
	Patch(ctx context.Context, name string, pt types.PatchType, data []byte, opts metav1.PatchOptions, subresources ...string) (T, error)
}

// driverAnswer is SnapshotInfo or GroupSnapshotInfo.
type driverAnswer interface{ ready() bool }

func (i SnapshotInfo) ready() bool      { return i.Ready }
func (i GroupSnapshotInfo) ready() bool { return i.Ready }

var (
	_ contentSide[*crdv1.VolumeSnapshotContent, SnapshotInfo]             = (*Sidecar)(nil)
	_ contentSide[*groupv1.VolumeGroupSnapshotContent, GroupSnapshotInfo] = (*groupSidecar)(nil)
)

// contentSync is one content loop, for the sidecar and for the group
// sidecar: side's calls, the pure decisions for its kind of content, the
// fresh store of side's writes and the readiness polls.
type contentSync[T content[T], I driverAnswer] struct {
	kind         string // "content" or "group content", for errors
	side         contentSide[T, I]
	client       contentClient[T]
	decide       func(T) contentAction
	mayRelease   func(T) bool // a deleted content may let go of its backend snapshot
	beingCreated string       // the being-created annotation
	fresh        *ctrl.Fresh[T]
	polls        *ctrl.Polls
}

// reconcile is a content queue's ReconcileFunc: it takes the steps for the
// freshest copy of the content name, when side handles it.
func (cs contentSync[T, I]) reconcile(ctx context.Context, name string) (ctrl.Result, error) {
	c, found, err := cs.fresh.Current(name, cs.side.lookup, apierrors.IsNotFound)
	if !found {
		cs.polls.Reset(name)
		return ctrl.Result{}, err
	}
	if !cs.side.handles(c) {
		return ctrl.Result{}, nil
	}
	return cs.sync(ctx, c.DeepCopy())
}

// sync takes the steps cs.decide picks for c until none is left (create,
// then delete, then release, for a content deleted while its snapshot was
// being cut).
func (cs contentSync[T, I]) sync(ctx context.Context, c T) (ctrl.Result, error) {
	logger := klog.FromContext(ctx)
	for range 4 {
		act := cs.decide(c)
		logger.V(4).Info("Content step", "action", act)
		switch act {
		case actNone:
			return ctrl.Result{}, nil
		case actClearBeingCreated:
			_, err := cs.side.setBeingCreated(ctx, c, false)
			return ctrl.Result{}, err
		case actCreate, actPoll:
			next, ready, err := cs.cut(ctx, c, act == actPoll)
			if err != nil {
				if act == actCreate && c.GetDeletionTimestamp() != nil && cs.mayRelease(c) && refusedForGood(err) {
					// The driver refused for good: nothing was cut.
					return ctrl.Result{}, cs.side.release(ctx, cs.fresh.Latest(c.GetName(), c))
				}
				return ctrl.Result{}, err
			}
			c = next
			if c.GetDeletionTimestamp() != nil {
				continue
			}
			if !ready {
				return ctrl.Result{RequeueAfter: cs.polls.Next(c.GetName())}, nil
			}
			cs.polls.Reset(c.GetName())
			return ctrl.Result{}, nil
		case actDelete:
			next, err := cs.side.deleteBackend(ctx, c)
			if err != nil {
				return ctrl.Result{}, err
			}
			return ctrl.Result{}, cs.side.release(ctx, next)
		case actRelease:
			return ctrl.Result{}, cs.side.release(ctx, c)
		}
	}
	return ctrl.Result{}, nil
}

// cut calls create (static: poll) and records the answer in c's status;
// ready says whether the snapshot is ready to use. The being-created
// annotation is written only when the call failed in a way that may leave
// a snapshot behind (createFailed), and removed after a final answer.
func (cs contentSync[T, I]) cut(ctx context.Context, c T, static bool) (T, bool, error) {
	call := cs.side.create
	if static {
		call = cs.side.poll
	}
	info, err := call(ctx, c)
	if err != nil {
		return c, false, cs.side.createFailed(ctx, c, err, static)
	}
	if c, err = cs.record(ctx, c, info); err != nil {
		return c, false, err
	}
	if _, ok := c.GetAnnotations()[cs.beingCreated]; ok {
		if c, err = cs.side.setBeingCreated(ctx, c, false); err != nil {
			return c, false, err
		}
	}
	return c, info.ready(), nil
}

// record writes info into c's status; it returns c when that changes
// nothing.
func (cs contentSync[T, I]) record(ctx context.Context, c T, info I) (T, error) {
	patch := cs.side.statusPatch(c, info)
	if patch == nil {
		return c, nil
	}
	updated, err := cs.client.Patch(ctx, c.GetName(), types.MergePatchType, patch, metav1.PatchOptions{}, "status")
	if err != nil {
		return c, fmt.Errorf("updating status of %s %s: %w", cs.kind, c.GetName(), err)
	}
	cs.fresh.Remember(c.GetName(), updated)
	return updated.DeepCopy(), nil
}

// refusedForGood reports whether err is the driver's own answer, and not
// one worth retrying.
func refusedForGood(err error) bool {
	var ce *csiError
	return errors.As(err, &ce) && classify(ce.err) != csiconn.Transient
}

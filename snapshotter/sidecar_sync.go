package snapshotter

import (
	"context"
	"errors"
	"fmt"
	"maps"

	crdv1 "github.com/kubernetes-csi/external-snapshotter/client/v8/apis/volumesnapshot/v1"
	"google.golang.org/grpc/codes"
	v1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/klog/v2"

	"github.com/csi-kit/sidecars/csiconn"
	"github.com/csi-kit/sidecars/internal/params"
)

// steps is the content loop over this sidecar's calls and
// decideContent.
func (s *Sidecar) steps() contentSync[*crdv1.VolumeSnapshotContent, SnapshotInfo] {
	return contentSync[*crdv1.VolumeSnapshotContent, SnapshotInfo]{kind: "content", side: s, client: s.snap.SnapshotV1().VolumeSnapshotContents(),
		decide: decideContent, mayRelease: shouldRelease, beingCreated: AnnBeingCreated, fresh: s.fresh, polls: s.polls}
}

func (s *Sidecar) lookup(name string) (*crdv1.VolumeSnapshotContent, error) {
	return s.vscLister.Get(name)
}

// csiError marks an error returned by the driver itself, as opposed to
// one found before calling it.
type csiError struct{ err error }

func (e *csiError) Error() string { return e.err.Error() }
func (e *csiError) Unwrap() error { return e.err }

func (s *Sidecar) create(ctx context.Context, vsc *crdv1.VolumeSnapshotContent) (SnapshotInfo, error) {
	ref := vsc.Spec.VolumeSnapshotRef
	if ref.UID == "" {
		return SnapshotInfo{}, fmt.Errorf("cannot create snapshot: content %s is not bound to a VolumeSnapshot UID", vsc.Name)
	}
	class, err := s.class(vsc)
	if err != nil {
		return SnapshotInfo{}, err
	}
	var classParams map[string]string
	if class != nil {
		classParams = class.Parameters
	}
	p, err := params.Strip(classParams, params.SnapshotterKeys)
	if err != nil {
		return SnapshotInfo{}, fmt.Errorf("failed to strip CSI parameters: %w", err)
	}
	if s.opts.ExtraCreateMetadata {
		p = maps.Clone(p)
		p[metaSnapshotName] = ref.Name
		p[metaSnapshotNamespace] = ref.Namespace
		p[metaContentName] = vsc.Name
	}
	secrets, err := s.secrets(ctx, vsc)
	if err != nil {
		return SnapshotInfo{}, err
	}
	name := SnapshotName(s.opts.SnapshotNamePrefix, ref.UID, s.opts.SnapshotNameUUIDLength)
	callCtx, cancel := s.call(ctx)
	defer cancel()
	info, err := s.drv.CreateSnapshot(callCtx, name, *vsc.Spec.Source.VolumeHandle, p, secrets)
	if err != nil {
		return info, &csiError{err}
	}
	if info.Handle == "" {
		return info, &csiError{errors.New("CreateSnapshot returned an empty snapshot ID")}
	}
	return info, nil
}

func (s *Sidecar) statusPatch(vsc *crdv1.VolumeSnapshotContent, info SnapshotInfo) []byte {
	if st := contentStatusFor(vsc, info, s.opts.Clock.Now()); st != nil {
		return contentStatusPatch(st)
	}
	return nil
}

// poll asks ListSnapshots about a pre-provisioned snapshot.
func (s *Sidecar) poll(ctx context.Context, vsc *crdv1.VolumeSnapshotContent) (SnapshotInfo, error) {
	handle := statusHandle(vsc)
	if handle == "" && vsc.Spec.Source.SnapshotHandle != nil {
		handle = *vsc.Spec.Source.SnapshotHandle
	}
	var secrets map[string]string
	class, err := s.class(vsc)
	if err == nil && class != nil {
		ref, rerr := params.SnapshotterListSecret.Resolve(class.Parameters, params.SnapshotVars(vsc.Name, "", ""))
		if rerr != nil {
			return SnapshotInfo{}, rerr
		}
		if secrets, err = params.FetchSecret(ctx, s.kube.CoreV1(), ref); err != nil {
			return SnapshotInfo{}, err
		}
	}
	callCtx, cancel := s.call(ctx)
	defer cancel()
	info, err := s.drv.SnapshotStatus(callCtx, handle, secrets)
	if err != nil {
		return info, err
	}
	if info.Handle == "" {
		info.Handle = handle
	}
	return info, nil
}

// class returns the content's class, nil for a pre-provisioned content
// without one. A dynamic content needs its class.
func (s *Sidecar) class(vsc *crdv1.VolumeSnapshotContent) (*crdv1.VolumeSnapshotClass, error) {
	name := vsc.Spec.VolumeSnapshotClassName
	if name == nil || *name == "" {
		if vsc.Spec.Source.VolumeHandle != nil {
			return nil, fmt.Errorf("failed to get input parameters to create snapshot for content %s: no VolumeSnapshotClass", vsc.Name)
		}
		return nil, nil
	}
	class, err := s.classLister.Get(*name)
	if err != nil {
		return nil, fmt.Errorf("failed to get input parameters to create snapshot for content %s: %w", vsc.Name, err)
	}
	if class.Driver != s.opts.DriverName {
		return nil, fmt.Errorf("VolumeSnapshotClass %s is for driver %q, not %q", class.Name, class.Driver, s.opts.DriverName)
	}
	return class, nil
}

// secrets reads the snapshotter secret referenced by the content's
// annotations; none when neither annotation is set.
func (s *Sidecar) secrets(ctx context.Context, vsc *crdv1.VolumeSnapshotContent) (map[string]string, error) {
	name, okName := vsc.Annotations[AnnDeletionSecretName]
	ns, okNS := vsc.Annotations[AnnDeletionSecretNamespace]
	switch {
	case !okName && !okNS:
		return nil, nil
	case name == "" || ns == "":
		return nil, fmt.Errorf("content %s has an incomplete secret reference (annotations %s and %s)", vsc.Name, AnnDeletionSecretName, AnnDeletionSecretNamespace)
	}
	return params.FetchSecret(ctx, s.kube.CoreV1(), &v1.SecretReference{Name: name, Namespace: ns})
}

// createFailed records a failed create or poll in the content: the
// being-created annotation while the driver may still be cutting the
// snapshot, the error in status and an event. It returns err. Unlike the
// group sidecar's, it treats a failed poll (static) as a failed create: a
// poll's error never marks the content being created, as only create wraps
// the driver's errors in csiError.
func (s *Sidecar) createFailed(ctx context.Context, vsc *crdv1.VolumeSnapshotContent, err error, _ bool) error {
	var ce *csiError
	if errors.As(err, &ce) {
		transient := classify(ce.err) == csiconn.Transient
		_, marked := vsc.Annotations[AnnBeingCreated]
		if transient != marked {
			if updated, aerr := s.setBeingCreated(ctx, vsc, transient); aerr == nil {
				vsc = updated
			} else {
				return errors.Join(err, aerr)
			}
		}
	}
	reason := ReasonSnapshotCreationFailed
	prefix := "Failed to create snapshot: "
	if vsc.Status != nil && vsc.Status.Error != nil {
		reason, prefix = ReasonSnapshotContentCheckandUpdate, "Failed to check and update snapshot content: "
	}
	s.rec.Event(vsc, v1.EventTypeWarning, reason, prefix+err.Error())
	msg := prefix + err.Error()
	if vsc.Status == nil || vsc.Status.Error == nil || vsc.Status.Error.Message == nil || *vsc.Status.Error.Message != msg {
		st := &crdv1.VolumeSnapshotContentStatus{}
		if vsc.Status != nil {
			st = vsc.Status.DeepCopy()
		}
		now := metav1.NewTime(s.opts.Clock.Now())
		st.Error = &crdv1.VolumeSnapshotError{Time: &now, Message: &msg}
		st.ReadyToUse = ptr(false)
		if updated, perr := s.snap.SnapshotV1().VolumeSnapshotContents().Patch(ctx, vsc.Name, types.MergePatchType,
			contentStatusPatch(st), metav1.PatchOptions{}, "status"); perr == nil {
			s.fresh.Remember(vsc.Name, updated)
		}
	}
	return err
}

func classify(err error) csiconn.Class {
	var ce *csiconn.CallError
	if errors.As(err, &ce) {
		return ce.Class
	}
	return csiconn.Classify(csiconn.OpCreateSnapshot, err)
}

func (s *Sidecar) setBeingCreated(ctx context.Context, vsc *crdv1.VolumeSnapshotContent, on bool) (*crdv1.VolumeSnapshotContent, error) {
	val := ""
	if on {
		val = annYes
	}
	updated, err := s.snap.SnapshotV1().VolumeSnapshotContents().Patch(ctx, vsc.Name, types.MergePatchType,
		annotationPatch(AnnBeingCreated, val), metav1.PatchOptions{})
	if err != nil {
		return vsc, fmt.Errorf("updating annotation %s of content %s: %w", AnnBeingCreated, vsc.Name, err)
	}
	s.fresh.Remember(vsc.Name, updated)
	return updated.DeepCopy(), nil
}

// deleteBackend deletes the content's snapshot in the driver. It returns
// vsc, which it does not change.
func (s *Sidecar) deleteBackend(ctx context.Context, vsc *crdv1.VolumeSnapshotContent) (*crdv1.VolumeSnapshotContent, error) {
	handle := statusHandle(vsc)
	if handle == "" && vsc.Spec.Source.SnapshotHandle != nil {
		handle = *vsc.Spec.Source.SnapshotHandle
	}
	secrets, err := s.secrets(ctx, vsc)
	if err != nil {
		s.rec.Event(vsc, v1.EventTypeWarning, ReasonSnapshotDeleteError, "Failed to get snapshot credentials")
		return vsc, err
	}
	callCtx, cancel := s.call(ctx)
	defer cancel()
	if err := s.drv.DeleteSnapshot(callCtx, handle, secrets); err != nil && csiconn.Code(err) != codes.NotFound {
		s.rec.Event(vsc, v1.EventTypeWarning, ReasonSnapshotDeleteError, "Failed to delete snapshot")
		return vsc, fmt.Errorf("failed to delete snapshot %s: %w", handle, err)
	}
	klog.FromContext(ctx).V(2).Info("Deleted snapshot", "handle", handle)
	return vsc, nil
}

// release removes the content finalizer.
func (s *Sidecar) release(ctx context.Context, vsc *crdv1.VolumeSnapshotContent) error {
	_, err := s.snap.SnapshotV1().VolumeSnapshotContents().Patch(ctx, vsc.Name, types.MergePatchType,
		finalizersPatch(vsc.ResourceVersion, withoutFinalizers(vsc.Finalizers, FinalizerContentBound)), metav1.PatchOptions{})
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("removing finalizer of content %s: %w", vsc.Name, err)
	}
	s.polls.Reset(vsc.Name)
	return nil
}

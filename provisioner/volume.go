package provisioner

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/container-storage-interface/spec/lib/go/csi"
	v1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/klog/v2"

	"github.com/csi-kit/sidecars/csiconn"
	"github.com/csi-kit/sidecars/internal/kube"
	"github.com/csi-kit/sidecars/internal/params"
)

// syncVolume handles one PV name: finalizer upkeep and reclaim Delete.
func (p *Provisioner) syncVolume(ctx context.Context, name string) error {
	pv, err := p.volumes.Get(name)
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return err
	}
	if p.node != nil && !p.onThisNode(pv) {
		return nil // node deployment: another node's volume
	}
	switch decideVolume(pv, p.name) {
	case volumeAddFinalizer:
		return ignoreNotFound(p.patchPVFinalizers(ctx, pv, append(append([]string{}, pv.Finalizers...), FinalizerPV)))
	case volumeRemoveFinalizer:
		return ignoreNotFound(p.patchPVFinalizers(ctx, pv, withoutFinalizer(pv.Finalizers, FinalizerPV)))
	case volumeDelete:
		if p.deletedVolumes.has(pv.UID) {
			// Its volume is deleted (a stale cached copy, or the PV
			// writes failed): finish the PV without a second DeleteVolume.
			return p.finishDelete(ctx, pv)
		}
		return p.delete(ctx, pv)
	}
	return nil
}

func (p *Provisioner) patchPVFinalizers(ctx context.Context, pv *v1.PersistentVolume, fins []string) error {
	data := kube.FinalizersPatch(pv.ResourceVersion, fins)
	_, err := p.kube.CoreV1().PersistentVolumes().Patch(ctx, pv.Name, types.MergePatchType, data, metav1.PatchOptions{})
	return err // NotFound and conflicts included: releasePV checks them
}

// errInUse is returned while a VolumeAttachment names the PV.
var errInUse = errors.New("volume is still attached")

func (p *Provisioner) delete(ctx context.Context, pv *v1.PersistentVolume) (err error) {
	start := p.opts.Clock.Now()
	defer func() {
		if !lostRace(err) {
			p.met.delete(pv.Spec.StorageClassName, p.opts.Clock.Since(start), err)
		}
	}()
	src, migrated, err := csiSource(ctx, pv, p.name)
	if err != nil {
		return p.deleteFailed(pv, err)
	}
	if migrated {
		ctx = markMigrated(ctx)
	}
	if p.attachments != nil {
		vas, err := p.attachments.List(everything())
		if err != nil {
			return err
		}
		for _, va := range vas {
			if va.Spec.Source.PersistentVolumeName != nil && *va.Spec.Source.PersistentVolumeName == pv.Name {
				return p.deleteFailed(pv, fmt.Errorf("persistentvolume %s is still attached to node %s: %w", pv.Name, va.Spec.NodeName, errInUse))
			}
		}
	}
	secrets, err := p.deletionSecrets(ctx, pv)
	if err != nil {
		return p.deleteFailed(pv, err)
	}
	callCtx, cancel := p.callCtx(ctx)
	_, err = p.ctrl.DeleteVolume(callCtx, &csi.DeleteVolumeRequest{VolumeId: src.VolumeHandle, Secrets: secrets})
	cancel()
	if err != nil && csiconn.Code(err).String() != "NotFound" {
		return p.deleteFailed(pv, err)
	}
	klog.FromContext(ctx).V(2).Info("Deleted volume", "volume", src.VolumeHandle, "migrated", migrated)
	p.deletedVolumes.add(pv.UID)
	return p.finishDelete(ctx, pv)
}

// finishDelete deletes the PV of a deleted volume and removes its
// finalizer. A NotFound answer is checked with a live read: a PV that
// still exists is retried, never left Released.
func (p *Provisioner) finishDelete(ctx context.Context, pv *v1.PersistentVolume) error {
	if pv.DeletionTimestamp == nil {
		err := p.kube.CoreV1().PersistentVolumes().Delete(ctx, pv.Name, metav1.DeleteOptions{
			Preconditions: &metav1.Preconditions{UID: &pv.UID}})
		if apierrors.IsNotFound(err) {
			err = p.confirmGone(ctx, pv)
		}
		if err != nil {
			return fmt.Errorf("deleting PV %s: %w", pv.Name, err)
		}
	}
	return p.releasePV(ctx, pv)
}

// confirmGone reads pv live after a NotFound answer about it.
func (p *Provisioner) confirmGone(ctx context.Context, pv *v1.PersistentVolume) error {
	cur, err := p.kube.CoreV1().PersistentVolumes().Get(ctx, pv.Name, metav1.GetOptions{})
	switch {
	case apierrors.IsNotFound(err):
		return nil
	case err != nil:
		return err
	case cur.UID != pv.UID:
		return nil
	}
	return fmt.Errorf("the API server answered NotFound for PV %s, which still exists", pv.Name)
}

// releasePV removes the deletion finalizer from a PV whose volume is
// deleted. The cached copy is stale after the PV's own deletion, so a
// conflict is resolved by reading the PV again, not by another sync.
func (p *Provisioner) releasePV(ctx context.Context, pv *v1.PersistentVolume) error {
	var err error
	for range 5 {
		if !hasFinalizer(pv.Finalizers, FinalizerPV) {
			return nil
		}
		err = p.patchPVFinalizers(ctx, pv, withoutFinalizer(pv.Finalizers, FinalizerPV))
		if apierrors.IsNotFound(err) {
			return p.confirmGone(ctx, pv)
		}
		if !lostRace(err) {
			return err
		}
		cur, gerr := p.kube.CoreV1().PersistentVolumes().Get(ctx, pv.Name, metav1.GetOptions{})
		switch {
		case apierrors.IsNotFound(gerr):
			return nil
		case gerr != nil:
			return fmt.Errorf("removing the deletion finalizer of PV %s: %w", pv.Name, gerr)
		case cur.UID != pv.UID:
			return nil
		}
		pv = cur
	}
	return fmt.Errorf("removing the deletion finalizer of PV %s: %w", pv.Name, err)
}

func (p *Provisioner) deleteFailed(pv *v1.PersistentVolume, err error) error {
	p.rec.Event(pv, v1.EventTypeWarning, ReasonVolumeFailedDelete, err.Error())
	return fmt.Errorf("deleting volume of PV %s: %w", pv.Name, err)
}

// deletionSecrets reads the delete secrets: the PV annotations when both
// are present (a missing secret is logged and skipped), else the class's
// provisioner secret (none when the class or the claim reference is gone).
func (p *Provisioner) deletionSecrets(ctx context.Context, pv *v1.PersistentVolume) (map[string]string, error) {
	name, okN := pv.Annotations[annDeletionSecretName]
	ns, okNS := pv.Annotations[annDeletionSecretNamespace]
	if okN && okNS {
		if name == "" || ns == "" {
			return nil, nil
		}
		s, err := params.FetchSecret(ctx, p.kube.CoreV1(), &v1.SecretReference{Name: name, Namespace: ns})
		if err != nil {
			klog.FromContext(ctx).Info("Deleting without the deletion secret", "err", err)
			return nil, nil
		}
		return s, nil
	}
	class, err := p.classes.Get(pv.Spec.StorageClassName)
	if err != nil || pv.Spec.ClaimRef == nil {
		return nil, nil
	}
	pvc := &v1.PersistentVolumeClaim{ObjectMeta: metav1.ObjectMeta{Name: pv.Spec.ClaimRef.Name, Namespace: pv.Spec.ClaimRef.Namespace}}
	if c, err := p.claims.PersistentVolumeClaims(pvc.Namespace).Get(pvc.Name); err == nil {
		pvc = c
	}
	ref, err := params.ProvisionerSecret.Resolve(class.Parameters, params.ProvisionVars(pv.Name, pvc))
	if err != nil {
		return nil, err
	}
	return params.FetchSecret(ctx, p.kube.CoreV1(), ref)
}

// uidSet is a set of object UIDs: what this process wrote that its
// informers may not show yet (a stale cached copy must not make it act
// twice), kept until an informer event shows the write.
type uidSet struct {
	mu sync.Mutex
	m  map[types.UID]bool
}

func (s *uidSet) add(uid types.UID) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.m == nil {
		s.m = map[types.UID]bool{}
	}
	s.m[uid] = true
}

func (s *uidSet) has(uid types.UID) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.m[uid]
}

func (s *uidSet) remove(uid types.UID) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.m, uid)
}

func ignoreNotFound(err error) error {
	if apierrors.IsNotFound(err) {
		return nil
	}
	return err
}

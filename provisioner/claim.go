package provisioner

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/container-storage-interface/spec/lib/go/csi"
	v1 "k8s.io/api/core/v1"
	storagev1 "k8s.io/api/storage/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/cache"
	"k8s.io/klog/v2"

	"github.com/csi-kit/sidecars/csiconn"
)

// syncClaim handles one claim key.
func (p *Provisioner) syncClaim(ctx context.Context, key string) error {
	ns, name, err := cache.SplitMetaNamespaceKey(key)
	if err != nil {
		return nil
	}
	pvc, err := p.claims.PersistentVolumeClaims(ns).Get(name)
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return err
	}
	logger := klog.FromContext(ctx).WithValues("pvc", klog.KObj(pvc))
	ctx = klog.NewContext(ctx, logger)
	if pvc.DeletionTimestamp != nil && hasFinalizer(pvc.Finalizers, FinalizerCloneSource) {
		if err := p.releaseCloneSource(ctx, pvc); err != nil {
			return err
		}
	}
	class := p.classFor(pvc)
	action, why := decideClaim(pvc, class, p.name, p.pvFor(pvc) != nil)
	if p.node != nil {
		action, why = decideNodeClaim(action, why, pvc, class, p.node.name, p.opts.NodeDeployment.ImmediateBinding)
	}
	logger.V(5).Info("Claim decision", "action", action, "reason", why)
	switch action {
	case claimTake:
		return p.take(ctx, key, pvc, class)
	case claimProvision:
		return p.provision(ctx, pvc, class)
	case claimCleanup:
		return p.cleanup(ctx, pvc, class)
	case claimForget:
		return p.removeIntent(ctx, pvc)
	}
	return nil
}

func (p *Provisioner) classFor(pvc *v1.PersistentVolumeClaim) *storagev1.StorageClass {
	name := claimClass(pvc)
	if name == "" {
		return nil
	}
	c, err := p.classes.Get(name)
	if err != nil {
		return nil
	}
	return c
}

// recordedVolumeName is the volume name of this provisioner's intent
// record, or "". The annotation alone is not trusted: a user could set it to
// choose (or steal) a backend volume name; only the pair of annotation and
// intent finalizer, which this provisioner writes in one patch, counts.
func recordedVolumeName(pvc *v1.PersistentVolumeClaim) string {
	if !hasFinalizer(pvc.Finalizers, FinalizerIntent) {
		return ""
	}
	return pvc.Annotations[AnnProvisioningVolumeName]
}

// pvFor returns the PV created for this claim, if any.
func (p *Provisioner) pvFor(pvc *v1.PersistentVolumeClaim) *v1.PersistentVolume {
	name := recordedVolumeName(pvc)
	if name == "" {
		var err error
		if name, err = VolumeName(p.opts.VolumeNamePrefix, string(pvc.UID), p.opts.VolumeNameUUIDLength); err != nil {
			return nil
		}
	}
	pv, err := p.volumes.Get(name)
	if err != nil || pv.Spec.ClaimRef == nil || pv.Spec.ClaimRef.UID != pvc.UID {
		return nil
	}
	return pv
}

// provision runs one attempt for a claim.
func (p *Provisioner) provision(ctx context.Context, pvc *v1.PersistentVolumeClaim, class *storagev1.StorageClass) (err error) {
	logger := klog.FromContext(ctx)
	start := p.opts.Clock.Now()
	className, sourceKind := claimClass(pvc), ""
	if pvc.Spec.DataSource != nil {
		sourceKind = pvc.Spec.DataSource.Kind
	}
	defer func() {
		if !errors.Is(err, errRetryLater) {
			p.met.provision(className, sourceKind, p.opts.Clock.Since(start), err)
		}
	}()
	if p.opts.NormalEvents {
		p.rec.Eventf(pvc, v1.EventTypeNormal, ReasonProvisioning, "External provisioner is provisioning volume for claim %q", klog.KObj(pvc).String())
	}
	a, err := p.prepare(ctx, pvc, class, false)
	if errors.Is(err, errPopulator) {
		if p.opts.NormalEvents {
			p.rec.Event(pvc, v1.EventTypeNormal, ReasonProvisioning, "Assuming an external populator will provision the volume")
		}
		return nil
	}
	if errors.Is(err, errRetryLater) {
		return err
	}
	if err != nil {
		return p.failed(ctx, pvc, err, stateOf(err))
	}
	resp, pvc, recorded, err := p.create(ctx, pvc, a)
	if err != nil {
		if errors.Is(err, errRetryLater) {
			return err
		}
		state := classifyCreate(err, p.topology(), pvc.Annotations[annSelectedNode] != "")
		if !recorded && !p.opts.NoIntent && (state == stateBackground || ctx.Err() != nil) {
			// The volume may exist: record that before anything else.
			if rerr := p.recordLate(ctx, pvc, a); rerr != nil {
				return rerr
			}
		}
		if ctx.Err() != nil {
			return ctx.Err() // stopped: the intent record lets the next leader finish
		}
		return p.failed(ctx, pvc, err, state)
	}
	vol := resp.GetVolume()
	if err := p.checkResponse(a, vol); err != nil {
		p.deleteQuietly(ctx, vol.GetVolumeId(), a.req.Secrets)
		return p.failed(ctx, pvc, err, stateBackground)
	}
	// The claim may have gone while the driver worked.
	if cur, gerr := p.claims.PersistentVolumeClaims(pvc.Namespace).Get(pvc.Name); (gerr == nil && (cur.UID != pvc.UID || cur.DeletionTimestamp != nil)) || apierrors.IsNotFound(gerr) {
		logger.V(2).Info("Claim deleted during CreateVolume; deleting the volume", "volume", vol.GetVolumeId())
		if derr := p.deleteVolume(ctx, vol.GetVolumeId(), a.req.Secrets); derr == nil {
			if gerr == nil {
				return p.removeIntent(ctx, cur)
			}
			return nil
		} else if recorded && gerr == nil {
			return fmt.Errorf("deleting volume %s of deleted claim: %w", vol.GetVolumeId(), derr)
		}
		// Without an intent record on a claim that still exists, the PV is
		// the only way not to lose the volume: create it; it is released
		// and deleted as usual.
	}
	pv := p.buildPV(pvc, class, a, vol)
	if ctx.Err() != nil {
		// Stopped with a volume and no PV: record it for the next leader.
		if !recorded && !p.opts.NoIntent {
			_ = p.recordLate(ctx, pvc, a)
		}
		return ctx.Err()
	}
	created, err := p.kube.CoreV1().PersistentVolumes().Create(ctx, pv, metav1.CreateOptions{})
	if err == nil {
		// Write-through: the claim's next sync (our own intent patch queued
		// one) must see the PV even before the informer does.
		_ = p.volumeStore.Add(created)
	}
	if err != nil {
		if !apierrors.IsAlreadyExists(err) {
			return fmt.Errorf("creating PV %s: %w", pv.Name, err)
		}
		old, gerr := p.kube.CoreV1().PersistentVolumes().Get(ctx, pv.Name, metav1.GetOptions{})
		if gerr != nil {
			return gerr
		}
		if old.Spec.ClaimRef == nil || old.Spec.ClaimRef.UID != pvc.UID || old.Spec.CSI == nil || old.Spec.CSI.VolumeHandle != vol.GetVolumeId() {
			return p.failed(ctx, pvc, fmt.Errorf("PV %s already exists and belongs to another claim or volume", pv.Name), stateFinished)
		}
	}
	p.forgetTopology(string(pvc.UID))
	if a.source != nil && a.source.kind == "VolumeSnapshot" {
		p.releaseSnapshot(ctx, pvc)
	}
	logger.V(2).Info("Provisioned volume", "pv", pv.Name, "volume", vol.GetVolumeId())
	if p.opts.NormalEvents {
		p.rec.Eventf(pvc, v1.EventTypeNormal, ReasonProvisioningSucceeded, "Successfully provisioned volume %s", pv.Name)
	}
	if p.capacity != nil {
		p.capacity.refreshForVolume(pv)
	}
	return nil
}

func stateOf(err error) createState {
	var se *stateError
	if errors.As(err, &se) {
		return se.state
	}
	return stateFinished
}

// checkResponse verifies size and content source of a created volume.
func (p *Provisioner) checkResponse(a *attempt, vol *csi.Volume) error {
	if vol == nil || vol.VolumeId == "" {
		return errors.New("driver returned no volume ID")
	}
	if vol.CapacityBytes != 0 && vol.CapacityBytes < a.req.CapacityRange.GetRequiredBytes() {
		return fmt.Errorf("created volume capacity %d is less than the requested %d", vol.CapacityBytes, a.req.CapacityRange.GetRequiredBytes())
	}
	if a.req.VolumeContentSource != nil && vol.ContentSource == nil {
		return errors.New("volume content source missing in the driver's reply")
	}
	return nil
}

// failed reports a failed attempt and turns its state into a retry.
func (p *Provisioner) failed(ctx context.Context, pvc *v1.PersistentVolumeClaim, err error, state createState) error {
	logger := klog.FromContext(ctx)
	if state != stateBackground {
		p.forgetTopology(string(pvc.UID))
	}
	if state == stateReschedule && pvc.Annotations[annSelectedNode] != "" {
		logger.V(2).Info("Handing the claim back to the scheduler", "node", pvc.Annotations[annSelectedNode], "err", err)
		p.rec.Eventf(pvc, v1.EventTypeWarning, ReasonProvisioningFailed, "%v; the scheduler will pick another node", err)
		patch := []byte(fmt.Sprintf(`{"metadata":{"annotations":{%q:null}}}`, annSelectedNode))
		if _, perr := p.kube.CoreV1().PersistentVolumeClaims(pvc.Namespace).Patch(ctx, pvc.Name, types.MergePatchType, patch, metav1.PatchOptions{}); perr != nil {
			return fmt.Errorf("removing %s: %w", annSelectedNode, perr)
		}
		return nil
	}
	if csiconn.Code(err).String() == "InvalidArgument" {
		p.rec.Eventf(pvc, v1.EventTypeWarning, ReasonProvisioningFailed, "Volume provisioning failed with infeasible error. Retries will be delayed. %v", err)
	} else {
		p.rec.Event(pvc, v1.EventTypeWarning, ReasonProvisioningFailed, err.Error())
	}
	return fmt.Errorf("provisioning %s: %w", klog.KObj(pvc), err)
}

// create calls CreateVolume and keeps the intent record in step with it:
// written before the call when Options.IntentDelay is negative, else
// written while the call runs once it has taken IntentDelay. recorded says
// whether the claim carries the record when create returns; pvc is the
// claim as last written.
func (p *Provisioner) create(ctx context.Context, pvc *v1.PersistentVolumeClaim, a *attempt) (resp *csi.CreateVolumeResponse, _ *v1.PersistentVolumeClaim, recorded bool, err error) {
	recorded = recordedVolumeName(pvc) == a.pvName
	if !recorded && !p.opts.NoIntent && p.opts.IntentDelay < 0 {
		if pvc, err = p.writeIntent(ctx, pvc, a.pvName); err != nil {
			return nil, pvc, false, err
		}
		recorded = true
	}
	callCtx, cancel := p.callCtx(ctx)
	defer cancel()
	if recorded || p.opts.NoIntent {
		resp, err = p.ctrl.CreateVolume(callCtx, a.req)
		return resp, pvc, recorded, err
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		resp, err = p.ctrl.CreateVolume(callCtx, a.req)
	}()
	timer := p.opts.Clock.NewTimer(p.opts.IntentDelay)
	defer timer.Stop()
	select {
	case <-done:
		return resp, pvc, false, err
	case <-timer.C():
	}
	// A slow call: record it now, while it runs. A failure here is not
	// fatal; the outcome of the call decides what happens next.
	if out, werr := p.writeIntentFresh(ctx, pvc, a.pvName); werr == nil {
		pvc, recorded = out, true
	} else {
		klog.FromContext(ctx).V(2).Info("Could not record the provisioning intent during a slow CreateVolume", "volume", a.pvName, "err", werr)
	}
	<-done
	return resp, pvc, recorded, err
}

// recordLate writes the intent record after a CreateVolume whose outcome
// is unknown (timeout, transient error, stop). If the claim is gone, there
// is nowhere to record it: the volume, if any, is looked up and deleted
// here and now.
func (p *Provisioner) recordLate(ctx context.Context, pvc *v1.PersistentVolumeClaim, a *attempt) error {
	wctx := ctx
	if ctx.Err() != nil {
		// Stopping: one last bounded write, so the next leader can finish.
		var cancel context.CancelFunc
		wctx, cancel = context.WithTimeout(context.WithoutCancel(ctx), p.opts.Timeout)
		defer cancel()
	}
	_, err := p.writeIntentFresh(wctx, pvc, a.pvName)
	if !errors.Is(err, errClaimGone) {
		return err
	}
	if ctx.Err() != nil {
		klog.FromContext(ctx).Error(nil, "Stopped during CreateVolume of a claim deleted meanwhile: the volume may be left on the backend", "volume", a.pvName)
		return ctx.Err()
	}
	return p.deleteOrphan(ctx, a)
}

// deleteOrphan removes the volume of a claim that went away while its
// CreateVolume had an unknown outcome, and no intent record could be
// written: the same CreateVolume (idempotent by name) returns the ID, then
// DeleteVolume. Tried for up to three timeouts.
func (p *Provisioner) deleteOrphan(ctx context.Context, a *attempt) error {
	logger := klog.FromContext(ctx)
	deadline := p.opts.Clock.Now().Add(3 * p.opts.Timeout)
	delay := 100 * time.Millisecond
	for {
		callCtx, cancel := p.callCtx(ctx)
		resp, err := p.ctrl.CreateVolume(callCtx, a.req)
		cancel()
		switch {
		case err == nil:
			err = p.deleteVolume(ctx, resp.GetVolume().GetVolumeId(), a.req.Secrets)
			if err == nil || csiconn.Code(err).String() == "NotFound" {
				logger.V(2).Info("Deleted the volume of a claim deleted during its CreateVolume", "volume", resp.GetVolume().GetVolumeId())
				return nil
			}
		case csiconn.Classify(csiconn.OpCreateVolume, err) != csiconn.Transient:
			return nil // a final answer: no volume of that name exists
		}
		if ctx.Err() != nil || p.opts.Clock.Now().After(deadline) {
			logger.Error(err, "Claim deleted during CreateVolume; its volume may be left on the backend", "volume", a.pvName)
			return nil // nothing to retry against: the claim is gone
		}
		select {
		case <-ctx.Done():
		case <-p.opts.Clock.After(delay):
		}
		delay = min(2*delay, time.Second)
	}
}

// errClaimGone: the claim was deleted (or replaced by another of the same
// name); no intent record can be written on it any more.
var errClaimGone = errors.New("claim is gone")

// writeIntentFresh is writeIntent for a claim whose cached copy may be
// stale: on a conflict it reads the claim from the API server and tries
// again, as long as it is the same claim and not being deleted.
func (p *Provisioner) writeIntentFresh(ctx context.Context, pvc *v1.PersistentVolumeClaim, volName string) (*v1.PersistentVolumeClaim, error) {
	var err error
	for range 3 {
		var out *v1.PersistentVolumeClaim
		if out, err = p.writeIntent(ctx, pvc, volName); err == nil {
			return out, nil
		}
		// A stale copy (conflict), a deleted claim (not found) or one being
		// deleted (no new finalizers allowed): the claim as stored decides.
		cur, gerr := p.kube.CoreV1().PersistentVolumeClaims(pvc.Namespace).Get(ctx, pvc.Name, metav1.GetOptions{})
		switch {
		case apierrors.IsNotFound(gerr):
			return nil, errClaimGone
		case gerr != nil:
			return nil, fmt.Errorf("recording provisioning intent on %s: %w", klog.KObj(pvc), gerr)
		case cur.UID != pvc.UID || cur.DeletionTimestamp != nil:
			return nil, errClaimGone
		case !errors.Is(err, errRetryLater):
			return nil, err
		}
		pvc = cur
	}
	return nil, err
}

// writeIntent records on the claim, before the first CreateVolume, that a
// volume of that name may come to exist: one merge patch adding the
// annotation and the finalizer. Claims that already carry both cost nothing.
func (p *Provisioner) writeIntent(ctx context.Context, pvc *v1.PersistentVolumeClaim, volName string) (*v1.PersistentVolumeClaim, error) {
	if p.opts.NoIntent || (pvc.Annotations[AnnProvisioningVolumeName] == volName && hasFinalizer(pvc.Finalizers, FinalizerIntent)) {
		return pvc, nil
	}
	patch := map[string]any{"metadata": map[string]any{
		"resourceVersion": pvc.ResourceVersion, // fails on a stale cache instead of racing a deletion
		"annotations":     map[string]string{AnnProvisioningVolumeName: volName},
		"finalizers":      append(append([]string{}, pvc.Finalizers...), FinalizerIntent),
	}}
	if hasFinalizer(pvc.Finalizers, FinalizerIntent) {
		delete(patch["metadata"].(map[string]any), "finalizers")
	}
	data, _ := json.Marshal(patch)
	out, err := p.kube.CoreV1().PersistentVolumeClaims(pvc.Namespace).Patch(ctx, pvc.Name, types.MergePatchType, data, metav1.PatchOptions{})
	if err != nil {
		if apierrors.IsConflict(err) || apierrors.IsNotFound(err) {
			return nil, errRetryLater
		}
		return nil, fmt.Errorf("recording provisioning intent on %s: %w", klog.KObj(pvc), err)
	}
	return out, nil
}

// removeIntent drops the intent finalizer (the annotation stays, as a
// record of the volume name).
func (p *Provisioner) removeIntent(ctx context.Context, pvc *v1.PersistentVolumeClaim) error {
	if !hasFinalizer(pvc.Finalizers, FinalizerIntent) {
		return nil
	}
	return p.patchFinalizers(ctx, pvc, withoutFinalizer(pvc.Finalizers, FinalizerIntent))
}

func (p *Provisioner) patchFinalizers(ctx context.Context, pvc *v1.PersistentVolumeClaim, fins []string) error {
	data, _ := json.Marshal(map[string]any{"metadata": map[string]any{"resourceVersion": pvc.ResourceVersion, "finalizers": fins}})
	if fins == nil {
		data, _ = json.Marshal(map[string]any{"metadata": map[string]any{"resourceVersion": pvc.ResourceVersion, "finalizers": nil}})
	}
	_, err := p.kube.CoreV1().PersistentVolumeClaims(pvc.Namespace).Patch(ctx, pvc.Name, types.MergePatchType, data, metav1.PatchOptions{})
	if apierrors.IsNotFound(err) {
		return nil
	}
	if apierrors.IsConflict(err) {
		return errRetryLater
	}
	return err
}

// cleanup finishes a claim deleted while its volume may exist without a PV:
// the same CreateVolume (idempotent by name) returns the volume ID, which
// is then deleted; only then does the finalizer go.
func (p *Provisioner) cleanup(ctx context.Context, pvc *v1.PersistentVolumeClaim, class *storagev1.StorageClass) error {
	logger := klog.FromContext(ctx)
	// The full request first (same parameters, source and topology as the
	// create); if it cannot be built any more, a minimal one by name.
	a, err := p.prepare(ctx, pvc, class, false)
	if err != nil {
		a, err = p.prepare(ctx, pvc, class, true)
	}
	if err != nil {
		p.rec.Eventf(pvc, v1.EventTypeWarning, ReasonProvisioningFailed, "Cannot clean up volume of deleted claim: %v", err)
		return fmt.Errorf("cleanup of %s: %w", klog.KObj(pvc), err)
	}
	callCtx, cancel := p.callCtx(ctx)
	resp, err := p.ctrl.CreateVolume(callCtx, a.req)
	cancel()
	if err != nil {
		if csiconn.Classify(csiconn.OpCreateVolume, err) == csiconn.Transient {
			return fmt.Errorf("cleanup of %s: looking up volume %s: %w", klog.KObj(pvc), a.pvName, err)
		}
		logger.V(2).Info("No volume to clean up", "volume", a.pvName, "err", err)
		return p.removeIntent(ctx, pvc)
	}
	if err := p.deleteVolume(ctx, resp.GetVolume().GetVolumeId(), a.req.Secrets); err != nil {
		return fmt.Errorf("cleanup of %s: %w", klog.KObj(pvc), err)
	}
	logger.V(2).Info("Deleted volume of a claim deleted before its PV existed", "volume", resp.GetVolume().GetVolumeId())
	p.releaseSnapshot(ctx, pvc)
	return p.removeIntent(ctx, pvc)
}

func (p *Provisioner) deleteVolume(ctx context.Context, id string, secrets map[string]string) error {
	callCtx, cancel := p.callCtx(ctx)
	defer cancel()
	_, err := p.ctrl.DeleteVolume(callCtx, &csi.DeleteVolumeRequest{VolumeId: id, Secrets: secrets})
	return err
}

// deleteQuietly removes a volume the provisioner will not use (up to five
// tries within one timeout); failures are left to the intent record.
func (p *Provisioner) deleteQuietly(ctx context.Context, id string, secrets map[string]string) {
	if id == "" {
		return
	}
	deadline := p.opts.Clock.Now().Add(p.opts.Timeout)
	for i := 0; i < 5 && p.opts.Clock.Now().Before(deadline); i++ {
		if err := p.deleteVolume(ctx, id, secrets); err == nil || csiconn.Code(err).String() == "NotFound" {
			return
		}
		select {
		case <-ctx.Done():
			return
		case <-p.opts.Clock.After(100 * time.Millisecond):
		}
	}
}

// releaseCloneSource drops the clone-protection finalizer from a deleted
// source claim once no Pending claim in its namespace clones from it.
func (p *Provisioner) releaseCloneSource(ctx context.Context, src *v1.PersistentVolumeClaim) error {
	list, err := p.claims.PersistentVolumeClaims(src.Namespace).List(everything())
	if err != nil {
		return err
	}
	for _, c := range list {
		ds := c.Spec.DataSource
		if ds != nil && ds.Kind == "PersistentVolumeClaim" && ds.Name == src.Name && c.Status.Phase == v1.ClaimPending {
			return errRetryLater
		}
	}
	return p.patchFinalizers(ctx, src, withoutFinalizer(src.Finalizers, FinalizerCloneSource))
}

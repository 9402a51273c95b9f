package provisioner

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/container-storage-interface/spec/lib/go/csi"
	"google.golang.org/grpc/codes"
	v1 "k8s.io/api/core/v1"
	storagev1 "k8s.io/api/storage/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/cache"
	"k8s.io/klog/v2"

	"github.com/csi-kit/sidecars/csiconn"
	"github.com/csi-kit/sidecars/internal/ctrl"
	"github.com/csi-kit/sidecars/internal/kube"
)

// syncClaim handles one claim key.
func (p *Provisioner) syncClaim(ctx context.Context, key string) (ctrl.Result, error) {
	ns, name, err := cache.SplitMetaNamespaceKey(key)
	if err != nil {
		return ctrl.Result{}, nil
	}
	pvc, err := p.claims.PersistentVolumeClaims(ns).Get(name)
	if apierrors.IsNotFound(err) {
		return ctrl.Result{}, nil
	}
	if err != nil {
		return ctrl.Result{}, err
	}
	logger := klog.FromContext(ctx).WithValues("pvc", klog.KObj(pvc))
	ctx = klog.NewContext(ctx, logger)
	class := p.classFor(pvc)
	action, why := decideClaim(pvc, class, p.name, p.pvFor(pvc) != nil)
	if p.node != nil {
		action, why = decideNodeClaim(action, why, pvc, class, p.node.name, p.opts.NodeDeployment.ImmediateBinding)
	}
	logger.V(5).Info("Claim decision", "action", action, "reason", why)
	switch action {
	case claimTake:
		return p.take(ctx, pvc, class)
	case claimProvision:
		if wait := p.slow.wait(pvc.UID, class, p.opts.Clock.Now()); wait > 0 {
			logger.V(4).Info("Driver refused this claim as infeasible; next attempt delayed unless its class changes", "after", wait)
			return ctrl.Result{RequeueAfter: wait}, nil
		}
		return ctrl.Result{}, p.provision(ctx, pvc, class)
	case claimConvertIntent:
		return ctrl.Result{}, p.convertIntent(ctx, pvc, class)
	}
	if pvc.DeletionTimestamp != nil && p.records.get(pvc.UID) != nil {
		p.recordQueue.Add(string(pvc.UID))
	}
	return ctrl.Result{}, nil
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

// pvFor returns the PV created for this claim, if any.
func (p *Provisioner) pvFor(pvc *v1.PersistentVolumeClaim) *v1.PersistentVolume {
	name, err := volumeName(p.opts.VolumeNamePrefix, string(pvc.UID), p.opts.VolumeNameUUIDLength)
	if err != nil {
		return nil
	}
	pv := p.volume(name)
	if pv == nil || pv.Spec.ClaimRef == nil || pv.Spec.ClaimRef.UID != pvc.UID {
		return nil
	}
	return pv
}

// volume returns PV name as this process last saw it: the cached copy, or
// the one this process created when the cache does not show it yet or
// shows an older version (p.pvs); nil when neither has it.
func (p *Provisioner) volume(name string) *v1.PersistentVolume {
	pv, err := p.volumes.Get(name)
	if err != nil {
		if mine, ok := p.pvs.Get(name); ok {
			return mine
		}
		return nil
	}
	return p.pvs.Latest(name, pv)
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
		if !lostRace(err) {
			p.met.provision(className, sourceKind, p.opts.Clock.Since(start), err)
		}
	}()
	if !p.opts.DisableNormalEvents {
		p.rec.Eventf(pvc, v1.EventTypeNormal, ReasonProvisioning, "External provisioner is provisioning volume for claim %q", klog.KObj(pvc).String())
	}
	a, err := p.prepare(ctx, pvc, class, false)
	if errors.Is(err, errPopulator) {
		if !p.opts.DisableNormalEvents {
			p.rec.Event(pvc, v1.EventTypeNormal, ReasonProvisioning, "Assuming an external populator will provision the volume")
		}
		return nil
	}
	if lostRace(err) {
		return err
	}
	if err != nil {
		return p.failed(ctx, pvc, err, stateOf(err))
	}
	if rec := p.records.get(pvc.UID); rec != nil {
		// Retries send the request first recorded, so that its answer
		// speaks for the volume the record describes.
		a.req = rec.request()
		a.req.Secrets = secretsOr(a.req.Secrets, rec.secrets)
	}
	p.records.setBusy(pvc.UID, true)
	defer p.records.setBusy(pvc.UID, false)
	resp, err := p.create(ctx, pvc, a)
	if err != nil {
		if lostRace(err) {
			return err
		}
		state := classifyCreate(err, p.topology(), pvc.Annotations[annSelectedNode] != "")
		switch {
		case state == stateBackground || ctx.Err() != nil:
			// The volume may exist: record that before anything else.
			_ = p.keepRecord(ctx, newRecord(pvc, a, ""))
		case provesAbsence(err):
			if derr := p.dropRecord(ctx, pvc.UID); derr != nil {
				logger.V(2).Info("Could not drop the provisioning record", "err", derr)
			}
		}
		if ctx.Err() != nil {
			return ctx.Err() // stopped: the record lets the next leader finish
		}
		return p.failed(ctx, pvc, err, state)
	}
	vol := resp.GetVolume()
	if err := p.checkResponse(a, vol); err != nil {
		p.deleteQuietly(ctx, pvc, a, vol.GetVolumeId())
		return p.failed(ctx, pvc, err, stateBackground)
	}
	// From here a volume ID exists: until its PV exists, a record must hold
	// it whenever this attempt ends without the PV.
	keep := func() { _ = p.keepRecord(ctx, newRecord(pvc, a, vol.GetVolumeId())) }
	// The claim may have gone while the driver worked.
	if cur, gerr := p.claims.PersistentVolumeClaims(pvc.Namespace).Get(pvc.Name); (gerr == nil && (cur.UID != pvc.UID || cur.DeletionTimestamp != nil)) || apierrors.IsNotFound(gerr) {
		logger.V(2).Info("Claim deleted during CreateVolume; deleting the volume", "volume", vol.GetVolumeId())
		if derr := p.deleteVolume(ctx, vol.GetVolumeId(), a.req.Secrets); derr != nil && csiconn.Code(derr) != codes.NotFound {
			keep() // the record worker retries the deletion
			return nil
		}
		if derr := p.dropRecord(ctx, pvc.UID); derr != nil {
			p.retryRecord(pvc.UID)
		}
		return nil
	}
	pv, err := p.buildPV(pvc, class, a, vol)
	if err != nil {
		p.deleteQuietly(ctx, pvc, a, vol.GetVolumeId())
		return p.failed(ctx, pvc, err, stateFinished)
	}
	if ctx.Err() != nil {
		keep() // stopped with a volume and no PV: record it for the next leader
		return ctx.Err()
	}
	created, err := p.kube.CoreV1().PersistentVolumes().Create(ctx, pv, metav1.CreateOptions{})
	if err != nil {
		if !apierrors.IsAlreadyExists(err) {
			keep()
			return p.failed(ctx, pvc, fmt.Errorf("creating PV %s: %w", pv.Name, err), stateBackground)
		}
		old, gerr := p.kube.CoreV1().PersistentVolumes().Get(ctx, pv.Name, metav1.GetOptions{})
		if gerr != nil {
			keep()
			return gerr
		}
		switch {
		case old.Spec.ClaimRef == nil || old.Spec.ClaimRef.UID != pvc.UID || volumeHandle(ctx, old, p.name) != vol.GetVolumeId():
			keep()
			return p.failed(ctx, pvc, fmt.Errorf("PV %s already exists and belongs to another claim or volume", pv.Name), stateFinished)
		case old.DeletionTimestamp != nil:
			keep()
			return p.failed(ctx, pvc, fmt.Errorf("PV %s of this claim is being deleted; a new volume is provisioned once it is gone", pv.Name), stateBackground)
		}
		created = old
	}
	p.pvs.Remember(created.Name, created)
	if err := p.dropRecord(ctx, pvc.UID); err != nil {
		p.retryRecord(pvc.UID) // the PV exists: the worker drops it
	}
	p.forgetTopology(string(pvc.UID))
	if a.source != nil && a.source.kind == "VolumeSnapshot" {
		p.releaseSnapshotIfUnused(ctx, a.source.namespace, a.source.name, pvc.UID)
	}
	logger.V(2).Info("Provisioned volume", "pv", pv.Name, "volume", vol.GetVolumeId())
	if !p.opts.DisableNormalEvents {
		p.rec.Eventf(pvc, v1.EventTypeNormal, ReasonProvisioningSucceeded, "Successfully provisioned volume %s", pv.Name)
	}
	if p.capacity != nil {
		p.capacity.refreshForVolume(pv)
	}
	return nil
}

// lostRace reports whether err is a write that lost to another writer of
// the object (a conflict): the sync is retried with backoff, without an
// event or a failure in the metrics.
func lostRace(err error) bool { return apierrors.IsConflict(err) }

// secretsOr returns a, or b when a is empty.
func secretsOr(a, b map[string]string) map[string]string {
	if len(a) > 0 {
		return a
	}
	return b
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
	if csiconn.Code(err) == codes.InvalidArgument {
		key, _ := cache.MetaNamespaceKeyFunc(pvc)
		p.slow.add(pvc.UID, key, claimClass(pvc), p.classFor(pvc), p.opts.Clock.Now().Add(p.opts.InfeasibleRetryDelay))
		p.rec.Eventf(pvc, v1.EventTypeWarning, ReasonProvisioningFailed, "Volume provisioning failed with infeasible error. Retries will be delayed. %v", err)
	} else {
		p.rec.Event(pvc, v1.EventTypeWarning, ReasonProvisioningFailed, err.Error())
	}
	return fmt.Errorf("provisioning %s: %w", klog.KObj(pvc), err)
}

// create calls CreateVolume and keeps the provisioning record in step
// with it: written before the call when Options.IntentDelay is negative,
// else written while the call runs once it has taken IntentDelay.
func (p *Provisioner) create(ctx context.Context, pvc *v1.PersistentVolumeClaim, a *attempt) (resp *csi.CreateVolumeResponse, err error) {
	// Only a record the API server holds counts: one whose write failed
	// is still only in memory, and a crash would lose it.
	recorded := p.opts.DisableIntent || p.recordsOff || p.records.isSaved(pvc.UID)
	if !recorded && p.opts.IntentDelay < 0 {
		if err := p.keepRecord(ctx, newRecord(pvc, a, "")); err != nil {
			return nil, err // no call without the record
		}
		recorded = true
	}
	if a.migrated {
		ctx = markMigrated(ctx)
	}
	callCtx, cancel := p.callCtx(ctx)
	defer cancel()
	if recorded {
		return p.ctrl.CreateVolume(callCtx, a.req)
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
		return resp, err
	case <-timer.C():
	}
	// A slow call: record it now, while it runs. A failed write is retried
	// by the record worker; the outcome of the call decides what follows.
	_ = p.keepRecord(ctx, newRecord(pvc, a, ""))
	<-done
	return resp, err
}

func (p *Provisioner) deleteVolume(ctx context.Context, id string, secrets map[string]string) error {
	callCtx, cancel := p.callCtx(ctx)
	defer cancel()
	_, err := p.ctrl.DeleteVolume(callCtx, &csi.DeleteVolumeRequest{VolumeId: id, Secrets: secrets})
	return err
}

// deleteQuietly removes a volume the provisioner will not use (up to five
// tries within one timeout); if that fails, the record keeps the volume ID
// so that the volume is deleted once the claim is.
func (p *Provisioner) deleteQuietly(ctx context.Context, pvc *v1.PersistentVolumeClaim, a *attempt, id string) {
	if id == "" {
		return
	}
	deadline := p.opts.Clock.Now().Add(p.opts.Timeout)
	for i := 0; i < 5 && p.opts.Clock.Now().Before(deadline); i++ {
		if err := p.deleteVolume(ctx, id, a.req.Secrets); err == nil || csiconn.Code(err) == codes.NotFound {
			return
		}
		select {
		case <-ctx.Done():
			i = 5
		case <-p.opts.Clock.After(100 * time.Millisecond):
		}
	}
	_ = p.keepRecord(ctx, newRecord(pvc, a, id))
}

// convertIntent handles the intent finalizer FinalizerIntent of earlier
// versions, which kept the record on the claim itself. Only a record naming
// this claim's own volume counts: any other was written by a user, and is
// reported and ignored. A valid one becomes a provisioning record; either
// way the finalizer goes, so no claim or namespace waits for it.
func (p *Provisioner) convertIntent(ctx context.Context, pvc *v1.PersistentVolumeClaim, class *storagev1.StorageClass) error {
	want, _ := volumeName(p.opts.VolumeNamePrefix, string(pvc.UID), p.opts.VolumeNameUUIDLength)
	got := pvc.Annotations[AnnProvisioningVolumeName]
	switch {
	case got != want:
		p.rec.Eventf(pvc, v1.EventTypeWarning, ReasonForgedRecord,
			"Ignoring annotation %s=%q and finalizer %s: they name volume %q, but this claim's volume is %q, and only the provisioner writes provisioning records. Remove both from the claim",
			AnnProvisioningVolumeName, got, FinalizerIntent, got, want)
	case !p.opts.DisableIntent && !p.recordsOff && p.pvFor(pvc) == nil && p.records.get(pvc.UID) == nil:
		a, err := p.prepare(ctx, pvc, class, false)
		rebuilt := err != nil
		if rebuilt {
			a, err = p.prepare(ctx, pvc, class, true)
		}
		if err != nil {
			a = &attempt{pvName: want, req: &csi.CreateVolumeRequest{Name: want}}
		}
		rec := newRecord(pvc, a, "")
		rec.meta.Rebuilt = rebuilt
		if err := p.keepRecord(ctx, rec); err != nil {
			return err
		}
	}
	return p.patchFinalizers(ctx, pvc, withoutFinalizer(pvc.Finalizers, FinalizerIntent))
}

func (p *Provisioner) patchFinalizers(ctx context.Context, pvc *v1.PersistentVolumeClaim, fins []string) error {
	data := kube.FinalizersPatch(pvc.ResourceVersion, fins)
	_, err := p.kube.CoreV1().PersistentVolumeClaims(pvc.Namespace).Patch(ctx, pvc.Name, types.MergePatchType, data, metav1.PatchOptions{})
	switch {
	case apierrors.IsNotFound(err):
		return nil
	case err != nil:
		return fmt.Errorf("updating the finalizers of %s: %w", klog.KObj(pvc), err)
	}
	return nil
}

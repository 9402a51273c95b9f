package provisioner

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"

	"github.com/container-storage-interface/spec/lib/go/csi"
	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	v1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/klog/v2"

	"github.com/csi-kit/sidecars/csiconn"
	"github.com/csi-kit/sidecars/internal/ctrl"
)

// A provisioning record is the durable note "a volume of this name may
// exist on the backend without a PV". It lives as a Secret in the
// provisioner's own namespace (Options.RecordNamespace), never on the
// claim: a tenant cannot forge, edit or remove it, and a claim (or its
// namespace) never waits for it. It holds everything the cleanup needs
// once the claim, its class, its data source or its namespace are gone:
//
//   - the claim's namespace, name and UID, and the volume name, which is
//     always volumeName(prefix, claim UID);
//   - the exact CreateVolumeRequest that was sent, without secrets, so the
//     cleanup re-sends the identical request (idempotent by name) to learn
//     the volume ID; or the volume ID itself once known;
//   - a copy of the provisioner secret the request carried, so the cleanup
//     works after the tenant's namespace (and its secret) is deleted.
//
// A record is written when a CreateVolume runs longer than
// Options.IntentDelay (or before every call when it is negative), when a
// create fails without a final answer, and when a volume ID exists but its
// PV could not be written. It is removed once the PV exists, once the
// volume is deleted, or once the driver has answered the identical request
// in a way that proves no volume exists (see provesAbsence).

const (
	// LabelRecord marks the provisioning record Secrets; its value is the
	// driver name.
	LabelRecord  = "csi-kit.io/provisioning-record"
	recordPrefix = "csi-provisioning-"

	keyRecord  = "record"
	keyRequest = "request"
	// keySecretPrefix prefixes the keys of the copied provisioner secret.
	keySecretPrefix = "secret."
)

// recordMeta is the JSON part of a record.
type recordMeta struct {
	ClaimNamespace string    `json:"claimNamespace"`
	ClaimName      string    `json:"claimName"`
	ClaimUID       types.UID `json:"claimUID"`
	VolumeName     string    `json:"volumeName"`
	// VolumeID, once the driver returned it: the cleanup then deletes it
	// without a CreateVolume.
	VolumeID string `json:"volumeID,omitempty"`
	// Snapshot is the namespace/name of the VolumeSnapshot restored from,
	// whose source-protection finalizer is dropped after the cleanup.
	Snapshot string `json:"snapshot,omitempty"`
	// Rebuilt marks a record converted from an older intent finalizer: its
	// request was rebuilt from the claim, not recorded at the time.
	Rebuilt bool `json:"rebuilt,omitempty"`
}

// provRecord is one provisioning record as held in memory.
type provRecord struct {
	meta    recordMeta
	req     *csi.CreateVolumeRequest // without secrets
	secrets map[string]string
	saved   bool // written to the API server as it is now
}

func recordName(uid types.UID) string { return recordPrefix + string(uid) }

// records is the in-memory view of this provisioner's records, keyed by
// claim UID. The API server holds the durable copy; the map also keeps
// records whose write failed until a retry succeeds.
type records struct {
	mu sync.Mutex
	m  map[types.UID]*provRecord
	// busy holds claims with a CreateVolume in flight in this process; the
	// cleanup of their record waits for it to return.
	busy map[types.UID]bool
	// writes serialise the API writes of one record (save, drop), keyed
	// by claim UID: the claim worker and the record worker both write, and
	// a record one of them dropped must never be written back by the other.
	writes ctrl.KeyLocks
}

func newRecords() *records {
	return &records{m: map[types.UID]*provRecord{}, busy: map[types.UID]bool{}}
}

func (r *records) get(uid types.UID) *provRecord {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.m[uid]
}

// isSaved reports whether the claim has a record the API server holds.
func (r *records) isSaved(uid types.UID) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	rec := r.m[uid]
	return rec != nil && rec.saved
}

// uids lists the claims that have a record.
func (r *records) uids() []types.UID {
	r.mu.Lock()
	defer r.mu.Unlock()
	uids := make([]types.UID, 0, len(r.m))
	for uid := range r.m {
		uids = append(uids, uid)
	}
	return uids
}

func (r *records) len() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.m)
}

func (r *records) setBusy(uid types.UID, busy bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if busy {
		r.busy[uid] = true
	} else {
		delete(r.busy, uid)
	}
}

func (r *records) isBusy(uid types.UID) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.busy[uid]
}

// toSecret encodes rec as the Secret stored in ns.
func (rec *provRecord) toSecret(ns, driver string) (*v1.Secret, error) {
	meta, err := json.Marshal(rec.meta)
	if err != nil {
		return nil, err
	}
	req, err := protojson.Marshal(rec.req)
	if err != nil {
		return nil, err
	}
	data := map[string][]byte{keyRecord: meta, keyRequest: req}
	for k, v := range rec.secrets {
		data[keySecretPrefix+k] = []byte(v)
	}
	return &v1.Secret{
		ObjectMeta: metav1.ObjectMeta{Name: recordName(rec.meta.ClaimUID), Namespace: ns,
			Labels: map[string]string{LabelRecord: driver}},
		Type: v1.SecretTypeOpaque,
		Data: data,
	}, nil
}

// recordFromSecret decodes a stored record.
func recordFromSecret(s *v1.Secret) (*provRecord, error) {
	rec := &provRecord{req: &csi.CreateVolumeRequest{}, saved: true}
	if err := json.Unmarshal(s.Data[keyRecord], &rec.meta); err != nil {
		return nil, fmt.Errorf("provisioning record %s/%s: %w", s.Namespace, s.Name, err)
	}
	if err := protojson.Unmarshal(s.Data[keyRequest], rec.req); err != nil {
		return nil, fmt.Errorf("provisioning record %s/%s: request: %w", s.Namespace, s.Name, err)
	}
	if rec.meta.ClaimUID == "" || rec.meta.VolumeName == "" || s.Name != recordName(rec.meta.ClaimUID) {
		return nil, fmt.Errorf("provisioning record %s/%s names no claim UID or volume", s.Namespace, s.Name)
	}
	for k, v := range s.Data {
		if name, ok := strings.CutPrefix(k, keySecretPrefix); ok {
			if rec.secrets == nil {
				rec.secrets = map[string]string{}
			}
			rec.secrets[name] = string(v)
		}
	}
	return rec, nil
}

// newRecord builds the record of an attempt for claim pvc.
func newRecord(pvc *v1.PersistentVolumeClaim, a *attempt, volumeID string) *provRecord {
	req := proto.Clone(a.req).(*csi.CreateVolumeRequest)
	req.Secrets = nil
	rec := &provRecord{req: req, secrets: a.req.Secrets, meta: recordMeta{
		ClaimNamespace: pvc.Namespace, ClaimName: pvc.Name, ClaimUID: pvc.UID,
		VolumeName: a.pvName, VolumeID: volumeID,
	}}
	if a.source != nil && a.source.kind == "VolumeSnapshot" {
		rec.meta.Snapshot = a.source.namespace + "/" + a.source.name
	}
	return rec
}

// request returns the recorded request with secrets.
func (rec *provRecord) request() *csi.CreateVolumeRequest {
	req := proto.Clone(rec.req).(*csi.CreateVolumeRequest)
	req.Secrets = rec.secrets
	return req
}

// loadRecords reads this driver's records from the API server; called
// once by Run before the workers start.
func (p *Provisioner) loadRecords(ctx context.Context) error {
	if p.opts.DisableIntent {
		return nil
	}
	list, err := p.kube.CoreV1().Secrets(p.opts.RecordNamespace).List(ctx, metav1.ListOptions{LabelSelector: LabelRecord + "=" + p.name})
	if apierrors.IsForbidden(err) {
		// Manifests written for other provisioners grant no Secrets in the
		// provisioner's namespace: run, as they do, without records.
		klog.FromContext(ctx).Error(err, "Provisioning records are OFF: a claim deleted during a slow or failed CreateVolume may leave its volume on the backend. Grant get, list, create, update and delete on secrets in this namespace to turn them on",
			"namespace", p.opts.RecordNamespace)
		p.recordsOff = true
		return nil
	}
	if err != nil {
		return fmt.Errorf("reading provisioning records (Secrets labelled %s=%s in namespace %s; grant get, list, create, update and delete on secrets there): %w",
			LabelRecord, p.name, p.opts.RecordNamespace, err)
	}
	p.records.mu.Lock()
	defer p.records.mu.Unlock()
	for i := range list.Items {
		rec, err := recordFromSecret(&list.Items[i])
		if err != nil {
			klog.FromContext(ctx).Error(err, "Ignoring an unreadable provisioning record; inspect and delete it by hand")
			continue
		}
		p.records.m[rec.meta.ClaimUID] = rec
	}
	p.met.records.Set(float64(len(p.records.m)))
	return nil
}

// keepRecord makes rec the record of its claim and writes it. A failed
// write is retried by the record worker for as long as the process runs;
// the error is returned for callers that must not go on without it.
func (p *Provisioner) keepRecord(ctx context.Context, rec *provRecord) error {
	if p.opts.DisableIntent || p.recordsOff {
		return nil
	}
	uid := rec.meta.ClaimUID
	p.records.mu.Lock()
	if old := p.records.m[uid]; old != nil && old.saved && old.meta == rec.meta {
		p.records.mu.Unlock()
		return nil
	}
	p.records.m[uid] = rec
	p.met.records.Set(float64(len(p.records.m)))
	p.records.mu.Unlock()
	if ctx.Err() != nil {
		// Stopping: one last bounded write, so the next leader knows.
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(context.WithoutCancel(ctx), p.opts.Timeout)
		defer cancel()
	}
	err := p.saveRecord(ctx, rec)
	if err != nil {
		klog.FromContext(ctx).Error(err, "Could not write the provisioning record; retrying", "volume", rec.meta.VolumeName)
		p.retryRecord(uid)
		return err
	}
	// The claim may be gone already (deleted before the record existed, so
	// no claim event will bring the record to the worker).
	p.recordQueue.Add(string(uid))
	return nil
}

// retryRecord brings the record of uid back to the record worker after a
// failed write; the worker's own failures back off from there.
func (p *Provisioner) retryRecord(uid types.UID) {
	p.recordQueue.AddAfter(string(uid), p.opts.RetryIntervalStart)
}

// saveRecord writes rec (create, or update of the one stored), unless it
// is no longer the claim's record (dropped or replaced meanwhile).
func (p *Provisioner) saveRecord(ctx context.Context, rec *provRecord) error {
	defer p.records.writes.Lock(string(rec.meta.ClaimUID))()
	if p.records.get(rec.meta.ClaimUID) != rec {
		return nil
	}
	s, err := rec.toSecret(p.opts.RecordNamespace, p.name)
	if err != nil {
		return err
	}
	secrets := p.kube.CoreV1().Secrets(p.opts.RecordNamespace)
	_, err = secrets.Create(ctx, s, metav1.CreateOptions{})
	if apierrors.IsAlreadyExists(err) {
		_, err = secrets.Update(ctx, s, metav1.UpdateOptions{})
	}
	if err != nil {
		return fmt.Errorf("writing provisioning record %s/%s: %w", p.opts.RecordNamespace, s.Name, err)
	}
	p.records.mu.Lock()
	if p.records.m[rec.meta.ClaimUID] == rec {
		rec.saved = true
	}
	p.records.mu.Unlock()
	return nil
}

// dropRecord removes the record of a claim: its volume has a PV, was
// deleted, or provably does not exist.
func (p *Provisioner) dropRecord(ctx context.Context, uid types.UID) error {
	defer p.records.writes.Lock(string(uid))()
	p.records.mu.Lock()
	_, ok := p.records.m[uid]
	p.records.mu.Unlock()
	if !ok {
		return nil
	}
	err := p.kube.CoreV1().Secrets(p.opts.RecordNamespace).Delete(ctx, recordName(uid), metav1.DeleteOptions{})
	if err != nil && !apierrors.IsNotFound(err) {
		return fmt.Errorf("deleting provisioning record %s/%s: %w", p.opts.RecordNamespace, recordName(uid), err)
	}
	p.records.mu.Lock()
	delete(p.records.m, uid)
	p.met.records.Set(float64(len(p.records.m)))
	p.records.mu.Unlock()
	return nil
}

// provesAbsence reports whether err, the answer to the identical
// CreateVolume request, proves that no volume of that name exists: any
// final answer but ALREADY_EXISTS. The CSI spec makes a plugin answer OK
// for an existing volume of that name whose capacity, capabilities,
// parameters and topology match, whatever else (a content source since
// deleted included); ALREADY_EXISTS says a volume of that name exists.
func provesAbsence(err error) bool {
	return err != nil && csiconn.Classify(csiconn.OpCreateVolume, err) != csiconn.Transient &&
		csiconn.Code(err) != codes.AlreadyExists
}

// syncRecord handles one record key (a claim UID): drops the record once
// the PV exists, and cleans up the volume once the claim is gone.
func (p *Provisioner) syncRecord(ctx context.Context, key string) (ctrl.Result, error) {
	uid := types.UID(key)
	rec := p.records.get(uid)
	if rec == nil {
		return ctrl.Result{}, nil
	}
	m := rec.meta
	ctx = klog.NewContext(ctx, klog.FromContext(ctx).WithValues("pvc", klog.KRef(m.ClaimNamespace, m.ClaimName), "volume", m.VolumeName))
	p.records.mu.Lock()
	saved := rec.saved
	p.records.mu.Unlock()
	if !saved {
		if err := p.saveRecord(ctx, rec); err != nil {
			return ctrl.Result{}, err
		}
	}
	if pv := p.volume(m.VolumeName); pv != nil && pv.Spec.ClaimRef != nil && pv.Spec.ClaimRef.UID == uid {
		return ctrl.Result{}, p.dropRecord(ctx, uid) // the PV carries the volume now
	}
	pvc, err := p.claims.PersistentVolumeClaims(m.ClaimNamespace).Get(m.ClaimName)
	if err == nil && pvc.UID == uid && pvc.DeletionTimestamp == nil {
		return ctrl.Result{}, nil // the claim's own sync provisions
	}
	if err != nil && !apierrors.IsNotFound(err) {
		return ctrl.Result{}, err
	}
	if p.records.isBusy(uid) {
		// A CreateVolume of the claim is in flight in this process: its
		// outcome decides about the record.
		return ctrl.Result{RequeueAfter: p.opts.RetryIntervalStart}, nil
	}
	if p.records.get(uid) != rec {
		return ctrl.Result{}, nil // dropped or replaced meanwhile; a replacement is queued
	}
	// The informer may not show yet a PV the claim worker just created: ask
	// the API server before deleting the volume.
	pv, err := p.kube.CoreV1().PersistentVolumes().Get(ctx, m.VolumeName, metav1.GetOptions{})
	switch {
	case err == nil && pv.Spec.ClaimRef != nil && pv.Spec.ClaimRef.UID == uid:
		return ctrl.Result{}, p.dropRecord(ctx, uid)
	case err != nil && !apierrors.IsNotFound(err):
		return ctrl.Result{}, fmt.Errorf("checking for PV %s before cleaning up its volume: %w", m.VolumeName, err)
	}
	if err := p.cleanupRecord(ctx, rec); err != nil {
		p.met.cleanupFailed.Inc()
		p.rec.Eventf(p.recordRef(uid), v1.EventTypeWarning, reasonCleanupFailed,
			"Volume %s of deleted claim %s/%s may still exist on the backend: %v. Retrying with backoff; fix the cause, or delete the volume on the backend and then this Secret by hand",
			m.VolumeName, m.ClaimNamespace, m.ClaimName, err)
		return ctrl.Result{}, err
	}
	if err := p.dropRecord(ctx, uid); err != nil {
		return ctrl.Result{}, err
	}
	if m.Snapshot != "" {
		ns, name := snapshotOf(m.Snapshot)
		p.releaseSnapshotIfUnused(ctx, ns, name, "")
	}
	return ctrl.Result{}, nil
}

// cleanupRecord deletes the volume of a record whose claim is gone.
func (p *Provisioner) cleanupRecord(ctx context.Context, rec *provRecord) error {
	logger := klog.FromContext(ctx)
	id := rec.meta.VolumeID
	if id == "" {
		callCtx, cancel := p.callCtx(ctx)
		resp, err := p.ctrl.CreateVolume(callCtx, rec.request())
		cancel()
		if err != nil {
			if provesAbsence(err) && !rec.meta.Rebuilt {
				logger.V(2).Info("No volume to clean up", "err", err)
				return nil
			}
			return fmt.Errorf("looking up the volume with the recorded CreateVolume: %w", err)
		}
		id = resp.GetVolume().GetVolumeId()
		if id == "" {
			return errors.New("the driver returned no volume ID for the recorded CreateVolume")
		}
	}
	if err := p.deleteVolume(ctx, id, rec.secrets); err != nil && csiconn.Code(err) != codes.NotFound {
		return fmt.Errorf("deleting volume %s: %w", id, err)
	}
	logger.V(2).Info("Deleted the volume of a claim deleted before its PV existed", "volumeID", id)
	return nil
}

// recordRef is the object a record's events are attached to.
func (p *Provisioner) recordRef(uid types.UID) *v1.ObjectReference {
	return &v1.ObjectReference{Kind: "Secret", APIVersion: "v1", Namespace: p.opts.RecordNamespace, Name: recordName(uid)}
}

// reasonCleanupFailed is the Warning of a record whose volume could not be
// cleaned up yet.
const reasonCleanupFailed = "ProvisioningCleanupFailed"

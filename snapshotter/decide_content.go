package snapshotter

import (
	"maps"
	"strings"
	"time"

	crdv1 "github.com/kubernetes-csi/external-snapshotter/client/v8/apis/volumesnapshot/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	"k8s.io/apimachinery/pkg/types"
)

// contentAction is the next step a sidecar takes for a content, or for a
// group content.
type contentAction int

const (
	actNone contentAction = iota
	// actCreate calls CreateSnapshot (CreateVolumeGroupSnapshot): the first
	// time, to poll readiness of a dynamic snapshot (the call is idempotent
	// by name), to get a final answer while "being created", or to learn
	// the handle of a content being released that never got one.
	actCreate
	// actPoll asks ListSnapshots (GetVolumeGroupSnapshot) about a
	// pre-provisioned snapshot.
	actPoll
	// actDelete calls DeleteSnapshot (DeleteVolumeGroupSnapshot, then
	// clears the status), then releases the content.
	actDelete
	// actRelease removes the content finalizer without a CSI call.
	actRelease
	// actClearBeingCreated removes a leftover being-created annotation.
	actClearBeingCreated
)

func (a contentAction) String() string {
	return [...]string{"none", "create", "poll", "delete", "release", "clear-being-created"}[a]
}

// contentFacts is what the content decision looks at; decideContent and
// decideGroupContent read them off their kind of content.
type contentFacts struct {
	deleted   bool // has a deletion timestamp
	finalizer bool // still holds the sidecar's finalizer
	dynamic   bool // cut from volumes, not pre-provisioned
	bound     bool // its snapshot reference has a UID
	member    bool // a group member: the group sidecar cuts and deletes it
	// creatable: a deleted content may still be created, to get a final
	// answer or to learn its handle.
	creatable    bool
	beingCreated bool // the being-created annotation says yes
	leftover     bool // the being-created annotation is there at all
	release      bool // deleted, and may let go of its backend snapshot
	retain       bool // deletion policy Retain
	handle       bool // a backend snapshot to delete: its handle is known
	gone         bool // the backend snapshot was deleted already
	ready        bool // ready to use, with a handle in the status
	static       bool // pre-provisioned, with a source to ask about
}

// decide picks the sidecar's next step for a content with facts f.
func decide(f contentFacts) contentAction {
	if f.deleted {
		switch {
		case !f.finalizer:
			return actNone
		case f.creatable && f.beingCreated:
			return actCreate // get a final answer before anything is released
		case !f.release:
			return actNone
		case f.retain || f.member:
			return actRelease
		case f.handle:
			return actDelete
		case f.creatable && !f.gone:
			return actCreate
		}
		return actRelease
	}
	switch {
	case f.member:
		return actNone
	case f.ready && f.leftover:
		return actClearBeingCreated
	case f.ready:
		return actNone
	case f.dynamic && !f.bound:
		return actNone // not bound yet
	case f.dynamic:
		return actCreate
	case !f.static:
		return actNone // no source: not ours to handle
	}
	return actPoll
}

// decideContent picks the sidecar's next step for vsc.
func decideContent(vsc *crdv1.VolumeSnapshotContent) contentAction {
	dynamic := vsc.Spec.Source.VolumeHandle != nil && *vsc.Spec.Source.VolumeHandle != ""
	member := vsc.Annotations[AnnGroupSnapshotHandle] != "" ||
		(vsc.Status != nil && vsc.Status.VolumeGroupSnapshotHandle != nil && *vsc.Status.VolumeGroupSnapshotHandle != "")
	handle := statusHandle(vsc)
	_, leftover := vsc.Annotations[AnnBeingCreated]
	f := contentFacts{
		deleted:      vsc.DeletionTimestamp != nil,
		finalizer:    hasFinalizer(vsc.Finalizers, FinalizerContentBound),
		dynamic:      dynamic,
		bound:        vsc.Spec.VolumeSnapshotRef.UID != "",
		member:       member,
		creatable:    dynamic && !member,
		beingCreated: vsc.Annotations[AnnBeingCreated] == annYes,
		leftover:     leftover,
		release:      vsc.DeletionTimestamp != nil && shouldRelease(vsc),
		retain:       vsc.Spec.DeletionPolicy != crdv1.VolumeSnapshotContentDelete,
		handle:       handle != "" || vsc.Spec.Source.SnapshotHandle != nil && *vsc.Spec.Source.SnapshotHandle != "",
		ready:        vsc.Status != nil && vsc.Status.ReadyToUse != nil && *vsc.Status.ReadyToUse && handle != "",
		static:       true,
	}
	return decide(f)
}

// shouldRelease reports whether a deleted content may let go of its
// backend snapshot: a pre-provisioned content that was never bound, or one
// whose snapshot the common controller deleted. A content deleted by hand
// while its snapshot exists waits.
func shouldRelease(vsc *crdv1.VolumeSnapshotContent) bool {
	if vsc.Spec.Source.VolumeHandle == nil && vsc.Spec.VolumeSnapshotRef.UID == "" {
		return true
	}
	return vsc.Annotations[AnnBeingDeleted] == annYes
}

func statusHandle(vsc *crdv1.VolumeSnapshotContent) string {
	if vsc.Status != nil && vsc.Status.SnapshotHandle != nil {
		return *vsc.Status.SnapshotHandle
	}
	return ""
}

func hasFinalizer(list []string, f string) bool {
	for _, x := range list {
		if x == f {
			return true
		}
	}
	return false
}

// shouldEnqueueContentChange filters content updates: the sidecar's own
// writes (status, finalizers, the being-created annotation) and
// resourceVersion-only changes are not work, except readyToUse turning
// true and resyncs (equal resourceVersions).
func shouldEnqueueContentChange(old, cur *crdv1.VolumeSnapshotContent) bool {
	if old.ResourceVersion == cur.ResourceVersion {
		return true // resync
	}
	if ready(old.Status) != ready(cur.Status) && ready(cur.Status) {
		return true
	}
	if (old.DeletionTimestamp == nil) != (cur.DeletionTimestamp == nil) {
		return true
	}
	if !equality.Semantic.DeepEqual(old.Spec, cur.Spec) || !equality.Semantic.DeepEqual(old.Labels, cur.Labels) {
		return true
	}
	strip := func(a map[string]string) map[string]string {
		a = maps.Clone(a)
		delete(a, AnnBeingCreated)
		return a
	}
	return !equality.Semantic.DeepEqual(strip(old.Annotations), strip(cur.Annotations))
}

func ready(st *crdv1.VolumeSnapshotContentStatus) bool {
	return st != nil && st.ReadyToUse != nil && *st.ReadyToUse
}

// SnapshotName is the backend name of the snapshot with uid: "<prefix>-<uid>";
// with uuidLength > 0 the uid loses its dashes and is cut to that length.
func SnapshotName(prefix string, uid types.UID, uuidLength int) string {
	id := string(uid)
	if uuidLength > 0 {
		id = strings.ReplaceAll(id, "-", "")
		if uuidLength < len(id) {
			id = id[:uuidLength]
		}
	}
	return prefix + "-" + id
}

// SnapshotInfo is what a driver said about one snapshot.
type SnapshotInfo struct {
	Handle       string
	Ready        bool
	CreationTime time.Time
	Size         int64
	// GroupHandle is set for a member of a group snapshot.
	GroupHandle string
}

// contentStatusFor merges what the driver said into vsc's status: the
// handle, readyToUse, a creation time kept from the first answer (a zero
// time becomes now), a size only when positive, and no error. It returns
// nil when nothing changes.
func contentStatusFor(vsc *crdv1.VolumeSnapshotContent, info SnapshotInfo, now time.Time) *crdv1.VolumeSnapshotContentStatus {
	st := &crdv1.VolumeSnapshotContentStatus{}
	if vsc.Status != nil {
		st = vsc.Status.DeepCopy()
	}
	st.SnapshotHandle = ptr(info.Handle)
	st.ReadyToUse = ptr(info.Ready)
	if st.CreationTime == nil {
		t := info.CreationTime
		if t.IsZero() {
			t = now
		}
		st.CreationTime = ptr(t.UnixNano())
	}
	if info.Size > 0 {
		st.RestoreSize = ptr(info.Size)
	}
	if info.GroupHandle != "" {
		st.VolumeGroupSnapshotHandle = ptr(info.GroupHandle)
	}
	st.Error = nil
	if vsc.Status != nil && equality.Semantic.DeepEqual(vsc.Status, st) {
		return nil
	}
	return st
}

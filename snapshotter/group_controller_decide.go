package snapshotter

import (
	"crypto/sha256"
	"fmt"
	"slices"
	"time"

	groupv1 "github.com/kubernetes-csi/external-snapshotter/client/v8/apis/volumegroupsnapshot/v1"
	crdv1 "github.com/kubernetes-csi/external-snapshotter/client/v8/apis/volumesnapshot/v1"
	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
)

// Pure decisions of the group part of the common controller: they take
// objects and say what to do; group_controller*.go does it.

// groupSource returns the label selector or the content name of vgs;
// exactly one must be set.
func groupSource(vgs *groupv1.VolumeGroupSnapshot) (sel *metav1.LabelSelector, content string, p *problem) {
	src := vgs.Spec.Source
	hasContent := src.VolumeGroupSnapshotContentName != nil && *src.VolumeGroupSnapshotContentName != ""
	if (src.Selector != nil) == hasContent {
		return nil, "", &problem{ReasonGroupSnapshotValidationError, "Exactly one of Selector and VolumeGroupSnapshotContentName should be specified"}
	}
	if hasContent {
		return nil, *src.VolumeGroupSnapshotContentName, nil
	}
	return src.Selector, "", nil
}

func groupKey(vgs *groupv1.VolumeGroupSnapshot) string { return vgs.Namespace + "/" + vgs.Name }

// dynamicGroupContentName is the name of the group content created for vgs.
func dynamicGroupContentName(vgs *groupv1.VolumeGroupSnapshot) string {
	return GroupContentNamePrefix + string(vgs.UID)
}

// groupContentNameOf is the content vgs is, or will be, bound to.
func groupContentNameOf(vgs *groupv1.VolumeGroupSnapshot) string {
	if vgs.Status != nil && vgs.Status.BoundVolumeGroupSnapshotContentName != nil && *vgs.Status.BoundVolumeGroupSnapshotContentName != "" {
		return *vgs.Status.BoundVolumeGroupSnapshotContentName
	}
	if n := vgs.Spec.Source.VolumeGroupSnapshotContentName; n != nil && *n != "" {
		return *n
	}
	return dynamicGroupContentName(vgs)
}

// memberID is the hex sha256 of the group's uid and a volume handle: the
// member snapshot is "snapshot-<id>", its content "snapcontent-<id>".
func memberID(groupUID types.UID, volumeHandle string) string {
	return fmt.Sprintf("%x", sha256.Sum256([]byte(string(groupUID)+volumeHandle)))
}

// groupOf returns the name and uid of the group snapshot vs is a member of,
// from its owner reference; ok is false for a snapshot of its own.
func groupOf(vs *crdv1.VolumeSnapshot) (name string, uid types.UID, ok bool) {
	for _, ref := range vs.OwnerReferences {
		if ref.APIVersion == groupOwnerAPIVersion && ref.Kind == groupOwnerKind {
			return ref.Name, ref.UID, true
		}
	}
	return "", "", false
}

// isGroupMember reports whether vs was cut as part of a group snapshot.
func isGroupMember(vs *crdv1.VolumeSnapshot) bool {
	_, _, ok := groupOf(vs)
	return ok
}

// groupPointsBack reports whether vgsc's reference names vgs, uid included.
func groupPointsBack(vgs *groupv1.VolumeGroupSnapshot, vgsc *groupv1.VolumeGroupSnapshotContent) bool {
	ref := vgsc.Spec.VolumeGroupSnapshotRef
	return ref.Name == vgs.Name && ref.Namespace == vgs.Namespace && ref.UID == vgs.UID
}

// checkDynamicGroupContent validates the content found under the dynamic
// name of vgs.
func checkDynamicGroupContent(vgs *groupv1.VolumeGroupSnapshot, vgsc *groupv1.VolumeGroupSnapshotContent) *problem {
	switch {
	case vgsc.Spec.Source.GroupSnapshotHandles != nil:
		return &problem{ReasonGroupSnapshotContentMismatch, fmt.Sprintf("VolumeGroupSnapshotContent %s is pre-provisioned while expecting a dynamically provisioned one", vgsc.Name)}
	case !groupPointsBack(vgs, vgsc):
		return &problem{ReasonGroupSnapshotContentMisbound, fmt.Sprintf("VolumeGroupSnapshotContent [%s] is bound to a different group snapshot", vgsc.Name)}
	}
	return nil
}

// checkStaticGroupContent validates a pre-provisioned content named by
// vgs; its reference's uid may still be empty: binding fills it.
func checkStaticGroupContent(vgs *groupv1.VolumeGroupSnapshot, vgsc *groupv1.VolumeGroupSnapshotContent) *problem {
	ref := vgsc.Spec.VolumeGroupSnapshotRef
	switch {
	case vgsc.Spec.Source.GroupSnapshotHandles == nil:
		return &problem{ReasonGroupSnapshotContentMismatch, "VolumeGroupSnapshotContent is dynamically provisioned while expecting a pre-provisioned one"}
	case ref.Name != vgs.Name || ref.Namespace != vgs.Namespace || (ref.UID != "" && ref.UID != vgs.UID):
		return &problem{ReasonGroupSnapshotContentMisbound, fmt.Sprintf("VolumeGroupSnapshotContent [%s] is bound to a different group snapshot", vgsc.Name)}
	}
	return nil
}

// groupBindPatch says what binding a pre-provisioned group content still
// needs: the group's uid, its class name, and the content finalizer.
func groupBindPatch(vgs *groupv1.VolumeGroupSnapshot, vgsc *groupv1.VolumeGroupSnapshotContent) (setUID bool, setClass *string, addFinalizer bool) {
	setUID = vgsc.Spec.VolumeGroupSnapshotRef.UID == ""
	if c := vgs.Spec.VolumeGroupSnapshotClassName; c != nil && *c != "" && vgsc.Spec.VolumeGroupSnapshotClassName == nil {
		setClass = c // the class of a content is immutable once set
	}
	addFinalizer = vgsc.DeletionTimestamp == nil && !slices.Contains(vgsc.Finalizers, FinalizerGroupContentBound)
	return setUID, setClass, addFinalizer
}

// isDefaultGroupClass reports whether class carries the default group
// class annotation with exactly the value "true".
func isDefaultGroupClass(class *groupv1.VolumeGroupSnapshotClass) bool {
	return class.Annotations[AnnDefaultGroupClass] == "true"
}

// chooseDefaultGroupClass picks the one default group class of driver.
func chooseDefaultGroupClass(classes []*groupv1.VolumeGroupSnapshotClass, driver string) (string, error) {
	var names []string
	for _, c := range classes {
		if isDefaultGroupClass(c) && c.Driver == driver {
			names = append(names, c.Name)
		}
	}
	return oneDefault(names, driver, "group snapshot class", AnnDefaultGroupClass)
}

// groupVolumes checks the claims selected by a dynamic group snapshot and
// their volumes (pvOf returns nil for a missing PV) and returns the volume
// handles. driver is the class's, or "" to take the first volume's. The
// problem's reason is CreateGroupSnapshotContentFailed for a non-CSI
// volume or another driver, else GroupSnapshotContentCreationFailed.
func groupVolumes(vgs *groupv1.VolumeGroupSnapshot, claims []*v1.PersistentVolumeClaim, pvOf func(name string) *v1.PersistentVolume, driver string) (handles []string, drv string, p *problem) {
	fail := func(format string, args ...any) ([]string, string, *problem) {
		return nil, "", &problem{ReasonGroupSnapshotContentCreationFailed, fmt.Sprintf(format, args...)}
	}
	if len(claims) == 0 {
		return fail("label selector %s for group snapshot not applied to any PVC", metav1.FormatLabelSelector(vgs.Spec.Source.Selector))
	}
	for _, pvc := range claims {
		if pvc.Status.Phase != v1.ClaimBound || pvc.Spec.VolumeName == "" {
			return fail("the PVC %s is not yet bound to a PV, will not attempt to take a group snapshot", pvc.Name)
		}
		pv := pvOf(pvc.Spec.VolumeName)
		if pv == nil {
			return fail("the PV %s bound to PVC %s/%s does not exist", pvc.Spec.VolumeName, pvc.Namespace, pvc.Name)
		}
		ref := pv.Spec.ClaimRef
		if ref == nil || ref.Name != pvc.Name || ref.Namespace != pvc.Namespace || (ref.UID != "" && ref.UID != pvc.UID) {
			return fail("the PV %s is not bound to PVC %s/%s", pv.Name, pvc.Namespace, pvc.Name)
		}
		if pv.Spec.CSI == nil {
			return nil, "", &problem{ReasonCreateGroupSnapshotContentFailed, fmt.Sprintf("Cannot snapshot a non-CSI volume: %s", pv.Name)}
		}
		if driver == "" {
			driver = pv.Spec.CSI.Driver
		}
		if pv.Spec.CSI.Driver != driver {
			return nil, "", &problem{ReasonCreateGroupSnapshotContentFailed, fmt.Sprintf("Volume CSI driver (%s) mismatch with VolumeGroupSnapshotClass (%s) %s: %s", pv.Spec.CSI.Driver, driver, groupKey(vgs), pv.Name)}
		}
		handles = append(handles, pv.Spec.CSI.VolumeHandle)
	}
	return handles, driver, nil
}

// groupStatusChange is a group status to write and the events it warrants.
type groupStatusChange struct {
	Status  *groupv1.VolumeGroupSnapshotStatus
	Created bool // creationTime appears
	Ready   bool // readyToUse turns true
}

// mirrorGroupStatus computes the group snapshot status that reflects its
// bound content; nil when the current status is already right.
func mirrorGroupStatus(vgs *groupv1.VolumeGroupSnapshot, vgsc *groupv1.VolumeGroupSnapshotContent) *groupStatusChange {
	old := vgs.Status
	st := &groupv1.VolumeGroupSnapshotStatus{}
	if old != nil {
		st = old.DeepCopy()
	}
	if st.BoundVolumeGroupSnapshotContentName == nil || *st.BoundVolumeGroupSnapshotContentName == "" {
		st.BoundVolumeGroupSnapshotContentName = ptr(vgsc.Name)
	}
	ready := false
	if cs := vgsc.Status; cs != nil {
		if st.CreationTime == nil && cs.CreationTime != nil {
			st.CreationTime = cs.CreationTime.DeepCopy()
		}
		ready = cs.ReadyToUse != nil && *cs.ReadyToUse
		st.Error = cs.Error.DeepCopy()
	} else {
		st.Error = nil
	}
	st.ReadyToUse = ptr(ready)
	if ready {
		st.Error = nil
	}
	if old != nil && equality.Semantic.DeepEqual(old, st) {
		return nil
	}
	wasReady := old != nil && old.ReadyToUse != nil && *old.ReadyToUse
	return &groupStatusChange{
		Status:  st,
		Created: (old == nil || old.CreationTime == nil) && st.CreationTime != nil,
		Ready:   !wasReady && ready,
	}
}

// groupErrorStatus returns vgs's status with the error message set (and
// readyToUse false when unready), or nil when that message is there.
func groupErrorStatus(vgs *groupv1.VolumeGroupSnapshot, msg string, unready bool, now time.Time) *groupv1.VolumeGroupSnapshotStatus {
	st := &groupv1.VolumeGroupSnapshotStatus{}
	if vgs.Status != nil {
		st = vgs.Status.DeepCopy()
	}
	if !setError(&st.Error, &st.ReadyToUse, msg, unready, now) {
		return nil
	}
	return st
}

// membersDue reports whether the sidecar has cut the group: the content
// has a group handle and lists the member snapshots.
func membersDue(vgsc *groupv1.VolumeGroupSnapshotContent) bool {
	st := vgsc.Status
	return st != nil && st.VolumeGroupSnapshotHandle != nil && *st.VolumeGroupSnapshotHandle != "" && len(st.VolumeSnapshotInfoList) > 0
}

// memberContent is the content of the member cut from the volume handle
// of info. pv (nil when not found) gives the source volume mode; secret
// (nil: none) the member's secret reference.
func memberContent(vgs *groupv1.VolumeGroupSnapshot, vgsc *groupv1.VolumeGroupSnapshotContent, info groupv1.VolumeSnapshotInfo, pv *v1.PersistentVolume, secret *v1.SecretReference) *crdv1.VolumeSnapshotContent {
	id := memberID(vgs.UID, info.VolumeHandle)
	vsc := &crdv1.VolumeSnapshotContent{
		ObjectMeta: metav1.ObjectMeta{
			Name:        ContentNamePrefix + id,
			Annotations: map[string]string{AnnGroupSnapshotHandle: *vgsc.Status.VolumeGroupSnapshotHandle},
		},
		Spec: crdv1.VolumeSnapshotContentSpec{
			VolumeSnapshotRef: v1.ObjectReference{
				Kind: "VolumeSnapshot", APIVersion: crdv1.SchemeGroupVersion.String(),
				Namespace: vgs.Namespace, Name: "snapshot-" + id,
			},
			DeletionPolicy: vgsc.Spec.DeletionPolicy,
			Driver:         vgsc.Spec.Driver,
			Source:         crdv1.VolumeSnapshotContentSource{VolumeHandle: ptr(info.VolumeHandle)},
		},
	}
	if pv != nil && pv.Spec.VolumeMode != nil {
		vsc.Spec.SourceVolumeMode = ptr(*pv.Spec.VolumeMode)
	}
	if secret != nil {
		vsc.Annotations[AnnDeletionSecretName] = secret.Name
		vsc.Annotations[AnnDeletionSecretNamespace] = secret.Namespace
	}
	return vsc
}

// memberSnapshot is the member snapshot of the volume handle of info, in
// the group's namespace, owned by the group. Its source claim is the PV's
// claim, or "" when the PV is gone.
func memberSnapshot(vgs *groupv1.VolumeGroupSnapshot, info groupv1.VolumeSnapshotInfo, pv *v1.PersistentVolume) *crdv1.VolumeSnapshot {
	claim := ""
	if pv != nil && pv.Spec.ClaimRef != nil {
		claim = pv.Spec.ClaimRef.Name
	}
	return &crdv1.VolumeSnapshot{
		ObjectMeta: metav1.ObjectMeta{
			Name: "snapshot-" + memberID(vgs.UID, info.VolumeHandle), Namespace: vgs.Namespace,
			OwnerReferences: []metav1.OwnerReference{{APIVersion: groupOwnerAPIVersion, Kind: groupOwnerKind, Name: vgs.Name, UID: vgs.UID}},
			Finalizers:      []string{FinalizerSnapshotInGroup},
		},
		Spec: crdv1.VolumeSnapshotSpec{Source: crdv1.VolumeSnapshotSource{PersistentVolumeClaimName: ptr(claim)}},
	}
}

// memberContentStatus is the status a member content takes from the
// group content's entry info; nil when vsc already has it.
func memberContentStatus(vsc *crdv1.VolumeSnapshotContent, vgsc *groupv1.VolumeGroupSnapshotContent, info groupv1.VolumeSnapshotInfo) *crdv1.VolumeSnapshotContentStatus {
	st := &crdv1.VolumeSnapshotContentStatus{}
	if vsc.Status != nil {
		st = vsc.Status.DeepCopy()
	}
	st.SnapshotHandle = ptr(info.SnapshotHandle)
	st.VolumeGroupSnapshotHandle = ptr(*vgsc.Status.VolumeGroupSnapshotHandle)
	if info.CreationTime != nil {
		st.CreationTime = ptr(*info.CreationTime)
	}
	if info.RestoreSize != nil {
		st.RestoreSize = ptr(*info.RestoreSize)
	}
	st.ReadyToUse = ptr(info.ReadyToUse != nil && *info.ReadyToUse)
	if vsc.Status != nil && equality.Semantic.DeepEqual(vsc.Status, st) {
		return nil
	}
	return st
}

// groupDeletionPlan is what the common controller does for a deleted
// group snapshot.
type groupDeletionPlan struct {
	Skip             bool   // not a deletion candidate: no finalizer of ours
	Blocked          string // why deletion waits; nothing else is done
	MarkBeingDeleted bool
	DeleteContent    bool
	DeleteMembers    bool
	RemoveFinalizer  bool
}

// decideGroupDeletion plans the deletion of vgs. vgsc is its content only
// when it points back to vgs; restoring names a member snapshot a Pending
// PVC is being restored from ("" for none).
func decideGroupDeletion(vgs *groupv1.VolumeGroupSnapshot, vgsc *groupv1.VolumeGroupSnapshotContent, restoring string) groupDeletionPlan {
	if !slices.Contains(vgs.Finalizers, FinalizerGroupSnapshotBound) {
		return groupDeletionPlan{Skip: true}
	}
	if restoring != "" {
		return groupDeletionPlan{Blocked: fmt.Sprintf("Snapshot %s/%s belonging to VolumeGroupSnapshot %s is being used to restore a PVC", vgs.Namespace, restoring, groupKey(vgs))}
	}
	p := groupDeletionPlan{DeleteMembers: true, RemoveFinalizer: true}
	if vgsc != nil {
		p.MarkBeingDeleted = vgsc.Annotations[AnnGroupBeingDeleted] != annYes
		del := vgsc.Spec.DeletionPolicy == crdv1.VolumeSnapshotContentDelete
		p.DeleteContent = del && vgsc.DeletionTimestamp == nil
		// Kept until the content object is gone: the sidecar deletes the
		// backend group snapshot first.
		p.RemoveFinalizer = !del
	}
	return p
}

// memberDeletion says whether a deleted member snapshot may go: group is
// its group snapshot (nil when gone or another object of that name).
// While the group object exists, being deleted or not, it may not; only
// once the group is gone is the in-group finalizer dropped. This is
// upstream's rule (pkg/common-controller/snapshot_controller.go,
// checkandRemoveSnapshotFinalizersAndCheckandDeleteContent: blocked unless
// the group lister answers NotFound). It cannot deadlock: the group's own
// deletion never waits for its members.
func memberDeletion(vs *crdv1.VolumeSnapshot, group *groupv1.VolumeGroupSnapshot) (blocked string, dropInGroup bool) {
	if group != nil {
		return fmt.Sprintf("deletion of the individual volume snapshot %s/%s is not allowed as it belongs to group snapshot %s. Deleting the group snapshot will trigger the deletion of all the individual volume snapshots that are part of the group.", vs.Namespace, vs.Name, groupKey(group)), false
	}
	return "", slices.Contains(vs.Finalizers, FinalizerSnapshotInGroup)
}

// memberGroupName is the group a member snapshot belongs to: its status
// name, else its owner reference's.
func memberGroupName(vs *crdv1.VolumeSnapshot) (string, types.UID) {
	name, uid, _ := groupOf(vs)
	if vs.Status != nil && vs.Status.VolumeGroupSnapshotName != nil && *vs.Status.VolumeGroupSnapshotName != "" && *vs.Status.VolumeGroupSnapshotName != name {
		return *vs.Status.VolumeGroupSnapshotName, ""
	}
	return name, uid
}

package snapshotter

import (
	"fmt"
	"slices"
	"time"

	crdv1 "github.com/kubernetes-csi/external-snapshotter/client/v8/apis/volumesnapshot/v1"
	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// problem is a reason to report on a snapshot: an event reason and the
// message that also goes into status.error.
type problem struct {
	Reason  string
	Message string
}

func (p *problem) Error() string { return p.Reason + ": " + p.Message }

// snapshotSource returns the source PVC or content name of vs; exactly one
// must be set.
func snapshotSource(vs *crdv1.VolumeSnapshot) (pvc, content string, p *problem) {
	src := vs.Spec.Source
	hasPVC := src.PersistentVolumeClaimName != nil && *src.PersistentVolumeClaimName != ""
	hasContent := src.VolumeSnapshotContentName != nil && *src.VolumeSnapshotContentName != ""
	if hasPVC == hasContent {
		return "", "", &problem{ReasonSnapshotValidationError, "Exactly one of PersistentVolumeClaimName and VolumeSnapshotContentName should be specified"}
	}
	if hasPVC {
		return *src.PersistentVolumeClaimName, "", nil
	}
	return "", *src.VolumeSnapshotContentName, nil
}

// isDynamic reports whether vs asks for a new snapshot of a PVC.
func isDynamic(vs *crdv1.VolumeSnapshot) bool {
	return vs.Spec.Source.PersistentVolumeClaimName != nil && *vs.Spec.Source.PersistentVolumeClaimName != ""
}

// dynamicContentName is the name of the content created for vs.
func dynamicContentName(vs *crdv1.VolumeSnapshot) string {
	return ContentNamePrefix + string(vs.UID)
}

// contentNameOf is the content vs is, or will be, bound to: the bound name
// in its status, else the dynamic name or the static source.
func contentNameOf(vs *crdv1.VolumeSnapshot) string {
	if vs.Status != nil && vs.Status.BoundVolumeSnapshotContentName != nil && *vs.Status.BoundVolumeSnapshotContentName != "" {
		return *vs.Status.BoundVolumeSnapshotContentName
	}
	if isDynamic(vs) {
		return dynamicContentName(vs)
	}
	if n := vs.Spec.Source.VolumeSnapshotContentName; n != nil {
		return *n
	}
	return ""
}

// pointsBack reports whether vsc's reference names vs, uid included. An
// empty uid does not count: the binding is not complete.
func pointsBack(vs *crdv1.VolumeSnapshot, vsc *crdv1.VolumeSnapshotContent) bool {
	ref := vsc.Spec.VolumeSnapshotRef
	return ref.Name == vs.Name && ref.Namespace == vs.Namespace && ref.UID == vs.UID
}

// checkDynamicContent validates the content found under the dynamic name.
func checkDynamicContent(vs *crdv1.VolumeSnapshot, vsc *crdv1.VolumeSnapshotContent) *problem {
	switch {
	case vsc.Spec.Source.VolumeHandle == nil || *vsc.Spec.Source.VolumeHandle == "":
		return &problem{ReasonSnapshotContentMismatch, fmt.Sprintf("VolumeSnapshotContent %s is pre-provisioned while expecting a dynamically provisioned one", vsc.Name)}
	case !pointsBack(vs, vsc):
		return &problem{ReasonSnapshotContentMisbound, fmt.Sprintf("VolumeSnapshotContent [%s] is bound to a different snapshot", vsc.Name)}
	case vsc.Spec.Source.SnapshotHandle != nil:
		return &problem{ReasonSnapshotHandleSet, fmt.Sprintf("Snapshot handle should not be set in content %s/%s for dynamic provisioning", vs.Namespace, vs.Name)}
	}
	return nil
}

// checkStaticContent validates a pre-provisioned content named by vs. The
// reference's uid may still be empty: binding fills it.
func checkStaticContent(vs *crdv1.VolumeSnapshot, vsc *crdv1.VolumeSnapshotContent) *problem {
	ref := vsc.Spec.VolumeSnapshotRef
	switch {
	case vsc.Spec.Source.SnapshotHandle == nil || *vsc.Spec.Source.SnapshotHandle == "":
		return &problem{ReasonSnapshotContentMismatch, "VolumeSnapshotContent is dynamically provisioned while expecting a pre-provisioned one"}
	case ref.Name != vs.Name || ref.Namespace != vs.Namespace || (ref.UID != "" && ref.UID != vs.UID):
		return &problem{ReasonSnapshotContentMisbound, fmt.Sprintf("VolumeSnapshotContent [%s] is bound to a different snapshot", vsc.Name)}
	}
	return nil
}

// staticBindPatch says what binding a pre-provisioned content still needs:
// the snapshot's uid, its class name, and the content finalizer.
func staticBindPatch(vs *crdv1.VolumeSnapshot, vsc *crdv1.VolumeSnapshotContent) (setUID bool, setClass *string, addFinalizer bool) {
	setUID = vsc.Spec.VolumeSnapshotRef.UID == ""
	if c := vs.Spec.VolumeSnapshotClassName; c != nil && *c != "" && (vsc.Spec.VolumeSnapshotClassName == nil || *vsc.Spec.VolumeSnapshotClassName != *c) {
		setClass = c
	}
	addFinalizer = !slices.Contains(vsc.Finalizers, FinalizerContentBound)
	return setUID, setClass, addFinalizer
}

// isDefaultClass reports whether class carries the default annotation with
// exactly the value "true".
func isDefaultClass(class *crdv1.VolumeSnapshotClass) bool {
	return class.Annotations[AnnDefaultClass] == "true"
}

// chooseDefaultClass picks the one default class of driver.
func chooseDefaultClass(classes []*crdv1.VolumeSnapshotClass, driver string) (string, error) {
	var names []string
	for _, c := range classes {
		if isDefaultClass(c) && c.Driver == driver {
			names = append(names, c.Name)
		}
	}
	return oneDefault(names, driver, "snapshot class", AnnDefaultClass)
}

// oneDefault returns the one name in names, the default classes of driver
// found; none or several is an error, which names the kind of class and
// the annotation ann that marks a default.
func oneDefault(names []string, driver, kind, ann string) (string, error) {
	switch len(names) {
	case 0:
		return "", fmt.Errorf("cannot find default %s for driver %q", kind, driver)
	case 1:
		return names[0], nil
	}
	slices.Sort(names)
	return "", fmt.Errorf("%d default snapshot classes were found for driver %q (%v): keep the annotation %s=true on one of them", len(names), driver, names, ann)
}

// checkSourceVolume validates the PVC and PV a dynamic snapshot is cut
// from, returning the CSI source of the PV.
func checkSourceVolume(pvc *v1.PersistentVolumeClaim, pv *v1.PersistentVolume) (*v1.CSIPersistentVolumeSource, error) {
	switch {
	case pvc.DeletionTimestamp != nil:
		return nil, fmt.Errorf("PVC %s/%s is being deleted and cannot be snapshotted", pvc.Namespace, pvc.Name)
	case pvc.Status.Phase != v1.ClaimBound || pvc.Spec.VolumeName == "":
		return nil, fmt.Errorf("the PVC %s/%s is not yet bound to a PV, will not attempt to take a snapshot", pvc.Namespace, pvc.Name)
	case pv == nil:
		return nil, fmt.Errorf("the PV %s bound to PVC %s/%s does not exist", pvc.Spec.VolumeName, pvc.Namespace, pvc.Name)
	}
	ref := pv.Spec.ClaimRef
	if ref == nil || ref.Name != pvc.Name || ref.Namespace != pvc.Namespace || (ref.UID != "" && ref.UID != pvc.UID) {
		return nil, fmt.Errorf("the PV %s is not bound to PVC %s/%s", pv.Name, pvc.Namespace, pvc.Name)
	}
	if pv.Spec.CSI == nil {
		return nil, fmt.Errorf("cannot snapshot a non-CSI volume: PV %s", pv.Name)
	}
	return pv.Spec.CSI, nil
}

// wantSnapshotFinalizers lists the finalizers a live snapshot should carry:
// as-source always; bound when bound (or about to be bound) to a content
// with deletionPolicy Delete. Adding bound together with as-source, before
// the content exists, saves a write; deletion removes it when no content
// came to be.
func wantSnapshotFinalizers(vs *crdv1.VolumeSnapshot, vsc *crdv1.VolumeSnapshotContent, class *crdv1.VolumeSnapshotClass) []string {
	want := []string{FinalizerSnapshotAsSource}
	switch {
	case vsc != nil && pointsBack(vs, vsc):
		if vsc.Spec.DeletionPolicy == crdv1.VolumeSnapshotContentDelete {
			want = append(want, FinalizerSnapshotBound)
		}
	case vsc == nil && isDynamic(vs) && class != nil && class.DeletionPolicy == crdv1.VolumeSnapshotContentDelete:
		want = append(want, FinalizerSnapshotBound)
	}
	var missing []string
	for _, f := range want {
		if !slices.Contains(vs.Finalizers, f) {
			missing = append(missing, f)
		}
	}
	return missing
}

// statusChange is a status to write and the events it warrants.
type statusChange struct {
	Status  *crdv1.VolumeSnapshotStatus
	Created bool // creationTime appears
	Ready   bool // readyToUse turns true
}

// mirrorStatus computes the snapshot status that reflects its bound
// content. It returns nil when the current status is already right.
func mirrorStatus(vs *crdv1.VolumeSnapshot, vsc *crdv1.VolumeSnapshotContent) *statusChange {
	old := vs.Status
	st := &crdv1.VolumeSnapshotStatus{}
	if old != nil {
		st = old.DeepCopy()
	}
	if st.BoundVolumeSnapshotContentName == nil || *st.BoundVolumeSnapshotContentName == "" {
		st.BoundVolumeSnapshotContentName = &vsc.Name
	}
	if cs := vsc.Status; cs != nil {
		if st.CreationTime == nil && cs.CreationTime != nil {
			t := metav1.NewTime(time.Unix(0, *cs.CreationTime))
			st.CreationTime = &t
		}
		if cs.RestoreSize != nil && *cs.RestoreSize > 0 && (st.RestoreSize == nil || st.RestoreSize.IsZero()) {
			st.RestoreSize = resource.NewQuantity(*cs.RestoreSize, resource.BinarySI)
		}
		if cs.ReadyToUse != nil {
			st.ReadyToUse = ptr(*cs.ReadyToUse)
		}
		st.Error = cs.Error.DeepCopy()
	} else {
		st.Error = nil
	}
	if st.ReadyToUse == nil {
		st.ReadyToUse = ptr(false)
	}
	if *st.ReadyToUse {
		st.Error = nil
	}
	if old != nil && equality.Semantic.DeepEqual(old, st) {
		return nil
	}
	wasReady := old != nil && old.ReadyToUse != nil && *old.ReadyToUse
	return &statusChange{
		Status:  st,
		Created: (old == nil || old.CreationTime == nil) && st.CreationTime != nil,
		Ready:   !wasReady && *st.ReadyToUse,
	}
}

// errorStatus returns vs's status with the error message set (and
// readyToUse false when unready), or nil when that message is already there.
func errorStatus(vs *crdv1.VolumeSnapshot, msg string, unready bool, now time.Time) *crdv1.VolumeSnapshotStatus {
	st := &crdv1.VolumeSnapshotStatus{}
	if vs.Status != nil {
		st = vs.Status.DeepCopy()
	}
	if !setError(&st.Error, &st.ReadyToUse, msg, unready, now) {
		return nil
	}
	return st
}

// setError sets the error of a status (*errp) to msg at now, and its
// readyToUse (*ready) to false when unready or unset. It changes nothing
// and returns false when msg is there already (and, when unready, so is
// readyToUse false).
func setError(errp **crdv1.VolumeSnapshotError, ready **bool, msg string, unready bool, now time.Time) bool {
	if e := *errp; e != nil && e.Message != nil && *e.Message == msg && (!unready || (*ready != nil && !**ready)) {
		return false
	}
	t := metav1.NewTime(now)
	*errp = &crdv1.VolumeSnapshotError{Time: &t, Message: ptr(msg)}
	if unready || *ready == nil {
		*ready = ptr(false)
	}
	return true
}

// holdsPVC reports whether a snapshot still needs its source PVC: it is a
// dynamic snapshot of that PVC, not deleted, not ready, and can still
// progress (it has a content, or no error that stops it from getting one).
func holdsPVC(vs *crdv1.VolumeSnapshot, pvcName string, contentExists bool) bool {
	if !isDynamic(vs) || *vs.Spec.Source.PersistentVolumeClaimName != pvcName || vs.DeletionTimestamp != nil {
		return false
	}
	if vs.Status != nil && vs.Status.ReadyToUse != nil && *vs.Status.ReadyToUse {
		return false
	}
	return contentExists || vs.Status == nil || vs.Status.Error == nil
}

// deletionPlan is what the common controller does for a deleted snapshot.
type deletionPlan struct {
	Skip             bool   // not a deletion candidate: no finalizer of ours
	Blocked          string // message of why deletion waits; the rest is not done
	MarkBeingDeleted bool
	DeleteContent    bool
	RemoveFinalizers []string
}

// decideDeletion plans the deletion of vs. vsc is its content, only when
// it points back to vs; restoring tells whether a Pending PVC is being
// restored from vs.
func decideDeletion(vs *crdv1.VolumeSnapshot, vsc *crdv1.VolumeSnapshotContent, restoring bool) deletionPlan {
	var p deletionPlan
	hasSource := slices.Contains(vs.Finalizers, FinalizerSnapshotAsSource)
	hasBound := slices.Contains(vs.Finalizers, FinalizerSnapshotBound)
	if !hasSource && !hasBound {
		return deletionPlan{Skip: true}
	}
	if vsc != nil && restoring {
		return deletionPlan{Blocked: "Snapshot is being used to restore a PVC"}
	}
	if vsc != nil {
		p.MarkBeingDeleted = vsc.Annotations[AnnBeingDeleted] != annYes
		p.DeleteContent = vsc.Spec.DeletionPolicy == crdv1.VolumeSnapshotContentDelete && vsc.DeletionTimestamp == nil
	}
	if hasSource {
		p.RemoveFinalizers = append(p.RemoveFinalizers, FinalizerSnapshotAsSource)
	}
	keepBound := vsc != nil && vsc.Spec.DeletionPolicy == crdv1.VolumeSnapshotContentDelete
	if hasBound && !keepBound {
		p.RemoveFinalizers = append(p.RemoveFinalizers, FinalizerSnapshotBound)
	}
	return p
}

// restoresFrom reports whether pvc is Pending and restores from the
// snapshot named name.
func restoresFrom(pvc *v1.PersistentVolumeClaim, name string) bool {
	if pvc.Status.Phase != v1.ClaimPending {
		return false
	}
	for _, ds := range []*v1.TypedLocalObjectReference{pvc.Spec.DataSource, typedRef(pvc.Spec.DataSourceRef)} {
		if ds != nil && ds.Kind == "VolumeSnapshot" && ds.Name == name && ds.APIGroup != nil && *ds.APIGroup == crdv1.GroupName {
			return true
		}
	}
	return false
}

func typedRef(r *v1.TypedObjectReference) *v1.TypedLocalObjectReference {
	if r == nil || (r.Namespace != nil && *r.Namespace != "") {
		return nil
	}
	return &v1.TypedLocalObjectReference{APIGroup: r.APIGroup, Kind: r.Kind, Name: r.Name}
}

func ptr[T any](v T) *T { return &v }

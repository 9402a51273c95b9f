package explain

import (
	"fmt"

	"github.com/csi-kit/sidecars/internal/names"
	snapv1 "github.com/kubernetes-csi/external-snapshotter/client/v8/apis/volumesnapshot/v1"
	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
)

func diagnoseSnapshot(in *Input) []Finding {
	vs := in.Snapshot
	if vs == nil {
		return notFound(in)
	}
	var fs []Finding
	if vs.DeletionTimestamp != nil {
		fs = append(fs, snapshotDeletion(in)...)
	}
	if vs.Status != nil && vs.Status.ReadyToUse != nil && *vs.Status.ReadyToUse {
		if !problems(fs) {
			fs = append(fs, Finding{Severity: Info, Reason: ReasonSnapshotReady, Message: readyText(vs.Status.RestoreSize, boundContent(vs))})
		}
		return fs
	}
	if vs.Status != nil && vs.Status.Error != nil && vs.Status.Error.Message != nil {
		fs = append(fs, Finding{Severity: Error, Reason: ReasonSnapshotFailed,
			Message: "taking the snapshot failed: " + *vs.Status.Error.Message,
			Action:  "fix the cause; the controllers retry. Delete and recreate the snapshot if the error is permanent"})
	}
	static := vs.Spec.Source.VolumeSnapshotContentName != nil
	if !static {
		fs = append(fs, snapshotSource(in)...)
		fs = append(fs, snapshotClass(in)...)
	}
	content := boundContent(vs)
	if content == "" && static {
		content = *vs.Spec.Source.VolumeSnapshotContentName
	}
	switch {
	case in.Content == nil && (content != "" && (static || vs.Status != nil)):
		fs = append(fs, Finding{Severity: Error, Reason: ReasonContentMissing,
			Message: fmt.Sprintf("the snapshot names VolumeSnapshotContent %s, which does not exist", content),
			Action:  "for a pre-provisioned snapshot create the content; otherwise delete and recreate the snapshot"})
	case in.Content == nil:
		if f := leaderFinding(in, ReasonNoSnapshotControllerLeader, snapshotControllerLease(),
			"snapshot-controller", "creates contents for snapshots"); f != nil {
			fs = append(fs, *f)
		}
	default:
		fs = append(fs, contentProgress(in)...)
	}
	if !problems(fs) {
		fs = append(fs, Finding{Severity: Info, Reason: ReasonSnapshotNotReady,
			Message: "the snapshot is not ready to use yet; the driver is still cutting or uploading it",
			Action:  "wait; if this lasts long, explain its VolumeSnapshotContent and read the csi-snapshotter logs"})
	}
	return fs
}

func diagnoseContent(in *Input) []Finding {
	vsc := in.Content
	if vsc == nil {
		return notFound(in)
	}
	var fs []Finding
	if vsc.DeletionTimestamp != nil {
		fs = append(fs, contentDeletion(in)...)
	}
	if vsc.Status != nil && vsc.Status.ReadyToUse != nil && *vsc.Status.ReadyToUse {
		if !problems(fs) {
			fs = append(fs, Finding{Severity: Info, Reason: ReasonSnapshotReady,
				Message: fmt.Sprintf("ready to use, bound to VolumeSnapshot %s/%s", vsc.Spec.VolumeSnapshotRef.Namespace, vsc.Spec.VolumeSnapshotRef.Name)})
		}
		return fs
	}
	if vsc.DeletionTimestamp == nil {
		fs = append(fs, contentProgress(in)...)
	}
	if !problems(fs) && vsc.DeletionTimestamp == nil {
		fs = append(fs, Finding{Severity: Info, Reason: ReasonSnapshotNotReady,
			Message: "the snapshot is not ready to use yet; the driver is still cutting or uploading it",
			Action:  "wait; if this lasts long, read the csi-snapshotter and driver logs"})
	}
	return fs
}

// contentProgress explains a content that is not ready.
func contentProgress(in *Input) []Finding {
	vsc := in.Content
	var fs []Finding
	if vsc.Status != nil && vsc.Status.Error != nil && vsc.Status.Error.Message != nil {
		fs = append(fs, Finding{Severity: Error, Reason: ReasonSnapshotFailed,
			Message: fmt.Sprintf("the driver failed to cut snapshot %s: %s", vsc.Name, *vsc.Status.Error.Message),
			Action:  "fix the cause named by the driver; the csi-snapshotter retries"})
	} else if e := latestEvent(in.Events, string(KindSnapshotContent), vsc.Name, names.ReasonSnapshotCreationFailed, names.ReasonSnapshotContentCheckandUpdateFailed); e != nil {
		fs = append(fs, Finding{Severity: Error, Reason: ReasonSnapshotCreationFailed,
			Message: "the last attempt to cut the snapshot failed" + countNote(e) + ": " + e.Message,
			Action:  "fix the cause named in the message; the csi-snapshotter retries with backoff"})
	}
	if f := leaderFinding(in, ReasonNoSnapshotterLeader, snapshotterLease(vsc.Spec.Driver),
		fmt.Sprintf("csi-snapshotter of %s", vsc.Spec.Driver), "cuts this snapshot"); f != nil {
		fs = append(fs, *f)
	}
	if len(fs) > 0 {
		return fs
	}
	return []Finding{{Severity: Warning, Reason: ReasonSnapshotNotReady,
		Message: fmt.Sprintf("VolumeSnapshotContent %s is not ready to use yet and reports no error", vsc.Name),
		Action:  "wait; slow backends take minutes. If it never gets ready, read the csi-snapshotter logs of " + vsc.Spec.Driver}}
}

// snapshotSource explains the source claim of a dynamic snapshot.
func snapshotSource(in *Input) []Finding {
	vs := in.Snapshot
	src := ""
	if vs.Spec.Source.PersistentVolumeClaimName != nil {
		src = *vs.Spec.Source.PersistentVolumeClaimName
	}
	if boundContent(vs) != "" {
		return nil // the content exists; the source no longer matters
	}
	if in.PVC == nil {
		return []Finding{{Severity: Error, Reason: ReasonSourcePVCMissing,
			Message: fmt.Sprintf("the source claim %s/%s does not exist", vs.Namespace, src),
			Action:  "create the claim, or delete the snapshot and snapshot an existing claim"}}
	}
	if in.PVC.Status.Phase != v1.ClaimBound {
		return []Finding{{Severity: Warning, Reason: ReasonSourcePVCNotBound,
			Message: fmt.Sprintf("the source claim %s is %s, not bound: there is no volume to snapshot yet", src, in.PVC.Status.Phase),
			Action:  fmt.Sprintf("explain pvc %s/%s", vs.Namespace, src)}}
	}
	return nil
}

// snapshotClass explains a missing class of a dynamic snapshot.
func snapshotClass(in *Input) []Finding {
	vs := in.Snapshot
	if boundContent(vs) != "" || in.SnapshotClass != nil {
		return nil
	}
	if vs.Spec.VolumeSnapshotClassName != nil {
		return []Finding{{Severity: Error, Reason: ReasonSnapshotClassMissing,
			Message: fmt.Sprintf("VolumeSnapshotClass %s does not exist", *vs.Spec.VolumeSnapshotClassName),
			Action:  "create the class (its driver must be the source volume's driver), or recreate the snapshot with an existing class"}}
	}
	driver := ""
	if in.PV != nil && in.PV.Spec.CSI != nil {
		driver = in.PV.Spec.CSI.Driver
	}
	var defaults []string
	for _, c := range in.SnapshotClasses {
		if c.Annotations[names.AnnDefaultSnapshotClass] == "true" && (driver == "" || c.Driver == driver) {
			defaults = append(defaults, c.Name)
		}
	}
	switch len(defaults) {
	case 0:
		return []Finding{{Severity: Error, Reason: ReasonSnapshotClassMissing,
			Message: fmt.Sprintf("the snapshot names no class and no default VolumeSnapshotClass exists for driver %s", driver),
			Action:  fmt.Sprintf("set spec.volumeSnapshotClassName (recreate the snapshot), or annotate a class of driver %s with %s: \"true\"", driver, names.AnnDefaultSnapshotClass)}}
	case 1:
		return nil
	}
	return []Finding{{Severity: Error, Reason: ReasonSnapshotClassMissing,
		Message: fmt.Sprintf("the snapshot names no class and driver %s has %d default classes (%s)", driver, len(defaults), list(defaults)),
		Action:  "leave exactly one class marked default, or recreate the snapshot naming its class"}}
}

func snapshotDeletion(in *Input) []Finding {
	vs := in.Snapshot
	var fs []Finding
	if e := latestEvent(in.Events, string(KindSnapshot), vs.Name, names.ReasonSnapshotDeletePending); e != nil && hasFinalizer(vs.Finalizers, names.FinalizerSnapshotAsSource) {
		fs = append(fs, Finding{Severity: Warning, Reason: ReasonSnapshotDeletionBlocked,
			Message: "the snapshot is being deleted but is in use: " + e.Message,
			Action:  "wait until the claims restoring from it are bound, or delete those claims"})
	}
	if hasFinalizer(vs.Finalizers, names.FinalizerRestoreSource) {
		fs = append(fs, Finding{Severity: Warning, Reason: ReasonSnapshotDeletionBlocked,
			Message: "the snapshot is being deleted but a claim is still being restored from it, so " + names.FinalizerRestoreSource + " keeps it",
			Action:  "wait until the claims restoring from it are bound, or delete those claims"})
	}
	if hasFinalizer(vs.Finalizers, names.FinalizerSnapshotBound) && in.Content != nil {
		fs = append(fs, contentDeletion(in)...)
	}
	if len(fs) == 0 && len(vs.Finalizers) > 0 {
		fs = append(fs, Finding{Severity: Warning, Reason: ReasonSnapshotDeletionBlocked,
			Message: "the snapshot is being deleted and waits for finalizers: " + list(vs.Finalizers),
			Action:  "check that the snapshot-controller runs (it removes these finalizers); remove one by hand only when the controller is gone for good"})
		if f := leaderFinding(in, ReasonNoSnapshotControllerLeader, snapshotControllerLease(),
			"snapshot-controller", "removes its finalizers"); f != nil {
			fs = append(fs, *f)
		}
	}
	return fs
}

func contentDeletion(in *Input) []Finding {
	vsc := in.Content
	var fs []Finding
	if e := latestEvent(in.Events, string(KindSnapshotContent), vsc.Name, names.ReasonSnapshotDeleteError); e != nil {
		fs = append(fs, Finding{Severity: Error, Reason: ReasonSnapshotContentDeleteFailed,
			Message: fmt.Sprintf("deleting snapshot %s on the backend failed%s: %s", vsc.Name, countNote(e), e.Message),
			Action:  "fix the cause (deletion secret missing, snapshot in use by a volume on the backend); the csi-snapshotter retries"})
	}
	if vsc.Spec.DeletionPolicy == snapv1.VolumeSnapshotContentDelete && hasFinalizer(vsc.Finalizers, names.FinalizerContentBound) {
		if f := leaderFinding(in, ReasonNoSnapshotterLeader, snapshotterLease(vsc.Spec.Driver),
			fmt.Sprintf("csi-snapshotter of %s", vsc.Spec.Driver), "deletes this snapshot"); f != nil {
			fs = append(fs, *f)
		}
	}
	if !problems(fs) && vsc.DeletionTimestamp != nil {
		fs = append(fs, Finding{Severity: Info, Reason: ReasonDeletionPending,
			Message: fmt.Sprintf("VolumeSnapshotContent %s is being deleted (policy %s); waiting for finalizers %s", vsc.Name, vsc.Spec.DeletionPolicy, list(vsc.Finalizers)),
			Action:  "wait; the snapshot-controller and csi-snapshotter remove them"})
	}
	return fs
}

func boundContent(vs *snapv1.VolumeSnapshot) string {
	if vs.Status != nil && vs.Status.BoundVolumeSnapshotContentName != nil {
		return *vs.Status.BoundVolumeSnapshotContentName
	}
	return ""
}

func readyText(size *resource.Quantity, content string) string {
	s := "ready to use"
	if size != nil {
		s += ", restore size " + fmtQ(*size)
	}
	if content != "" {
		s += ", content " + content
	}
	return s
}

package snapshotter

import (
	"strings"
	"testing"
	"time"

	crdv1 "github.com/kubernetes-csi/external-snapshotter/client/v8/apis/volumesnapshot/v1"
	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
)

// Fixtures. A snapshot "snap" with uid "uid1" in namespace "ns".

type vsOpt func(*crdv1.VolumeSnapshot)

func mkVS(opts ...vsOpt) *crdv1.VolumeSnapshot {
	vs := &crdv1.VolumeSnapshot{ObjectMeta: metav1.ObjectMeta{Name: "snap", Namespace: "ns", UID: "uid1", ResourceVersion: "1"}}
	for _, o := range opts {
		o(vs)
	}
	return vs
}

func fromPVC(name string) vsOpt {
	return func(vs *crdv1.VolumeSnapshot) { vs.Spec.Source.PersistentVolumeClaimName = &name }
}
func fromContent(name string) vsOpt {
	return func(vs *crdv1.VolumeSnapshot) { vs.Spec.Source.VolumeSnapshotContentName = &name }
}
func withClass(name string) vsOpt {
	return func(vs *crdv1.VolumeSnapshot) { vs.Spec.VolumeSnapshotClassName = &name }
}
func vsFinalizers(f ...string) vsOpt {
	return func(vs *crdv1.VolumeSnapshot) { vs.Finalizers = f }
}
func vsStatus(st *crdv1.VolumeSnapshotStatus) vsOpt {
	return func(vs *crdv1.VolumeSnapshot) { vs.Status = st }
}
func vsDeleting() vsOpt {
	return func(vs *crdv1.VolumeSnapshot) { now := metav1.Now(); vs.DeletionTimestamp = &now }
}

type vscOpt func(*crdv1.VolumeSnapshotContent)

func mkVSC(opts ...vscOpt) *crdv1.VolumeSnapshotContent {
	vsc := &crdv1.VolumeSnapshotContent{
		ObjectMeta: metav1.ObjectMeta{Name: "content", ResourceVersion: "1"},
		Spec: crdv1.VolumeSnapshotContentSpec{
			VolumeSnapshotRef: v1.ObjectReference{Name: "snap", Namespace: "ns", UID: "uid1"},
			DeletionPolicy:    crdv1.VolumeSnapshotContentDelete,
			Driver:            "drv",
		},
	}
	for _, o := range opts {
		o(vsc)
	}
	return vsc
}

func volumeHandle(h string) vscOpt {
	return func(c *crdv1.VolumeSnapshotContent) { c.Spec.Source.VolumeHandle = &h }
}
func snapHandle(h string) vscOpt {
	return func(c *crdv1.VolumeSnapshotContent) { c.Spec.Source.SnapshotHandle = &h }
}
func refUID(uid types.UID) vscOpt {
	return func(c *crdv1.VolumeSnapshotContent) { c.Spec.VolumeSnapshotRef.UID = uid }
}
func refName(name string) vscOpt {
	return func(c *crdv1.VolumeSnapshotContent) { c.Spec.VolumeSnapshotRef.Name = name }
}
func retain() vscOpt {
	return func(c *crdv1.VolumeSnapshotContent) { c.Spec.DeletionPolicy = crdv1.VolumeSnapshotContentRetain }
}
func vscAnn(k, v string) vscOpt {
	return func(c *crdv1.VolumeSnapshotContent) {
		if c.Annotations == nil {
			c.Annotations = map[string]string{}
		}
		c.Annotations[k] = v
	}
}
func vscFinalizers(f ...string) vscOpt {
	return func(c *crdv1.VolumeSnapshotContent) { c.Finalizers = f }
}
func vscDeleting() vscOpt {
	return func(c *crdv1.VolumeSnapshotContent) { now := metav1.Now(); c.DeletionTimestamp = &now }
}
func vscStatus(st *crdv1.VolumeSnapshotContentStatus) vscOpt {
	return func(c *crdv1.VolumeSnapshotContent) { c.Status = st }
}

func TestSnapshotSource(t *testing.T) {
	for _, tc := range []struct {
		name    string
		vs      *crdv1.VolumeSnapshot
		pvc     string
		content string
		bad     bool
	}{
		{"dynamic", mkVS(fromPVC("claim")), "claim", "", false},
		{"static", mkVS(fromContent("c")), "", "c", false},
		{"neither (SnapshotValidationError)", mkVS(), "", "", true},
		{"both (SnapshotValidationError)", mkVS(fromPVC("claim"), fromContent("c")), "", "", true},
		{"empty name counts as unset", mkVS(fromPVC("")), "", "", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			pvc, content, p := snapshotSource(tc.vs)
			if (p != nil) != tc.bad || pvc != tc.pvc || content != tc.content {
				t.Fatalf("snapshotSource = %q, %q, %v", pvc, content, p)
			}
			if p != nil && p.Reason != ReasonSnapshotValidationError {
				t.Errorf("reason %s", p.Reason)
			}
		})
	}
}

func TestCheckDynamicContent(t *testing.T) {
	for _, tc := range []struct {
		name   string
		vsc    *crdv1.VolumeSnapshotContent
		reason string
	}{
		{"2-14 (dynamic) noop: bound both ways", mkVSC(volumeHandle("vol")), ""},
		{"2-13 found one which is pre-provisioned", mkVSC(snapHandle("h")), ReasonSnapshotContentMismatch},
		{"content bound to another uid", mkVSC(volumeHandle("vol"), refUID("other")), ReasonSnapshotContentMisbound},
		{"content bound to no uid yet", mkVSC(volumeHandle("vol"), refUID("")), ReasonSnapshotContentMisbound},
		{"content bound to another name", mkVSC(volumeHandle("vol"), refName("x")), ReasonSnapshotContentMisbound},
		{"snapshot handle set in a dynamic content", mkVSC(volumeHandle("vol"), snapHandle("h")), ReasonSnapshotHandleSet},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := checkDynamicContent(mkVS(fromPVC("claim")), tc.vsc)
			if got := reasonOf(p); got != tc.reason {
				t.Fatalf("checkDynamicContent = %v, want reason %q", p, tc.reason)
			}
		})
	}
}

func reasonOf(p *problem) string {
	if p == nil {
		return ""
	}
	return p.Reason
}

func TestCheckStaticContent(t *testing.T) {
	for _, tc := range []struct {
		name   string
		vsc    *crdv1.VolumeSnapshotContent
		reason string
	}{
		{"2-4 (static) noop", mkVSC(snapHandle("h")), ""},
		{"2-6 uid still empty: bindable", mkVSC(snapHandle("h"), refUID("")), ""},
		{"2-2 content does not point to snapshot", mkVSC(snapHandle("h"), refName("other")), ReasonSnapshotContentMisbound},
		{"2-10 bound to another uid", mkVSC(snapHandle("h"), refUID("other")), ReasonSnapshotContentMisbound},
		{"dynamic content where a static one is expected", mkVSC(volumeHandle("vol")), ReasonSnapshotContentMismatch},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := reasonOf(checkStaticContent(mkVS(fromContent("content")), tc.vsc)); got != tc.reason {
				t.Fatalf("reason %q, want %q", got, tc.reason)
			}
		})
	}
}

func TestStaticBindPatch(t *testing.T) {
	for _, tc := range []struct {
		name              string
		vs                *crdv1.VolumeSnapshot
		vsc               *crdv1.VolumeSnapshotContent
		uid, class, final bool
	}{
		{"2-6 ref.UID '' -> uid", mkVS(fromContent("content")), mkVSC(snapHandle("h"), refUID(""), vscFinalizers(FinalizerContentBound)), true, false, false},
		{"2-11 content classname updated", mkVS(fromContent("content"), withClass("gold")), mkVSC(snapHandle("h"), vscFinalizers(FinalizerContentBound)), false, true, false},
		{"5-1 content missing finalizer", mkVS(fromContent("content")), mkVSC(snapHandle("h")), false, false, true},
		{"nothing to do", mkVS(fromContent("content")), mkVSC(snapHandle("h"), vscFinalizers(FinalizerContentBound)), false, false, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			uid, class, fin := staticBindPatch(tc.vs, tc.vsc)
			if uid != tc.uid || (class != nil) != tc.class || fin != tc.final {
				t.Fatalf("staticBindPatch = %v, %v, %v", uid, class, fin)
			}
		})
	}
}

func mkClass(name, driver, def string) *crdv1.VolumeSnapshotClass {
	c := &crdv1.VolumeSnapshotClass{ObjectMeta: metav1.ObjectMeta{Name: name}, Driver: driver, DeletionPolicy: crdv1.VolumeSnapshotContentDelete}
	if def != "" {
		c.Annotations = map[string]string{AnnDefaultClass: def}
	}
	return c
}

func TestChooseDefaultClass(t *testing.T) {
	for _, tc := range []struct {
		name    string
		classes []*crdv1.VolumeSnapshotClass
		want    string
		wantErr string
	}{
		{"1-1 default snapshot class name should be set", []*crdv1.VolumeSnapshotClass{mkClass("a", "drv", "true"), mkClass("b", "drv", "")}, "a", ""},
		{"default of another driver ignored", []*crdv1.VolumeSnapshotClass{mkClass("a", "other", "true"), mkClass("b", "drv", "true")}, "b", ""},
		{"no default", []*crdv1.VolumeSnapshotClass{mkClass("a", "drv", "")}, "", "cannot find default snapshot class"},
		{"annotation must be exactly true", []*crdv1.VolumeSnapshotClass{mkClass("a", "drv", "True"), mkClass("b", "drv", "false")}, "", "cannot find default"},
		{"5-3 two defaults is an error", []*crdv1.VolumeSnapshotClass{mkClass("b", "drv", "true"), mkClass("a", "drv", "true")}, "", "2 default snapshot classes were found"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := chooseDefaultClass(tc.classes, "drv")
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Fatalf("chooseDefaultClass = %q, %v, want %q", got, err, tc.want)
			}
		})
	}
}

func TestIsDefaultClass(t *testing.T) {
	for _, tc := range []struct {
		name string
		ann  string
		want bool
	}{
		{"no default annotation", "", false},
		{"with default annotation", "true", true},
		{"with default=false annotation", "false", false},
	} {
		if got := isDefaultClass(mkClass("c", "d", tc.ann)); got != tc.want {
			t.Errorf("%s: isDefaultClass = %v", tc.name, got)
		}
	}
}

func boundPVC(phase v1.PersistentVolumeClaimPhase, volume string) *v1.PersistentVolumeClaim {
	return &v1.PersistentVolumeClaim{
		ObjectMeta: metav1.ObjectMeta{Name: "claim", Namespace: "ns", UID: "pvcuid"},
		Spec:       v1.PersistentVolumeClaimSpec{VolumeName: volume},
		Status:     v1.PersistentVolumeClaimStatus{Phase: phase},
	}
}

func csiPV(claim string, uid types.UID) *v1.PersistentVolume {
	return &v1.PersistentVolume{
		ObjectMeta: metav1.ObjectMeta{Name: "pv"},
		Spec: v1.PersistentVolumeSpec{
			ClaimRef:               &v1.ObjectReference{Name: claim, Namespace: "ns", UID: uid},
			PersistentVolumeSource: v1.PersistentVolumeSource{CSI: &v1.CSIPersistentVolumeSource{Driver: "drv", VolumeHandle: "vol"}},
		},
	}
}

func TestCheckSourceVolume(t *testing.T) {
	deleting := boundPVC(v1.ClaimBound, "pv")
	now := metav1.Now()
	deleting.DeletionTimestamp = &now
	nonCSI := csiPV("claim", "")
	nonCSI.Spec.CSI = nil
	for _, tc := range []struct {
		name    string
		pvc     *v1.PersistentVolumeClaim
		pv      *v1.PersistentVolume
		wantErr string
	}{
		{"bound CSI volume", boundPVC(v1.ClaimBound, "pv"), csiPV("claim", "pvcuid"), ""},
		{"claimRef without uid", boundPVC(v1.ClaimBound, "pv"), csiPV("claim", ""), ""},
		{"7-6 claim that is not yet bound", boundPVC(v1.ClaimPending, ""), nil, "not yet bound"},
		{"7-5 no-existing volume", boundPVC(v1.ClaimBound, "pv"), nil, "does not exist"},
		{"PV bound elsewhere", boundPVC(v1.ClaimBound, "pv"), csiPV("other", ""), "is not bound to PVC"},
		{"PV bound to an older claim", boundPVC(v1.ClaimBound, "pv"), csiPV("claim", "old"), "is not bound to PVC"},
		{"not CSI", boundPVC(v1.ClaimBound, "pv"), nonCSI, "non-CSI"},
		{"terminating PVC", deleting, csiPV("claim", ""), "being deleted"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			src, err := checkSourceVolume(tc.pvc, tc.pv)
			if tc.wantErr == "" {
				if err != nil || src.VolumeHandle != "vol" {
					t.Fatalf("checkSourceVolume = %v, %v", src, err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("err = %v, want %q", err, tc.wantErr)
			}
		})
	}
}

func TestWantSnapshotFinalizers(t *testing.T) {
	gold := mkClass("gold", "drv", "")
	keep := mkClass("keep", "drv", "")
	keep.DeletionPolicy = crdv1.VolumeSnapshotContentRetain
	for _, tc := range []struct {
		name  string
		vs    *crdv1.VolumeSnapshot
		vsc   *crdv1.VolumeSnapshotContent
		class *crdv1.VolumeSnapshotClass
		want  []string
	}{
		{"2-1 add both before the content exists (Delete class)", mkVS(fromPVC("claim")), nil, gold, []string{FinalizerSnapshotAsSource, FinalizerSnapshotBound}},
		{"Retain class: as-source only", mkVS(fromPVC("claim")), nil, keep, []string{FinalizerSnapshotAsSource}},
		{"2-2 add the single missing bound finalizer", mkVS(fromPVC("claim"), vsFinalizers(FinalizerSnapshotAsSource)), mkVSC(volumeHandle("v")), gold, []string{FinalizerSnapshotBound}},
		{"static before binding: as-source only", mkVS(fromContent("content")), mkVSC(snapHandle("h"), refUID("")), nil, []string{FinalizerSnapshotAsSource}},
		{"static bound, Retain", mkVS(fromContent("content")), mkVSC(snapHandle("h"), retain()), nil, []string{FinalizerSnapshotAsSource}},
		{"all present", mkVS(fromPVC("claim"), vsFinalizers(FinalizerSnapshotAsSource, FinalizerSnapshotBound)), mkVSC(volumeHandle("v")), gold, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := wantSnapshotFinalizers(tc.vs, tc.vsc, tc.class)
			if strings.Join(got, ",") != strings.Join(tc.want, ",") {
				t.Fatalf("missing = %v, want %v", got, tc.want)
			}
		})
	}
}

func TestMirrorStatus(t *testing.T) {
	ts := int64(1_700_000_000_000_000_000)
	size := int64(1 << 30)
	bound := "content"
	readyContent := &crdv1.VolumeSnapshotContentStatus{SnapshotHandle: ptr("h"), CreationTime: &ts, RestoreSize: &size, ReadyToUse: ptr(true)}
	ctime := metav1.NewTime(time.Unix(0, ts))
	q := resource.NewQuantity(size, resource.BinarySI)
	full := &crdv1.VolumeSnapshotStatus{BoundVolumeSnapshotContentName: &bound, CreationTime: &ctime, RestoreSize: q, ReadyToUse: ptr(true)}
	msg := "boom"
	for _, tc := range []struct {
		name           string
		vs             *crdv1.VolumeSnapshot
		vsc            *crdv1.VolumeSnapshotContent
		want           *crdv1.VolumeSnapshotStatus // nil: no write
		created, ready bool
	}{
		{"4-1 snapshot status missing and rebuilt", mkVS(), mkVSC(vscStatus(readyContent)), full, true, true},
		{"2-3 bound, not ready, no content status", mkVS(), mkVSC(),
			&crdv1.VolumeSnapshotStatus{BoundVolumeSnapshotContentName: &bound, ReadyToUse: ptr(false)}, false, false},
		{"2-5 ready false -> true", mkVS(vsStatus(&crdv1.VolumeSnapshotStatus{BoundVolumeSnapshotContentName: &bound, CreationTime: &ctime, RestoreSize: q, ReadyToUse: ptr(false)})),
			mkVSC(vscStatus(readyContent)), full, false, true},
		{"4-2 readyToUse missing and rebuilt", mkVS(vsStatus(&crdv1.VolumeSnapshotStatus{BoundVolumeSnapshotContentName: &bound, CreationTime: &ctime, RestoreSize: q})),
			mkVSC(vscStatus(readyContent)), full, false, true},
		{"3-3 everything is well: no write", mkVS(vsStatus(full.DeepCopy())), mkVSC(vscStatus(readyContent)), nil, false, false},
		{"zero restore size replaced", mkVS(vsStatus(&crdv1.VolumeSnapshotStatus{BoundVolumeSnapshotContentName: &bound, CreationTime: &ctime, RestoreSize: resource.NewQuantity(0, resource.BinarySI), ReadyToUse: ptr(true)})),
			mkVSC(vscStatus(readyContent)), full, false, false},
		{"6-1 update snapshot error status from content", mkVS(vsStatus(&crdv1.VolumeSnapshotStatus{BoundVolumeSnapshotContentName: &bound, ReadyToUse: ptr(false)})),
			mkVSC(vscStatus(&crdv1.VolumeSnapshotContentStatus{ReadyToUse: ptr(false), Error: &crdv1.VolumeSnapshotError{Message: &msg}})),
			&crdv1.VolumeSnapshotStatus{BoundVolumeSnapshotContentName: &bound, ReadyToUse: ptr(false), Error: &crdv1.VolumeSnapshotError{Message: &msg}}, false, false},
		{"6-2 clear out snapshot error status", mkVS(vsStatus(&crdv1.VolumeSnapshotStatus{BoundVolumeSnapshotContentName: &bound, ReadyToUse: ptr(false), Error: &crdv1.VolumeSnapshotError{Message: &msg}})),
			mkVSC(vscStatus(readyContent)), full, true, true},
		{"6-3 nil snapshot status updated with error status from content", mkVS(),
			mkVSC(vscStatus(&crdv1.VolumeSnapshotContentStatus{Error: &crdv1.VolumeSnapshotError{Message: &msg}})),
			&crdv1.VolumeSnapshotStatus{BoundVolumeSnapshotContentName: &bound, ReadyToUse: ptr(false), Error: &crdv1.VolumeSnapshotError{Message: &msg}}, false, false},
		{"6-4 both snapshot status and content status are nil", mkVS(), mkVSC(),
			&crdv1.VolumeSnapshotStatus{BoundVolumeSnapshotContentName: &bound, ReadyToUse: ptr(false)}, false, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ch := mirrorStatus(tc.vs, tc.vsc)
			if tc.want == nil {
				if ch != nil {
					t.Fatalf("mirrorStatus = %+v, want no write", ch.Status)
				}
				return
			}
			if ch == nil {
				t.Fatal("mirrorStatus = nil, want a write")
			}
			if !statusEqual(ch.Status, tc.want) {
				t.Fatalf("status = %s, want %s", mustJSON(ch.Status), mustJSON(tc.want))
			}
			if ch.Created != tc.created || ch.Ready != tc.ready {
				t.Fatalf("created/ready = %v/%v, want %v/%v", ch.Created, ch.Ready, tc.created, tc.ready)
			}
		})
	}
}

func statusEqual(a, b *crdv1.VolumeSnapshotStatus) bool {
	return string(mustJSON(a)) == string(mustJSON(b))
}

func TestErrorStatus(t *testing.T) {
	now := time.Unix(100, 0)
	vs := mkVS()
	st := errorStatus(vs, "boom", true, now)
	if st == nil || *st.Error.Message != "boom" || *st.ReadyToUse {
		t.Fatalf("errorStatus = %+v", st)
	}
	vs.Status = st
	if again := errorStatus(vs, "boom", true, now.Add(time.Minute)); again != nil {
		t.Errorf("same message rewritten: %+v", again)
	}
	if other := errorStatus(vs, "other", false, now); other == nil || *other.Error.Message != "other" {
		t.Errorf("new message not written: %+v", other)
	}
}

func TestHoldsPVC(t *testing.T) {
	msg := "err"
	for _, tc := range []struct {
		name    string
		vs      *crdv1.VolumeSnapshot
		content bool
		want    bool
	}{
		{"1-5 PVC in use by an unready snapshot", mkVS(fromPVC("claim")), true, true},
		{"new snapshot without content yet", mkVS(fromPVC("claim")), false, true},
		{"ready snapshot", mkVS(fromPVC("claim"), vsStatus(&crdv1.VolumeSnapshotStatus{ReadyToUse: ptr(true)})), true, false},
		{"stuck snapshot without content (issue 1305)", mkVS(fromPVC("claim"), vsStatus(&crdv1.VolumeSnapshotStatus{ReadyToUse: ptr(false), Error: &crdv1.VolumeSnapshotError{Message: &msg}})), false, false},
		{"failing snapshot with a content still holds", mkVS(fromPVC("claim"), vsStatus(&crdv1.VolumeSnapshotStatus{ReadyToUse: ptr(false), Error: &crdv1.VolumeSnapshotError{Message: &msg}})), true, true},
		{"deleted snapshot", mkVS(fromPVC("claim"), vsDeleting()), true, false},
		{"other PVC", mkVS(fromPVC("other")), true, false},
		{"static snapshot", mkVS(fromContent("c")), true, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := holdsPVC(tc.vs, "claim", tc.content); got != tc.want {
				t.Fatalf("holdsPVC = %v", got)
			}
		})
	}
}

func TestDecideDeletion(t *testing.T) {
	both := vsFinalizers(FinalizerSnapshotAsSource, FinalizerSnapshotBound)
	for _, tc := range []struct {
		name      string
		vs        *crdv1.VolumeSnapshot
		vsc       *crdv1.VolumeSnapshotContent
		restoring bool
		want      deletionPlan
	}{
		{"1-1 noop: no finalizer of ours", mkVS(fromPVC("c"), vsDeleting()), mkVSC(volumeHandle("v")), false, deletionPlan{Skip: true}},
		{"3-1a deletion waits while a PVC is restoring", mkVS(fromPVC("c"), vsDeleting(), both), mkVSC(volumeHandle("v")), true,
			deletionPlan{Blocked: "Snapshot is being used to restore a PVC"}},
		{"3-1 content deleted, bound finalizer stays", mkVS(fromPVC("c"), vsDeleting(), both), mkVSC(volumeHandle("v")), false,
			deletionPlan{MarkBeingDeleted: true, DeleteContent: true, RemoveFinalizers: []string{FinalizerSnapshotAsSource}}},
		{"3-3 retain policy: content kept, finalizers removed", mkVS(fromPVC("c"), vsDeleting(), vsFinalizers(FinalizerSnapshotAsSource)), mkVSC(volumeHandle("v"), retain()), false,
			deletionPlan{MarkBeingDeleted: true, RemoveFinalizers: []string{FinalizerSnapshotAsSource}}},
		{"3-4 no content has been found", mkVS(fromPVC("c"), vsDeleting(), both), nil, false,
			deletionPlan{RemoveFinalizers: []string{FinalizerSnapshotAsSource, FinalizerSnapshotBound}}},
		{"restoring without a content does not block", mkVS(fromPVC("c"), vsDeleting(), both), nil, true,
			deletionPlan{RemoveFinalizers: []string{FinalizerSnapshotAsSource, FinalizerSnapshotBound}}},
		{"content already being deleted", mkVS(fromPVC("c"), vsDeleting(), vsFinalizers(FinalizerSnapshotBound)), mkVSC(volumeHandle("v"), vscAnn(AnnBeingDeleted, "yes"), vscDeleting()), false,
			deletionPlan{}},
		{"3-7 (static) content deleted", mkVS(fromContent("content"), vsDeleting(), both), mkVSC(snapHandle("h")), false,
			deletionPlan{MarkBeingDeleted: true, DeleteContent: true, RemoveFinalizers: []string{FinalizerSnapshotAsSource}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := decideDeletion(tc.vs, tc.vsc, tc.restoring)
			if string(mustJSON(got)) != string(mustJSON(tc.want)) {
				t.Fatalf("decideDeletion = %+v, want %+v", got, tc.want)
			}
		})
	}
}

func TestRestoresFrom(t *testing.T) {
	group := crdv1.GroupName
	other := "example.com"
	pvc := func(phase v1.PersistentVolumeClaimPhase, ds *v1.TypedLocalObjectReference) *v1.PersistentVolumeClaim {
		return &v1.PersistentVolumeClaim{Spec: v1.PersistentVolumeClaimSpec{DataSource: ds}, Status: v1.PersistentVolumeClaimStatus{Phase: phase}}
	}
	for _, tc := range []struct {
		name string
		pvc  *v1.PersistentVolumeClaim
		want bool
	}{
		{"pending restore", pvc(v1.ClaimPending, &v1.TypedLocalObjectReference{APIGroup: &group, Kind: "VolumeSnapshot", Name: "snap"}), true},
		{"bound restore is done", pvc(v1.ClaimBound, &v1.TypedLocalObjectReference{APIGroup: &group, Kind: "VolumeSnapshot", Name: "snap"}), false},
		{"other snapshot", pvc(v1.ClaimPending, &v1.TypedLocalObjectReference{APIGroup: &group, Kind: "VolumeSnapshot", Name: "x"}), false},
		{"other group", pvc(v1.ClaimPending, &v1.TypedLocalObjectReference{APIGroup: &other, Kind: "VolumeSnapshot", Name: "snap"}), false},
		{"no data source", pvc(v1.ClaimPending, nil), false},
	} {
		if got := restoresFrom(tc.pvc, "snap"); got != tc.want {
			t.Errorf("%s: restoresFrom = %v", tc.name, got)
		}
	}
}

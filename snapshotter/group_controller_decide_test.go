package snapshotter

import (
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	groupv1 "github.com/kubernetes-csi/external-snapshotter/client/v8/apis/volumegroupsnapshot/v1"
	crdv1 "github.com/kubernetes-csi/external-snapshotter/client/v8/apis/volumesnapshot/v1"
	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	fakediscovery "k8s.io/client-go/discovery/fake"
	clienttesting "k8s.io/client-go/testing"
)

func group(mut ...func(*groupv1.VolumeGroupSnapshot)) *groupv1.VolumeGroupSnapshot {
	vgs := &groupv1.VolumeGroupSnapshot{
		ObjectMeta: metav1.ObjectMeta{Name: "g", Namespace: "ns", UID: "guid"},
		Spec:       groupv1.VolumeGroupSnapshotSpec{Source: groupv1.VolumeGroupSnapshotSource{Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "db"}}}},
	}
	for _, m := range mut {
		m(vgs)
	}
	return vgs
}

func groupContentOf(vgs *groupv1.VolumeGroupSnapshot, mut ...func(*groupv1.VolumeGroupSnapshotContent)) *groupv1.VolumeGroupSnapshotContent {
	vgsc := &groupv1.VolumeGroupSnapshotContent{
		ObjectMeta: metav1.ObjectMeta{Name: dynamicGroupContentName(vgs)},
		Spec: groupv1.VolumeGroupSnapshotContentSpec{
			VolumeGroupSnapshotRef: v1.ObjectReference{Name: vgs.Name, Namespace: vgs.Namespace, UID: vgs.UID},
			DeletionPolicy:         crdv1.VolumeSnapshotContentDelete,
			Driver:                 "d",
			Source:                 groupv1.VolumeGroupSnapshotContentSource{VolumeHandles: []string{"h1"}},
		},
	}
	for _, m := range mut {
		m(vgsc)
	}
	return vgsc
}

func staticSource(vgsc *groupv1.VolumeGroupSnapshotContent) {
	vgsc.Spec.Source = groupv1.VolumeGroupSnapshotContentSource{GroupSnapshotHandles: &groupv1.GroupSnapshotHandles{VolumeGroupSnapshotHandle: "gh", VolumeSnapshotHandles: []string{"s"}}}
}

func TestGroupSource(t *testing.T) {
	for _, tc := range []struct {
		name        string
		src         groupv1.VolumeGroupSnapshotSource
		wantContent string
		wantProblem bool
	}{
		{"selector", groupv1.VolumeGroupSnapshotSource{Selector: &metav1.LabelSelector{}}, "", false},
		{"content", groupv1.VolumeGroupSnapshotSource{VolumeGroupSnapshotContentName: ptr("c")}, "c", false},
		{"neither", groupv1.VolumeGroupSnapshotSource{}, "", true},
		{"empty content name", groupv1.VolumeGroupSnapshotSource{VolumeGroupSnapshotContentName: ptr("")}, "", true},
		{"both", groupv1.VolumeGroupSnapshotSource{Selector: &metav1.LabelSelector{}, VolumeGroupSnapshotContentName: ptr("c")}, "", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, content, p := groupSource(group(func(g *groupv1.VolumeGroupSnapshot) { g.Spec.Source = tc.src }))
			if (p != nil) != tc.wantProblem || content != tc.wantContent {
				t.Fatalf("groupSource = %q, %v; want %q, problem %v", content, p, tc.wantContent, tc.wantProblem)
			}
			if p != nil && p.Reason != ReasonGroupSnapshotValidationError {
				t.Errorf("reason %s", p.Reason)
			}
		})
	}
}

func TestGroupMemberNames(t *testing.T) {
	id := memberID("uid-1", "vol-1")
	if !regexp.MustCompile(`^[0-9a-f]{64}$`).MatchString(id) || id == memberID("uid-1", "vol-2") || id == memberID("uid-2", "vol-1") {
		t.Errorf("memberID = %q: want 64 hex digits, distinct per group and volume", id)
	}
	// sha256("abc") split across the group uid and the handle
	if got := memberID("ab", "c"); got != "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad" {
		t.Errorf("memberID(ab, c) = %s, want sha256 of the concatenation", got)
	}
	vgs := group()
	vs := memberSnapshot(vgs, groupv1.VolumeSnapshotInfo{VolumeHandle: "h1"}, nil)
	if name, uid, ok := groupOf(vs); !ok || name != "g" || uid != "guid" {
		t.Errorf("groupOf(member) = %q, %q, %v", name, uid, ok)
	}
	if vs.Spec.Source.PersistentVolumeClaimName == nil || *vs.Spec.Source.PersistentVolumeClaimName != "" || vs.Name != "snapshot-"+memberID("guid", "h1") {
		t.Errorf("member without PV = %+v", vs)
	}
	for _, tc := range []struct {
		name string
		ref  metav1.OwnerReference
		want bool
	}{
		{"v1 group", metav1.OwnerReference{APIVersion: "groupsnapshot.storage.k8s.io/v1", Kind: "VolumeGroupSnapshot", Name: "g"}, true},
		{"beta group", metav1.OwnerReference{APIVersion: "groupsnapshot.storage.k8s.io/v1beta2", Kind: "VolumeGroupSnapshot", Name: "g"}, false},
		{"other kind", metav1.OwnerReference{APIVersion: "groupsnapshot.storage.k8s.io/v1", Kind: "Pod", Name: "g"}, false},
	} {
		vs := &crdv1.VolumeSnapshot{ObjectMeta: metav1.ObjectMeta{OwnerReferences: []metav1.OwnerReference{tc.ref}}}
		if got := isGroupMember(vs); got != tc.want {
			t.Errorf("%s: isGroupMember = %v, want %v", tc.name, got, tc.want)
		}
	}
}

func TestChooseDefaultGroupClass(t *testing.T) {
	class := func(name, driver, ann string) *groupv1.VolumeGroupSnapshotClass {
		c := &groupv1.VolumeGroupSnapshotClass{ObjectMeta: metav1.ObjectMeta{Name: name}, Driver: driver}
		if ann != "" {
			c.Annotations = map[string]string{AnnDefaultGroupClass: ann}
		}
		return c
	}
	for _, tc := range []struct {
		name    string
		classes []*groupv1.VolumeGroupSnapshotClass
		want    string
		wantErr string
	}{
		{"one default", []*groupv1.VolumeGroupSnapshotClass{class("a", "d", "true"), class("b", "d", "")}, "a", ""},
		{"default of another driver", []*groupv1.VolumeGroupSnapshotClass{class("a", "other", "true")}, "", "cannot find default group snapshot class"},
		{"not exactly true", []*groupv1.VolumeGroupSnapshotClass{class("a", "d", "True")}, "", "cannot find"},
		{"two defaults", []*groupv1.VolumeGroupSnapshotClass{class("a", "d", "true"), class("b", "d", "true")}, "", "2 default snapshot classes were found"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := chooseDefaultGroupClass(tc.classes, "d")
			if got != tc.want || (err == nil) != (tc.wantErr == "") || (err != nil && !strings.Contains(err.Error(), tc.wantErr)) {
				t.Errorf("chooseDefaultGroupClass = %q, %v; want %q, error containing %q", got, err, tc.want, tc.wantErr)
			}
		})
	}
}

func TestGroupVolumes(t *testing.T) {
	claim := func(name, volume string, phase v1.PersistentVolumeClaimPhase) *v1.PersistentVolumeClaim {
		return &v1.PersistentVolumeClaim{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "ns"}, Spec: v1.PersistentVolumeClaimSpec{VolumeName: volume}, Status: v1.PersistentVolumeClaimStatus{Phase: phase}}
	}
	pvs := map[string]*v1.PersistentVolume{}
	pv := func(name, claim, driver string) {
		p := &v1.PersistentVolume{ObjectMeta: metav1.ObjectMeta{Name: name}, Spec: v1.PersistentVolumeSpec{ClaimRef: &v1.ObjectReference{Namespace: "ns", Name: claim}}}
		if driver != "" {
			p.Spec.CSI = &v1.CSIPersistentVolumeSource{Driver: driver, VolumeHandle: "h-" + name}
		}
		pvs[name] = p
	}
	pv("pv-a", "a", "d")
	pv("pv-b", "b", "d")
	pv("pv-nfs", "nfs", "")
	pv("pv-other", "other", "e")
	pv("pv-stolen", "someone", "d")
	pvOf := func(n string) *v1.PersistentVolume { return pvs[n] }
	bound := v1.ClaimBound
	for _, tc := range []struct {
		name        string
		claims      []*v1.PersistentVolumeClaim
		driver      string
		wantHandles []string
		wantDriver  string
		wantReason  string
	}{
		{"two bound CSI volumes", []*v1.PersistentVolumeClaim{claim("a", "pv-a", bound), claim("b", "pv-b", bound)}, "d", []string{"h-pv-a", "h-pv-b"}, "d", ""},
		{"driver from the first volume", []*v1.PersistentVolumeClaim{claim("a", "pv-a", bound)}, "", []string{"h-pv-a"}, "d", ""},
		{"no claims", nil, "d", nil, "", ReasonGroupSnapshotContentCreationFailed},
		{"pending claim", []*v1.PersistentVolumeClaim{claim("a", "pv-a", bound), claim("p", "", v1.ClaimPending)}, "d", nil, "", ReasonGroupSnapshotContentCreationFailed},
		{"missing PV", []*v1.PersistentVolumeClaim{claim("a", "pv-gone", bound)}, "d", nil, "", ReasonGroupSnapshotContentCreationFailed},
		{"PV bound elsewhere", []*v1.PersistentVolumeClaim{claim("a", "pv-stolen", bound)}, "d", nil, "", ReasonGroupSnapshotContentCreationFailed},
		{"non-CSI volume", []*v1.PersistentVolumeClaim{claim("nfs", "pv-nfs", bound)}, "d", nil, "", ReasonCreateGroupSnapshotContentFailed},
		{"other driver", []*v1.PersistentVolumeClaim{claim("a", "pv-a", bound), claim("other", "pv-other", bound)}, "", nil, "", ReasonCreateGroupSnapshotContentFailed},
	} {
		t.Run(tc.name, func(t *testing.T) {
			handles, drv, p := groupVolumes(group(), tc.claims, pvOf, tc.driver)
			reason := ""
			if p != nil {
				reason = p.Reason
			}
			if !slices.Equal(handles, tc.wantHandles) || drv != tc.wantDriver || reason != tc.wantReason {
				t.Errorf("groupVolumes = %v, %q, %v; want %v, %q, reason %q", handles, drv, p, tc.wantHandles, tc.wantDriver, tc.wantReason)
			}
		})
	}
}

func TestCheckGroupContent(t *testing.T) {
	vgs := group()
	static := group(func(g *groupv1.VolumeGroupSnapshot) {
		g.Spec.Source = groupv1.VolumeGroupSnapshotSource{VolumeGroupSnapshotContentName: ptr("pre")}
	})
	for _, tc := range []struct {
		name   string
		got    *problem
		reason string
	}{
		{"dynamic ok", checkDynamicGroupContent(vgs, groupContentOf(vgs)), ""},
		{"dynamic finds pre-provisioned", checkDynamicGroupContent(vgs, groupContentOf(vgs, staticSource)), ReasonGroupSnapshotContentMismatch},
		{"dynamic without uid", checkDynamicGroupContent(vgs, groupContentOf(vgs, func(c *groupv1.VolumeGroupSnapshotContent) { c.Spec.VolumeGroupSnapshotRef.UID = "" })), ReasonGroupSnapshotContentMisbound},
		{"static ok, uid empty", checkStaticGroupContent(static, groupContentOf(static, staticSource, func(c *groupv1.VolumeGroupSnapshotContent) { c.Spec.VolumeGroupSnapshotRef.UID = "" })), ""},
		{"static finds dynamic", checkStaticGroupContent(static, groupContentOf(static)), ReasonGroupSnapshotContentMismatch},
		{"static other name", checkStaticGroupContent(static, groupContentOf(static, staticSource, func(c *groupv1.VolumeGroupSnapshotContent) { c.Spec.VolumeGroupSnapshotRef.Name = "x" })), ReasonGroupSnapshotContentMisbound},
		{"static other uid", checkStaticGroupContent(static, groupContentOf(static, staticSource, func(c *groupv1.VolumeGroupSnapshotContent) { c.Spec.VolumeGroupSnapshotRef.UID = "x" })), ReasonGroupSnapshotContentMisbound},
	} {
		reason := ""
		if tc.got != nil {
			reason = tc.got.Reason
		}
		if reason != tc.reason {
			t.Errorf("%s: problem %v, want reason %q", tc.name, tc.got, tc.reason)
		}
	}
	withClass := group(func(g *groupv1.VolumeGroupSnapshot) { g.Spec.VolumeGroupSnapshotClassName = ptr("c") })
	unbound := groupContentOf(withClass, staticSource, func(c *groupv1.VolumeGroupSnapshotContent) { c.Spec.VolumeGroupSnapshotRef.UID = "" })
	if setUID, setClass, addFin := groupBindPatch(withClass, unbound); !setUID || setClass == nil || *setClass != "c" || !addFin {
		t.Errorf("groupBindPatch(unbound) = %v, %v, %v; want uid, class c and finalizer", setUID, setClass, addFin)
	}
	bound := groupContentOf(withClass, func(c *groupv1.VolumeGroupSnapshotContent) {
		c.Spec.VolumeGroupSnapshotClassName = ptr("other")
		c.Finalizers = []string{FinalizerGroupContentBound}
	})
	if setUID, setClass, addFin := groupBindPatch(withClass, bound); setUID || setClass != nil || addFin {
		t.Errorf("groupBindPatch(bound) = %v, %v, %v; want nothing (a content's class is immutable once set)", setUID, setClass, addFin)
	}
}

func TestMirrorGroupStatus(t *testing.T) {
	created := metav1.NewTime(time.Unix(100, 0))
	errMsg := &crdv1.VolumeSnapshotError{Message: ptr("boom")}
	for _, tc := range []struct {
		name                 string
		old                  *groupv1.VolumeGroupSnapshotStatus
		content              *groupv1.VolumeGroupSnapshotContentStatus
		wantNil              bool
		wantReady            bool
		wantCreated, wantRdy bool
		wantErr              bool
	}{
		{name: "no content status: bound, not ready", content: nil, wantReady: false},
		{name: "cut and ready", content: &groupv1.VolumeGroupSnapshotContentStatus{CreationTime: &created, ReadyToUse: ptr(true)}, wantReady: true, wantCreated: true, wantRdy: true},
		{name: "error copied", content: &groupv1.VolumeGroupSnapshotContentStatus{ReadyToUse: ptr(false), Error: errMsg}, wantErr: true},
		{name: "ready clears the error", old: &groupv1.VolumeGroupSnapshotStatus{BoundVolumeGroupSnapshotContentName: ptr("groupsnapcontent-guid"), ReadyToUse: ptr(false), Error: errMsg},
			content: &groupv1.VolumeGroupSnapshotContentStatus{CreationTime: &created, ReadyToUse: ptr(true)}, wantReady: true, wantCreated: true, wantRdy: true},
		{name: "nothing new", old: &groupv1.VolumeGroupSnapshotStatus{BoundVolumeGroupSnapshotContentName: ptr("groupsnapcontent-guid"), CreationTime: &created, ReadyToUse: ptr(true)},
			content: &groupv1.VolumeGroupSnapshotContentStatus{CreationTime: &created, ReadyToUse: ptr(true)}, wantNil: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			vgs := group(func(g *groupv1.VolumeGroupSnapshot) { g.Status = tc.old })
			vgsc := groupContentOf(vgs, func(c *groupv1.VolumeGroupSnapshotContent) { c.Status = tc.content })
			ch := mirrorGroupStatus(vgs, vgsc)
			if (ch == nil) != tc.wantNil {
				t.Fatalf("mirrorGroupStatus = %+v, want nil %v", ch, tc.wantNil)
			}
			if ch == nil {
				return
			}
			st := ch.Status
			if *st.BoundVolumeGroupSnapshotContentName != vgsc.Name || *st.ReadyToUse != tc.wantReady || ch.Created != tc.wantCreated || ch.Ready != tc.wantRdy || (st.Error != nil) != tc.wantErr {
				t.Errorf("status %+v, created %v, ready %v", st, ch.Created, ch.Ready)
			}
		})
	}
	now := time.Unix(200, 0)
	vgs := group()
	st := groupErrorStatus(vgs, "bad", true, now)
	if st == nil || *st.Error.Message != "bad" || *st.ReadyToUse {
		t.Fatalf("groupErrorStatus = %+v", st)
	}
	vgs.Status = st
	if again := groupErrorStatus(vgs, "bad", true, now.Add(time.Minute)); again != nil {
		t.Errorf("the same message is written again: %+v", again)
	}
}

func TestGroupMembers(t *testing.T) {
	vgs := group()
	due := func(c *groupv1.VolumeGroupSnapshotContent) {
		c.Status = &groupv1.VolumeGroupSnapshotContentStatus{VolumeGroupSnapshotHandle: ptr("gh"),
			VolumeSnapshotInfoList: []groupv1.VolumeSnapshotInfo{{VolumeHandle: "h1", SnapshotHandle: "s1", CreationTime: ptr(int64(5)), ReadyToUse: ptr(true), RestoreSize: ptr(int64(7))}}}
	}
	for _, tc := range []struct {
		name string
		mut  func(*groupv1.VolumeGroupSnapshotContent)
		want bool
	}{
		{"no status", func(*groupv1.VolumeGroupSnapshotContent) {}, false},
		{"handle and list", due, true},
		{"no handle", func(c *groupv1.VolumeGroupSnapshotContent) { due(c); c.Status.VolumeGroupSnapshotHandle = nil }, false},
		{"empty list", func(c *groupv1.VolumeGroupSnapshotContent) { due(c); c.Status.VolumeSnapshotInfoList = nil }, false},
	} {
		if got := membersDue(groupContentOf(vgs, tc.mut)); got != tc.want {
			t.Errorf("%s: membersDue = %v, want %v", tc.name, got, tc.want)
		}
	}
	vgsc := groupContentOf(vgs, due)
	info := vgsc.Status.VolumeSnapshotInfoList[0]
	block := v1.PersistentVolumeBlock
	pv := &v1.PersistentVolume{Spec: v1.PersistentVolumeSpec{VolumeMode: &block, ClaimRef: &v1.ObjectReference{Name: "claim"}}}
	vsc := memberContent(vgs, vgsc, info, pv, &v1.SecretReference{Name: "s", Namespace: "sn"})
	id := memberID(vgs.UID, "h1")
	if vsc.Name != "snapcontent-"+id || vsc.Annotations[AnnGroupSnapshotHandle] != "gh" || vsc.Spec.VolumeSnapshotRef.Name != "snapshot-"+id ||
		vsc.Spec.VolumeSnapshotRef.Namespace != "ns" || vsc.Spec.VolumeSnapshotRef.UID != "" || vsc.Spec.VolumeSnapshotClassName != nil ||
		vsc.Spec.DeletionPolicy != crdv1.VolumeSnapshotContentDelete || vsc.Spec.Driver != "d" || *vsc.Spec.Source.VolumeHandle != "h1" ||
		*vsc.Spec.SourceVolumeMode != block || vsc.Annotations[AnnDeletionSecretName] != "s" || vsc.Annotations[AnnDeletionSecretNamespace] != "sn" {
		t.Errorf("memberContent = %+v", vsc)
	}
	vs := memberSnapshot(vgs, info, pv)
	if *vs.Spec.Source.PersistentVolumeClaimName != "claim" || !slices.Equal(vs.Finalizers, []string{FinalizerSnapshotInGroup}) || vs.Namespace != "ns" {
		t.Errorf("memberSnapshot = %+v", vs)
	}
	st := memberContentStatus(vsc, vgsc, info)
	if st == nil || *st.SnapshotHandle != "s1" || *st.VolumeGroupSnapshotHandle != "gh" || *st.CreationTime != 5 || *st.RestoreSize != 7 || !*st.ReadyToUse {
		t.Fatalf("memberContentStatus = %+v", st)
	}
	vsc.Status = st
	if again := memberContentStatus(vsc, vgsc, info); again != nil {
		t.Errorf("memberContentStatus on a filled content = %+v, want nil", again)
	}
}

func TestDecideGroupDeletion(t *testing.T) {
	deleting := func(g *groupv1.VolumeGroupSnapshot) {
		g.DeletionTimestamp = &metav1.Time{Time: time.Unix(1, 0)}
		g.Finalizers = []string{FinalizerGroupSnapshotBound}
	}
	vgs := group(deleting)
	retain := func(c *groupv1.VolumeGroupSnapshotContent) { c.Spec.DeletionPolicy = crdv1.VolumeSnapshotContentRetain }
	marked := func(c *groupv1.VolumeGroupSnapshotContent) {
		c.Annotations = map[string]string{AnnGroupBeingDeleted: annYes}
	}
	gone := func(c *groupv1.VolumeGroupSnapshotContent) { c.DeletionTimestamp = &metav1.Time{Time: time.Unix(2, 0)} }
	for _, tc := range []struct {
		name      string
		vgs       *groupv1.VolumeGroupSnapshot
		vgsc      *groupv1.VolumeGroupSnapshotContent
		restoring string
		want      groupDeletionPlan
	}{
		{"no finalizer of ours", group(func(g *groupv1.VolumeGroupSnapshot) { deleting(g); g.Finalizers = nil }), groupContentOf(vgs), "", groupDeletionPlan{Skip: true}},
		{"a member is restored from", vgs, groupContentOf(vgs), "m1", groupDeletionPlan{Blocked: "Snapshot ns/m1 belonging to VolumeGroupSnapshot ns/g is being used to restore a PVC"}},
		{"Delete: mark, delete content and members, keep finalizer", vgs, groupContentOf(vgs), "", groupDeletionPlan{MarkBeingDeleted: true, DeleteContent: true, DeleteMembers: true}},
		{"Delete, content already deleting", vgs, groupContentOf(vgs, marked, gone), "", groupDeletionPlan{DeleteMembers: true}},
		{"Retain: mark, keep content, drop finalizer", vgs, groupContentOf(vgs, retain), "", groupDeletionPlan{MarkBeingDeleted: true, DeleteMembers: true, RemoveFinalizer: true}},
		{"content gone", vgs, nil, "", groupDeletionPlan{DeleteMembers: true, RemoveFinalizer: true}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := decideGroupDeletion(tc.vgs, tc.vgsc, tc.restoring); got != tc.want {
				t.Errorf("decideGroupDeletion = %+v, want %+v", got, tc.want)
			}
		})
	}
}

func TestGroupMemberDeletion(t *testing.T) {
	vs := memberSnapshot(group(), groupv1.VolumeSnapshotInfo{VolumeHandle: "h"}, nil)
	for _, tc := range []struct {
		name        string
		group       *groupv1.VolumeGroupSnapshot
		wantBlocked bool
		wantDrop    bool
	}{
		{"group lives", group(), true, false},
		// As upstream: held until the group object is gone, not merely
		// being deleted.
		{"group being deleted", group(func(g *groupv1.VolumeGroupSnapshot) { g.DeletionTimestamp = &metav1.Time{} }), true, false},
		{"group being deleted, finalizers gone but object not yet", group(func(g *groupv1.VolumeGroupSnapshot) {
			g.DeletionTimestamp = &metav1.Time{}
			g.Finalizers = nil
		}), true, false},
		{"group gone", nil, false, true},
	} {
		blocked, drop := memberDeletion(vs, tc.group)
		if (blocked != "") != tc.wantBlocked || drop != tc.wantDrop {
			t.Errorf("%s: memberDeletion = %q, %v; want blocked %v, drop %v", tc.name, blocked, drop, tc.wantBlocked, tc.wantDrop)
		}
		if blocked != "" && !strings.Contains(blocked, "belongs to group snapshot ns/g") {
			t.Errorf("%s: message %q", tc.name, blocked)
		}
	}
	// The group named in the status wins over a stale owner reference.
	vs.Status = &crdv1.VolumeSnapshotStatus{VolumeGroupSnapshotName: ptr("renamed")}
	if name, uid := memberGroupName(vs); name != "renamed" || uid != types.UID("") {
		t.Errorf("memberGroupName = %q, %q", name, uid)
	}
}

func TestGroupCRDsMissing(t *testing.T) {
	served := func(names ...string) *fakediscovery.FakeDiscovery {
		list := &metav1.APIResourceList{GroupVersion: groupv1.SchemeGroupVersion.String()}
		for _, n := range names {
			list.APIResources = append(list.APIResources, metav1.APIResource{Name: n})
		}
		return &fakediscovery.FakeDiscovery{Fake: &clienttesting.Fake{Resources: []*metav1.APIResourceList{list}}}
	}
	for _, tc := range []struct {
		name string
		disc *fakediscovery.FakeDiscovery
		want []string
	}{
		{"all served", served("volumegroupsnapshots", "volumegroupsnapshotcontents", "volumegroupsnapshotclasses"), nil},
		{"classes missing", served("volumegroupsnapshots", "volumegroupsnapshotcontents"), []string{"volumegroupsnapshotclasses"}},
		{"group version not served", &fakediscovery.FakeDiscovery{Fake: &clienttesting.Fake{}}, []string{"volumegroupsnapshots", "volumegroupsnapshotcontents", "volumegroupsnapshotclasses"}},
	} {
		got, err := groupCRDsMissing(tc.disc)
		if err != nil || !slices.Equal(got, tc.want) {
			t.Errorf("%s: groupCRDsMissing = %v, %v; want %v", tc.name, got, err, tc.want)
		}
	}
}

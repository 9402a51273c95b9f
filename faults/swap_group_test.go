package faults

import (
	"context"
	"crypto/sha256"
	"fmt"
	"slices"
	"testing"

	"github.com/container-storage-interface/spec/lib/go/csi"
	groupv1 "github.com/kubernetes-csi/external-snapshotter/client/v8/apis/volumegroupsnapshot/v1"
	crdv1 "github.com/kubernetes-csi/external-snapshotter/client/v8/apis/volumesnapshot/v1"
	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/csi-kit/sidecars/csiconn"
	"github.com/csi-kit/sidecars/provisioner"
	"github.com/csi-kit/sidecars/testkit/eventually"
	"github.com/csi-kit/sidecars/testkit/fakedriver"
)

// groupStage is how far the upstream snapshot-controller and
// csi-snapshotter got with a VolumeGroupSnapshot before they were
// replaced.
type groupStage int

const (
	// stageFresh: the controller created the group content and bound the
	// group (both finalizers); the sidecar had not acted.
	stageFresh groupStage = iota
	// stageCutting: the sidecar marked the content being-created and
	// sent CreateVolumeGroupSnapshot; its answer was never recorded.
	stageCutting
	// stageCreated: the answer was recorded (handle, member list) but
	// said not ready; no member snapshot was made yet.
	stageCreated
	// stageReady: everything done, the member snapshots and contents
	// with every finalizer upstream puts on them.
	stageReady
	// stageDeleting: a ready group the user deleted; the controller had
	// marked and deleted the group content and deleted the members, all
	// still held by their finalizers, and the backend group was not yet
	// deleted.
	stageDeleting
)

var stageNames = [...]string{"fresh", "cutting", "created", "ready", "deleting"}

func (s groupStage) String() string { return stageNames[s] }

// TestSwapFromUpstreamGroups: a cluster ran upstream's snapshot-controller
// and csi-snapshotter, which left a VolumeGroupSnapshot (of two claims) in
// each stage of its life, with the finalizers and annotations exactly as
// upstream writes them. Ours replace them: the fresh, cutting, created and
// ready groups end ready, with the one backend group upstream had cut (or
// one new one for the fresh group) and the members upstream named; the
// half-deleted group goes with its content, members and backend group.
// Deleting the others afterwards empties the backend and leaves nothing
// held by a finalizer.
func TestSwapFromUpstreamGroups(t *testing.T) {
	e := newEnv(t, "swap", fakedriver.Options{Capabilities: groupCaps()})
	conn := e.connect(csiconn.Options{})
	sc := e.class("sc", nil)
	class := e.groupClass(crdv1.VolumeSnapshotContentDelete)

	// What upstream left behind.
	uids := map[groupStage]types.UID{}
	var left []upstreamGroupObjects
	for s := stageFresh; s <= stageDeleting; s++ {
		for i := range 2 {
			e.upstreamVolume(fmt.Sprintf("%s-%d", s, i), sc.Name, "1Gi", func(c *v1.PersistentVolumeClaim) {
				c.Labels = map[string]string{groupLabel: s.String()}
			})
		}
		objs := e.upstreamGroup(s.String(), class, s)
		uids[s] = objs.vgs.UID
		left = append(left, objs)
	}
	created := e.drv.Calls("CreateVolumeGroupSnapshot")

	// The swap: our containers start.
	e.fault(1)
	e.startProvisioner(e.ctx, provisioner.Options{}, conn)
	e.startSnapshotters(conn)

	states := map[groupStage]groupState{}
	for s := stageFresh; s < stageDeleting; s++ {
		states[s] = e.waitGroupReady(s.String(), 2)
	}
	deleting := left[stageDeleting]
	eventually.Require(t, groupWait, "the half-deleted group, its contents, members and backend group gone", func(ctx context.Context) error {
		if err := gone(e.snaps.GroupsnapshotV1().VolumeGroupSnapshots(e.ns).Get(ctx, deleting.vgs.Name, metav1.GetOptions{})); err != nil {
			return err
		}
		if err := gone(e.snaps.GroupsnapshotV1().VolumeGroupSnapshotContents().Get(ctx, deleting.content, metav1.GetOptions{})); err != nil {
			return err
		}
		for _, m := range deleting.members {
			if err := gone(e.snaps.SnapshotV1().VolumeSnapshots(e.ns).Get(ctx, m, metav1.GetOptions{})); err != nil {
				return err
			}
		}
		for _, c := range deleting.memberContents {
			if err := gone(e.snaps.SnapshotV1().VolumeSnapshotContents().Get(ctx, c, metav1.GetOptions{})); err != nil {
				return err
			}
		}
		if slices.ContainsFunc(e.drv.GroupSnapshots(), func(g fakedriver.GroupSnapshot) bool { return g.ID == deleting.handle }) {
			return fmt.Errorf("backend group %s still there", deleting.handle)
		}
		return nil
	})

	// One backend group per group snapshot: the one upstream cut is
	// taken over, not cut again; the fresh group got one.
	for s := stageFresh; s < stageDeleting; s++ {
		want := "groupsnapshot-" + string(uids[s])
		var named []string
		for _, g := range e.drv.GroupSnapshots() {
			if g.Name == want {
				named = append(named, g.ID)
			}
		}
		if len(named) != 1 || named[0] != *states[s].content.Status.VolumeGroupSnapshotHandle {
			t.Errorf("%s: backend groups named %s: %v; want exactly the content's handle %s", s, want, named, *states[s].content.Status.VolumeGroupSnapshotHandle)
		}
		if s >= stageCreated && *states[s].content.Status.VolumeGroupSnapshotHandle != left[s].handle {
			t.Errorf("%s: content handle %s, upstream recorded %s", s, *states[s].content.Status.VolumeGroupSnapshotHandle, left[s].handle)
		}
	}
	// The ready group's members are still upstream's objects.
	for i, m := range left[stageReady].members {
		if got := states[stageReady].members; !slices.ContainsFunc(got, func(vs crdv1.VolumeSnapshot) bool {
			return vs.Name == m && vs.UID == left[stageReady].memberUIDs[i]
		}) {
			t.Errorf("ready: upstream member %s was replaced", m)
		}
	}
	if n := e.drv.Calls("CreateVolumeGroupSnapshot") - created; n < 1 {
		t.Errorf("CreateVolumeGroupSnapshot called %d times after the swap; the fresh group needs one", n)
	}
	if got, want := len(e.drv.GroupSnapshots()), 4; got != want {
		t.Errorf("%d backend groups after the swap, want %d", got, want)
	}
	e.check()
	e.groupCheck()

	// Everything goes.
	if err := e.snaps.GroupsnapshotV1().VolumeGroupSnapshots(e.ns).DeleteCollection(e.ctx, metav1.DeleteOptions{}, metav1.ListOptions{}); err != nil {
		t.Fatal(err)
	}
	for s := stageFresh; s < stageDeleting; s++ {
		e.waitGroupGone(states[s], true)
	}
	if g, n := len(e.drv.GroupSnapshots()), len(e.drv.Snapshots()); g+n > 0 {
		t.Errorf("backend after every group went: %d groups, %d snapshots", g, n)
	}
	e.check()
	e.groupCheck()
	e.drain()
}

// upstreamGroupObjects names what upstreamGroup wrote.
type upstreamGroupObjects struct {
	vgs            *groupv1.VolumeGroupSnapshot
	content        string
	handle         string // backend group, once recorded
	members        []string
	memberUIDs     []types.UID
	memberContents []string
}

// upstreamGroup writes a VolumeGroupSnapshot name of the claims labelled
// name, and what upstream's controller and sidecar write for it up to
// stage, calling the driver as upstream's sidecar did.
func (e *env) upstreamGroup(name, class string, stage groupStage) upstreamGroupObjects {
	e.t.Helper()
	groups := e.snaps.GroupsnapshotV1()
	vgs := e.groupSnapshot(name, name, class)
	out := upstreamGroupObjects{vgs: vgs, content: "groupsnapcontent-" + string(vgs.UID)}

	claims, err := e.kube.CoreV1().PersistentVolumeClaims(e.ns).List(e.ctx, metav1.ListOptions{LabelSelector: groupLabel + "=" + name})
	if err != nil {
		e.t.Fatal(err)
	}
	pvOf := map[string]*v1.PersistentVolume{} // by volume handle
	var handles []string
	for _, c := range claims.Items {
		pv, err := e.kube.CoreV1().PersistentVolumes().Get(e.ctx, c.Spec.VolumeName, metav1.GetOptions{})
		if err != nil {
			e.t.Fatal(err)
		}
		handles = append(handles, pv.Spec.CSI.VolumeHandle)
		pvOf[pv.Spec.CSI.VolumeHandle] = pv
	}

	// The controller creates the dynamic group content, then binds the
	// group: its finalizer and its status.
	vgsc := &groupv1.VolumeGroupSnapshotContent{
		ObjectMeta: metav1.ObjectMeta{Name: out.content, Finalizers: []string{upVGSCBound}},
		Spec: groupv1.VolumeGroupSnapshotContentSpec{
			VolumeGroupSnapshotRef: v1.ObjectReference{Kind: "VolumeGroupSnapshot", APIVersion: upGroupAPIVersion,
				Namespace: e.ns, Name: name, UID: vgs.UID, ResourceVersion: vgs.ResourceVersion},
			Source:                       groupv1.VolumeGroupSnapshotContentSource{VolumeHandles: handles},
			VolumeGroupSnapshotClassName: &class,
			DeletionPolicy:               crdv1.VolumeSnapshotContentDelete,
			Driver:                       e.driver,
		},
	}
	if stage >= stageCutting {
		vgsc.Annotations = map[string]string{upGroupCreating: "yes"}
	}
	if vgsc, err = groups.VolumeGroupSnapshotContents().Create(e.ctx, vgsc, metav1.CreateOptions{}); err != nil {
		e.t.Fatal(err)
	}
	vgs.Finalizers = []string{upVGSBound}
	if vgs, err = groups.VolumeGroupSnapshots(e.ns).Update(e.ctx, vgs, metav1.UpdateOptions{}); err != nil {
		e.t.Fatal(err)
	}
	vgs.Status = &groupv1.VolumeGroupSnapshotStatus{BoundVolumeGroupSnapshotContentName: &out.content, ReadyToUse: ptr(false)}
	if vgs, err = groups.VolumeGroupSnapshots(e.ns).UpdateStatus(e.ctx, vgs, metav1.UpdateOptions{}); err != nil {
		e.t.Fatal(err)
	}
	out.vgs = vgs
	if stage < stageCutting {
		return out
	}

	// The sidecar's call, named as upstream names it.
	conn := e.connect(csiconn.Options{})
	resp, err := conn.GroupController().CreateVolumeGroupSnapshot(e.ctx, &csi.CreateVolumeGroupSnapshotRequest{
		Name: "groupsnapshot-" + string(vgs.UID), SourceVolumeIds: handles})
	if err != nil {
		e.t.Fatal(err)
	}
	if stage < stageCreated {
		return out
	}

	// The answer recorded: ready only from stageReady on.
	gs := resp.GetGroupSnapshot()
	out.handle = gs.GetGroupSnapshotId()
	ready := stage >= stageReady
	created := metav1.NewTime(gs.GetCreationTime().AsTime())
	st := &groupv1.VolumeGroupSnapshotContentStatus{VolumeGroupSnapshotHandle: ptr(out.handle), ReadyToUse: ptr(ready), CreationTime: &created}
	for _, s := range gs.GetSnapshots() {
		st.VolumeSnapshotInfoList = append(st.VolumeSnapshotInfoList, groupv1.VolumeSnapshotInfo{
			VolumeHandle: s.GetSourceVolumeId(), SnapshotHandle: s.GetSnapshotId(),
			CreationTime: ptr(s.GetCreationTime().AsTime().UnixNano()), ReadyToUse: ptr(ready), RestoreSize: ptr(s.GetSizeBytes())})
	}
	vgsc.Status = st
	if vgsc, err = groups.VolumeGroupSnapshotContents().UpdateStatus(e.ctx, vgsc, metav1.UpdateOptions{}); err != nil {
		e.t.Fatal(err)
	}
	delete(vgsc.Annotations, upGroupCreating)
	if vgsc, err = groups.VolumeGroupSnapshotContents().Update(e.ctx, vgsc, metav1.UpdateOptions{}); err != nil {
		e.t.Fatal(err)
	}
	vgs.Status.CreationTime, vgs.Status.ReadyToUse = &created, ptr(ready)
	if vgs, err = groups.VolumeGroupSnapshots(e.ns).UpdateStatus(e.ctx, vgs, metav1.UpdateOptions{}); err != nil {
		e.t.Fatal(err)
	}
	out.vgs = vgs
	if stage < stageReady {
		return out
	}

	// The controller's members, finished by its snapshot half.
	for _, info := range st.VolumeSnapshotInfoList {
		vs, vscName := e.upstreamMember(vgs, vgsc, info, pvOf[info.VolumeHandle])
		out.members = append(out.members, vs.Name)
		out.memberUIDs = append(out.memberUIDs, vs.UID)
		out.memberContents = append(out.memberContents, vscName)
	}
	if stage < stageDeleting {
		return out
	}

	// The user deletes the group; the controller marks and deletes its
	// content and deletes the members.
	if err := groups.VolumeGroupSnapshots(e.ns).Delete(e.ctx, name, metav1.DeleteOptions{}); err != nil {
		e.t.Fatal(err)
	}
	vgsc.Annotations = map[string]string{upGroupDeleting: "yes"}
	if _, err := groups.VolumeGroupSnapshotContents().Update(e.ctx, vgsc, metav1.UpdateOptions{}); err != nil {
		e.t.Fatal(err)
	}
	if err := groups.VolumeGroupSnapshotContents().Delete(e.ctx, vgsc.Name, metav1.DeleteOptions{}); err != nil {
		e.t.Fatal(err)
	}
	for _, m := range out.members {
		if err := e.snaps.SnapshotV1().VolumeSnapshots(e.ns).Delete(e.ctx, m, metav1.DeleteOptions{}); err != nil {
			e.t.Fatal(err)
		}
	}
	return out
}

// upstreamMember writes the member snapshot and content of info as
// upstream's controller leaves them once ready: named from the sha256 of
// the group's uid and the volume handle, the content with the group
// handle annotation and the content finalizer, the snapshot owned by the
// group with the in-group, as-source and bound finalizers, both bound and
// with their status.
func (e *env) upstreamMember(vgs *groupv1.VolumeGroupSnapshot, vgsc *groupv1.VolumeGroupSnapshotContent, info groupv1.VolumeSnapshotInfo, pv *v1.PersistentVolume) (*crdv1.VolumeSnapshot, string) {
	e.t.Helper()
	id := fmt.Sprintf("%x", sha256.Sum256([]byte(string(vgs.UID)+info.VolumeHandle)))
	handle := *vgsc.Status.VolumeGroupSnapshotHandle
	vsc := &crdv1.VolumeSnapshotContent{
		ObjectMeta: metav1.ObjectMeta{Name: "snapcontent-" + id, Annotations: map[string]string{upMemberHandleAnn: handle},
			Finalizers: []string{upVSCBound}},
		Spec: crdv1.VolumeSnapshotContentSpec{
			VolumeSnapshotRef: v1.ObjectReference{Kind: "VolumeSnapshot", Namespace: e.ns, Name: "snapshot-" + id},
			DeletionPolicy:    vgsc.Spec.DeletionPolicy,
			Driver:            vgsc.Spec.Driver,
			Source:            crdv1.VolumeSnapshotContentSource{VolumeHandle: ptr(info.VolumeHandle)},
			SourceVolumeMode:  pv.Spec.VolumeMode,
		},
	}
	vsc, err := e.snaps.SnapshotV1().VolumeSnapshotContents().Create(e.ctx, vsc, metav1.CreateOptions{})
	if err != nil {
		e.t.Fatal(err)
	}
	vs := &crdv1.VolumeSnapshot{
		ObjectMeta: metav1.ObjectMeta{Name: "snapshot-" + id, Namespace: e.ns,
			OwnerReferences: []metav1.OwnerReference{{APIVersion: upGroupAPIVersion, Kind: "VolumeGroupSnapshot", Name: vgs.Name, UID: vgs.UID}},
			Finalizers:      []string{upVSInGroup, upVSSource, upVSBound}},
		Spec: crdv1.VolumeSnapshotSpec{Source: crdv1.VolumeSnapshotSource{PersistentVolumeClaimName: ptr(pv.Spec.ClaimRef.Name)}},
	}
	if vs, err = e.snaps.SnapshotV1().VolumeSnapshots(e.ns).Create(e.ctx, vs, metav1.CreateOptions{}); err != nil {
		e.t.Fatal(err)
	}
	vsc.Spec.VolumeSnapshotRef.UID = vs.UID
	if vsc, err = e.snaps.SnapshotV1().VolumeSnapshotContents().Update(e.ctx, vsc, metav1.UpdateOptions{}); err != nil {
		e.t.Fatal(err)
	}
	vsc.Status = &crdv1.VolumeSnapshotContentStatus{SnapshotHandle: ptr(info.SnapshotHandle), VolumeGroupSnapshotHandle: ptr(handle),
		CreationTime: info.CreationTime, RestoreSize: info.RestoreSize, ReadyToUse: info.ReadyToUse}
	if _, err = e.snaps.SnapshotV1().VolumeSnapshotContents().UpdateStatus(e.ctx, vsc, metav1.UpdateOptions{}); err != nil {
		e.t.Fatal(err)
	}
	ct := metav1.Unix(0, *info.CreationTime)
	vs.Status = &crdv1.VolumeSnapshotStatus{BoundVolumeSnapshotContentName: &vsc.Name, ReadyToUse: ptr(true), CreationTime: &ct,
		RestoreSize: resource.NewQuantity(*info.RestoreSize, resource.BinarySI), VolumeGroupSnapshotName: ptr(vgs.Name)}
	if vs, err = e.snaps.SnapshotV1().VolumeSnapshots(e.ns).UpdateStatus(e.ctx, vs, metav1.UpdateOptions{}); err != nil {
		e.t.Fatal(err)
	}
	return vs, vsc.Name
}

package faults

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/container-storage-interface/spec/lib/go/csi"
	groupv1 "github.com/kubernetes-csi/external-snapshotter/client/v8/apis/volumegroupsnapshot/v1"
	crdv1 "github.com/kubernetes-csi/external-snapshotter/client/v8/apis/volumesnapshot/v1"
	"google.golang.org/protobuf/proto"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/csi-kit/sidecars/csiconn"
	"github.com/csi-kit/sidecars/provisioner"
	"github.com/csi-kit/sidecars/snapshotter"
	"github.com/csi-kit/sidecars/testkit/eventually"
	"github.com/csi-kit/sidecars/testkit/fakedriver"
)

// Group snapshot names as upstream writes them, spelled out here (not
// taken from package snapshotter) so that a drift fails these tests.
const (
	upVGSBound        = "groupsnapshot.storage.kubernetes.io/volumegroupsnapshot-bound-protection"
	upVGSCBound       = "groupsnapshot.storage.kubernetes.io/volumegroupsnapshotcontent-bound-protection"
	upVSInGroup       = "snapshot.storage.kubernetes.io/volumesnapshot-in-group-protection"
	upGroupCreating   = "groupsnapshot.storage.kubernetes.io/volumegroupsnapshot-being-created"
	upGroupDeleting   = "groupsnapshot.storage.kubernetes.io/volumegroupsnapshot-being-deleted"
	upMemberHandleAnn = "groupsnapshot.storage.k8s.io/volumeGroupSnapshotHandle"
	upGroupAPIVersion = "groupsnapshot.storage.k8s.io/v1"
	upDeletePending   = "SnapshotDeletePending"
	// groupLabel selects the claims of a group snapshot.
	groupLabel = "faults.csi-kit.test/group"
	groupWait  = 60 * time.Second
)

// TestGroupSnapshotEndToEnd: a VolumeGroupSnapshot of three labelled
// claims, cut by our snapshot controller and sidecar on the fake driver,
// through its whole life, once per way it ends.
//
//   - Delete: the group turns ready with three member snapshots and
//     contents (owner reference, status.volumeGroupSnapshotName, the
//     in-group finalizer, contents bound both ways with the backend
//     handles of one backend group); a claim restored from a member binds;
//     deleting a member directly is held (SnapshotDeletePending, the
//     member and its backend snapshot stay) while the group lives;
//     deleting the group removes the group, its content, every member and
//     member content and the backend group and snapshots, leaving no
//     finalizer behind.
//   - Retain: deleting the group removes the group and its member
//     snapshots; the group content, the member contents and the backend
//     group and snapshots stay, unheld; deleting those contents afterwards
//     leaves the backend alone.
//   - namespace: deleting a namespace holding a ready group snapshot ends
//     with the namespace gone and the backend empty.
func TestGroupSnapshotEndToEnd(t *testing.T) {
	t.Run("Delete", func(t *testing.T) {
		e, sc := newGroupEnv(t)
		claims := e.groupClaims("a", sc, "g1", 3)
		e.waitBound(groupWait, claims...)
		e.groupSnapshot("g1", "g1", e.groupClass(crdv1.VolumeSnapshotContentDelete))
		st := e.waitGroupReady("g1", 3)
		e.check()
		e.groupCheck()

		// A claim restored from a member binds, from that member's
		// backend snapshot.
		src := st.members[0]
		e.restoreClaim("restored", sc, src.Name)
		e.waitBound(groupWait, "restored")
		handle := *st.contentOf(src).Status.SnapshotHandle
		if !slices.ContainsFunc(e.drv.Requests("CreateVolume"), func(m proto.Message) bool {
			return m.(*csi.CreateVolumeRequest).GetVolumeContentSource().GetSnapshot().GetSnapshotId() == handle
		}) {
			t.Errorf("no CreateVolume restored from member snapshot %s (handle %s)", src.Name, handle)
		}

		// A member deleted on its own is held while its group lives.
		held := st.members[1]
		if err := e.snaps.SnapshotV1().VolumeSnapshots(e.ns).Delete(e.ctx, held.Name, metav1.DeleteOptions{}); err != nil {
			t.Fatal(err)
		}
		e.waitWarning(held.Name, upDeletePending)
		e.memberHeld(st, held)

		e.deleteGroup("g1")
		e.waitGroupGone(st, true)
		if n := e.drv.Calls("DeleteVolumeGroupSnapshot"); n < 1 {
			t.Errorf("DeleteVolumeGroupSnapshot called %d times, want the backend group deleted", n)
		}
		e.check()
		e.groupCheck()
		e.drain()
	})

	t.Run("Retain", func(t *testing.T) {
		e, sc := newGroupEnv(t)
		claims := e.groupClaims("a", sc, "g2", 3)
		e.waitBound(groupWait, claims...)
		e.groupSnapshot("g2", "g2", e.groupClass(crdv1.VolumeSnapshotContentRetain))
		st := e.waitGroupReady("g2", 3)
		e.deleteGroup("g2")
		e.waitGroupGone(st, false)

		// What Retain keeps: the contents, unheld and not being deleted,
		// and the backend group with its snapshots.
		vgsc, err := e.snaps.GroupsnapshotV1().VolumeGroupSnapshotContents().Get(e.ctx, st.content.Name, metav1.GetOptions{})
		if err != nil {
			t.Fatalf("group content %s under Retain: %v", st.content.Name, err)
		}
		if vgsc.DeletionTimestamp != nil {
			t.Errorf("group content %s being deleted under Retain", vgsc.Name)
		}
		for _, c := range st.memberContents {
			got, err := e.snaps.SnapshotV1().VolumeSnapshotContents().Get(e.ctx, c.Name, metav1.GetOptions{})
			if err != nil {
				t.Errorf("member content %s under Retain: %v", c.Name, err)
				continue
			}
			if got.DeletionTimestamp != nil {
				t.Errorf("member content %s being deleted under Retain", c.Name)
			}
		}
		groups := e.drv.GroupSnapshots()
		if len(groups) != 1 || len(groups[0].SnapshotIDs) != 3 || len(e.drv.Snapshots()) != 3 {
			t.Errorf("backend after a Retain group went: groups %+v, %d snapshots; want the group and its 3 snapshots", groups, len(e.drv.Snapshots()))
		}
		if n := e.drv.Calls("DeleteVolumeGroupSnapshot") + e.drv.Calls("DeleteSnapshot"); n != 0 {
			t.Errorf("%d backend deletes under Retain", n)
		}
		e.check()
		e.groupCheck()

		// The retained contents go when deleted, and the backend stays.
		if err := e.snaps.GroupsnapshotV1().VolumeGroupSnapshotContents().Delete(e.ctx, vgsc.Name, metav1.DeleteOptions{}); err != nil {
			t.Fatal(err)
		}
		for _, c := range st.memberContents {
			if err := e.snaps.SnapshotV1().VolumeSnapshotContents().Delete(e.ctx, c.Name, metav1.DeleteOptions{}); err != nil {
				t.Fatal(err)
			}
		}
		eventually.Require(t, groupWait, "retained contents gone", func(ctx context.Context) error {
			if err := gone(e.snaps.GroupsnapshotV1().VolumeGroupSnapshotContents().Get(ctx, vgsc.Name, metav1.GetOptions{})); err != nil {
				return err
			}
			for _, c := range st.memberContents {
				if err := gone(e.snaps.SnapshotV1().VolumeSnapshotContents().Get(ctx, c.Name, metav1.GetOptions{})); err != nil {
					return err
				}
			}
			return nil
		})
		if len(e.drv.GroupSnapshots()) != 1 || len(e.drv.Snapshots()) != 3 {
			t.Errorf("backend changed when the retained contents went: %d groups, %d snapshots", len(e.drv.GroupSnapshots()), len(e.drv.Snapshots()))
		}
		e.groupCheck()
		e.drain()
	})

	t.Run("namespace", func(t *testing.T) {
		e, sc := newGroupEnv(t)
		claims := e.groupClaims("a", sc, "g3", 3)
		e.waitBound(groupWait, claims...)
		e.groupSnapshot("g3", "g3", e.groupClass(crdv1.VolumeSnapshotContentDelete))
		st := e.waitGroupReady("g3", 3)
		e.namespaceGoes()
		eventually.Require(t, groupWait, "the namespace's group, contents, volumes and backend gone", func(ctx context.Context) error {
			if err := gone(e.snaps.GroupsnapshotV1().VolumeGroupSnapshotContents().Get(ctx, st.content.Name, metav1.GetOptions{})); err != nil {
				return err
			}
			for _, c := range st.memberContents {
				if err := gone(e.snaps.SnapshotV1().VolumeSnapshotContents().Get(ctx, c.Name, metav1.GetOptions{})); err != nil {
					return err
				}
			}
			pvs, err := e.pvs()
			if err != nil {
				return err
			}
			if g, s, v := len(e.drv.GroupSnapshots()), len(e.drv.Snapshots()), len(e.drv.Volumes()); g+s+v+len(pvs) > 0 {
				return fmt.Errorf("backend: %d groups, %d snapshots, %d volumes; %d PVs", g, s, v, len(pvs))
			}
			return nil
		})
		e.check()
		e.groupCheck()
	})
}

// groupCaps are snapshotCaps plus the group controller service.
func groupCaps() fakedriver.Capabilities {
	caps := snapshotCaps()
	caps.GroupController = true
	return caps
}

// newGroupEnv starts a case of category "group": a driver with group
// snapshots, a storage class, and our provisioner, snapshot controller
// and snapshot sidecar. It returns the class name.
func newGroupEnv(t *testing.T) (*env, string) {
	e := newEnv(t, "group", fakedriver.Options{Capabilities: groupCaps()})
	conn := e.connect(csiconn.Options{})
	sc := e.class("sc", nil)
	e.startProvisioner(e.ctx, provisioner.Options{}, conn)
	e.startSnapshotters(conn)
	return e, sc.Name
}

// startSnapshotters runs our snapshot controller and sidecar on conn.
func (e *env) startSnapshotters(conn *csiconn.Conn) {
	e.t.Helper()
	ctl, err := snapshotter.NewController(snapshotter.ControllerOptions{SnapshotClient: e.snaps, RetryIntervalStart: 100 * time.Millisecond,
		RetryIntervalMax: 2 * time.Second}, e.kube)
	if err != nil {
		e.t.Fatal(err)
	}
	e.run("snapshot-controller", e.ctx, ctl.Run)
	e.run("snapshotter", e.ctx, e.newSidecar(conn).Run)
}

// groupClass creates a VolumeGroupSnapshotClass of the case's driver with
// policy, deleted at cleanup, and returns its name.
func (e *env) groupClass(policy crdv1.DeletionPolicy) string {
	e.t.Helper()
	c := &groupv1.VolumeGroupSnapshotClass{ObjectMeta: metav1.ObjectMeta{Name: e.ns + "-vgsc-" + strings.ToLower(string(policy))},
		Driver: e.driver, DeletionPolicy: policy}
	if _, err := e.snaps.GroupsnapshotV1().VolumeGroupSnapshotClasses().Create(e.ctx, c, metav1.CreateOptions{}); err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(func() {
		_ = e.snaps.GroupsnapshotV1().VolumeGroupSnapshotClasses().Delete(context.Background(), c.Name, metav1.DeleteOptions{})
	})
	return c.Name
}

// groupClaims creates n claims prefix-i of class labelled for group.
func (e *env) groupClaims(prefix, class, group string, n int) []string {
	e.t.Helper()
	var names []string
	for i := range n {
		c := e.newClaim(fmt.Sprintf("%s-%d", prefix, i), class, "1Gi")
		c.Labels = map[string]string{groupLabel: group}
		if _, err := e.kube.CoreV1().PersistentVolumeClaims(e.ns).Create(e.ctx, c, metav1.CreateOptions{}); err != nil {
			e.t.Fatal(err)
		}
		names = append(names, c.Name)
	}
	return names
}

// groupSnapshot creates a VolumeGroupSnapshot of the claims labelled group.
func (e *env) groupSnapshot(name, group, class string) *groupv1.VolumeGroupSnapshot {
	e.t.Helper()
	vgs := &groupv1.VolumeGroupSnapshot{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: e.ns},
		Spec: groupv1.VolumeGroupSnapshotSpec{VolumeGroupSnapshotClassName: &class,
			Source: groupv1.VolumeGroupSnapshotSource{Selector: &metav1.LabelSelector{MatchLabels: map[string]string{groupLabel: group}}}}}
	vgs, err := e.snaps.GroupsnapshotV1().VolumeGroupSnapshots(e.ns).Create(e.ctx, vgs, metav1.CreateOptions{})
	if err != nil {
		e.t.Fatal(err)
	}
	return vgs
}

func (e *env) deleteGroup(name string) {
	e.t.Helper()
	if err := e.snaps.GroupsnapshotV1().VolumeGroupSnapshots(e.ns).Delete(e.ctx, name, metav1.DeleteOptions{}); err != nil {
		e.t.Fatal(err)
	}
}

// groupState is a group snapshot with its content and members as read
// from the API server.
type groupState struct {
	vgs            *groupv1.VolumeGroupSnapshot
	content        *groupv1.VolumeGroupSnapshotContent
	members        []crdv1.VolumeSnapshot
	memberContents []crdv1.VolumeSnapshotContent
}

func (s groupState) contentOf(vs crdv1.VolumeSnapshot) *crdv1.VolumeSnapshotContent {
	for i := range s.memberContents {
		if vs.Status != nil && vs.Status.BoundVolumeSnapshotContentName != nil && s.memberContents[i].Name == *vs.Status.BoundVolumeSnapshotContentName {
			return &s.memberContents[i]
		}
	}
	return nil
}

// readGroup reads group snapshot name, its bound content, its members
// (snapshots owned by it) and their bound contents.
func (e *env) readGroup(ctx context.Context, name string) (groupState, error) {
	var s groupState
	vgs, err := e.snaps.GroupsnapshotV1().VolumeGroupSnapshots(e.ns).Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		return s, err
	}
	s.vgs = vgs
	if vgs.Status != nil && vgs.Status.BoundVolumeGroupSnapshotContentName != nil {
		if s.content, err = e.snaps.GroupsnapshotV1().VolumeGroupSnapshotContents().Get(ctx, *vgs.Status.BoundVolumeGroupSnapshotContentName, metav1.GetOptions{}); err != nil {
			return s, err
		}
	}
	list, err := e.snaps.SnapshotV1().VolumeSnapshots(e.ns).List(ctx, metav1.ListOptions{})
	if err != nil {
		return s, err
	}
	for _, vs := range list.Items {
		if !slices.ContainsFunc(vs.OwnerReferences, func(r metav1.OwnerReference) bool {
			return r.APIVersion == upGroupAPIVersion && r.Kind == "VolumeGroupSnapshot" && r.UID == vgs.UID
		}) {
			continue
		}
		s.members = append(s.members, vs)
		if vs.Status == nil || vs.Status.BoundVolumeSnapshotContentName == nil {
			continue
		}
		c, err := e.snaps.SnapshotV1().VolumeSnapshotContents().Get(ctx, *vs.Status.BoundVolumeSnapshotContentName, metav1.GetOptions{})
		if err != nil {
			return s, err
		}
		s.memberContents = append(s.memberContents, *c)
	}
	return s, nil
}

// waitGroupReady waits until group snapshot name is ready with n members,
// each as upstream makes them: ready, bound both ways to a content that
// carries the group handle, with status.volumeGroupSnapshotName and the
// in-group finalizer, and backed by a snapshot of the one backend group.
func (e *env) waitGroupReady(name string, n int) groupState {
	e.t.Helper()
	var s groupState
	eventually.Require(e.t, groupWait, "group snapshot "+name+" ready with its members", func(ctx context.Context) error {
		var err error
		if s, err = e.readGroup(ctx, name); err != nil {
			return err
		}
		return s.readyProblem(e, n)
	})
	return s
}

// readyProblem says what keeps s from being a ready group of n members
// cut by the case's driver; nil when nothing.
func (s groupState) readyProblem(e *env, n int) error {
	vgs, c := s.vgs, s.content
	switch {
	case vgs.Status == nil || vgs.Status.ReadyToUse == nil || !*vgs.Status.ReadyToUse:
		return fmt.Errorf("group %s not ready: %+v", vgs.Name, vgs.Status)
	case vgs.Status.CreationTime == nil:
		return fmt.Errorf("group %s has no creation time", vgs.Name)
	case !slices.Contains(vgs.Finalizers, upVGSBound):
		return fmt.Errorf("group %s lacks %s: %v", vgs.Name, upVGSBound, vgs.Finalizers)
	case c == nil:
		return fmt.Errorf("group %s has no content", vgs.Name)
	case c.Spec.VolumeGroupSnapshotRef.UID != vgs.UID:
		return fmt.Errorf("group content %s points to uid %s, not %s", c.Name, c.Spec.VolumeGroupSnapshotRef.UID, vgs.UID)
	case !slices.Contains(c.Finalizers, upVGSCBound):
		return fmt.Errorf("group content %s lacks %s: %v", c.Name, upVGSCBound, c.Finalizers)
	case c.Annotations[upGroupCreating] != "":
		return fmt.Errorf("group content %s still marked being-created", c.Name)
	case c.Status == nil || c.Status.VolumeGroupSnapshotHandle == nil || c.Status.ReadyToUse == nil || !*c.Status.ReadyToUse:
		return fmt.Errorf("group content %s not ready: %+v", c.Name, c.Status)
	case len(s.members) != n || len(s.memberContents) != n:
		return fmt.Errorf("%d members with %d bound contents, want %d", len(s.members), len(s.memberContents), n)
	}
	handle := *c.Status.VolumeGroupSnapshotHandle
	var backend *fakedriver.GroupSnapshot
	for _, g := range e.drv.GroupSnapshots() {
		if g.ID == handle {
			backend = &g
		}
	}
	if backend == nil {
		return fmt.Errorf("group handle %s not in the backend", handle)
	}
	if len(backend.SnapshotIDs) != n {
		return fmt.Errorf("backend group %s has %d snapshots, want %d", handle, len(backend.SnapshotIDs), n)
	}
	for _, vs := range s.members {
		vsc := s.contentOf(vs)
		switch {
		case vs.Status == nil || vs.Status.ReadyToUse == nil || !*vs.Status.ReadyToUse:
			return fmt.Errorf("member %s not ready", vs.Name)
		case vs.Status.VolumeGroupSnapshotName == nil || *vs.Status.VolumeGroupSnapshotName != vgs.Name:
			return fmt.Errorf("member %s: status.volumeGroupSnapshotName %v, want %s", vs.Name, vs.Status.VolumeGroupSnapshotName, vgs.Name)
		case !slices.Contains(vs.Finalizers, upVSInGroup):
			return fmt.Errorf("member %s lacks %s: %v", vs.Name, upVSInGroup, vs.Finalizers)
		case vsc == nil || vsc.Spec.VolumeSnapshotRef.UID != vs.UID || vsc.Spec.VolumeSnapshotRef.Name != vs.Name:
			return fmt.Errorf("member %s and its content are not bound both ways", vs.Name)
		case vsc.Annotations[upMemberHandleAnn] != handle:
			return fmt.Errorf("member content %s: %s=%q, want %q", vsc.Name, upMemberHandleAnn, vsc.Annotations[upMemberHandleAnn], handle)
		case vsc.Spec.DeletionPolicy != c.Spec.DeletionPolicy:
			return fmt.Errorf("member content %s has policy %s, the group content %s", vsc.Name, vsc.Spec.DeletionPolicy, c.Spec.DeletionPolicy)
		case vsc.Status == nil || vsc.Status.SnapshotHandle == nil || !slices.Contains(backend.SnapshotIDs, *vsc.Status.SnapshotHandle):
			return fmt.Errorf("member content %s: snapshot handle not one of backend group %s", vsc.Name, handle)
		case vsc.Status.VolumeGroupSnapshotHandle == nil || *vsc.Status.VolumeGroupSnapshotHandle != handle:
			return fmt.Errorf("member content %s: status.volumeGroupSnapshotHandle %v, want %s", vsc.Name, vsc.Status.VolumeGroupSnapshotHandle, handle)
		}
	}
	return nil
}

// waitWarning waits for a Warning event of reason on object name in the
// case's namespace.
func (e *env) waitWarning(name, reason string) {
	e.t.Helper()
	eventually.Require(e.t, groupWait, reason+" on "+name, func(context.Context) error {
		w, err := e.warnings()
		if err != nil {
			return err
		}
		for _, m := range w[name] {
			if strings.HasPrefix(m, reason+": ") {
				return nil
			}
		}
		return fmt.Errorf("warnings on %s: %q", name, w[name])
	})
}

// memberHeld checks that member vs, deleted on its own, is still there
// with its in-group finalizer, its content not deleted and its backend
// snapshot kept.
func (e *env) memberHeld(s groupState, vs crdv1.VolumeSnapshot) {
	e.t.Helper()
	got, err := e.snaps.SnapshotV1().VolumeSnapshots(e.ns).Get(e.ctx, vs.Name, metav1.GetOptions{})
	if err != nil {
		e.t.Fatalf("member %s deleted while its group lives: %v", vs.Name, err)
	}
	if got.DeletionTimestamp == nil || !slices.Contains(got.Finalizers, upVSInGroup) {
		e.t.Errorf("member %s: deletion %v, finalizers %v; want deleted and held by %s", vs.Name, got.DeletionTimestamp, got.Finalizers, upVSInGroup)
	}
	vsc := s.contentOf(vs)
	c, err := e.snaps.SnapshotV1().VolumeSnapshotContents().Get(e.ctx, vsc.Name, metav1.GetOptions{})
	if err != nil || c.DeletionTimestamp != nil {
		e.t.Errorf("content %s of a held member: %v, deletion %v", vsc.Name, err, c.GetDeletionTimestamp())
	}
	if !slices.ContainsFunc(e.drv.Snapshots(), func(b fakedriver.Snapshot) bool { return b.ID == *vsc.Status.SnapshotHandle }) {
		e.t.Errorf("backend snapshot %s of a held member deleted", *vsc.Status.SnapshotHandle)
	}
}

// waitGroupGone waits until the group of s and its member snapshots are
// gone; with contents, also its content, the member contents and the
// backend group and snapshots.
func (e *env) waitGroupGone(s groupState, contents bool) {
	e.t.Helper()
	eventually.Require(e.t, groupWait, "group snapshot "+s.vgs.Name+" and its members gone", func(ctx context.Context) error {
		if err := gone(e.snaps.GroupsnapshotV1().VolumeGroupSnapshots(e.ns).Get(ctx, s.vgs.Name, metav1.GetOptions{})); err != nil {
			return err
		}
		for _, vs := range s.members {
			if err := gone(e.snaps.SnapshotV1().VolumeSnapshots(e.ns).Get(ctx, vs.Name, metav1.GetOptions{})); err != nil {
				return err
			}
		}
		if !contents {
			return nil
		}
		if err := gone(e.snaps.GroupsnapshotV1().VolumeGroupSnapshotContents().Get(ctx, s.content.Name, metav1.GetOptions{})); err != nil {
			return err
		}
		for _, c := range s.memberContents {
			if err := gone(e.snaps.SnapshotV1().VolumeSnapshotContents().Get(ctx, c.Name, metav1.GetOptions{})); err != nil {
				return err
			}
		}
		handle := *s.content.Status.VolumeGroupSnapshotHandle
		for _, g := range e.drv.GroupSnapshots() {
			if g.ID == handle {
				return fmt.Errorf("backend group %s still there", handle)
			}
		}
		for _, b := range e.drv.Snapshots() {
			if b.GroupSnapshotID == handle {
				return fmt.Errorf("backend snapshot %s of group %s still there", b.ID, handle)
			}
		}
		return nil
	})
}

// named is what gone reports of an object.
type named interface {
	GetName() string
	GetFinalizers() []string
}

// gone turns a Get's answer into nil for NotFound, else an error naming
// what is still there (and the finalizers holding it).
func gone[T named](obj T, err error) error {
	switch {
	case apierrors.IsNotFound(err):
		return nil
	case err != nil:
		return err
	}
	return fmt.Errorf("%T %s still there (finalizers %v)", obj, obj.GetName(), obj.GetFinalizers())
}

// groupCheck is check's finalizer invariant for group snapshots: no group
// snapshot of the case's namespace and no group content of its driver is
// deleted but held by a finalizer once the controllers had time to act.
func (e *env) groupCheck() {
	e.t.Helper()
	var last string
	if !poll(settle, func() (bool, string) {
		last = e.groupStuck()
		return last == "", last
	}) {
		tallies.add(e.category, func(c *tally) { c.Stuck++ })
		e.t.Errorf("group finalizer invariant: %s", last)
	}
}

func (e *env) groupStuck() string {
	var msgs []string
	groups, err := e.snaps.GroupsnapshotV1().VolumeGroupSnapshots(e.ns).List(e.ctx, metav1.ListOptions{})
	if err != nil {
		return err.Error()
	}
	for _, g := range groups.Items {
		if g.DeletionTimestamp != nil && len(g.Finalizers) > 0 {
			msgs = append(msgs, fmt.Sprintf("group snapshot %s deleted, finalizers %v", g.Name, g.Finalizers))
		}
	}
	contents, err := e.snaps.GroupsnapshotV1().VolumeGroupSnapshotContents().List(e.ctx, metav1.ListOptions{})
	if err != nil {
		return err.Error()
	}
	for _, c := range contents.Items {
		if c.Spec.Driver == e.driver && c.DeletionTimestamp != nil && len(c.Finalizers) > 0 {
			msgs = append(msgs, fmt.Sprintf("group content %s deleted, finalizers %v", c.Name, c.Finalizers))
		}
	}
	return strings.Join(msgs, "; ")
}

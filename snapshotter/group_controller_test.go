package snapshotter

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	groupv1 "github.com/kubernetes-csi/external-snapshotter/client/v8/apis/volumegroupsnapshot/v1"
	crdv1 "github.com/kubernetes-csi/external-snapshotter/client/v8/apis/volumesnapshot/v1"
	v1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/csi-kit/sidecars/testkit/eventually"
)

// Integration tests of the group part of the common controller, on the
// real control plane with the snapshot sidecar of this package running
// (it releases member contents). The group half of the sidecar is not
// part of this package yet: groupSidecarStandIn plays it.

const groupWait = 30 * time.Second

// groupSidecarStandIn writes what the csi-snapshotter's group half would
// write on a VolumeGroupSnapshotContent, so that the common controller can
// be tested alone: the status after CreateVolumeGroupSnapshot (group
// handle, readyToUse, creation time, one info entry per volume), and, on
// a deleted content marked being-deleted, the removal of its finalizer.
// It calls no driver.
type groupSidecarStandIn struct{ e *env }

// cut writes the status of a group content the driver cut: group handle
// "group-<name>", each volume's snapshot "snap-<volume handle>", 1Gi each.
func (s groupSidecarStandIn) cut(t *testing.T, name string, ready bool) *groupv1.VolumeGroupSnapshotContent {
	t.Helper()
	api := s.e.snap.GroupsnapshotV1().VolumeGroupSnapshotContents()
	vgsc, err := api.Get(s.e.ctx, name, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	now := metav1.Now()
	st := &groupv1.VolumeGroupSnapshotContentStatus{
		VolumeGroupSnapshotHandle: ptr("group-" + name), CreationTime: &now, ReadyToUse: ptr(ready),
	}
	for _, h := range vgsc.Spec.Source.VolumeHandles {
		st.VolumeSnapshotInfoList = append(st.VolumeSnapshotInfoList, groupv1.VolumeSnapshotInfo{
			VolumeHandle: h, SnapshotHandle: "snap-" + h, CreationTime: ptr(now.UnixNano()), ReadyToUse: ptr(ready), RestoreSize: ptr(int64(1 << 30)),
		})
	}
	vgsc.Status = st
	out, err := api.UpdateStatus(s.e.ctx, vgsc, metav1.UpdateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// release waits for the common controller to delete the content (marked
// being deleted) and then drops its finalizer, as the sidecar does after
// DeleteVolumeGroupSnapshot.
func (s groupSidecarStandIn) release(t *testing.T, name string) {
	t.Helper()
	api := s.e.snap.GroupsnapshotV1().VolumeGroupSnapshotContents()
	eventually.Require(t, groupWait, "group content "+name+" deleted and marked being deleted", func(ctx context.Context) error {
		vgsc, err := api.Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return err
		}
		if vgsc.DeletionTimestamp == nil || vgsc.Annotations[AnnGroupBeingDeleted] != annYes {
			return fmt.Errorf("deletionTimestamp %v, annotations %v", vgsc.DeletionTimestamp, vgsc.Annotations)
		}
		patch := finalizersPatch(vgsc.ResourceVersion, withoutFinalizers(vgsc.Finalizers, FinalizerGroupContentBound))
		_, err = api.Patch(ctx, name, types.MergePatchType, patch, metav1.PatchOptions{})
		return err
	})
}

func (e *env) groupClass(name string, policy crdv1.DeletionPolicy, isDefault bool) string {
	e.t.Helper()
	c := &groupv1.VolumeGroupSnapshotClass{ObjectMeta: metav1.ObjectMeta{Name: e.ns + "-" + name}, Driver: e.driver, DeletionPolicy: policy,
		Parameters: map[string]string{
			paramGroupSecretName: "${volumegroupsnapshot.name}-secret",
			paramGroupSecretNS:   "${volumegroupsnapshot.namespace}",
		}}
	if isDefault {
		c.Annotations = map[string]string{AnnDefaultGroupClass: "true"}
	}
	if _, err := e.snap.GroupsnapshotV1().VolumeGroupSnapshotClasses().Create(e.ctx, c, metav1.CreateOptions{}); err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(func() {
		_ = e.snap.GroupsnapshotV1().VolumeGroupSnapshotClasses().Delete(context.Background(), c.Name, metav1.DeleteOptions{})
	})
	return c.Name
}

// labelledVolume is e.volume with labels on the claim.
func (e *env) labelledVolume(name string, labels map[string]string) *v1.PersistentVolumeClaim {
	e.t.Helper()
	e.volume(name)
	patch := mustJSON(map[string]any{"metadata": map[string]any{"labels": labels}})
	pvc, err := e.kube.CoreV1().PersistentVolumeClaims(e.ns).Patch(e.ctx, name, types.MergePatchType, patch, metav1.PatchOptions{})
	if err != nil {
		e.t.Fatal(err)
	}
	return pvc
}

func (e *env) groupSnapshot(name string, src groupv1.VolumeGroupSnapshotSource, class string) *groupv1.VolumeGroupSnapshot {
	e.t.Helper()
	vgs := &groupv1.VolumeGroupSnapshot{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: e.ns}, Spec: groupv1.VolumeGroupSnapshotSpec{Source: src}}
	if class != "" {
		vgs.Spec.VolumeGroupSnapshotClassName = &class
	}
	vgs, err := e.snap.GroupsnapshotV1().VolumeGroupSnapshots(e.ns).Create(e.ctx, vgs, metav1.CreateOptions{})
	if err != nil {
		e.t.Fatal(err)
	}
	return vgs
}

func selectLabels(l map[string]string) groupv1.VolumeGroupSnapshotSource {
	return groupv1.VolumeGroupSnapshotSource{Selector: &metav1.LabelSelector{MatchLabels: l}}
}

func (e *env) getGroup(name string) (*groupv1.VolumeGroupSnapshot, error) {
	return e.snap.GroupsnapshotV1().VolumeGroupSnapshots(e.ns).Get(e.ctx, name, metav1.GetOptions{})
}

func (e *env) getGroupContent(name string) (*groupv1.VolumeGroupSnapshotContent, error) {
	return e.snap.GroupsnapshotV1().VolumeGroupSnapshotContents().Get(e.ctx, name, metav1.GetOptions{})
}

// waitGroupContent waits for the content of a dynamic group and returns it.
func (e *env) waitGroupContent(vgs *groupv1.VolumeGroupSnapshot) *groupv1.VolumeGroupSnapshotContent {
	e.t.Helper()
	var vgsc *groupv1.VolumeGroupSnapshotContent
	eventually.Require(e.t, groupWait, "group content of "+vgs.Name, func(context.Context) error {
		var err error
		vgsc, err = e.getGroupContent(GroupContentNamePrefix + string(vgs.UID))
		return err
	})
	return vgsc
}

// groupEvent waits for an event of reason on the named object whose
// message contains contains.
func (e *env) groupEvent(name, reason, contains string) {
	e.t.Helper()
	eventually.Require(e.t, groupWait, "event "+reason+" on "+name, func(ctx context.Context) error {
		list, err := e.kube.CoreV1().Events(e.ns).List(ctx, metav1.ListOptions{})
		if err != nil {
			return err
		}
		var seen []string
		for _, ev := range list.Items {
			if ev.InvolvedObject.Name == name && ev.Reason == reason && strings.Contains(ev.Message, contains) {
				return nil
			}
			seen = append(seen, ev.InvolvedObject.Name+" "+ev.Reason+": "+ev.Message)
		}
		return fmt.Errorf("events seen: %q", seen)
	})
}

// members lists the member snapshots of the group named name.
func (e *env) members(ctx context.Context, name string) ([]crdv1.VolumeSnapshot, error) {
	list, err := e.snap.SnapshotV1().VolumeSnapshots(e.ns).List(ctx, metav1.ListOptions{})
	if err != nil {
		return nil, err
	}
	var out []crdv1.VolumeSnapshot
	for _, vs := range list.Items {
		if g, _, ok := groupOf(&vs); ok && g == name {
			out = append(out, vs)
		}
	}
	return out, nil
}

// readyGroup builds a group of three labelled volumes (and one unlabelled
// one it must leave out) under a class of policy, has the stand-in cut
// it, and waits for the group and its three members to be ready. The
// controller runs with opts (retry intervals defaulted by startController).
func readyGroup(t *testing.T, e *env, policy crdv1.DeletionPolicy, opts ...ControllerOptions) (*groupv1.VolumeGroupSnapshot, *groupv1.VolumeGroupSnapshotContent, []crdv1.VolumeSnapshot) {
	t.Helper()
	class := e.groupClass("group", policy, false)
	claims := map[string]*v1.PersistentVolumeClaim{}
	for _, n := range []string{"db-a", "db-b", "db-c"} {
		claims[n] = e.labelledVolume(n, map[string]string{"app": "db"})
	}
	e.labelledVolume("web", map[string]string{"app": "web"})
	e.startController(append(opts, ControllerOptions{})[0])
	e.startSidecar(SidecarOptions{DisableVolumeGroupSnapshots: true}) // the stand-in above plays the group sidecar
	vgs := e.groupSnapshot("group", selectLabels(map[string]string{"app": "db"}), class)

	vgsc := e.waitGroupContent(vgs)
	var want []string
	for _, n := range []string{"db-a", "db-b", "db-c"} {
		pv, err := e.kube.CoreV1().PersistentVolumes().Get(e.ctx, claims[n].Spec.VolumeName, metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		want = append(want, pv.Spec.CSI.VolumeHandle)
	}
	if got := vgsc.Spec.Source.VolumeHandles; !slices.Equal(got, want) {
		t.Errorf("group content volume handles = %v, want %v (the three db claims, by name)", got, want)
	}
	if vgsc.Spec.VolumeGroupSnapshotRef.UID != vgs.UID || vgsc.Spec.Driver != e.driver || vgsc.Spec.DeletionPolicy != policy ||
		vgsc.Spec.VolumeGroupSnapshotClassName == nil || *vgsc.Spec.VolumeGroupSnapshotClassName != class ||
		!slices.Contains(vgsc.Finalizers, FinalizerGroupContentBound) ||
		vgsc.Annotations[AnnGroupDeletionSecretName] != "group-secret" || vgsc.Annotations[AnnGroupDeletionSecretNamespace] != e.ns {
		t.Errorf("group content = %+v", vgsc)
	}
	e.groupEvent("group", ReasonCreatingGroupSnapshot, "Waiting for a group snapshot")
	eventually.Require(t, groupWait, "group bound, with its finalizer", func(context.Context) error {
		got, err := e.getGroup("group")
		if err != nil {
			return err
		}
		if got.Status == nil || got.Status.BoundVolumeGroupSnapshotContentName == nil || *got.Status.BoundVolumeGroupSnapshotContentName != vgsc.Name ||
			!slices.Contains(got.Finalizers, FinalizerGroupSnapshotBound) {
			return fmt.Errorf("status %+v, finalizers %v", got.Status, got.Finalizers)
		}
		return nil
	})

	groupSidecarStandIn{e}.cut(t, vgsc.Name, true)

	var members []crdv1.VolumeSnapshot
	eventually.Require(t, groupWait, "three ready members", func(ctx context.Context) error {
		var err error
		if members, err = e.members(ctx, "group"); err != nil {
			return err
		}
		if len(members) != 3 {
			return fmt.Errorf("%d members", len(members))
		}
		for _, m := range members {
			if m.Status == nil || m.Status.ReadyToUse == nil || !*m.Status.ReadyToUse {
				return fmt.Errorf("member %s status %+v", m.Name, m.Status)
			}
		}
		return nil
	})
	sources := map[string]bool{}
	for _, m := range members {
		src := *m.Spec.Source.PersistentVolumeClaimName
		sources[src] = true
		vh := ""
		for _, n := range []string{"db-a", "db-b", "db-c"} {
			if n == src {
				pv, _ := e.kube.CoreV1().PersistentVolumes().Get(e.ctx, claims[n].Spec.VolumeName, metav1.GetOptions{})
				vh = pv.Spec.CSI.VolumeHandle
			}
		}
		id := memberID(vgs.UID, vh)
		if m.Name != "snapshot-"+id || !slices.Contains(m.Finalizers, FinalizerSnapshotInGroup) || m.Spec.VolumeSnapshotClassName != nil ||
			m.Status.VolumeGroupSnapshotName == nil || *m.Status.VolumeGroupSnapshotName != "group" ||
			*m.Status.BoundVolumeSnapshotContentName != "snapcontent-"+id || m.Status.RestoreSize == nil || m.Status.RestoreSize.Value() != 1<<30 {
			t.Errorf("member %s = %+v", m.Name, m)
		}
		vsc, err := e.snap.SnapshotV1().VolumeSnapshotContents().Get(e.ctx, "snapcontent-"+id, metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if vsc.Annotations[AnnGroupSnapshotHandle] != "group-"+vgsc.Name || vsc.Spec.VolumeSnapshotRef.UID != m.UID ||
			vsc.Spec.VolumeSnapshotClassName != nil || vsc.Spec.DeletionPolicy != policy || vsc.Spec.Driver != e.driver ||
			vsc.Status == nil || vsc.Status.SnapshotHandle == nil || *vsc.Status.SnapshotHandle != "snap-"+vh ||
			vsc.Status.VolumeGroupSnapshotHandle == nil || vsc.Annotations[AnnDeletionSecretName] != "group-secret" {
			t.Errorf("member content %s = %+v", vsc.Name, vsc)
		}
	}
	if len(sources) != 3 || sources["web"] {
		t.Errorf("member sources %v, want the three db claims", sources)
	}
	eventually.Require(t, groupWait, "group ready", func(context.Context) error {
		got, err := e.getGroup("group")
		if err != nil {
			return err
		}
		if got.Status == nil || got.Status.ReadyToUse == nil || !*got.Status.ReadyToUse || got.Status.CreationTime == nil {
			return fmt.Errorf("status %+v", got.Status)
		}
		vgs = got
		return nil
	})
	e.groupEvent("group", ReasonGroupSnapshotCreated, "was successfully created")
	e.groupEvent("group", ReasonGroupSnapshotReady, "is ready to use")
	if vgsc, err := e.getGroupContent(vgsc.Name); err == nil {
		return vgs, vgsc, members
	} else {
		t.Fatal(err)
	}
	return nil, nil, nil
}

func TestGroupDynamicSnapshotReady(t *testing.T) {
	e := newEnv(t, envOptions{})
	readyGroup(t, e, crdv1.VolumeSnapshotContentDelete)
	if snaps := e.drv.Snapshots(); len(snaps) != 0 {
		t.Errorf("backend snapshots %+v: members must never be cut on their own", snaps)
	}
}

func TestGroupDeleteWithDeletePolicy(t *testing.T) {
	e := newEnv(t, envOptions{})
	vgs, vgsc, members := readyGroup(t, e, crdv1.VolumeSnapshotContentDelete)

	// A member alone may not go while its group lives.
	lone := members[0]
	if err := e.snap.SnapshotV1().VolumeSnapshots(e.ns).Delete(e.ctx, lone.Name, metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	e.groupEvent(lone.Name, ReasonSnapshotDeletePending, "belongs to group snapshot "+e.ns+"/group")
	if got, err := e.getVS(lone.Name); err != nil || !slices.Contains(got.Finalizers, FinalizerSnapshotInGroup) {
		t.Fatalf("member deleted alone: %v, finalizers %v; want it kept with the in-group finalizer", err, got.Finalizers)
	}

	if err := e.snap.GroupsnapshotV1().VolumeGroupSnapshots(e.ns).Delete(e.ctx, vgs.Name, metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	groupSidecarStandIn{e}.release(t, vgsc.Name)
	eventually.Require(t, groupWait, "group, its content and members gone", func(ctx context.Context) error {
		var left []string
		if _, err := e.getGroup(vgs.Name); !apierrors.IsNotFound(err) {
			left = append(left, fmt.Sprintf("group (%v)", err))
		}
		if _, err := e.getGroupContent(vgsc.Name); !apierrors.IsNotFound(err) {
			left = append(left, fmt.Sprintf("group content (%v)", err))
		}
		for _, m := range members {
			if _, err := e.getVS(m.Name); !apierrors.IsNotFound(err) {
				left = append(left, "member "+m.Name)
			}
			if _, err := e.snap.SnapshotV1().VolumeSnapshotContents().Get(ctx, *m.Status.BoundVolumeSnapshotContentName, metav1.GetOptions{}); !apierrors.IsNotFound(err) {
				left = append(left, "member content "+*m.Status.BoundVolumeSnapshotContentName)
			}
		}
		if len(left) > 0 {
			return errors.New("left: " + strings.Join(left, ", "))
		}
		return nil
	})
}

// TestGroupGoneReleasesHeldMembers: a member deleted while its group lives
// is held; when the group goes, the member is looked at again at once, not
// after its retry backoff (a minute here, longer than the wait below).
func TestGroupGoneReleasesHeldMembers(t *testing.T) {
	e := newEnv(t, envOptions{})
	vgs, vgsc, members := readyGroup(t, e, crdv1.VolumeSnapshotContentDelete,
		ControllerOptions{RetryIntervalStart: time.Minute, RetryIntervalMax: time.Minute})
	lone := members[0]
	if err := e.snap.SnapshotV1().VolumeSnapshots(e.ns).Delete(e.ctx, lone.Name, metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	e.groupEvent(lone.Name, ReasonSnapshotDeletePending, "belongs to group snapshot "+e.ns+"/group")
	if err := e.snap.GroupsnapshotV1().VolumeGroupSnapshots(e.ns).Delete(e.ctx, vgs.Name, metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	groupSidecarStandIn{e}.release(t, vgsc.Name)
	eventually.Require(t, groupWait, "the held member gone with its group", func(context.Context) error {
		if _, err := e.getGroup(vgs.Name); !apierrors.IsNotFound(err) {
			return fmt.Errorf("group still there (%v)", err)
		}
		if _, err := e.getVS(lone.Name); !apierrors.IsNotFound(err) {
			return fmt.Errorf("member %s still there (%v)", lone.Name, err)
		}
		return nil
	})
}

func TestGroupDeleteWithRetainPolicy(t *testing.T) {
	e := newEnv(t, envOptions{})
	vgs, vgsc, members := readyGroup(t, e, crdv1.VolumeSnapshotContentRetain)
	if err := e.snap.GroupsnapshotV1().VolumeGroupSnapshots(e.ns).Delete(e.ctx, vgs.Name, metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	eventually.Require(t, groupWait, "group and members gone", func(ctx context.Context) error {
		if _, err := e.getGroup(vgs.Name); !apierrors.IsNotFound(err) {
			return fmt.Errorf("group still there (%v)", err)
		}
		for _, m := range members {
			if _, err := e.getVS(m.Name); !apierrors.IsNotFound(err) {
				return fmt.Errorf("member %s still there (%v)", m.Name, err)
			}
		}
		return nil
	})
	got, err := e.getGroupContent(vgsc.Name)
	if err != nil {
		t.Fatalf("group content under Retain: %v, want it kept", err)
	}
	if got.DeletionTimestamp != nil || got.Annotations[AnnGroupBeingDeleted] != annYes {
		t.Errorf("group content deletionTimestamp %v, annotations %v: want kept and marked being deleted", got.DeletionTimestamp, got.Annotations)
	}
	for _, m := range members {
		if _, err := e.snap.SnapshotV1().VolumeSnapshotContents().Get(e.ctx, *m.Status.BoundVolumeSnapshotContentName, metav1.GetOptions{}); err != nil {
			t.Errorf("member content under Retain: %v, want it kept", err)
		}
	}
}

func TestGroupDefaultClass(t *testing.T) {
	e := newEnv(t, envOptions{})
	first := e.groupClass("first", crdv1.VolumeSnapshotContentDelete, true)
	e.groupClass("second", crdv1.VolumeSnapshotContentDelete, true)
	e.labelledVolume("a", map[string]string{"app": "x"})
	e.startController(ControllerOptions{})
	vgs := e.groupSnapshot("group", selectLabels(map[string]string{"app": "x"}), "")

	e.groupEvent("group", ReasonSetDefaultGroupSnapshotClassFailed, "2 default snapshot classes were found")
	// One default left: it is written into the spec and used.
	patch := mustJSON(map[string]any{"metadata": map[string]any{"annotations": map[string]any{AnnDefaultGroupClass: nil}}})
	if _, err := e.snap.GroupsnapshotV1().VolumeGroupSnapshotClasses().Patch(e.ctx, e.ns+"-second", types.MergePatchType, patch, metav1.PatchOptions{}); err != nil {
		t.Fatal(err)
	}
	vgsc := e.waitGroupContent(vgs)
	if c := vgsc.Spec.VolumeGroupSnapshotClassName; c == nil || *c != first {
		t.Errorf("group content class %v, want %s", c, first)
	}
	got, err := e.getGroup("group")
	if err != nil {
		t.Fatal(err)
	}
	if c := got.Spec.VolumeGroupSnapshotClassName; c == nil || *c != first {
		t.Errorf("group class %v, want the default %s written into the spec", c, first)
	}
}

func TestGroupNoSelectedClaims(t *testing.T) {
	e := newEnv(t, envOptions{})
	class := e.groupClass("group", crdv1.VolumeSnapshotContentDelete, false)
	e.labelledVolume("a", map[string]string{"app": "x"})
	e.startController(ControllerOptions{})
	e.groupSnapshot("group", selectLabels(map[string]string{"app": "none"}), class)
	e.groupEvent("group", ReasonGroupSnapshotContentCreationFailed, "not applied to any PVC")
	eventually.Require(t, groupWait, "error in the group status", func(context.Context) error {
		got, err := e.getGroup("group")
		if err != nil {
			return err
		}
		if got.Status == nil || got.Status.Error == nil || got.Status.Error.Message == nil || !strings.Contains(*got.Status.Error.Message, "not applied to any PVC") {
			return fmt.Errorf("status %+v", got.Status)
		}
		return nil
	})
}

func TestGroupPreProvisionedBinds(t *testing.T) {
	e := newEnv(t, envOptions{})
	mk := func(name, refName string) {
		vgsc := &groupv1.VolumeGroupSnapshotContent{
			ObjectMeta: metav1.ObjectMeta{Name: name},
			Spec: groupv1.VolumeGroupSnapshotContentSpec{
				VolumeGroupSnapshotRef: v1.ObjectReference{Namespace: e.ns, Name: refName},
				DeletionPolicy:         crdv1.VolumeSnapshotContentRetain,
				Driver:                 e.driver,
				Source: groupv1.VolumeGroupSnapshotContentSource{GroupSnapshotHandles: &groupv1.GroupSnapshotHandles{
					VolumeGroupSnapshotHandle: "g-" + name, VolumeSnapshotHandles: []string{"s1", "s2"},
				}},
			},
		}
		if _, err := e.snap.GroupsnapshotV1().VolumeGroupSnapshotContents().Create(e.ctx, vgsc, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			api := e.snap.GroupsnapshotV1().VolumeGroupSnapshotContents()
			_, _ = api.Patch(context.Background(), name, types.MergePatchType, []byte(`{"metadata":{"finalizers":null}}`), metav1.PatchOptions{})
			_ = api.Delete(context.Background(), name, metav1.DeleteOptions{})
		})
	}
	pre, other := e.ns+"-pre", e.ns+"-other"
	mk(pre, "static")
	mk(other, "someone-else")
	e.startController(ControllerOptions{})

	vgs := e.groupSnapshot("static", groupv1.VolumeGroupSnapshotSource{VolumeGroupSnapshotContentName: &pre}, "")
	e.groupSnapshot("misbound", groupv1.VolumeGroupSnapshotSource{VolumeGroupSnapshotContentName: &other}, "")
	e.groupEvent("misbound", ReasonGroupSnapshotContentMisbound, "is bound to a different group snapshot")

	eventually.Require(t, groupWait, "pre-provisioned content bound", func(context.Context) error {
		vgsc, err := e.getGroupContent(pre)
		if err != nil {
			return err
		}
		if vgsc.Spec.VolumeGroupSnapshotRef.UID != vgs.UID || !slices.Contains(vgsc.Finalizers, FinalizerGroupContentBound) {
			return fmt.Errorf("ref %+v, finalizers %v", vgsc.Spec.VolumeGroupSnapshotRef, vgsc.Finalizers)
		}
		got, err := e.getGroup("static")
		if err != nil {
			return err
		}
		if got.Status == nil || got.Status.BoundVolumeGroupSnapshotContentName == nil || *got.Status.BoundVolumeGroupSnapshotContentName != pre ||
			!slices.Contains(got.Finalizers, FinalizerGroupSnapshotBound) {
			return fmt.Errorf("group status %+v, finalizers %v", got.Status, got.Finalizers)
		}
		return nil
	})
	groupSidecarStandIn{e}.cut(t, pre, true)
	eventually.Require(t, groupWait, "pre-provisioned group ready", func(context.Context) error {
		got, err := e.getGroup("static")
		if err != nil {
			return err
		}
		if got.Status == nil || got.Status.ReadyToUse == nil || !*got.Status.ReadyToUse {
			return fmt.Errorf("status %+v", got.Status)
		}
		return nil
	})
	if members, err := e.members(e.ctx, "static"); err != nil || len(members) != 0 {
		t.Errorf("members of a pre-provisioned group: %v (%v), want none", members, err)
	}
}

// With DisableVolumeGroupSnapshots the controller leaves group snapshots
// alone while it serves snapshots.
func TestGroupDisabled(t *testing.T) {
	e := newEnv(t, envOptions{})
	class := e.groupClass("group", crdv1.VolumeSnapshotContentDelete, false)
	e.class("gold", crdv1.VolumeSnapshotContentDelete, false, nil)
	e.labelledVolume("a", map[string]string{"app": "x"})
	e.startController(ControllerOptions{DisableVolumeGroupSnapshots: true})
	e.startSidecar(SidecarOptions{DisableVolumeGroupSnapshots: true}) // the stand-in above plays the group sidecar
	vgs := e.groupSnapshot("group", selectLabels(map[string]string{"app": "x"}), class)
	e.snapshot("single", "a", "gold")
	eventually.Require(t, groupWait, "the single snapshot ready", func(context.Context) error {
		vs, err := e.getVS("single")
		if err != nil {
			return err
		}
		if vs.Status == nil || vs.Status.ReadyToUse == nil || !*vs.Status.ReadyToUse {
			return fmt.Errorf("status %+v", vs.Status)
		}
		return nil
	})
	got, err := e.getGroup("group")
	if err != nil {
		t.Fatal(err)
	}
	if got.Status != nil || len(got.Finalizers) != 0 {
		t.Errorf("group touched while disabled: status %+v, finalizers %v", got.Status, got.Finalizers)
	}
	if _, err := e.getGroupContent(GroupContentNamePrefix + string(vgs.UID)); !apierrors.IsNotFound(err) {
		t.Errorf("group content while disabled: %v", err)
	}
}

// A Pending claim restored from a member holds the group's deletion back
// (SnapshotDeletePending on the group); once the claim is gone, it goes on.
func TestGroupDeleteWaitsForRestore(t *testing.T) {
	e := newEnv(t, envOptions{})
	vgs, vgsc, members := readyGroup(t, e, crdv1.VolumeSnapshotContentRetain)
	group := crdv1.GroupName
	restore := &v1.PersistentVolumeClaim{
		ObjectMeta: metav1.ObjectMeta{Name: "restore", Namespace: e.ns},
		Spec: v1.PersistentVolumeClaimSpec{
			AccessModes:      []v1.PersistentVolumeAccessMode{v1.ReadWriteOnce},
			Resources:        v1.VolumeResourceRequirements{Requests: v1.ResourceList{v1.ResourceStorage: *members[0].Status.RestoreSize}},
			StorageClassName: ptr(e.ns + "-no-such-class"),
			DataSource:       &v1.TypedLocalObjectReference{APIGroup: &group, Kind: "VolumeSnapshot", Name: members[0].Name},
		},
	}
	if _, err := e.kube.CoreV1().PersistentVolumeClaims(e.ns).Create(e.ctx, restore, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	eventually.Require(t, groupWait, "restore claim Pending", func(ctx context.Context) error {
		pvc, err := e.kube.CoreV1().PersistentVolumeClaims(e.ns).Get(ctx, "restore", metav1.GetOptions{})
		if err != nil {
			return err
		}
		if pvc.Status.Phase != v1.ClaimPending {
			return fmt.Errorf("phase %q", pvc.Status.Phase)
		}
		return nil
	})
	if err := e.snap.GroupsnapshotV1().VolumeGroupSnapshots(e.ns).Delete(e.ctx, vgs.Name, metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	e.groupEvent("group", ReasonSnapshotDeletePending, "Snapshot "+e.ns+"/"+members[0].Name+" belonging to VolumeGroupSnapshot "+e.ns+"/group is being used to restore a PVC")
	got, err := e.getGroupContent(vgsc.Name)
	if err != nil {
		t.Fatal(err)
	}
	if got.Annotations[AnnGroupBeingDeleted] != "" {
		t.Errorf("group content marked being deleted while a member is restored from")
	}
	for _, m := range members {
		if vs, err := e.getVS(m.Name); err != nil || vs.DeletionTimestamp != nil {
			t.Errorf("member %s deleted while a member is restored from (%v)", m.Name, err)
		}
	}

	if err := e.kube.CoreV1().PersistentVolumeClaims(e.ns).Delete(e.ctx, "restore", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	eventually.Require(t, groupWait, "group gone once the restore is", func(context.Context) error {
		if _, err := e.getGroup(vgs.Name); !apierrors.IsNotFound(err) {
			return fmt.Errorf("group still there (%v)", err)
		}
		return nil
	})
}

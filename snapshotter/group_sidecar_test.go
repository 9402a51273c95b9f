package snapshotter

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/container-storage-interface/spec/lib/go/csi"
	groupv1 "github.com/kubernetes-csi/external-snapshotter/client/v8/apis/volumegroupsnapshot/v1"
	crdv1 "github.com/kubernetes-csi/external-snapshotter/client/v8/apis/volumesnapshot/v1"
	snapfake "github.com/kubernetes-csi/external-snapshotter/client/v8/clientset/versioned/fake"
	"google.golang.org/grpc/codes"
	v1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/uuid"
	fakediscovery "k8s.io/client-go/discovery/fake"
	k8stesting "k8s.io/client-go/testing"
	"k8s.io/klog/v2/ktesting"

	"github.com/csi-kit/sidecars/testkit/eventually"
	"github.com/csi-kit/sidecars/testkit/fakedriver"
)

// groupClassWith creates a VolumeGroupSnapshotClass of the env's driver
// with params.
func (e *env) groupClassWith(name string, policy crdv1.DeletionPolicy, params map[string]string) string {
	e.t.Helper()
	c := &groupv1.VolumeGroupSnapshotClass{ObjectMeta: metav1.ObjectMeta{Name: e.ns + "-" + name}, Driver: e.driver, DeletionPolicy: policy, Parameters: params}
	if _, err := e.snap.GroupsnapshotV1().VolumeGroupSnapshotClasses().Create(e.ctx, c, metav1.CreateOptions{}); err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(func() {
		_ = e.snap.GroupsnapshotV1().VolumeGroupSnapshotClasses().Delete(context.Background(), c.Name, metav1.DeleteOptions{})
	})
	return c.Name
}

// backendVolumes creates n volumes in the fake driver and returns their IDs.
func (e *env) backendVolumes(n int) []string {
	e.t.Helper()
	var ids []string
	for i := range n {
		resp, err := e.conn.Controller().CreateVolume(e.ctx, volumeRequest(fmt.Sprintf("%s-gvol%d", e.ns, i)))
		if err != nil {
			e.t.Fatal(err)
		}
		ids = append(ids, resp.GetVolume().GetVolumeId())
	}
	return ids
}

// groupContent creates a group content as the common controller would:
// bound to a VolumeGroupSnapshot by UID, with the content finalizer.
func (e *env) groupContent(name string, policy crdv1.DeletionPolicy, class string, src groupv1.VolumeGroupSnapshotContentSource, ann map[string]string) *groupv1.VolumeGroupSnapshotContent {
	e.t.Helper()
	c := &groupv1.VolumeGroupSnapshotContent{
		ObjectMeta: metav1.ObjectMeta{Name: e.ns + "-" + name, Annotations: ann, Finalizers: []string{FinalizerGroupContentBound}},
		Spec: groupv1.VolumeGroupSnapshotContentSpec{
			VolumeGroupSnapshotRef: v1.ObjectReference{Kind: "VolumeGroupSnapshot", Name: name, Namespace: e.ns, UID: uuid.NewUUID()},
			DeletionPolicy:         policy,
			Driver:                 e.driver,
			Source:                 src,
		},
	}
	if class != "" {
		c.Spec.VolumeGroupSnapshotClassName = &class
	}
	c, err := e.snap.GroupsnapshotV1().VolumeGroupSnapshotContents().Create(e.ctx, c, metav1.CreateOptions{})
	if err != nil {
		e.t.Fatal(err)
	}
	return c
}

func (e *env) waitGroupReady(name string) *groupv1.VolumeGroupSnapshotContent {
	e.t.Helper()
	var c *groupv1.VolumeGroupSnapshotContent
	eventually.Require(e.t, 30*time.Second, "group content "+name+" ready", func(context.Context) error {
		var err error
		if c, err = e.getGroupContent(name); err != nil {
			return err
		}
		if !groupReady(c.Status) || groupStatusHandle(c) == "" {
			return fmt.Errorf("status %+v", c.Status)
		}
		return nil
	})
	return c
}

// deleteGroupContent deletes a group content as the common controller
// does after its VolumeGroupSnapshot was deleted, and waits until the
// sidecar has let it go.
func (e *env) deleteGroupContent(name string) {
	e.t.Helper()
	patch := annotationPatch(AnnGroupBeingDeleted, annYes)
	if _, err := e.snap.GroupsnapshotV1().VolumeGroupSnapshotContents().Patch(e.ctx, name, types.MergePatchType, patch, metav1.PatchOptions{}); err != nil {
		e.t.Fatal(err)
	}
	if err := e.snap.GroupsnapshotV1().VolumeGroupSnapshotContents().Delete(e.ctx, name, metav1.DeleteOptions{}); err != nil {
		e.t.Fatal(err)
	}
	eventually.Require(e.t, 30*time.Second, "group content "+name+" gone", func(context.Context) error {
		_, err := e.getGroupContent(name)
		if apierrors.IsNotFound(err) {
			return nil
		}
		if err != nil {
			return err
		}
		return errors.New("still there")
	})
}

// waitGroupEvent waits for an event of reason on the cluster-scoped group
// content name (such events land in the default namespace).
func (e *env) waitGroupEvent(name, reason, contains string) {
	e.t.Helper()
	eventually.Require(e.t, 20*time.Second, "event "+reason+" on "+name, func(ctx context.Context) error {
		list, err := e.kube.CoreV1().Events(metav1.NamespaceDefault).List(ctx, metav1.ListOptions{FieldSelector: "involvedObject.name=" + name})
		if err != nil {
			return err
		}
		var seen []string
		for _, ev := range list.Items {
			if ev.Reason == reason && strings.Contains(ev.Message, contains) {
				return nil
			}
			seen = append(seen, ev.Reason+": "+ev.Message)
		}
		return fmt.Errorf("events seen: %q", seen)
	})
}

func (e *env) backendGroup(id string) (fakedriver.GroupSnapshot, bool) {
	i := slices.IndexFunc(e.drv.GroupSnapshots(), func(g fakedriver.GroupSnapshot) bool { return g.ID == id })
	if i < 0 {
		return fakedriver.GroupSnapshot{}, false
	}
	return e.drv.GroupSnapshots()[i], true
}

func TestGroupDynamicCreatedPolledAndDeleted(t *testing.T) {
	e := newEnv(t, envOptions{notReadyPolls: 2})
	vols := e.backendVolumes(3)
	secret := &v1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "grp-creds", Namespace: e.ns}, StringData: map[string]string{"user": "u1"}}
	if _, err := e.kube.CoreV1().Secrets(e.ns).Create(e.ctx, secret, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	class := e.groupClassWith("gold", crdv1.VolumeSnapshotContentDelete, map[string]string{
		"csi.storage.k8s.io/group-snapshotter-secret-name":      "${volumegroupsnapshot.name}-creds",
		"csi.storage.k8s.io/group-snapshotter-secret-namespace": "${volumegroupsnapshot.namespace}",
		"tier": "fast",
	})
	c := e.groupContent("grp", crdv1.VolumeSnapshotContentDelete, class, groupv1.VolumeGroupSnapshotContentSource{VolumeHandles: vols}, nil)
	e.startSidecar(SidecarOptions{ExtraCreateMetadata: true})

	c = e.waitGroupReady(c.Name)
	handle := groupStatusHandle(c)
	g, ok := e.backendGroup(handle)
	if !ok {
		t.Fatalf("group snapshot %s not in the driver: %+v", handle, e.drv.GroupSnapshots())
	}
	if want := "groupsnapshot-" + string(c.Spec.VolumeGroupSnapshotRef.UID); g.Name != want {
		t.Errorf("backend name %q, want %q", g.Name, want)
	}
	if n := len(c.Status.VolumeSnapshotInfoList); n != 3 {
		t.Fatalf("info list has %d entries, want 3: %+v", n, c.Status.VolumeSnapshotInfoList)
	}
	snaps := e.drv.Snapshots()
	for _, info := range c.Status.VolumeSnapshotInfoList {
		i := slices.IndexFunc(snaps, func(s fakedriver.Snapshot) bool { return s.ID == info.SnapshotHandle })
		switch {
		case i < 0:
			t.Errorf("member %s of %s not in the driver", info.SnapshotHandle, info.VolumeHandle)
		case snaps[i].GroupSnapshotID != handle || snaps[i].SourceVolumeID != info.VolumeHandle:
			t.Errorf("member %+v does not match info %+v", snaps[i], info)
		}
		if info.ReadyToUse == nil || !*info.ReadyToUse || info.CreationTime == nil || info.RestoreSize == nil || *info.RestoreSize != 1<<30 {
			t.Errorf("info %+v: want ready, a creation time and the volume's size", info)
		}
	}
	if c.Status.CreationTime == nil || c.Status.Error != nil {
		t.Errorf("status %+v: want a creation time and no error", c.Status)
	}
	// Two answers said not ready: the create was called again to poll.
	if n := e.drv.Calls("CreateVolumeGroupSnapshot"); n < 3 {
		t.Errorf("CreateVolumeGroupSnapshot called %d times, want at least 3 (two not-ready answers, then ready)", n)
	}
	for _, m := range e.drv.Requests("CreateVolumeGroupSnapshot") {
		req := m.(*csi.CreateVolumeGroupSnapshotRequest)
		if req.GetSecrets()["user"] != "u1" {
			t.Errorf("CreateVolumeGroupSnapshot secrets %v, want the class's secret", req.GetSecrets())
		}
		p := req.GetParameters()
		if p["tier"] != "fast" || p[metaGroupSnapshotName] != "grp" || p[metaGroupSnapshotNamespace] != e.ns || p[metaGroupContentName] != c.Name || len(p) != 4 {
			t.Errorf("CreateVolumeGroupSnapshot parameters %v: want tier and the three metadata keys only", p)
		}
	}
	if _, ok := c.Annotations[AnnGroupBeingCreated]; ok {
		t.Errorf("being-created left on a ready group content")
	}

	e.deleteGroupContent(c.Name)
	if _, ok := e.backendGroup(handle); ok {
		t.Errorf("group snapshot %s still in the driver after its Delete group content went", handle)
	}
	for _, s := range e.drv.Snapshots() {
		if s.GroupSnapshotID == handle {
			t.Errorf("member snapshot %s left in the driver", s.ID)
		}
	}
	reqs := e.drv.Requests("DeleteVolumeGroupSnapshot")
	if len(reqs) != 1 {
		t.Fatalf("DeleteVolumeGroupSnapshot called %d times, want 1", len(reqs))
	}
	del := reqs[0].(*csi.DeleteVolumeGroupSnapshotRequest)
	if del.GetGroupSnapshotId() != handle || len(del.GetSnapshotIds()) != 3 || del.GetSecrets()["user"] != "u1" {
		t.Errorf("DeleteVolumeGroupSnapshot request %v", del)
	}
}

func TestGroupRetainKeepsTheBackend(t *testing.T) {
	e := newEnv(t, envOptions{})
	vols := e.backendVolumes(2)
	class := e.groupClassWith("keep", crdv1.VolumeSnapshotContentRetain, nil)
	c := e.groupContent("kept", crdv1.VolumeSnapshotContentRetain, class, groupv1.VolumeGroupSnapshotContentSource{VolumeHandles: vols}, nil)
	e.startSidecar(SidecarOptions{})
	c = e.waitGroupReady(c.Name)
	e.deleteGroupContent(c.Name)
	if _, ok := e.backendGroup(groupStatusHandle(c)); !ok {
		t.Errorf("group snapshot %s deleted in the driver under policy Retain", groupStatusHandle(c))
	}
	if n := e.drv.Calls("DeleteVolumeGroupSnapshot"); n != 0 {
		t.Errorf("DeleteVolumeGroupSnapshot called %d times under Retain", n)
	}
}

func TestGroupStaticReadWithGet(t *testing.T) {
	e := newEnv(t, envOptions{})
	vols := e.backendVolumes(2)
	resp, err := e.conn.GroupController().CreateVolumeGroupSnapshot(e.ctx, &csi.CreateVolumeGroupSnapshotRequest{Name: e.ns + "-pre", SourceVolumeIds: vols})
	if err != nil {
		t.Fatal(err)
	}
	pre := resp.GetGroupSnapshot()
	var ids []string
	for _, s := range pre.GetSnapshots() {
		ids = append(ids, s.GetSnapshotId())
	}
	secret := &v1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "get-creds", Namespace: e.ns}, StringData: map[string]string{"user": "getter"}}
	if _, err := e.kube.CoreV1().Secrets(e.ns).Create(e.ctx, secret, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	class := e.groupClassWith("static", crdv1.VolumeSnapshotContentDelete, map[string]string{
		"csi.storage.k8s.io/group-snapshotter-get-secret-name":      "get-creds",
		"csi.storage.k8s.io/group-snapshotter-get-secret-namespace": e.ns,
	})
	c := e.groupContent("pre", crdv1.VolumeSnapshotContentDelete, class, groupv1.VolumeGroupSnapshotContentSource{
		GroupSnapshotHandles: &groupv1.GroupSnapshotHandles{VolumeGroupSnapshotHandle: pre.GetGroupSnapshotId(), VolumeSnapshotHandles: ids},
	}, nil)
	e.startSidecar(SidecarOptions{})
	c = e.waitGroupReady(c.Name)
	if groupStatusHandle(c) != pre.GetGroupSnapshotId() || len(c.Status.VolumeSnapshotInfoList) != 0 {
		t.Errorf("status %+v: want the pre-provisioned handle and no info list", c.Status)
	}
	reqs := e.drv.Requests("GetVolumeGroupSnapshot")
	if len(reqs) == 0 {
		t.Fatal("GetVolumeGroupSnapshot never called")
	}
	get := reqs[0].(*csi.GetVolumeGroupSnapshotRequest)
	if get.GetGroupSnapshotId() != pre.GetGroupSnapshotId() || !slices.Equal(get.GetSnapshotIds(), ids) || get.GetSecrets()["user"] != "getter" {
		t.Errorf("GetVolumeGroupSnapshot request %v", get)
	}
	if n := e.drv.Calls("CreateVolumeGroupSnapshot"); n != 1 {
		t.Errorf("CreateVolumeGroupSnapshot called %d times; only the test's own call expected", n)
	}
	e.deleteGroupContent(c.Name)
	if _, ok := e.backendGroup(pre.GetGroupSnapshotId()); ok {
		t.Errorf("pre-provisioned group snapshot kept in the driver under policy Delete")
	}
}

func TestGroupDriverErrorGivesEventAndRetry(t *testing.T) {
	e := newEnv(t, envOptions{})
	vols := e.backendVolumes(2)
	class := e.groupClassWith("flaky", crdv1.VolumeSnapshotContentDelete, nil)
	e.drv.FailNext("CreateVolumeGroupSnapshot", codes.Internal, 1)
	c := e.groupContent("flaky", crdv1.VolumeSnapshotContentDelete, class, groupv1.VolumeGroupSnapshotContentSource{VolumeHandles: vols}, nil)
	e.startSidecar(SidecarOptions{})
	e.waitGroupEvent(c.Name, ReasonGroupSnapshotCreationFailed, "Failed to create group snapshot")
	c = e.waitGroupReady(c.Name)
	if c.Status.Error != nil {
		t.Errorf("error %v left in the status of a ready group content", *c.Status.Error.Message)
	}
	if n := e.drv.Calls("CreateVolumeGroupSnapshot"); n < 2 {
		t.Errorf("CreateVolumeGroupSnapshot called %d times, want a retry after the failure", n)
	}
	if _, ok := c.Annotations[AnnGroupBeingCreated]; ok {
		t.Errorf("being-created set after a final error and a success")
	}
}

// TestGroupDisabledByOption runs a sidecar with group snapshots off: a
// snapshot content is cut (so the sidecar has synced and works) while a
// group content created before it started is never touched.
func TestGroupDisabledByOption(t *testing.T) {
	e := newEnv(t, envOptions{})
	vols := e.backendVolumes(2)
	class := e.groupClassWith("off", crdv1.VolumeSnapshotContentDelete, nil)
	c := e.groupContent("off", crdv1.VolumeSnapshotContentDelete, class, groupv1.VolumeGroupSnapshotContentSource{VolumeHandles: vols}, nil)
	e.class("snap", crdv1.VolumeSnapshotContentDelete, false, nil)
	snapClass := e.className("snap")
	vsc := &crdv1.VolumeSnapshotContent{
		ObjectMeta: metav1.ObjectMeta{Name: e.ns + "-single"},
		Spec: crdv1.VolumeSnapshotContentSpec{
			VolumeSnapshotRef:       v1.ObjectReference{Name: "single", Namespace: e.ns, UID: uuid.NewUUID()},
			DeletionPolicy:          crdv1.VolumeSnapshotContentDelete,
			Driver:                  e.driver,
			VolumeSnapshotClassName: &snapClass,
			Source:                  crdv1.VolumeSnapshotContentSource{VolumeHandle: &vols[0]},
		},
	}
	if _, err := e.snap.SnapshotV1().VolumeSnapshotContents().Create(e.ctx, vsc, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	e.startSidecar(SidecarOptions{DisableVolumeGroupSnapshots: true})
	eventually.Require(t, 30*time.Second, "snapshot content cut", func(ctx context.Context) error {
		got, err := e.snap.SnapshotV1().VolumeSnapshotContents().Get(ctx, vsc.Name, metav1.GetOptions{})
		if err != nil {
			return err
		}
		if got.Status == nil || got.Status.ReadyToUse == nil || !*got.Status.ReadyToUse {
			return fmt.Errorf("status %+v", got.Status)
		}
		return nil
	})
	got, err := e.getGroupContent(c.Name)
	if err != nil {
		t.Fatal(err)
	}
	if got.Status != nil || e.drv.Calls("CreateVolumeGroupSnapshot") != 0 {
		t.Errorf("group content handled with group snapshots disabled: status %+v, %d creates", got.Status, e.drv.Calls("CreateVolumeGroupSnapshot"))
	}
}

// groupTestDriver is a Driver with or without the group side.
type groupTestDriver struct {
	Driver
	*scriptGroupDriver
	supported bool
}

func (d groupTestDriver) SupportsGroupSnapshots() bool { return d.supported }

func TestGroupsEnabled(t *testing.T) {
	served := []*metav1.APIResourceList{{
		GroupVersion: groupv1.SchemeGroupVersion.String(),
		APIResources: []metav1.APIResource{{Name: "volumegroupsnapshots"}, {Name: "volumegroupsnapshotcontents"}, {Name: "volumegroupsnapshotclasses"}},
	}}
	withGroups := groupTestDriver{Driver: &scriptDriver{}, scriptGroupDriver: &scriptGroupDriver{}, supported: true}
	withoutCap := groupTestDriver{Driver: &scriptDriver{}, scriptGroupDriver: &scriptGroupDriver{}}
	for _, tc := range []struct {
		name      string
		opts      SidecarOptions
		drv       Driver
		resources []*metav1.APIResourceList
		forbidden string
		want      bool
	}{
		{"everything there: on by default", SidecarOptions{}, withGroups, served, "", true},
		{"disabled by the options", SidecarOptions{DisableVolumeGroupSnapshots: true}, withGroups, served, "", false},
		{"per-node sidecar", SidecarOptions{NodeName: "n1"}, withGroups, served, "", false},
		{"driver without the group capability", SidecarOptions{}, withoutCap, served, "", false},
		{"driver without a group side at all", SidecarOptions{}, &scriptDriver{}, served, "", false},
		{"group CRDs not served", SidecarOptions{}, withGroups, nil, "", false},
		{"group classes not served", SidecarOptions{}, withGroups, []*metav1.APIResourceList{{
			GroupVersion: groupv1.SchemeGroupVersion.String(), APIResources: []metav1.APIResource{{Name: "volumegroupsnapshotcontents"}},
		}}, "", false},
		{"may not list group contents", SidecarOptions{}, withGroups, served, "volumegroupsnapshotcontents", false},
		{"may not list group classes", SidecarOptions{}, withGroups, served, "volumegroupsnapshotclasses", false},
		{"may not list something else", SidecarOptions{}, withGroups, served, "volumesnapshots", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, ctx := ktesting.NewTestContext(t)
			sc := snapfake.NewSimpleClientset()
			sc.Discovery().(*fakediscovery.FakeDiscovery).Resources = tc.resources
			if tc.forbidden != "" {
				sc.PrependReactor("list", tc.forbidden, func(k8stesting.Action) (bool, runtime.Object, error) {
					return true, nil, apierrors.NewForbidden(groupv1.Resource(tc.forbidden), "", errors.New("no rule"))
				})
			}
			tc.opts.DriverName = "drv"
			s := &Sidecar{opts: tc.opts.withDefaults(), snap: sc, drv: tc.drv}
			if got := s.groupsEnabled(ctx); got != tc.want {
				t.Fatalf("groupsEnabled = %v, want %v", got, tc.want)
			}
		})
	}
}

package snapshotter

import (
	"time"

	"context"
	"fmt"
	"strings"
	"testing"

	groupv1 "github.com/kubernetes-csi/external-snapshotter/client/v8/apis/volumegroupsnapshot/v1"
	crdv1 "github.com/kubernetes-csi/external-snapshotter/client/v8/apis/volumesnapshot/v1"
	snapfake "github.com/kubernetes-csi/external-snapshotter/client/v8/clientset/versioned/fake"
	grouplisters "github.com/kubernetes-csi/external-snapshotter/client/v8/listers/volumegroupsnapshot/v1"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	kubefake "k8s.io/client-go/kubernetes/fake"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/record"
	"k8s.io/klog/v2/ktesting"

	"github.com/csi-kit/sidecars/internal/ctrl"
)

// scriptGroupDriver answers the group calls from a script and records them.
type scriptGroupDriver struct {
	create  []error
	del     error
	ready   bool
	calls   []string
	params  map[string]string
	secrets map[string]string
}

func (d *scriptGroupDriver) SupportsGroupSnapshots() bool { return true }

func (d *scriptGroupDriver) CreateGroupSnapshot(_ context.Context, name string, vols []string, params, secrets map[string]string) (GroupSnapshotInfo, error) {
	d.calls = append(d.calls, fmt.Sprintf("create %s %v", name, vols))
	d.params, d.secrets = params, secrets
	if len(d.create) > 0 {
		err := d.create[0]
		d.create = d.create[1:]
		if err != nil {
			return GroupSnapshotInfo{}, err
		}
	}
	info := GroupSnapshotInfo{Handle: "g-" + name, Ready: d.ready}
	for _, v := range vols {
		info.Members = append(info.Members, GroupMember{VolumeHandle: v, SnapshotInfo: SnapshotInfo{Handle: "s-" + v, Ready: d.ready, Size: 5}})
	}
	return info, nil
}

func (d *scriptGroupDriver) DeleteGroupSnapshot(_ context.Context, id string, snaps []string, secrets map[string]string) error {
	d.calls = append(d.calls, fmt.Sprintf("delete %s %v", id, snaps))
	d.secrets = secrets
	return d.del
}

func (d *scriptGroupDriver) GroupSnapshotStatus(_ context.Context, id string, snaps []string, secrets map[string]string) (GroupSnapshotInfo, error) {
	d.calls = append(d.calls, fmt.Sprintf("get %s %v", id, snaps))
	d.secrets = secrets
	return GroupSnapshotInfo{Handle: id, Ready: true}, nil
}

func mkGroupClass(name string, params map[string]string) *groupv1.VolumeGroupSnapshotClass {
	return &groupv1.VolumeGroupSnapshotClass{ObjectMeta: metav1.ObjectMeta{Name: name}, Driver: "drv",
		DeletionPolicy: crdv1.VolumeSnapshotContentDelete, Parameters: params}
}

func fakeGroupSidecar(t *testing.T, opts SidecarOptions, drv GroupDriver, c *groupv1.VolumeGroupSnapshotContent, class *groupv1.VolumeGroupSnapshotClass, kubeObjs ...runtime.Object) (*groupSidecar, *snapfake.Clientset, *record.FakeRecorder) {
	t.Helper()
	sc := snapfake.NewSimpleClientset(c, class)
	rec := record.NewFakeRecorder(10)
	opts.DriverName = "drv"
	s := &Sidecar{opts: opts.withDefaults(), kube: kubefake.NewSimpleClientset(kubeObjs...), snap: sc}
	contents := cache.NewIndexer(cache.MetaNamespaceKeyFunc, nil)
	classes := cache.NewIndexer(cache.MetaNamespaceKeyFunc, nil)
	_ = contents.Add(c)
	_ = classes.Add(class)
	g := &groupSidecar{
		s: s, drv: drv, rec: rec,
		contents: grouplisters.NewVolumeGroupSnapshotContentLister(contents),
		classes:  grouplisters.NewVolumeGroupSnapshotClassLister(classes),
		fresh:    ctrl.NewFresh[*groupv1.VolumeGroupSnapshotContent](),
		polls:    &ctrl.Polls{Start: time.Second, Max: time.Second},
	}
	sc.ClearActions()
	return g, sc, rec
}

func TestGroupSidecarSync(t *testing.T) {
	secret := &v1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "s-group", Namespace: "ns"}, Data: map[string][]byte{"k": []byte("v")}}
	classSecret := map[string]string{
		"csi.storage.k8s.io/group-snapshotter-secret-name":      "s-${volumegroupsnapshot.name}",
		"csi.storage.k8s.io/group-snapshotter-secret-namespace": "${volumegroupsnapshot.namespace}",
		"kept": "yes",
	}
	getSecret := map[string]string{
		"csi.storage.k8s.io/group-snapshotter-get-secret-name":      "s-group",
		"csi.storage.k8s.io/group-snapshotter-get-secret-namespace": "ns",
	}
	annSecret := func(c *groupv1.VolumeGroupSnapshotContent) {
		vgscAnn(AnnGroupDeletionSecretName, "s-group")(c)
		vgscAnn(AnnGroupDeletionSecretNamespace, "ns")(c)
	}
	dyn := func(opts ...vgscOpt) *groupv1.VolumeGroupSnapshotContent {
		return mkVGSC(append([]vgscOpt{volumeHandles("v1", "v2"), groupClass("gold"), vgscFinalizers(FinalizerGroupContentBound)}, opts...)...)
	}
	deleted := []vgscOpt{vgscDeleting(), vgscAnn(AnnGroupBeingDeleted, "yes"), vgscStatus(groupStatus("g1", true, "s1", "s2"))}
	unavailable := status.Error(codes.Unavailable, "later")
	invalid := status.Error(codes.InvalidArgument, "no")
	const created = "create groupsnapshot-guid1 [v1 v2]"
	for _, tc := range []struct {
		name        string
		opts        SidecarOptions
		c           *groupv1.VolumeGroupSnapshotContent
		classParams map[string]string
		drv         *scriptGroupDriver
		kube        []runtime.Object
		wantErr     string
		wantCalls   string
		wantAct     string
		wantEvent   string
		requeue     bool
		check       func(t *testing.T, d *scriptGroupDriver)
	}{
		{name: "create, ready at once: one status write", c: dyn(), drv: &scriptGroupDriver{ready: true},
			wantCalls: created, wantAct: "patch volumegroupsnapshotcontents/status"},
		{name: "create, not ready: requeued", c: dyn(), drv: &scriptGroupDriver{},
			wantCalls: created, wantAct: "patch volumegroupsnapshotcontents/status", requeue: true},
		{name: "name prefix and uuid length", opts: SidecarOptions{GroupSnapshotNamePrefix: "gs", GroupSnapshotNameUUIDLength: 3},
			c: dyn(), drv: &scriptGroupDriver{ready: true}, wantCalls: "create gs-gui [v1 v2]", wantAct: "patch volumegroupsnapshotcontents/status"},
		{name: "class secret resolved with templates, secret keys stripped", c: dyn(), classParams: classSecret, kube: []runtime.Object{secret},
			drv: &scriptGroupDriver{ready: true}, wantCalls: created, wantAct: "patch volumegroupsnapshotcontents/status",
			check: func(t *testing.T, d *scriptGroupDriver) {
				if d.secrets["k"] != "v" || len(d.params) != 1 || d.params["kept"] != "yes" {
					t.Errorf("secrets %v, params %v; want the secret and only the unprefixed parameter", d.secrets, d.params)
				}
			}},
		{name: "annotation secret", c: dyn(annSecret), kube: []runtime.Object{secret}, drv: &scriptGroupDriver{ready: true},
			wantCalls: created, wantAct: "patch volumegroupsnapshotcontents/status",
			check: func(t *testing.T, d *scriptGroupDriver) {
				if d.secrets["k"] != "v" {
					t.Errorf("secrets %v", d.secrets)
				}
			}},
		{name: "missing secret: no CSI call", c: dyn(annSecret), drv: &scriptGroupDriver{ready: true}, wantErr: "error getting secret s-group",
			wantAct: "patch volumegroupsnapshotcontents/status", wantEvent: "Warning GroupSnapshotCreationFailed Failed to create group snapshot"},
		{name: "unknown reserved parameter: no CSI call", c: dyn(), classParams: map[string]string{"csi.storage.k8s.io/bogus": "x"},
			drv: &scriptGroupDriver{}, wantErr: "found unknown parameter key", wantAct: "patch volumegroupsnapshotcontents/status",
			wantEvent: "Warning GroupSnapshotCreationFailed"},
		{name: "extra create metadata", opts: SidecarOptions{ExtraCreateMetadata: true}, c: dyn(), drv: &scriptGroupDriver{ready: true},
			wantCalls: created, wantAct: "patch volumegroupsnapshotcontents/status",
			check: func(t *testing.T, d *scriptGroupDriver) {
				if d.params[metaGroupSnapshotName] != "group" || d.params[metaGroupSnapshotNamespace] != "ns" || d.params[metaGroupContentName] != "groupcontent" {
					t.Errorf("params %v", d.params)
				}
			}},
		{name: "transient error: being-created written", c: dyn(), drv: &scriptGroupDriver{create: []error{unavailable}}, wantErr: "Unavailable",
			wantCalls: created, wantAct: "patch volumegroupsnapshotcontents, patch volumegroupsnapshotcontents/status",
			wantEvent: "Warning GroupSnapshotCreationFailed"},
		{name: "final error: no being-created", c: dyn(), drv: &scriptGroupDriver{create: []error{invalid}}, wantErr: "InvalidArgument",
			wantCalls: created, wantAct: "patch volumegroupsnapshotcontents/status", wantEvent: "Warning GroupSnapshotCreationFailed"},
		{name: "final error clears being-created", c: dyn(vgscAnn(AnnGroupBeingCreated, "yes")), drv: &scriptGroupDriver{create: []error{invalid}},
			wantErr: "InvalidArgument", wantCalls: created, wantAct: "patch volumegroupsnapshotcontents, patch volumegroupsnapshotcontents/status",
			wantEvent: "Warning GroupSnapshotCreationFailed"},
		{name: "error on a later poll: check-and-update event", c: dyn(vgscStatus(groupStatus("g1", false, "s1"))),
			drv: &scriptGroupDriver{create: []error{invalid}}, wantErr: "InvalidArgument", wantCalls: created,
			wantAct: "patch volumegroupsnapshotcontents/status", wantEvent: "Warning GroupSnapshotContentCheckandUpdateFailed Failed to check and update group snapshot content"},
		{name: "success clears being-created", c: dyn(vgscAnn(AnnGroupBeingCreated, "yes")), drv: &scriptGroupDriver{ready: true},
			wantCalls: created, wantAct: "patch volumegroupsnapshotcontents/status, patch volumegroupsnapshotcontents"},
		{name: "deleted, Delete: DeleteVolumeGroupSnapshot, status cleared, finalizer removed", c: dyn(deleted...), drv: &scriptGroupDriver{},
			wantCalls: "delete g1 [s1 s2]", wantAct: "patch volumegroupsnapshotcontents/status, patch volumegroupsnapshotcontents"},
		{name: "deleted, Retain: finalizer removed, no CSI call", c: dyn(append(deleted, groupRetain())...), drv: &scriptGroupDriver{},
			wantAct: "patch volumegroupsnapshotcontents"},
		{name: "deleted, driver fails: finalizer kept", c: dyn(deleted...), drv: &scriptGroupDriver{del: unavailable}, wantErr: "Unavailable",
			wantCalls: "delete g1 [s1 s2]", wantEvent: "Warning GroupSnapshotDeleteError Failed to delete group snapshot"},
		{name: "deleted, secret gone: finalizer kept", c: dyn(append(deleted, annSecret)...), drv: &scriptGroupDriver{}, wantErr: "error getting secret",
			wantEvent: "Warning GroupSnapshotDeleteError Failed to get snapshot credentials"},
		{name: "deleted before any handle: create tells, then delete", c: dyn(vgscDeleting(), vgscAnn(AnnGroupBeingDeleted, "yes")), drv: &scriptGroupDriver{ready: true},
			wantCalls: created + ", delete g-groupsnapshot-guid1 [s-v1 s-v2]",
			wantAct:   "patch volumegroupsnapshotcontents/status, patch volumegroupsnapshotcontents/status, patch volumegroupsnapshotcontents"},
		{name: "deleted, driver refuses for good: released without delete", c: dyn(vgscDeleting(), vgscAnn(AnnGroupBeingDeleted, "yes")),
			drv: &scriptGroupDriver{create: []error{invalid}}, wantCalls: created,
			wantAct: "patch volumegroupsnapshotcontents/status, patch volumegroupsnapshotcontents", wantEvent: "Warning GroupSnapshotCreationFailed"},
		{name: "static: GetVolumeGroupSnapshot with the get secret", c: mkVGSC(groupHandles("sg", "a", "b"), groupClass("gold")), classParams: getSecret,
			kube: []runtime.Object{secret}, drv: &scriptGroupDriver{}, wantCalls: "get sg [a b]", wantAct: "patch volumegroupsnapshotcontents/status",
			check: func(t *testing.T, d *scriptGroupDriver) {
				if d.secrets["k"] != "v" {
					t.Errorf("secrets %v", d.secrets)
				}
			}},
		{name: "static deleted: handles from the spec", c: mkVGSC(groupHandles("sg", "a", "b"), vgscFinalizers(FinalizerGroupContentBound), vgscDeleting(), vgscAnn(AnnGroupBeingDeleted, "yes")),
			drv: &scriptGroupDriver{}, wantCalls: "delete sg [a b]", wantAct: "patch volumegroupsnapshotcontents/status, patch volumegroupsnapshotcontents"},
		{name: "class of another driver: no CSI call", c: dyn(groupClass("silver")), drv: &scriptGroupDriver{}, wantErr: "VolumeGroupSnapshotClass silver",
			wantAct: "patch volumegroupsnapshotcontents/status", wantEvent: "Warning GroupSnapshotCreationFailed"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, ctx := ktesting.NewTestContext(t)
			class := mkGroupClass("gold", tc.classParams)
			if tc.c.Spec.VolumeGroupSnapshotClassName != nil && *tc.c.Spec.VolumeGroupSnapshotClassName == "silver" {
				class = mkGroupClass("silver", nil)
				class.Driver = "other"
			}
			g, sc, rec := fakeGroupSidecar(t, tc.opts, tc.drv, tc.c, class, tc.kube...)
			res, err := g.steps().sync(ctx, tc.c.DeepCopy())
			if tc.wantErr == "" && err != nil || tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)) {
				t.Fatalf("sync err = %v, want %q", err, tc.wantErr)
			}
			if got := strings.Join(tc.drv.calls, ", "); got != tc.wantCalls {
				t.Errorf("driver calls = %q, want %q", got, tc.wantCalls)
			}
			if got := actionsOf(sc.Actions()); got != tc.wantAct {
				t.Errorf("actions = %q, want %q", got, tc.wantAct)
			}
			if got := events(rec); !strings.HasPrefix(got, tc.wantEvent) || tc.wantEvent == "" && got != "" {
				t.Errorf("events = %q, want %q", got, tc.wantEvent)
			}
			if (res.RequeueAfter > 0) != tc.requeue {
				t.Errorf("requeue after %v, want requeue %v", res.RequeueAfter, tc.requeue)
			}
			if tc.check != nil {
				tc.check(t, tc.drv)
			}
		})
	}
}

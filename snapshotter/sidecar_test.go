package snapshotter

import (
	"context"
	"strings"
	"testing"
	"time"

	crdv1 "github.com/kubernetes-csi/external-snapshotter/client/v8/apis/volumesnapshot/v1"
	snapfake "github.com/kubernetes-csi/external-snapshotter/client/v8/clientset/versioned/fake"
	snaplisters "github.com/kubernetes-csi/external-snapshotter/client/v8/listers/volumesnapshot/v1"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	kubefake "k8s.io/client-go/kubernetes/fake"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/record"
	"k8s.io/klog/v2/ktesting"
)

// scriptDriver answers CreateSnapshot from a script and records calls.
type scriptDriver struct {
	create  []error
	del     error
	ready   bool
	calls   []string
	secrets map[string]string
}

func (d *scriptDriver) CreateSnapshot(_ context.Context, name, vol string, _, secrets map[string]string) (SnapshotInfo, error) {
	d.calls = append(d.calls, "create "+name)
	d.secrets = secrets
	if len(d.create) > 0 {
		err := d.create[0]
		d.create = d.create[1:]
		if err != nil {
			return SnapshotInfo{}, err
		}
	}
	return SnapshotInfo{Handle: "h-" + name, Ready: d.ready, Size: 5}, nil
}

func (d *scriptDriver) DeleteSnapshot(_ context.Context, handle string, _ map[string]string) error {
	d.calls = append(d.calls, "delete "+handle)
	return d.del
}

func (d *scriptDriver) SnapshotStatus(_ context.Context, handle string, _ map[string]string) (SnapshotInfo, error) {
	d.calls = append(d.calls, "status "+handle)
	return SnapshotInfo{Handle: handle, Ready: true}, nil
}

func fakeSidecar(t *testing.T, drv Driver, vsc *crdv1.VolumeSnapshotContent, kubeObjs ...runtime.Object) (*Sidecar, *snapfake.Clientset, *record.FakeRecorder) {
	t.Helper()
	gold := mkClass("gold", "drv", "")
	sc := snapfake.NewSimpleClientset(vsc, gold)
	rec := record.NewFakeRecorder(10)
	s, err := NewSidecar(SidecarOptions{SnapshotClient: sc, DriverName: "drv"}, kubefake.NewSimpleClientset(kubeObjs...), drv)
	if err != nil {
		t.Fatal(err)
	}
	vscIdx := cache.NewIndexer(cache.MetaNamespaceKeyFunc, nil)
	classIdx := cache.NewIndexer(cache.MetaNamespaceKeyFunc, nil)
	_ = vscIdx.Add(vsc)
	_ = classIdx.Add(gold)
	s.rec = rec // Run sets the runtime's; these tests call the syncs directly
	s.vscLister = snaplisters.NewVolumeSnapshotContentLister(vscIdx)
	s.classLister = snaplisters.NewVolumeSnapshotClassLister(classIdx)
	sc.ClearActions()
	return s, sc, rec
}

func dynContent(opts ...vscOpt) *crdv1.VolumeSnapshotContent {
	class := "gold"
	return mkVSC(append([]vscOpt{volumeHandle("vol"), vscFinalizers(FinalizerContentBound),
		func(c *crdv1.VolumeSnapshotContent) { c.Spec.VolumeSnapshotClassName = &class }}, opts...)...)
}

func TestSidecarSyncContent(t *testing.T) {
	secret := &v1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "s", Namespace: "ns"}, Data: map[string][]byte{"k": []byte("v")}}
	withSecret := func(c *crdv1.VolumeSnapshotContent) {
		c.Annotations = map[string]string{AnnDeletionSecretName: "s", AnnDeletionSecretNamespace: "ns"}
	}
	unavailable := status.Error(codes.Unavailable, "later")
	invalid := status.Error(codes.InvalidArgument, "no")
	for _, tc := range []struct {
		name      string
		vsc       *crdv1.VolumeSnapshotContent
		drv       *scriptDriver
		kube      []runtime.Object
		wantErr   string
		wantCalls string
		wantAct   string
		wantEvent string
		requeue   bool
	}{
		{"1-2 create, ready at once: one status write", dynContent(), &scriptDriver{ready: true}, nil, "",
			"create snapshot-uid1", "patch volumesnapshotcontents/status", "", false},
		{"1-7 just created un-ready snapshot is requeued", dynContent(), &scriptDriver{}, nil, "",
			"create snapshot-uid1", "patch volumesnapshotcontents/status", "", true},
		{"1-4 valid secret", dynContent(withSecret), &scriptDriver{ready: true}, []runtime.Object{secret}, "",
			"create snapshot-uid1", "patch volumesnapshotcontents/status", "", false},
		{"1-3 non-existent secret: no CSI call", dynContent(withSecret), &scriptDriver{ready: true}, nil, "error getting secret s",
			"", "patch volumesnapshotcontents/status", "Warning SnapshotCreationFailed", false},
		{"transient error: being-created written", dynContent(), &scriptDriver{create: []error{unavailable}}, nil, "Unavailable",
			"create snapshot-uid1", "patch volumesnapshotcontents, patch volumesnapshotcontents/status", "Warning SnapshotCreationFailed", false},
		{"final error: no being-created", dynContent(), &scriptDriver{create: []error{invalid}}, nil, "InvalidArgument",
			"create snapshot-uid1", "patch volumesnapshotcontents/status", "Warning SnapshotCreationFailed", false},
		{"final error clears being-created", dynContent(vscAnn(AnnBeingCreated, "yes")), &scriptDriver{create: []error{invalid}}, nil, "InvalidArgument",
			"create snapshot-uid1", "patch volumesnapshotcontents, patch volumesnapshotcontents/status", "Warning SnapshotCreationFailed", false},
		{"1-11 deleted (Delete): DeleteSnapshot, then finalizer removed",
			dynContent(vscDeleting(), vscAnn(AnnBeingDeleted, "yes"), vscStatus(&crdv1.VolumeSnapshotContentStatus{SnapshotHandle: ptr("h1"), ReadyToUse: ptr(true)})),
			&scriptDriver{}, nil, "", "delete h1", "patch volumesnapshotcontents", "", false},
		{"deleted, driver answers NotFound: the snapshot is gone, finalizer removed",
			dynContent(vscDeleting(), vscAnn(AnnBeingDeleted, "yes"), vscStatus(&crdv1.VolumeSnapshotContentStatus{SnapshotHandle: ptr("h1"), ReadyToUse: ptr(true)})),
			&scriptDriver{del: status.Error(codes.NotFound, "no such snapshot")}, nil, "", "delete h1", "patch volumesnapshotcontents", "", false},
		{"deleted, driver fails: finalizer kept",
			dynContent(vscDeleting(), vscAnn(AnnBeingDeleted, "yes"), vscStatus(&crdv1.VolumeSnapshotContentStatus{SnapshotHandle: ptr("h1"), ReadyToUse: ptr(true)})),
			&scriptDriver{del: unavailable}, nil, "Unavailable", "delete h1", "", "Warning SnapshotDeleteError", false},
		{"deleted before any handle: CreateSnapshot tells, then delete",
			dynContent(vscDeleting(), vscAnn(AnnBeingDeleted, "yes")), &scriptDriver{ready: true}, nil, "",
			"create snapshot-uid1, delete h-snapshot-uid1", "patch volumesnapshotcontents/status, patch volumesnapshotcontents", "", false},
		{"deleted, driver refuses for good: released without delete",
			dynContent(vscDeleting(), vscAnn(AnnBeingDeleted, "yes")), &scriptDriver{create: []error{invalid}}, nil, "",
			"create snapshot-uid1", "patch volumesnapshotcontents/status, patch volumesnapshotcontents", "Warning SnapshotCreationFailed", false},
		{"deleted while a create is in doubt: waits on a transient error",
			dynContent(vscDeleting(), vscAnn(AnnBeingDeleted, "yes"), vscAnn(AnnBeingCreated, "yes")), &scriptDriver{create: []error{unavailable}}, nil, "Unavailable",
			"create snapshot-uid1", "patch volumesnapshotcontents/status", "Warning SnapshotCreationFailed", false},
		{"static: ListSnapshots", mkVSC(snapHandle("sh")), &scriptDriver{}, nil, "",
			"status sh", "patch volumesnapshotcontents/status", "", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, ctx := ktesting.NewTestContext(t)
			s, sc, rec := fakeSidecar(t, tc.drv, tc.vsc, tc.kube...)
			res, err := s.steps().sync(ctx, tc.vsc.DeepCopy())
			if tc.wantErr == "" && err != nil || tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)) {
				t.Fatalf("syncContent err = %v, want %q", err, tc.wantErr)
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
			if tc.name == "1-4 valid secret" && tc.drv.secrets["k"] != "v" {
				t.Errorf("secrets passed = %v", tc.drv.secrets)
			}
		})
	}
}

// waitingDriver's CreateSnapshot returns only when its context ends.
type waitingDriver struct{ scriptDriver }

func (d *waitingDriver) CreateSnapshot(ctx context.Context, _, _ string, _, _ map[string]string) (SnapshotInfo, error) {
	<-ctx.Done()
	return SnapshotInfo{}, status.FromContextError(ctx.Err()).Err()
}

// SidecarOptions.Timeout bounds a driver call that never answers; the
// answer is a transient error, so the content is marked being created.
func TestSidecarTimeoutBoundsDriverCalls(t *testing.T) {
	_, ctx := ktesting.NewTestContext(t)
	s, sc, _ := fakeSidecar(t, &waitingDriver{}, dynContent())
	s.opts.Timeout = 50 * time.Millisecond
	_, err := s.steps().sync(ctx, dynContent())
	if status.Code(err) != codes.DeadlineExceeded {
		t.Fatalf("syncContent = %v, want the call's deadline", err)
	}
	if got := actionsOf(sc.Actions()); !strings.HasPrefix(got, "patch volumesnapshotcontents,") {
		t.Errorf("actions = %q, want the being-created annotation first", got)
	}
}

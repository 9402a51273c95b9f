package snapshotter

import (
	"errors"
	"strings"
	"testing"

	crdv1 "github.com/kubernetes-csi/external-snapshotter/client/v8/apis/volumesnapshot/v1"
	snapfake "github.com/kubernetes-csi/external-snapshotter/client/v8/clientset/versioned/fake"
	snaplisters "github.com/kubernetes-csi/external-snapshotter/client/v8/listers/volumesnapshot/v1"
	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/runtime"
	kubefake "k8s.io/client-go/kubernetes/fake"
	corelisters "k8s.io/client-go/listers/core/v1"
	core "k8s.io/client-go/testing"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/record"
	"k8s.io/klog/v2/ktesting"
)

// fakeController is a Controller on fake clientsets whose listers hold
// the given objects; only the API actions and events are asserted.
func fakeController(t *testing.T, objs ...runtime.Object) (*Controller, *snapfake.Clientset, *kubefake.Clientset, *record.FakeRecorder) {
	t.Helper()
	var snapObjs, kubeObjs []runtime.Object
	idx := map[string]cache.Indexer{}
	for _, k := range []string{"vs", "vsc", "class", "pvc", "pv"} {
		idx[k] = cache.NewIndexer(cache.MetaNamespaceKeyFunc, cache.Indexers{cache.NamespaceIndex: cache.MetaNamespaceIndexFunc})
	}
	_ = idx["vs"].AddIndexers(cache.Indexers{indexBySource: snapshotBySource})
	_ = idx["pvc"].AddIndexers(cache.Indexers{indexByRestore: pvcByRestore})
	for _, o := range objs {
		switch o.(type) {
		case *crdv1.VolumeSnapshot:
			_ = idx["vs"].Add(o)
			snapObjs = append(snapObjs, o)
		case *crdv1.VolumeSnapshotContent:
			_ = idx["vsc"].Add(o)
			snapObjs = append(snapObjs, o)
		case *crdv1.VolumeSnapshotClass:
			_ = idx["class"].Add(o)
			snapObjs = append(snapObjs, o)
		case *v1.PersistentVolumeClaim:
			_ = idx["pvc"].Add(o)
			kubeObjs = append(kubeObjs, o)
		case *v1.PersistentVolume:
			_ = idx["pv"].Add(o)
			kubeObjs = append(kubeObjs, o)
		}
	}
	sc := snapfake.NewSimpleClientset(snapObjs...)
	kc := kubefake.NewSimpleClientset(kubeObjs...)
	rec := record.NewFakeRecorder(20)
	c, err := NewController(ControllerOptions{SnapshotClient: sc}, kc)
	if err != nil {
		t.Fatal(err)
	}
	c.rec = rec // Run sets the runtime's; these tests call the syncs directly
	c.vsLister = snaplisters.NewVolumeSnapshotLister(idx["vs"])
	c.vscLister = snaplisters.NewVolumeSnapshotContentLister(idx["vsc"])
	c.classLister = snaplisters.NewVolumeSnapshotClassLister(idx["class"])
	c.pvcLister = corelisters.NewPersistentVolumeClaimLister(idx["pvc"])
	c.pvLister = corelisters.NewPersistentVolumeLister(idx["pv"])
	c.vsIndex, c.pvcIndex = idx["vs"], idx["pvc"]
	sc.ClearActions()
	kc.ClearActions()
	return c, sc, kc, rec
}

func actionsOf(acts ...[]core.Action) string {
	var out []string
	for _, list := range acts {
		for _, a := range list {
			s := a.GetVerb() + " " + a.GetResource().Resource
			if sub := a.GetSubresource(); sub != "" {
				s += "/" + sub
			}
			out = append(out, s)
		}
	}
	return strings.Join(out, ", ")
}

func events(rec *record.FakeRecorder) string {
	var out []string
	for {
		select {
		case e := <-rec.Events:
			out = append(out, e)
		default:
			return strings.Join(out, " | ")
		}
	}
}

func TestControllerSyncSnapshotActions(t *testing.T) {
	pvc := boundPVC(v1.ClaimBound, "pv")
	pv := csiPV("claim", "pvcuid")
	gold := mkClass("gold", "drv", "")
	for _, tc := range []struct {
		name       string
		objs       []runtime.Object
		vs         *crdv1.VolumeSnapshot
		react      func(*snapfake.Clientset)
		wantErr    bool
		wantAct    string
		wantEvents string
	}{
		{"6-1 snapshot with class gold: finalizers, PVC protection, content",
			[]runtime.Object{pvc, pv, gold}, mkVS(fromPVC("claim"), withClass("gold")), nil, false,
			"patch volumesnapshots, patch persistentvolumeclaims, create volumesnapshotcontents", "Normal CreatingSnapshot Waiting for a snapshot ns/snap to be created by the CSI driver."},
		{"7-1 non-existing snapshot class",
			[]runtime.Object{pvc, pv}, mkVS(fromPVC("claim"), withClass("gold")), nil, true,
			"patch volumesnapshots/status", "Warning GetSnapshotClassFailed"},
		{"7-3 without snapshot class and no default",
			[]runtime.Object{pvc, pv, gold}, mkVS(fromPVC("claim")), nil, true,
			"patch volumesnapshots/status", "Warning SetDefaultSnapshotClassFailed"},
		{"7-4 no-existing claim",
			[]runtime.Object{gold}, mkVS(fromPVC("claim"), withClass("gold"), vsFinalizers(FinalizerSnapshotAsSource, FinalizerSnapshotBound)), nil, true,
			"patch volumesnapshots/status", "Warning SnapshotContentCreationFailed"},
		{"7-6 claim that is not yet bound",
			[]runtime.Object{boundPVC(v1.ClaimPending, ""), gold}, mkVS(fromPVC("claim"), withClass("gold"), vsFinalizers(FinalizerSnapshotAsSource, FinalizerSnapshotBound)), nil, true,
			"patch volumesnapshots/status", "Warning SnapshotContentCreationFailed"},
		{"7-10 invalid secret",
			[]runtime.Object{pvc, pv, func() *crdv1.VolumeSnapshotClass {
				c := mkClass("gold", "drv", "")
				c.Parameters = map[string]string{paramSecretName: "${pvc.name}", paramSecretNamespace: "ns"}
				return c
			}()}, mkVS(fromPVC("claim"), withClass("gold"), vsFinalizers(FinalizerSnapshotAsSource, FinalizerSnapshotBound)), nil, true,
			"patch volumesnapshots/status", "Warning SnapshotContentCreationFailed"},
		{"7-11 cannot save snapshot content",
			[]runtime.Object{pvc, pv, gold}, mkVS(fromPVC("claim"), withClass("gold"), vsFinalizers(FinalizerSnapshotAsSource, FinalizerSnapshotBound)),
			func(c *snapfake.Clientset) {
				c.PrependReactor("create", "volumesnapshotcontents", func(core.Action) (bool, runtime.Object, error) {
					return true, nil, errors.New("mock create error")
				})
			}, true,
			"patch persistentvolumeclaims, create volumesnapshotcontents, patch volumesnapshots/status",
			"Warning CreateSnapshotContentFailed"},
		{"2-8 apiserver update error on finalizers",
			[]runtime.Object{pvc, pv, gold}, mkVS(fromPVC("claim"), withClass("gold")),
			func(c *snapfake.Clientset) {
				c.PrependReactor("patch", "volumesnapshots", func(core.Action) (bool, runtime.Object, error) {
					return true, nil, errors.New("mock patch error")
				})
			}, true, "patch volumesnapshots", "Warning SnapshotFinalizerError"},
		{"SnapshotValidationError", nil, mkVS(), nil, true, "patch volumesnapshots/status", "Warning SnapshotValidationError"},
		{"3-2 (static) ready snapshot bound to none-exist content",
			nil, mkVS(fromContent("content"), vsStatus(&crdv1.VolumeSnapshotStatus{ReadyToUse: ptr(true)})), nil, true,
			"patch volumesnapshots/status", "Warning SnapshotContentMissing"},
		{"2-11 (static) successful bind, class name updated",
			[]runtime.Object{gold, mkVSC(snapHandle("h"), refUID(""))}, mkVS(fromContent("content"), withClass("gold")), nil, false,
			"patch volumesnapshotcontents, patch volumesnapshots, patch volumesnapshots/status", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, ctx := ktesting.NewTestContext(t)
			c, sc, kc, rec := fakeController(t, append(tc.objs, tc.vs)...)
			c.opts.BindStatusDelay = 0
			if tc.react != nil {
				tc.react(sc)
			}
			_, err := c.syncSnapshot(ctx, tc.vs.DeepCopy())
			if (err != nil) != tc.wantErr {
				t.Fatalf("syncSnapshot err = %v, want error %v", err, tc.wantErr)
			}
			if got := actionsOf(sc.Actions(), kc.Actions()); !sameActions(got, tc.wantAct) {
				t.Errorf("actions = %q, want %q", got, tc.wantAct)
			}
			if got := events(rec); !strings.HasPrefix(got, tc.wantEvents) || (tc.wantEvents == "" && got != "") {
				t.Errorf("events = %q, want prefix %q", got, tc.wantEvents)
			}
		})
	}
}

// sameActions compares comma-separated action lists ignoring order
// between the two clientsets.
func sameActions(got, want string) bool {
	a, b := strings.Split(got, ", "), strings.Split(want, ", ")
	if len(a) != len(b) {
		return false
	}
	count := map[string]int{}
	for _, x := range a {
		count[x]++
	}
	for _, x := range b {
		count[x]--
	}
	for _, n := range count {
		if n != 0 {
			return false
		}
	}
	return true
}

func TestControllerDeleteActions(t *testing.T) {
	both := vsFinalizers(FinalizerSnapshotAsSource, FinalizerSnapshotBound)
	restoring := &v1.PersistentVolumeClaim{}
	restoring.Name, restoring.Namespace = "restore", "ns"
	group := crdv1.GroupName
	restoring.Spec.DataSource = &v1.TypedLocalObjectReference{APIGroup: &group, Kind: "VolumeSnapshot", Name: "snap"}
	restoring.Status.Phase = v1.ClaimPending
	for _, tc := range []struct {
		name    string
		objs    []runtime.Object
		vs      *crdv1.VolumeSnapshot
		wantErr bool
		wantAct string
	}{
		{"3-1 content deleted, as-source finalizer removed", []runtime.Object{mkVSC(volumeHandle("v"))},
			mkVS(fromContent("content"), vsDeleting(), both), false,
			"patch volumesnapshotcontents, delete volumesnapshotcontents, patch volumesnapshots"},
		{"3-1a a PVC is restoring from it", []runtime.Object{mkVSC(volumeHandle("v")), restoring},
			mkVS(fromContent("content"), vsDeleting(), both), true, ""},
		{"3-5 content bound to another uid: treated as absent", []runtime.Object{mkVSC(volumeHandle("v"), refUID("other"))},
			mkVS(fromContent("content"), vsDeleting(), both), false, "patch volumesnapshots"},
		{"1-1 not a candidate: nothing", []runtime.Object{mkVSC(volumeHandle("v"))},
			mkVS(fromContent("content"), vsDeleting()), false, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, ctx := ktesting.NewTestContext(t)
			c, sc, kc, _ := fakeController(t, append(tc.objs, tc.vs)...)
			err := c.deleteSnapshot(ctx, tc.vs.DeepCopy())
			if (err != nil) != tc.wantErr {
				t.Fatalf("deleteSnapshot err = %v", err)
			}
			if got := actionsOf(sc.Actions(), kc.Actions()); got != tc.wantAct {
				t.Errorf("actions = %q, want %q", got, tc.wantAct)
			}
		})
	}
}

// 6-2: a class with a snapshotter secret: the content carries the resolved
// reference in its annotations, and is created with its finalizer.
func TestControllerCreateContentWithSecret(t *testing.T) {
	_, ctx := ktesting.NewTestContext(t)
	class := mkClass("gold", "drv", "")
	class.Parameters = map[string]string{paramSecretName: "${volumesnapshot.name}-key", paramSecretNamespace: "${volumesnapshot.namespace}", "tier": "1"}
	vs := mkVS(fromPVC("claim"), withClass("gold"), vsFinalizers(FinalizerSnapshotAsSource, FinalizerSnapshotBound))
	c, sc, _, _ := fakeController(t, boundPVC(v1.ClaimBound, "pv"), csiPV("claim", "pvcuid"), class, vs)
	if _, err := c.syncSnapshot(ctx, vs.DeepCopy()); err != nil {
		t.Fatal(err)
	}
	var created *crdv1.VolumeSnapshotContent
	for _, a := range sc.Actions() {
		if ca, ok := a.(core.CreateAction); ok {
			created, _ = ca.GetObject().(*crdv1.VolumeSnapshotContent)
		}
	}
	if created == nil {
		t.Fatalf("no content created; actions %s", actionsOf(sc.Actions()))
	}
	if created.Name != "snapcontent-uid1" || created.Annotations[AnnDeletionSecretName] != "snap-key" || created.Annotations[AnnDeletionSecretNamespace] != "ns" {
		t.Errorf("content %s annotations %v", created.Name, created.Annotations)
	}
	if created.Spec.VolumeSnapshotRef.UID != "uid1" || *created.Spec.Source.VolumeHandle != "vol" || created.Spec.Driver != "drv" ||
		created.Spec.DeletionPolicy != crdv1.VolumeSnapshotContentDelete || len(created.Finalizers) != 1 || created.Finalizers[0] != FinalizerContentBound {
		t.Errorf("content spec %+v finalizers %v", created.Spec, created.Finalizers)
	}
}

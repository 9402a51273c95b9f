package resizer_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/container-storage-interface/spec/lib/go/csi"
	v1 "k8s.io/api/core/v1"
	storagev1 "k8s.io/api/storage/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/klog/v2/ktesting"

	"github.com/csi-kit/sidecars/csiconn"
	"github.com/csi-kit/sidecars/resizer"
	"github.com/csi-kit/sidecars/testkit/eventually"
	"github.com/csi-kit/sidecars/testkit/fakedriver"
)

const storageClass = "csikit-resizable"

var driverSeq atomic.Int32

// env is one test's namespace, fake driver and running resizer.
type env struct {
	t      testing.TB
	ctx    context.Context
	kube   kubernetes.Interface
	ns     string
	drv    *fakedriver.Driver
	conn   *csiconn.Conn
	name   string
	runErr chan error
}

func newEnv(t testing.TB, dopts fakedriver.Options, ropts resizer.Options) *env {
	t.Helper()
	e := newIdleEnv(t, dopts)
	e.run(ropts)
	return e
}

// newIdleEnv is newEnv without the resizer: the test creates objects, then
// calls run.
func newIdleEnv(t testing.TB, dopts fakedriver.Options) *env {
	t.Helper()
	if cp == nil {
		t.Skip("no control plane in -short mode")
	}
	return newIdleEnvOn(t, cp.Config(), dopts)
}

// newIdleEnvOn is newIdleEnv on the API server of cfg.
func newIdleEnvOn(t testing.TB, cfg *rest.Config, dopts fakedriver.Options) *env {
	t.Helper()
	_, ctx := ktesting.NewTestContext(t)
	ctx, cancel := context.WithCancel(ctx)
	t.Cleanup(cancel)
	e := &env{t: t, ctx: ctx, kube: kubernetes.NewForConfigOrDie(cfg), runErr: make(chan error, 1)}
	e.name = fmt.Sprintf("t%d.csi.test", driverSeq.Add(1))
	dopts.Name = e.name
	e.drv = fakedriver.Start(t, dopts)
	e.ns = fmt.Sprintf("ns-%d-%d", time.Now().UnixNano()%1e9, driverSeq.Load())
	if _, err := e.kube.CoreV1().Namespaces().Create(ctx, &v1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: e.ns}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	e.ensureStorageClass()
	conn, err := csiconn.Connect(ctx, csiconn.Options{Address: e.drv.Endpoint()})
	if err != nil {
		t.Fatal(err)
	}
	e.conn = conn
	t.Cleanup(func() { conn.Close() })
	return e
}

// run starts a resizer with ropts; it is stopped, and Run must have
// returned nil, when the test ends.
func (e *env) run(ropts resizer.Options) {
	e.t.Helper()
	drv, err := resizer.NewCSIDriver(e.ctx, e.conn)
	if err != nil {
		e.t.Fatal(err)
	}
	r, err := resizer.New(ropts, e.kube, drv)
	if err != nil {
		e.t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(e.ctx)
	go func() { e.runErr <- r.Run(ctx) }()
	e.t.Cleanup(func() {
		cancel()
		select {
		case err := <-e.runErr:
			if err != nil {
				e.t.Errorf("Run returned %v", err)
			}
		case <-time.After(30 * time.Second):
			e.t.Errorf("Run did not return within 30s of cancel")
		}
	})
}

func (e *env) ensureStorageClass() {
	yes := true
	_, err := e.kube.StorageV1().StorageClasses().Create(e.ctx, &storagev1.StorageClass{
		ObjectMeta:           metav1.ObjectMeta{Name: storageClass},
		Provisioner:          "csikit.csi.test",
		AllowVolumeExpansion: &yes,
	}, metav1.CreateOptions{})
	if err != nil && !apierrors.IsAlreadyExists(err) {
		e.t.Fatal(err)
	}
}

// backendVolume creates a volume of size bytes in the fake driver.
func (e *env) backendVolume(name string, size int64) string {
	e.t.Helper()
	resp, err := e.conn.Controller().CreateVolume(e.ctx, &csi.CreateVolumeRequest{
		Name:          name,
		CapacityRange: &csi.CapacityRange{RequiredBytes: size},
		VolumeCapabilities: []*csi.VolumeCapability{{
			AccessType: &csi.VolumeCapability_Mount{Mount: &csi.VolumeCapability_MountVolume{}},
			AccessMode: &csi.VolumeCapability_AccessMode{Mode: csi.VolumeCapability_AccessMode_SINGLE_NODE_WRITER},
		}},
	})
	if err != nil {
		e.t.Fatal(err)
	}
	return resp.GetVolume().GetVolumeId()
}

// boundPair creates a PVC and a static PV bound to each other, with the
// PVC's status Bound at size. mutate may change the PV before it is created
// (another driver, no CSI source...); handle "" leaves the handle as given.
func (e *env) boundPair(name, size, handle string, mutate func(pv *v1.PersistentVolume)) (*v1.PersistentVolumeClaim, *v1.PersistentVolume) {
	e.t.Helper()
	sc := storageClass
	q := resource.MustParse(size)
	pvName := e.ns + "-" + name
	pvc, err := e.kube.CoreV1().PersistentVolumeClaims(e.ns).Create(e.ctx, &v1.PersistentVolumeClaim{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: v1.PersistentVolumeClaimSpec{
			AccessModes:      []v1.PersistentVolumeAccessMode{v1.ReadWriteOnce},
			Resources:        v1.VolumeResourceRequirements{Requests: v1.ResourceList{v1.ResourceStorage: q}},
			StorageClassName: &sc,
			VolumeName:       pvName,
		},
	}, metav1.CreateOptions{})
	if err != nil {
		e.t.Fatal(err)
	}
	pv := &v1.PersistentVolume{
		ObjectMeta: metav1.ObjectMeta{Name: pvName},
		Spec: v1.PersistentVolumeSpec{
			Capacity:                      v1.ResourceList{v1.ResourceStorage: q},
			AccessModes:                   []v1.PersistentVolumeAccessMode{v1.ReadWriteOnce},
			PersistentVolumeReclaimPolicy: v1.PersistentVolumeReclaimRetain,
			StorageClassName:              sc,
			PersistentVolumeSource: v1.PersistentVolumeSource{CSI: &v1.CSIPersistentVolumeSource{
				Driver: e.name, VolumeHandle: handle, FSType: "ext4",
			}},
			ClaimRef: &v1.ObjectReference{Kind: "PersistentVolumeClaim", APIVersion: "v1", Namespace: e.ns, Name: name, UID: pvc.UID},
		},
	}
	if mutate != nil {
		mutate(pv)
	}
	if pv != nil && pv.Name != "" {
		if pv, err = e.kube.CoreV1().PersistentVolumes().Create(e.ctx, pv, metav1.CreateOptions{}); err != nil {
			e.t.Fatal(err)
		}
		e.t.Cleanup(func() {
			_ = e.kube.CoreV1().PersistentVolumes().Delete(context.Background(), pvName, metav1.DeleteOptions{})
		})
	}
	pvc.Status.Phase = v1.ClaimBound
	pvc.Status.AccessModes = []v1.PersistentVolumeAccessMode{v1.ReadWriteOnce}
	pvc.Status.Capacity = v1.ResourceList{v1.ResourceStorage: q}
	if pvc, err = e.kube.CoreV1().PersistentVolumeClaims(e.ns).UpdateStatus(e.ctx, pvc, metav1.UpdateOptions{}); err != nil {
		e.t.Fatal(err)
	}
	if pv != nil && pv.Name != "" {
		// Let the PV binder agree, so it does not reset the claim later. The
		// binder may write the claim's status itself while it catches up
		// (Pending for a moment, then Bound), so both phases are awaited.
		e.eventually(20*time.Second, "PV "+pv.Name+" and PVC "+name+" Bound", func() (bool, string) {
			gotPV, gotPVC := e.pv(pv.Name), e.pvc(name)
			return gotPV.Status.Phase == v1.VolumeBound && gotPVC.Status.Phase == v1.ClaimBound,
				"PV " + string(gotPV.Status.Phase) + ", PVC " + string(gotPVC.Status.Phase)
		})
		pvc = e.pvc(name)
	}
	return pvc, pv
}

// request raises (or lowers) the PVC's storage request.
func (e *env) request(name, size string) error {
	patch := fmt.Sprintf(`{"spec":{"resources":{"requests":{"storage":%q}}}}`, size)
	_, err := e.kube.CoreV1().PersistentVolumeClaims(e.ns).Patch(e.ctx, name, types.MergePatchType, []byte(patch), metav1.PatchOptions{})
	return err
}

func (e *env) pvc(name string) *v1.PersistentVolumeClaim {
	e.t.Helper()
	pvc, err := e.kube.CoreV1().PersistentVolumeClaims(e.ns).Get(e.ctx, name, metav1.GetOptions{})
	if err != nil {
		e.t.Fatal(err)
	}
	return pvc
}

func (e *env) pv(name string) *v1.PersistentVolume {
	e.t.Helper()
	pv, err := e.kube.CoreV1().PersistentVolumes().Get(e.ctx, name, metav1.GetOptions{})
	if err != nil {
		e.t.Fatal(err)
	}
	return pv
}

// eventually fails the test unless cond holds within timeout; cond says
// what it sees while it does not. The polling is testkit/eventually's.
func (e *env) eventually(timeout time.Duration, what string, cond func() (bool, string)) {
	e.t.Helper()
	eventually.Require(e.t, timeout, what, func(context.Context) error {
		if ok, why := cond(); !ok {
			return errors.New(why)
		}
		return nil
	})
}

// ourConds lists the resize and modify conditions of pvc, leaving out those
// of other controllers (Unused, ...).
func ourConds(pvc *v1.PersistentVolumeClaim) []string {
	var out []string
	for _, c := range pvc.Status.Conditions {
		switch c.Type {
		case v1.PersistentVolumeClaimResizing, v1.PersistentVolumeClaimFileSystemResizePending,
			v1.PersistentVolumeClaimControllerResizeError, v1.PersistentVolumeClaimNodeResizeError,
			v1.PersistentVolumeClaimVolumeModifyingVolume, v1.PersistentVolumeClaimVolumeModifyVolumeError:
			out = append(out, string(c.Type)+"="+c.Message)
		}
	}
	return out
}

// events lists "Reason: message" of the resizer's events about object name.
func (e *env) events(name string) []string {
	list, err := e.kube.CoreV1().Events(e.ns).List(e.ctx, metav1.ListOptions{FieldSelector: "involvedObject.name=" + name})
	if err != nil {
		e.t.Fatal(err)
	}
	var out []string
	for _, ev := range list.Items {
		if !strings.HasPrefix(ev.Source.Component, "external-resizer") {
			continue
		}
		out = append(out, ev.Reason+": "+ev.Message)
	}
	return out
}

func (e *env) waitEvent(name, reason, contains string) string {
	e.t.Helper()
	var found string
	e.eventually(20*time.Second, "event "+reason+" on "+name, func() (bool, string) {
		evs := e.events(name)
		for _, ev := range evs {
			if strings.HasPrefix(ev, reason+": ") && strings.Contains(ev, contains) {
				found = ev
				return true, ""
			}
		}
		return false, fmt.Sprintf("events: %q", evs)
	})
	return found
}

func storage(l v1.ResourceList) string {
	q, ok := l[v1.ResourceStorage]
	if !ok {
		return "<unset>"
	}
	return q.String()
}

func rstatus(pvc *v1.PersistentVolumeClaim) v1.ClaimResourceStatus {
	return pvc.Status.AllocatedResourceStatuses[v1.ResourceStorage]
}

func hasCond(pvc *v1.PersistentVolumeClaim, t v1.PersistentVolumeClaimConditionType) bool {
	for _, c := range pvc.Status.Conditions {
		if c.Type == t {
			return true
		}
	}
	return false
}

func gi(n int64) int64 { return n << 30 }

var metav1UpdateOptions = metav1.UpdateOptions{}

func mustQ(s string) resource.Quantity { return resource.MustParse(s) }

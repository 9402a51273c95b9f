package snapshotter

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/container-storage-interface/spec/lib/go/csi"
	crdv1 "github.com/kubernetes-csi/external-snapshotter/client/v8/apis/volumesnapshot/v1"
	snapclient "github.com/kubernetes-csi/external-snapshotter/client/v8/clientset/versioned"
	v1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/util/retry"
	"k8s.io/klog/v2"
	"k8s.io/klog/v2/ktesting"

	"github.com/csi-kit/sidecars/csiconn"
	"github.com/csi-kit/sidecars/internal/kube"
	"github.com/csi-kit/sidecars/testkit/eventually"
	"github.com/csi-kit/sidecars/testkit/fakedriver"
)

var envSeq atomic.Int32

var benchMu sync.Mutex

// env is one test's world: a namespace, a fake driver, and (once started)
// the controller and the sidecar.
type env struct {
	t      testing.TB
	ctx    context.Context
	ns     string
	kube   kubernetes.Interface
	snap   snapclient.Interface
	drv    *fakedriver.Driver
	conn   *csiconn.Conn
	driver string

	stopMu sync.Mutex
	stops  []func()
}

type envOptions struct {
	notReadyPolls int
}

func newEnv(t testing.TB, o envOptions) *env {
	t.Helper()
	needCluster(t)
	n := envSeq.Add(1)
	logger, ctx := ktesting.NewTestContext(t)
	_ = logger
	e := &env{t: t, ctx: ctx, driver: fmt.Sprintf("snap%d.csi.test", n)}
	cfg := kube.WithBudget(cp.Config(), -1, 0)
	e.kube = kubernetes.NewForConfigOrDie(cfg)
	e.snap = snapclient.NewForConfigOrDie(cfg)
	e.ns = fmt.Sprintf("snap-%d-%d", n, time.Now().UnixNano()%100000)
	if _, err := e.kube.CoreV1().Namespaces().Create(ctx, &v1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: e.ns}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	e.drv = fakedriver.Start(t, fakedriver.Options{Name: e.driver, Capabilities: fakedriver.Snapshotter, SnapshotNotReadyPolls: o.notReadyPolls})
	conn, err := csiconn.Connect(ctx, csiconn.Options{Address: e.drv.Endpoint(), CallTimeout: 2 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	e.conn = conn
	t.Cleanup(func() {
		e.stopAll()
		conn.Close()
	})
	return e
}

// startController runs a snapshot controller until the test ends or the
// returned stop is called. Without opts.Recorder, the controller's own
// recorder writes the events.
func (e *env) startController(opts ControllerOptions) func() {
	e.t.Helper()
	if opts.RetryIntervalStart == 0 {
		opts.RetryIntervalStart = 100 * time.Millisecond
	}
	if opts.RetryIntervalMax == 0 {
		opts.RetryIntervalMax = 2 * time.Second
	}
	opts.SnapshotClient = e.snap
	c, err := NewController(opts, e.kube)
	if err != nil {
		e.t.Fatal(err)
	}
	return e.run("controller", c.Run)
}

func (e *env) startSidecar(opts SidecarOptions) func() {
	e.t.Helper()
	opts.DriverName = e.driver
	if opts.RetryIntervalStart == 0 {
		opts.RetryIntervalStart = 100 * time.Millisecond
	}
	if opts.RetryIntervalMax == 0 {
		opts.RetryIntervalMax = 2 * time.Second
	}
	if opts.ReadyPollStart == 0 {
		opts.ReadyPollStart = 100 * time.Millisecond
	}
	drv, err := NewCSIDriver(e.conn)
	if err != nil {
		e.t.Fatal(err)
	}
	opts.SnapshotClient = e.snap
	s, err := NewSidecar(opts, e.kube, drv)
	if err != nil {
		e.t.Fatal(err)
	}
	return e.run("sidecar", s.Run)
}

func (e *env) run(what string, fn func(context.Context) error) func() {
	ctx, cancel := context.WithCancel(klog.NewContext(context.Background(), klog.FromContext(e.ctx)))
	done := make(chan error, 1)
	go func() { done <- fn(ctx) }()
	var once sync.Once
	stop := func() {
		once.Do(func() {
			cancel()
			if err := <-done; err != nil {
				e.t.Errorf("%s: Run: %v", what, err)
			}
		})
	}
	e.onStop(stop)
	return stop
}

func (e *env) onStop(f func()) {
	e.stopMu.Lock()
	defer e.stopMu.Unlock()
	e.stops = append(e.stops, f)
}

func (e *env) stopAll() {
	e.stopMu.Lock()
	stops := e.stops
	e.stops = nil
	e.stopMu.Unlock()
	for i := len(stops) - 1; i >= 0; i-- {
		stops[i]()
	}
}

// volume creates a backend volume and a bound PV/PVC pair for it.
func (e *env) volume(name string) *v1.PersistentVolumeClaim {
	e.t.Helper()
	resp, err := e.conn.Controller().CreateVolume(e.ctx, volumeRequest(e.ns+"-"+name))
	if err != nil {
		e.t.Fatal(err)
	}
	return createBoundPVC(e.ctx, e.t, e.kube, e.ns, name, e.driver, resp.GetVolume().GetVolumeId())
}

func createBoundPVC(ctx context.Context, t testing.TB, client kubernetes.Interface, ns, name, driver, handle string) *v1.PersistentVolumeClaim {
	t.Helper()
	pvc, err := makeBoundPVC(ctx, client, ns, name, driver, handle)
	if err != nil {
		t.Fatal(err)
	}
	return pvc
}

// makeBoundPVC creates a PV for handle and a PVC bound to it. The status
// is written here; kube-controller-manager's binder, when it runs, may
// complete the binding first, which is fine.
func makeBoundPVC(ctx context.Context, client kubernetes.Interface, ns, name, driver, handle string) (*v1.PersistentVolumeClaim, error) {
	return makePinnedPVC(ctx, client, ns, name, driver, handle, nil)
}

// makePinnedPVC is makeBoundPVC with the PV's node affinity (nil: none).
func makePinnedPVC(ctx context.Context, client kubernetes.Interface, ns, name, driver, handle string, affinity *v1.VolumeNodeAffinity) (*v1.PersistentVolumeClaim, error) {
	pvName := "pv-" + ns + "-" + name
	size := resource.MustParse("1Gi")
	pv := &v1.PersistentVolume{
		ObjectMeta: metav1.ObjectMeta{Name: pvName},
		Spec: v1.PersistentVolumeSpec{
			Capacity:                      v1.ResourceList{v1.ResourceStorage: size},
			AccessModes:                   []v1.PersistentVolumeAccessMode{v1.ReadWriteOnce},
			PersistentVolumeReclaimPolicy: v1.PersistentVolumeReclaimRetain,
			ClaimRef:                      &v1.ObjectReference{Kind: "PersistentVolumeClaim", APIVersion: "v1", Namespace: ns, Name: name},
			PersistentVolumeSource:        v1.PersistentVolumeSource{CSI: &v1.CSIPersistentVolumeSource{Driver: driver, VolumeHandle: handle}},
			StorageClassName:              "",
			NodeAffinity:                  affinity,
		},
	}
	if _, err := client.CoreV1().PersistentVolumes().Create(ctx, pv, metav1.CreateOptions{}); err != nil {
		return nil, err
	}
	empty := ""
	pvc := &v1.PersistentVolumeClaim{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns},
		Spec: v1.PersistentVolumeClaimSpec{
			AccessModes:      []v1.PersistentVolumeAccessMode{v1.ReadWriteOnce},
			Resources:        v1.VolumeResourceRequirements{Requests: v1.ResourceList{v1.ResourceStorage: size}},
			VolumeName:       pvName,
			StorageClassName: &empty,
		},
	}
	created, err := client.CoreV1().PersistentVolumeClaims(ns).Create(ctx, pvc, metav1.CreateOptions{})
	if err != nil {
		return nil, err
	}
	err = retry.RetryOnConflict(retry.DefaultBackoff, func() error {
		cur, err := client.CoreV1().PersistentVolumeClaims(ns).Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return err
		}
		if cur.Status.Phase == v1.ClaimBound {
			created = cur
			return nil
		}
		cur.Status.Phase = v1.ClaimBound
		cur.Status.AccessModes = cur.Spec.AccessModes
		cur.Status.Capacity = v1.ResourceList{v1.ResourceStorage: size}
		created, err = client.CoreV1().PersistentVolumeClaims(ns).UpdateStatus(ctx, cur, metav1.UpdateOptions{})
		return err
	})
	return created, err
}

func (e *env) class(name string, policy crdv1.DeletionPolicy, isDefault bool, params map[string]string) {
	e.t.Helper()
	c := &crdv1.VolumeSnapshotClass{ObjectMeta: metav1.ObjectMeta{Name: e.ns + "-" + name}, Driver: e.driver, DeletionPolicy: policy, Parameters: params}
	if isDefault {
		c.Annotations = map[string]string{AnnDefaultClass: "true"}
	}
	if _, err := e.snap.SnapshotV1().VolumeSnapshotClasses().Create(e.ctx, c, metav1.CreateOptions{}); err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(func() {
		_ = e.snap.SnapshotV1().VolumeSnapshotClasses().Delete(context.Background(), c.Name, metav1.DeleteOptions{})
	})
}

func (e *env) className(name string) string { return e.ns + "-" + name }

func (e *env) snapshot(name, pvc, class string) *crdv1.VolumeSnapshot {
	e.t.Helper()
	vs := &crdv1.VolumeSnapshot{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: e.ns},
		Spec:       crdv1.VolumeSnapshotSpec{Source: crdv1.VolumeSnapshotSource{PersistentVolumeClaimName: &pvc}},
	}
	if class != "" {
		cn := e.className(class)
		vs.Spec.VolumeSnapshotClassName = &cn
	}
	vs, err := e.snap.SnapshotV1().VolumeSnapshots(e.ns).Create(e.ctx, vs, metav1.CreateOptions{})
	if err != nil {
		e.t.Fatal(err)
	}
	return vs
}

func (e *env) getVS(name string) (*crdv1.VolumeSnapshot, error) {
	return e.snap.SnapshotV1().VolumeSnapshots(e.ns).Get(e.ctx, name, metav1.GetOptions{})
}

func (e *env) waitReady(name string) *crdv1.VolumeSnapshot {
	e.t.Helper()
	var vs *crdv1.VolumeSnapshot
	eventually.Require(e.t, 30*time.Second, "snapshot "+name+" ready", func(context.Context) error {
		var err error
		vs, err = e.getVS(name)
		if err != nil {
			return err
		}
		if vs.Status == nil || vs.Status.ReadyToUse == nil || !*vs.Status.ReadyToUse {
			return fmt.Errorf("status %+v", vs.Status)
		}
		return nil
	})
	return vs
}

// waitGone waits until get answers NotFound.
func (e *env) waitGone(what string, get func() error) {
	e.t.Helper()
	eventually.Require(e.t, 30*time.Second, what+" gone", func(context.Context) error {
		err := get()
		if apierrors.IsNotFound(err) {
			return nil
		}
		if err != nil {
			return err
		}
		return fmt.Errorf("still there")
	})
}

// waitEvent waits for an event of reason on object name in the
// namespace, its message containing contains.
func (e *env) waitEvent(name, reason, contains string) {
	e.t.Helper()
	eventually.Require(e.t, 20*time.Second, "event "+reason+" on "+name, func(ctx context.Context) error {
		list, err := e.kube.CoreV1().Events(e.ns).List(ctx, metav1.ListOptions{})
		if err != nil {
			return err
		}
		var seen []string
		for _, ev := range list.Items {
			if ev.InvolvedObject.Name == name && ev.Reason == reason && strings.Contains(ev.Message, contains) {
				return nil
			}
			seen = append(seen, ev.Reason+": "+ev.Message)
		}
		return fmt.Errorf("events seen: %q", seen)
	})
}

func volumeRequest(name string) *csi.CreateVolumeRequest {
	return &csi.CreateVolumeRequest{
		Name:               name,
		CapacityRange:      &csi.CapacityRange{RequiredBytes: 1 << 30},
		VolumeCapabilities: []*csi.VolumeCapability{{AccessType: &csi.VolumeCapability_Mount{Mount: &csi.VolumeCapability_MountVolume{}}, AccessMode: &csi.VolumeCapability_AccessMode{Mode: csi.VolumeCapability_AccessMode_SINGLE_NODE_WRITER}}},
	}
}

package provisioner

import (
	"context"
	"flag"
	"fmt"
	"hash/fnv"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	snapclient "github.com/kubernetes-csi/external-snapshotter/client/v8/clientset/versioned"
	"go.uber.org/goleak"
	v1 "k8s.io/api/core/v1"
	storagev1 "k8s.io/api/storage/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/klog/v2/ktesting"

	"github.com/csi-kit/sidecars/csiconn"
	"github.com/csi-kit/sidecars/internal/kube"
	"github.com/csi-kit/sidecars/testkit/controlplane"
	"github.com/csi-kit/sidecars/testkit/eventually"
	"github.com/csi-kit/sidecars/testkit/fakedriver"
)

// cp is the package's control plane: apiserver, controller-manager (PV
// binder) and scheduler; nil in -short mode.
var cp *controlplane.ControlPlane

func TestMain(m *testing.M) {
	flag.Parse()
	code := controlplane.RunTests(m, controlplane.Options{
		ControllerManager: true, Scheduler: true, SnapshotCRDs: true, Progress: os.Stderr}, &cp)
	if code == 0 {
		if err := goleak.Find(goleak.IgnoreTopFunction("k8s.io/klog/v2.(*flushDaemon).run"),
			goleak.IgnoreAnyFunction("k8s.io/client-go/util/workqueue.(*delayingType[...]).waitingLoop"),
			goleak.IgnoreAnyFunction("k8s.io/apimachinery/pkg/watch.(*Broadcaster).loop"),
			goleak.IgnoreTopFunction("internal/poll.runtime_pollWait"),
			goleak.IgnoreAnyFunction("k8s.io/client-go/tools/record.(*eventBroadcasterImpl).StartEventWatcher.func1"),
		); err != nil {
			fmt.Fprintf(os.Stderr, "goleak: %v\n", err)
			code = 1
		}
	}
	os.Exit(code)
}

// envSeq keeps names unique when tests repeat (-count).
var envSeq atomic.Int32

// env is one test's world: a namespace, a fake driver, clients.
type env struct {
	t      *testing.T
	ctx    context.Context
	ns     string
	driver string
	kube   kubernetes.Interface
	snaps  snapclient.Interface
	drv    *fakedriver.Driver
	conn   *csiconn.Conn
}

func needCluster(t *testing.T) {
	t.Helper()
	if cp == nil {
		t.Skip("integration test: needs the control plane (not in -short mode)")
	}
}

// newEnv creates a namespace and a fake driver named after the test.
func newEnv(t *testing.T, dopts fakedriver.Options) *env {
	t.Helper()
	needCluster(t)
	return newEnvOn(t, cp, dopts)
}

// newEnvOn is newEnv on control plane c; start then needs c.Config().
func newEnvOn(t *testing.T, c *controlplane.ControlPlane, dopts fakedriver.Options) *env {
	t.Helper()
	_, ctx := ktesting.NewTestContext(t)
	h := fnv.New32a()
	h.Write([]byte(t.Name()))
	id := fmt.Sprintf("%08x%d", h.Sum32(), envSeq.Add(1))
	e := &env{t: t, ctx: ctx, ns: "t-" + id, driver: "d" + id + ".csi.test"}
	cfg := c.Config()
	e.kube = kubernetes.NewForConfigOrDie(cfg)
	e.snaps = snapclient.NewForConfigOrDie(cfg)
	if _, err := e.kube.CoreV1().Namespaces().Create(ctx, &v1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: e.ns}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	dopts.Name = e.driver
	e.drv = fakedriver.Start(t, dopts)
	conn, err := csiconn.Connect(ctx, csiconn.Options{Address: e.drv.Endpoint()})
	if err != nil {
		t.Fatal(err)
	}
	e.conn = conn
	t.Cleanup(func() { _ = conn.Close() })
	return e
}

// start runs a provisioner until the returned stop is called (also at
// cleanup); stop waits for Run to return.
func (e *env) start(opts Options, cfg *rest.Config) (stop func()) {
	e.t.Helper()
	if cfg == nil {
		cfg = cp.Config()
	}
	client := kubernetes.NewForConfigOrDie(cfg)
	rec, stopRec, err := kube.RecorderFor(client, "csi-provisioner")
	if err != nil {
		e.t.Fatal(err)
	}
	if opts.RetryIntervalStart == 0 {
		opts.RetryIntervalStart = 100 * time.Millisecond
	}
	if opts.RetryIntervalMax == 0 {
		opts.RetryIntervalMax = 2 * time.Second
	}
	if opts.Workers == 0 {
		opts.Workers = 4
	}
	opts.SnapshotClient, opts.Recorder = snapclient.NewForConfigOrDie(cfg), rec
	p, err := New(opts, client, e.conn)
	if err != nil {
		e.t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(e.ctx)
	done := make(chan error, 1)
	go func() { done <- p.Run(ctx) }()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			if err := <-done; err != nil {
				e.t.Errorf("Run: %v", err)
			}
			stopRec()
		})
	}
	e.t.Cleanup(stop)
	return stop
}

// record returns the provisioning record of claim uid, or nil.
func (e *env) record(uid types.UID) *v1.Secret {
	e.t.Helper()
	s, err := e.kube.CoreV1().Secrets(kube.OwnNamespace()).Get(e.ctx, recordName(uid), metav1.GetOptions{})
	if err != nil {
		return nil
	}
	return s
}

func (e *env) class(name string, mut func(*storagev1.StorageClass)) *storagev1.StorageClass {
	e.t.Helper()
	sc := &storagev1.StorageClass{ObjectMeta: metav1.ObjectMeta{Name: e.ns + "-" + name}, Provisioner: e.driver}
	if mut != nil {
		mut(sc)
	}
	sc, err := e.kube.StorageV1().StorageClasses().Create(e.ctx, sc, metav1.CreateOptions{})
	if err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(func() {
		_ = e.kube.StorageV1().StorageClasses().Delete(context.Background(), sc.Name, metav1.DeleteOptions{})
	})
	return sc
}

func wffcMode(sc *storagev1.StorageClass) {
	m := storagev1.VolumeBindingWaitForFirstConsumer
	sc.VolumeBindingMode = &m
}

func (e *env) claim(name, class, size string, mut func(*v1.PersistentVolumeClaim)) *v1.PersistentVolumeClaim {
	e.t.Helper()
	pvc := &v1.PersistentVolumeClaim{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: e.ns},
		Spec: v1.PersistentVolumeClaimSpec{
			StorageClassName: &class,
			AccessModes:      []v1.PersistentVolumeAccessMode{v1.ReadWriteOnce},
			Resources:        v1.VolumeResourceRequirements{Requests: v1.ResourceList{v1.ResourceStorage: resource.MustParse(size)}},
		},
	}
	if mut != nil {
		mut(pvc)
	}
	pvc, err := e.kube.CoreV1().PersistentVolumeClaims(e.ns).Create(e.ctx, pvc, metav1.CreateOptions{})
	if err != nil {
		e.t.Fatal(err)
	}
	return pvc
}

// pod creates a pod using the claims, restricted to nodes with the labels.
func (e *env) pod(name string, nodeSelector map[string]string, claims ...string) {
	e.t.Helper()
	p := &v1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: e.ns},
		Spec: v1.PodSpec{
			NodeSelector: nodeSelector,
			Containers:   []v1.Container{{Name: "c", Image: "busybox"}},
		},
	}
	for i, c := range claims {
		p.Spec.Volumes = append(p.Spec.Volumes, v1.Volume{Name: fmt.Sprintf("v%d", i),
			VolumeSource: v1.VolumeSource{PersistentVolumeClaim: &v1.PersistentVolumeClaimVolumeSource{ClaimName: c}}})
	}
	if _, err := e.kube.CoreV1().Pods(e.ns).Create(e.ctx, p, metav1.CreateOptions{}); err != nil {
		e.t.Fatal(err)
	}
}

// node creates a Ready node with labels and a CSINode naming the driver's keys.
func (e *env) node(name string, labels map[string]string, keys ...string) {
	e.t.Helper()
	if err := controlplane.CreateNode(e.ctx, e.kube, name, labels); err != nil {
		e.t.Fatal(err)
	}
	cn := &storagev1.CSINode{ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: storagev1.CSINodeSpec{Drivers: []storagev1.CSINodeDriver{{Name: e.driver, NodeID: name, TopologyKeys: keys}}}}
	if _, err := e.kube.StorageV1().CSINodes().Create(e.ctx, cn, metav1.CreateOptions{}); err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(func() {
		_ = e.kube.StorageV1().CSINodes().Delete(context.Background(), name, metav1.DeleteOptions{})
		_ = e.kube.CoreV1().Nodes().Delete(context.Background(), name, metav1.DeleteOptions{})
	})
}

func (e *env) getClaim(name string) *v1.PersistentVolumeClaim {
	pvc, err := e.kube.CoreV1().PersistentVolumeClaims(e.ns).Get(e.ctx, name, metav1.GetOptions{})
	if err != nil {
		if apierrors.IsNotFound(err) {
			return nil
		}
		e.t.Fatal(err)
	}
	return pvc
}

// waitBound waits until the claim is Bound and returns its PV.
func (e *env) waitBound(name string) *v1.PersistentVolume {
	e.t.Helper()
	var pv *v1.PersistentVolume
	eventually.Require(e.t, 60*time.Second, "claim "+name+" bound", eventually.True("claim "+name+" bound", func() bool {
		pvc := e.getClaim(name)
		if pvc == nil || pvc.Status.Phase != v1.ClaimBound {
			return false
		}
		var err error
		pv, err = e.kube.CoreV1().PersistentVolumes().Get(e.ctx, pvc.Spec.VolumeName, metav1.GetOptions{})
		return err == nil
	}))
	return pv
}

// events returns the messages of events with reason on the object.
func (e *env) events(objName, reason string) []string {
	list, err := e.kube.CoreV1().Events("").List(e.ctx, metav1.ListOptions{FieldSelector: fields.Set{
		"involvedObject.name": objName, "reason": reason}.String()})
	if err != nil {
		e.t.Fatal(err)
	}
	var out []string
	for _, ev := range list.Items {
		if ns := ev.InvolvedObject.Namespace; ns != "" && ns != e.ns {
			continue // a claim of the same name in another test's namespace
		}
		for i := int32(0); i < max(ev.Count, 1); i++ {
			out = append(out, ev.Message)
		}
	}
	return out
}

func (e *env) waitEvent(objName, reason, contains string) {
	e.t.Helper()
	eventually.Require(e.t, 30*time.Second, fmt.Sprintf("event %s on %s containing %q", reason, objName, contains), eventually.True(fmt.Sprintf("event %s on %s containing %q", reason, objName, contains), func() bool {
		for _, m := range e.events(objName, reason) {
			if strings.Contains(m, contains) {
				return true
			}
		}
		return false
	}))
}

func (e *env) deleteClaim(name string) {
	e.t.Helper()
	if err := e.kube.CoreV1().PersistentVolumeClaims(e.ns).Delete(e.ctx, name, metav1.DeleteOptions{}); err != nil {
		e.t.Fatal(err)
	}
}

package faults

import (
	"context"
	"fmt"
	"sort"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/container-storage-interface/spec/lib/go/csi"
	snapclient "github.com/kubernetes-csi/external-snapshotter/client/v8/clientset/versioned"
	v1 "k8s.io/api/core/v1"
	storagev1 "k8s.io/api/storage/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/klog/v2/ktesting"

	"github.com/csi-kit/sidecars/csiconn"
	"github.com/csi-kit/sidecars/internal/kube"
	"github.com/csi-kit/sidecars/provisioner"
	"github.com/csi-kit/sidecars/resizer"
	"github.com/csi-kit/sidecars/testkit/controlplane"
	"github.com/csi-kit/sidecars/testkit/fakedriver"
)

// envSeq keeps names unique across tests and -count repetitions.
var envSeq atomic.Int32

// env is one case's world: a namespace, a fake driver and clients.
type env struct {
	t        *testing.T
	ctx      context.Context
	category string
	ns       string
	driver   string
	kube     kubernetes.Interface
	snaps    snapclient.Interface
	drv      *fakedriver.Driver
	cp       *controlplane.ControlPlane // the package's, or a case's own
}

// newEnv creates a namespace and a driver for one case of category and
// counts the case. dopts.Name is set here.
func newEnv(t *testing.T, category string, dopts fakedriver.Options) *env {
	t.Helper()
	if cp == nil {
		t.Skip("fault suite: needs the control plane (not in -short mode)")
	}
	return newEnvOn(t, cp, category, dopts)
}

// newEnvOn is newEnv on control plane c.
func newEnvOn(t *testing.T, c *controlplane.ControlPlane, category string, dopts fakedriver.Options) *env {
	t.Helper()
	_, ctx := ktesting.NewTestContext(t)
	id := envSeq.Add(1)
	e := &env{t: t, ctx: ctx, category: category, cp: c,
		ns:     fmt.Sprintf("f-%s-%d-%d", category, time.Now().UnixNano()%1e6, id),
		driver: fmt.Sprintf("f%d-%s.csi.test", id, category)}
	e.kube = kubernetes.NewForConfigOrDie(c.Config())
	e.snaps = snapclient.NewForConfigOrDie(c.Config())
	if _, err := e.kube.CoreV1().Namespaces().Create(ctx, &v1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: e.ns}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	dopts.Name = e.driver
	if dopts.RequestHistory == 0 {
		dopts.RequestHistory = 5000
	}
	e.drv = fakedriver.Start(t, dopts)
	tallies.add(category, func(c *tally) { c.Cases++ })
	return e
}

// fault counts n injected faults for the case's category.
func (e *env) fault(n int) { tallies.add(e.category, func(c *tally) { c.Faults += n }) }

// connect opens a fresh connection to the driver, closed at cleanup.
func (e *env) connect(opts csiconn.Options) *csiconn.Conn {
	e.t.Helper()
	opts.Address = e.drv.Endpoint()
	if opts.CallTimeout == 0 {
		opts.CallTimeout = 5 * time.Second
	}
	conn, err := csiconn.Connect(e.ctx, opts)
	if err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(func() { _ = conn.Close() })
	return conn
}

// runner is one running controller.
type runner struct {
	name   string
	cancel context.CancelFunc
	done   chan error
	once   sync.Once
	err    error
}

// wait returns Run's error, or fails when Run does not return within d.
func (r *runner) wait(t *testing.T, d time.Duration) error {
	t.Helper()
	r.once.Do(func() {
		select {
		case r.err = <-r.done:
		case <-time.After(d):
			r.err = fmt.Errorf("%s: Run did not return within %v", r.name, d)
			t.Errorf("%v", r.err)
		}
	})
	return r.err
}

func (e *env) run(name string, ctx context.Context, run func(context.Context) error) *runner {
	ctx, cancel := context.WithCancel(ctx)
	r := &runner{name: name, cancel: cancel, done: make(chan error, 1)}
	go func() { r.done <- run(ctx) }()
	e.t.Cleanup(func() {
		cancel()
		_ = r.wait(e.t, 30*time.Second)
	})
	return r
}

func provisionerOptions(opts provisioner.Options) provisioner.Options {
	if opts.RetryIntervalStart == 0 {
		opts.RetryIntervalStart = 100 * time.Millisecond
	}
	if opts.RetryIntervalMax == 0 {
		opts.RetryIntervalMax = 2 * time.Second
	}
	if opts.Workers == 0 {
		opts.Workers = 4
	}
	if opts.Timeout == 0 {
		opts.Timeout = 5 * time.Second
	}
	if opts.InfeasibleRetryDelay == 0 {
		opts.InfeasibleRetryDelay = time.Second // InvalidArgument is injected and cleared
	}
	return opts
}

// newProvisioner builds a provisioner on conn with its own clientset and
// event recorder (stopped at cleanup).
func (e *env) newProvisioner(opts provisioner.Options, conn *csiconn.Conn) *provisioner.Provisioner {
	e.t.Helper()
	return e.newProvisionerWith(opts, conn, e.cp.Config())
}

// newProvisionerWith is newProvisioner whose API client uses cfg (to inject
// API faults).
func (e *env) newProvisionerWith(opts provisioner.Options, conn *csiconn.Conn, cfg *rest.Config) *provisioner.Provisioner {
	e.t.Helper()
	client := kubernetes.NewForConfigOrDie(cfg)
	rec, stopRec, err := kube.RecorderFor(client, "csi-provisioner")
	if err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(stopRec)
	opts.SnapshotClient, opts.Recorder = snapclient.NewForConfigOrDie(e.cp.Config()), rec
	p, err := provisioner.New(provisionerOptions(opts), client, conn)
	if err != nil {
		e.t.Fatal(err)
	}
	return p
}

// startProvisioner runs a provisioner until the case ends.
func (e *env) startProvisioner(ctx context.Context, opts provisioner.Options, conn *csiconn.Conn) *runner {
	e.t.Helper()
	p := e.newProvisioner(opts, conn)
	return e.run("provisioner", ctx, p.Run)
}

// startResizer runs a resizer until the case ends.
func (e *env) startResizer(ctx context.Context, conn *csiconn.Conn) *runner {
	e.t.Helper()
	drv, err := resizer.NewCSIDriver(ctx, conn)
	if err != nil {
		e.t.Fatal(err)
	}
	r, err := resizer.New(resizer.Options{RetryIntervalStart: 100 * time.Millisecond, RetryIntervalMax: 2 * time.Second,
		Timeout: 5 * time.Second}, kubernetes.NewForConfigOrDie(e.cp.Config()), drv)
	if err != nil {
		e.t.Fatal(err)
	}
	return e.run("resizer", ctx, r.Run)
}

// class creates an expandable class of the driver with reclaim policy
// Delete; mut may change it. The class is deleted at cleanup.
func (e *env) class(name string, mut func(*storagev1.StorageClass)) *storagev1.StorageClass {
	e.t.Helper()
	yes := true
	del := v1.PersistentVolumeReclaimDelete
	sc := &storagev1.StorageClass{ObjectMeta: metav1.ObjectMeta{Name: e.ns + "-" + name}, Provisioner: e.driver,
		AllowVolumeExpansion: &yes, ReclaimPolicy: &del}
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

// newClaim returns a claim object (not created) of class and size.
func (e *env) newClaim(name, class, size string) *v1.PersistentVolumeClaim {
	return &v1.PersistentVolumeClaim{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: e.ns},
		Spec: v1.PersistentVolumeClaimSpec{
			StorageClassName: &class,
			AccessModes:      []v1.PersistentVolumeAccessMode{v1.ReadWriteOnce},
			Resources:        v1.VolumeResourceRequirements{Requests: v1.ResourceList{v1.ResourceStorage: resource.MustParse(size)}},
		},
	}
}

// claims creates n claims named prefix-0 ... prefix-(n-1).
func (e *env) claims(prefix, class, size string, n int) []string {
	e.t.Helper()
	var names []string
	for i := range n {
		name := fmt.Sprintf("%s-%d", prefix, i)
		if _, err := e.kube.CoreV1().PersistentVolumeClaims(e.ns).Create(e.ctx, e.newClaim(name, class, size), metav1.CreateOptions{}); err != nil {
			e.t.Fatal(err)
		}
		names = append(names, name)
	}
	return names
}

// eventually polls cond until it holds or timeout passes; then it fails
// the case with the last message of cond.
func (e *env) eventually(what string, timeout time.Duration, cond func() (bool, string)) {
	e.t.Helper()
	if !poll(timeout, cond) {
		_, last := cond()
		e.t.Fatalf("timed out after %v waiting for %s: %s", timeout, what, last)
	}
}

// poll reports whether cond held before timeout.
func poll(timeout time.Duration, cond func() (bool, string)) bool {
	deadline := time.Now().Add(timeout)
	for {
		if ok, _ := cond(); ok {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// waitBound waits until every named claim is Bound.
func (e *env) waitBound(timeout time.Duration, names ...string) {
	e.t.Helper()
	e.eventually(fmt.Sprintf("%d claims bound", len(names)), timeout, func() (bool, string) {
		list, err := e.kube.CoreV1().PersistentVolumeClaims(e.ns).List(e.ctx, metav1.ListOptions{})
		if err != nil {
			return false, err.Error()
		}
		bound := map[string]bool{}
		for _, c := range list.Items {
			bound[c.Name] = c.Status.Phase == v1.ClaimBound
		}
		var pending []string
		for _, n := range names {
			if !bound[n] {
				pending = append(pending, n)
			}
		}
		return len(pending) == 0, fmt.Sprintf("not bound: %v", pending)
	})
}

// pvs returns the PVs of the case's driver.
func (e *env) pvs() ([]v1.PersistentVolume, error) {
	list, err := e.kube.CoreV1().PersistentVolumes().List(e.ctx, metav1.ListOptions{})
	if err != nil {
		return nil, err
	}
	var out []v1.PersistentVolume
	for _, pv := range list.Items {
		if pv.Spec.CSI != nil && pv.Spec.CSI.Driver == e.driver {
			out = append(out, pv)
		}
	}
	return out, nil
}

// warnings returns the messages of Warning events per involved object name
// in the namespace.
func (e *env) warnings() (map[string][]string, error) {
	list, err := e.kube.CoreV1().Events(e.ns).List(e.ctx, metav1.ListOptions{})
	if err != nil {
		return nil, err
	}
	out := map[string][]string{}
	for _, ev := range list.Items {
		// Only warnings of the sidecars count: the PV binder's are not
		// answers from the controllers under test.
		if ev.Type == v1.EventTypeWarning && ev.Source.Component != "persistentvolume-controller" {
			out[ev.InvolvedObject.Name] = append(out[ev.InvolvedObject.Name], ev.Reason+": "+ev.Message)
		}
	}
	return out, nil
}

// diff returns the members of a missing from b, sorted.
func diff(a, b map[string]bool) []string {
	var out []string
	for k := range a {
		if !b[k] {
			out = append(out, k)
		}
	}
	sort.Strings(out)
	return out
}

// waitHungCreates waits until CreateVolume calls for n distinct names have
// reached the driver and at least n calls are in flight (hung).
func (e *env) waitHungCreates(n int) {
	e.t.Helper()
	e.eventually("CreateVolume in flight", 30*time.Second, func() (bool, string) {
		names := map[string]bool{}
		for _, r := range e.drv.Requests("CreateVolume") {
			names[r.(*csi.CreateVolumeRequest).GetName()] = true
		}
		f := e.drv.InFlight("CreateVolume")
		return len(names) >= n && f >= n, fmt.Sprintf("%d names requested, %d calls in flight", len(names), f)
	})
}

// waitCapacity waits until every named claim reports size as its capacity.
func (e *env) waitCapacity(timeout time.Duration, size string, names ...string) {
	e.t.Helper()
	want := resource.MustParse(size)
	e.eventually("claims resized to "+size, timeout, func() (bool, string) {
		for _, n := range names {
			c, err := e.kube.CoreV1().PersistentVolumeClaims(e.ns).Get(e.ctx, n, metav1.GetOptions{})
			if err != nil {
				return false, err.Error()
			}
			if q := c.Status.Capacity[v1.ResourceStorage]; q.Cmp(want) != 0 {
				return false, n + " at " + q.String()
			}
		}
		return true, ""
	})
}

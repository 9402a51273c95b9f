package provisioner

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/container-storage-interface/spec/lib/go/csi"
	storagev1 "k8s.io/api/storage/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/utils/ptr"

	"github.com/csi-kit/sidecars/testkit/eventually"
	"github.com/csi-kit/sidecars/testkit/fakedriver"
)

// TestCapacityWFFC (seed 001): local volumes go only to nodes whose
// published capacity fits, because the scheduler reads CSIStorageCapacity.
func TestCapacityWFFC(t *testing.T) {
	key := "topology.local.csi/node"
	e := newEnv(t, fakedriver.Options{Capabilities: fakedriver.Provisioner, NodeID: "small",
		Topology: map[string]string{key: "small"}, Capacity: 1 << 30,
		Nodes: []fakedriver.Node{{ID: "big", Topology: map[string]string{key: "big"}, Capacity: 20 << 30}}})
	if _, err := e.kube.StorageV1().CSIDrivers().Create(e.ctx, &storagev1.CSIDriver{ObjectMeta: metav1.ObjectMeta{Name: e.driver},
		Spec: storagev1.CSIDriverSpec{StorageCapacity: ptr.To(true), AttachRequired: ptr.To(false)}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = e.kube.StorageV1().CSIDrivers().Delete(context.Background(), e.driver, metav1.DeleteOptions{})
	})
	e.node(e.ns+"-small", map[string]string{key: "small", "test": e.ns}, key)
	e.node(e.ns+"-big", map[string]string{key: "big", "test": e.ns}, key)
	sc := e.class("local", wffcMode)
	e.start(Options{VolumeNamePrefix: "local", StrictTopology: true, Capacity: &CapacityOptions{Namespace: e.ns, PollInterval: time.Second,
		Owner: &metav1.OwnerReference{APIVersion: "v1", Kind: "Namespace", Name: e.ns, UID: "00000000-0000-0000-0000-000000000001"}}}, nil)
	eventually.Require(e.t, 30*time.Second, "two CSIStorageCapacity objects", eventually.True("two CSIStorageCapacity objects", func() bool {
		l, err := e.kube.StorageV1().CSIStorageCapacities(e.ns).List(e.ctx, metav1.ListOptions{})
		if err != nil || len(l.Items) != 2 {
			return false
		}
		for _, o := range l.Items {
			if o.StorageClassName != sc.Name || o.Capacity == nil || len(o.OwnerReferences) != 1 {
				return false
			}
		}
		return true
	}))
	for i := 0; i < 3; i++ {
		e.claim(fmt.Sprintf("data-%d", i), sc.Name, "5Gi", nil)
		e.pod(fmt.Sprintf("app-%d", i), map[string]string{"test": e.ns}, fmt.Sprintf("data-%d", i))
	}
	for i := 0; i < 3; i++ {
		pv := e.waitBound(fmt.Sprintf("data-%d", i))
		if !strings.HasPrefix(pv.Name, "local-") {
			t.Errorf("PV name %s lacks the prefix", pv.Name)
		}
		if v := pv.Spec.NodeAffinity.Required.NodeSelectorTerms[0].MatchExpressions[0].Values[0]; v != "big" {
			t.Errorf("claim %d placed on %s, want big", i, v)
		}
	}
	// The published capacity of the big node went down by 15Gi.
	eventually.Require(e.t, 30*time.Second, "capacity refreshed", eventually.True("capacity refreshed", func() bool {
		l, err := e.kube.StorageV1().CSIStorageCapacities(e.ns).List(e.ctx, metav1.ListOptions{})
		if err != nil {
			return false
		}
		for _, o := range l.Items {
			if o.NodeTopology.MatchLabels[key] == "big" && o.Capacity.Value() == 5<<30 {
				return true
			}
		}
		return false
	}))
}

// capacityObjects lists the CSIStorageCapacity objects of the test's
// namespace.
func (e *env) capacityObjects() []storagev1.CSIStorageCapacity {
	l, err := e.kube.StorageV1().CSIStorageCapacities(e.ns).List(e.ctx, metav1.ListOptions{})
	if err != nil {
		return nil
	}
	return l.Items
}

// TestCapacityWorkers: a pass asks the driver for up to Workers
// capacities at once (upstream --capacity-threads), never more, even while
// new classes ask for further passes: passes do not overlap. The driver
// holds every GetCapacity until Workers of them are in flight.
func TestCapacityWorkers(t *testing.T) {
	const workers, classes = 3, 7
	key := "topology.local.csi/node"
	e := newEnv(t, fakedriver.Options{Capabilities: fakedriver.Provisioner, NodeID: "n", Topology: map[string]string{key: "n"}, Capacity: 1 << 30})
	e.node(e.ns+"-n", map[string]string{key: "n"}, key)
	for i := range classes {
		e.class(fmt.Sprintf("c%d", i), wffcMode)
	}
	e.drv.Hang("GetCapacity")
	e.start(Options{Capacity: &CapacityOptions{Namespace: e.ns, PollInterval: time.Hour, Workers: workers}}, nil)
	eventually.Require(t, 30*time.Second, "Workers GetCapacity calls in flight", eventually.True("Workers GetCapacity calls in flight", func() bool {
		return e.drv.InFlight("GetCapacity") == workers
	}))
	// More triggers while the pass hangs: they must wait for it.
	e.class("late", wffcMode)
	time.Sleep(200 * time.Millisecond) // room for calls beyond the limit to arrive, were there any
	if n := e.drv.InFlight("GetCapacity"); n != workers {
		t.Errorf("GetCapacity calls in flight while the driver hangs = %d, want %d", n, workers)
	}
	e.drv.Unhang("GetCapacity")
	eventually.Require(t, 30*time.Second, "one object per class", eventually.True("one object per class", func() bool {
		return len(e.capacityObjects()) == classes+1
	}))
	if n := e.drv.PeakInFlight("GetCapacity"); n != workers {
		t.Errorf("peak GetCapacity calls in flight = %d, want %d (Workers)", n, workers)
	}
}

// TestCapacityMerge: this process's writes win over the lagging cache
// until it catches up; its deletes hide the cached copy until it is gone.
func TestCapacityMerge(t *testing.T) {
	obj := func(name, rv string) *storagev1.CSIStorageCapacity {
		return &storagev1.CSIStorageCapacity{ObjectMeta: metav1.ObjectMeta{Name: name, ResourceVersion: rv}}
	}
	names := func(l []*storagev1.CSIStorageCapacity) map[string]string {
		out := map[string]string{}
		for _, o := range l {
			out[o.Name] = o.ResourceVersion
		}
		return out
	}
	c := &capacityController{mine: map[string]*storagev1.CSIStorageCapacity{}, gone: map[string]bool{}}
	c.remember(obj("new", "10"))     // created, not cached yet
	c.remember(obj("updated", "12")) // cached at 5
	c.deleted("old")                 // still cached
	got := names(c.merge([]*storagev1.CSIStorageCapacity{obj("updated", "5"), obj("old", "3"), obj("other", "4")}))
	if want := map[string]string{"new": "10", "updated": "12", "other": "4"}; fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("merge with a lagging cache = %v, want %v", got, want)
	}
	// The cache catches up: it wins, and nothing is remembered any more.
	got = names(c.merge([]*storagev1.CSIStorageCapacity{obj("new", "10"), obj("updated", "13"), obj("other", "4")}))
	if want := map[string]string{"new": "10", "updated": "13", "other": "4"}; fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("merge with a fresh cache = %v, want %v", got, want)
	}
	if len(c.mine) != 0 || len(c.gone) != 0 {
		t.Errorf("still remembered: mine %v, gone %v", c.mine, c.gone)
	}
	// Deleted by someone else: the informer's delete forgets a write.
	c.remember(obj("new", "20"))
	c.forget("new")
	if got := names(c.merge(nil)); len(got) != 0 {
		t.Errorf("merge after forget = %v, want nothing", got)
	}
}

// apiLog counts the API requests made through a rest.Config, by method
// and resource (the path segment after the version, or after the
// namespace).
type apiLog struct {
	mu sync.Mutex
	n  map[string]int
}

type roundTripperFunc func(*http.Request) (*http.Response, error)

func (f roundTripperFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// counting returns a copy of cfg whose requests l counts.
func (l *apiLog) counting(cfg *rest.Config) *rest.Config {
	l.n = map[string]int{}
	cfg = rest.CopyConfig(cfg)
	cfg.WrapTransport = func(next http.RoundTripper) http.RoundTripper {
		return roundTripperFunc(func(r *http.Request) (*http.Response, error) {
			l.mu.Lock()
			l.n[r.Method+" "+apiResource(r.URL.Path)]++
			l.mu.Unlock()
			return next.RoundTrip(r)
		})
	}
	return cfg
}

// apiResource: /apis/storage.k8s.io/v1/namespaces/ns/csistoragecapacities/x
// is csistoragecapacities, /api/v1/nodes is nodes.
func apiResource(path string) string {
	parts := strings.Split(strings.Trim(path, "/"), "/")
	switch {
	case len(parts) >= 3 && parts[0] == "api":
		parts = parts[2:]
	case len(parts) >= 4 && parts[0] == "apis":
		parts = parts[3:]
	default:
		return path
	}
	if len(parts) >= 3 && parts[0] == "namespaces" {
		parts = parts[2:]
	}
	return parts[0]
}

// count sums the requests for resource, of any method when method is "".
func (l *apiLog) count(method, resource string) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	total := 0
	for k, n := range l.n {
		m, r, _ := strings.Cut(k, " ")
		if r == resource && (method == "" || m == method) {
			total += n
		}
	}
	return total
}

// TestCapacityClient: with CapacityOptions.Client, the CSIStorageCapacity
// objects are watched and written through that client alone (upstream:
// the client of --kube-api-capacity-qps/-burst), never through the
// provisioner's.
func TestCapacityClient(t *testing.T) {
	key := "topology.local.csi/node"
	e := newEnv(t, fakedriver.Options{Capabilities: fakedriver.Provisioner, NodeID: "n", Topology: map[string]string{key: "n"}, Capacity: 1 << 30})
	e.node(e.ns+"-n", map[string]string{key: "n"}, key)
	e.class("a", wffcMode)
	e.class("b", wffcMode)
	var mainLog, capLog apiLog
	capCfg := capLog.counting(cp.Config())
	capCfg.QPS, capCfg.Burst, capCfg.UserAgent = 1, 5, "csi-provisioner-capacity"
	stop := e.start(Options{Capacity: &CapacityOptions{Namespace: e.ns, PollInterval: time.Hour,
		Client: kubernetes.NewForConfigOrDie(capCfg)}}, mainLog.counting(cp.Config()))
	eventually.Require(t, 30*time.Second, "one object per class", eventually.True("one object per class", func() bool {
		return len(e.capacityObjects()) == 2
	}))
	// Someone deletes one: the capacity client sees it and creates it again.
	if err := e.kube.StorageV1().CSIStorageCapacities(e.ns).Delete(e.ctx, e.capacityObjects()[0].Name, metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	eventually.Require(t, 30*time.Second, "the deleted object re-created", eventually.True("the deleted object re-created", func() bool {
		return capLog.count(http.MethodPost, "csistoragecapacities") == 3 && len(e.capacityObjects()) == 2
	}))
	stop()
	if n := capLog.count(http.MethodGet, "csistoragecapacities"); n == 0 {
		t.Errorf("the capacity client listed or watched no CSIStorageCapacity; want its informer on it")
	}
	if n := mainLog.count("", "csistoragecapacities"); n != 0 {
		t.Errorf("the provisioner's client made %d CSIStorageCapacity requests; want all through CapacityOptions.Client (%v)", n, mainLog.n)
	}
	if n := mainLog.count("", "persistentvolumeclaims"); n == 0 {
		t.Errorf("the provisioner's client made no claim request: the counting wrapper does not see it (%v)", mainLog.n)
	}
}

// TestCapacityNodeDeployment: a node deployment publishes the capacity of
// its own node's segment only, labelled managed by it, and watches no
// Node and no CSINode (upstream: a fixed topology read from
// NodeGetInfo). Node b, registered for the same driver, gets nothing from
// node a's provisioner.
func TestCapacityNodeDeployment(t *testing.T) {
	key := "topology.local.csi/node"
	e := newEnv(t, fakedriver.Options{Capabilities: fakedriver.Provisioner, NodeID: "a", Topology: map[string]string{key: "a"},
		Capacity: 1 << 30, Nodes: []fakedriver.Node{{ID: "b", Topology: map[string]string{key: "b"}, Capacity: 2 << 30}}})
	e.node(e.ns+"-a", map[string]string{key: "a"}, key)
	e.node(e.ns+"-b", map[string]string{key: "b"}, key)
	e.class("x", wffcMode)
	e.class("y", wffcMode)
	var mainLog apiLog
	nodeA := e.ns + "-a"
	e.start(Options{NodeDeployment: &NodeDeployment{NodeName: nodeA},
		Capacity: &CapacityOptions{Namespace: e.ns, PollInterval: 200 * time.Millisecond}}, mainLog.counting(cp.Config()))
	// Three passes or more have asked for capacity: any item of node b
	// would have been published by now.
	eventually.Require(t, 30*time.Second, "three passes", eventually.True("three passes", func() bool {
		return e.drv.Calls("GetCapacity") >= 6 && len(e.capacityObjects()) >= 2
	}))
	objs := e.capacityObjects()
	if len(objs) != 2 {
		t.Errorf("%d objects, want 2 (node a's segment, two classes)", len(objs))
	}
	for _, o := range objs {
		if seg := o.NodeTopology.MatchLabels; len(seg) != 1 || seg[key] != "a" {
			t.Errorf("object %s for segment %v, want only %s=a", o.Name, seg, key)
		}
		if got, want := o.Labels[labelManagedBy], managedByDefault+"-"+nodeA; got != want {
			t.Errorf("object %s managed by %q, want %q", o.Name, got, want)
		}
		if o.Capacity == nil || o.Capacity.Value() != 1<<30 {
			t.Errorf("object %s capacity %v, want node a's 1Gi", o.Name, o.Capacity)
		}
	}
	for _, r := range e.drv.Requests("GetCapacity") {
		if seg := r.(*csi.GetCapacityRequest).GetAccessibleTopology().GetSegments(); seg[key] != "a" {
			t.Errorf("GetCapacity for segment %v, want node a's only", seg)
		}
	}
	for _, res := range []string{"nodes", "csinodes"} {
		if n := mainLog.count("", res); n != 0 {
			t.Errorf("the node deployment made %d requests for %s; want none (its topology comes from NodeGetInfo): %v", n, res, mainLog.n)
		}
	}
}

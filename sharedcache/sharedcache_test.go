package sharedcache_test

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	snapfake "github.com/kubernetes-csi/external-snapshotter/client/v8/clientset/versioned/fake"
	"go.uber.org/goleak"
	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/fake"
	"k8s.io/client-go/tools/cache"

	"github.com/csi-kit/sidecars/sharedcache"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func pvc(name string) *v1.PersistentVolumeClaim {
	return &v1.PersistentVolumeClaim{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "ns",
		ManagedFields: []metav1.ManagedFieldsEntry{{Manager: "kubectl"}}}}
}

// Two handlers on one informer: one watch, both see every claim; removing
// one (its controller stopped) leaves the other fed.
func TestSharedInformerOutlivesOneController(t *testing.T) {
	kube := fake.NewClientset(pvc("a"))
	c := sharedcache.New(kube, snapfake.NewSimpleClientset())
	defer c.Shutdown()
	inf := c.Kube.Core().V1().PersistentVolumeClaims().Informer()
	var first, second atomic.Int32
	var h1, h2 sharedcache.Handlers
	count := func(n *atomic.Int32) cache.ResourceEventHandler {
		return cache.ResourceEventHandlerFuncs{AddFunc: func(any) { n.Add(1) }}
	}
	if err := h1.Add(inf, count(&first), 0); err != nil {
		t.Fatal(err)
	}
	c.Start()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if !c.WaitForSync(ctx) || !cache.WaitForCacheSync(ctx.Done(), h1.HasSynced) {
		t.Fatal("no sync")
	}
	// A second controller arrives after the start: it is told of what is
	// cached, and Start again starts nothing twice.
	if err := h2.Add(inf, count(&second), time.Minute); err != nil {
		t.Fatal(err)
	}
	c.Start()
	if !cache.WaitForCacheSync(ctx.Done(), h2.HasSynced) {
		t.Fatal("second handler never synced")
	}
	h1.RemoveAll()
	if _, err := kube.CoreV1().PersistentVolumeClaims("ns").Create(ctx, pvc("b"), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for second.Load() < 2 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if got := second.Load(); got != 2 {
		t.Errorf("remaining handler saw %d adds, want 2", got)
	}
	if got := first.Load(); got != 1 {
		t.Errorf("removed handler saw %d adds, want 1 (none after removal)", got)
	}
	obj, ok, _ := inf.GetStore().GetByKey("ns/a")
	if !ok || len(obj.(*v1.PersistentVolumeClaim).ManagedFields) != 0 {
		t.Errorf("cached claim %v (found %v): managedFields must be stripped", obj, ok)
	}
}

func TestAddIndexTwice(t *testing.T) {
	c := sharedcache.New(fake.NewClientset(), nil)
	defer c.Shutdown()
	if c.Snapshot != nil {
		t.Error("snapshot informers without a snapshot client")
	}
	inf := c.Kube.Core().V1().PersistentVolumeClaims().Informer()
	byName := func(o any) ([]string, error) { return []string{o.(*v1.PersistentVolumeClaim).Name}, nil }
	for range 2 {
		if err := sharedcache.AddIndex(inf, "test/name", byName); err != nil {
			t.Fatal(err)
		}
	}
	if err := inf.AddIndexers(cache.Indexers{"test/name": byName}); err == nil {
		t.Error("a plain AddIndexers of the same name must conflict (AddIndex exists for that)")
	}
}

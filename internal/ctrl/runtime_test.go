package ctrl

import (
	"context"
	"errors"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/fake"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/record"

	snapfake "github.com/kubernetes-csi/external-snapshotter/client/v8/clientset/versioned/fake"

	"github.com/csi-kit/sidecars/sharedcache"
	"github.com/csi-kit/sidecars/testkit/eventually"
)

// lossDriver reports a lost connection when lose is closed.
type lossDriver struct{ lose chan struct{} }

var errLost = errors.New("connection lost")

func (d lossDriver) WatchLoss(ctx context.Context) error {
	select {
	case <-ctx.Done():
		return nil
	case <-d.lose:
		return errLost
	}
}

func claim(name string) *v1.PersistentVolumeClaim {
	return &v1.PersistentVolumeClaim{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: name}}
}

// testController is the smallest controller: claims into one queue.
func testController(t *testing.T, cfg Config, seen chan<- string) *Runtime {
	t.Helper()
	rt, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	q := rt.Queue(QueueOptions{Name: "claims"}, ReconcileFunc(func(_ context.Context, key string) (Result, error) {
		seen <- key
		return Result{}, nil
	}))
	inf := rt.Cache().Kube.Core().V1().PersistentVolumeClaims().Informer()
	rt.Watch(inf, cache.ResourceEventHandlerFuncs{AddFunc: func(o any) {
		if k, err := cache.MetaNamespaceKeyFunc(o); err == nil {
			q.Add(k)
		}
	}}, 0)
	return rt
}

func TestRunReconcilesAndStopsCleanly(t *testing.T) {
	client := fake.NewClientset(claim("a"))
	seen := make(chan string, 10)
	rec := record.NewFakeRecorder(10)
	rt := testController(t, Config{Name: "test", Kube: client, Recorder: rec}, seen)
	rt.Recorder().Event(claim("a"), v1.EventTypeNormal, "Early", "before Run")
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- rt.Run(ctx, nil) }()
	if got := <-seen; got != "ns/a" {
		t.Fatalf("reconciled %q, want ns/a", got)
	}
	<-rt.Started()
	rt.Recorder().Event(claim("a"), v1.EventTypeNormal, "During", "while running")
	if ev := <-rec.Events; !strings.Contains(ev, "During") {
		t.Fatalf("event %q; want only the one sent during Run (Early is dropped)", ev)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Run after cancel = %v, want nil", err)
	}
	if err := rt.Run(context.Background(), nil); err == nil || !strings.Contains(err.Error(), "twice") {
		t.Fatalf("second Run = %v, want a run-twice error", err)
	}
}

func TestDriverLossEndsRunWithItsError(t *testing.T) {
	client := fake.NewClientset()
	drv := lossDriver{lose: make(chan struct{})}
	rt := testController(t, Config{Name: "test", Kube: client, Recorder: &record.FakeRecorder{}, Driver: drv}, make(chan string, 1))
	done := make(chan error, 1)
	go func() { done <- rt.Run(context.Background(), nil) }()
	<-rt.Started()
	close(drv.lose)
	err := <-done
	if !errors.Is(err, errLost) || !strings.HasPrefix(err.Error(), "test: ") {
		t.Fatalf("Run = %v, want the loss error wrapped with the controller's name", err)
	}
}

func TestHandlersLeaveASharedCacheWhenRunReturns(t *testing.T) {
	client := fake.NewClientset()
	shared := sharedcache.New(client, nil)
	defer shared.Shutdown()
	seen := make(chan string, 10)
	rt := testController(t, Config{Name: "test", Kube: client, Cache: shared, Recorder: &record.FakeRecorder{}}, seen)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- rt.Run(ctx, nil) }()
	<-rt.Started()
	if _, err := client.CoreV1().PersistentVolumeClaims("ns").Create(t.Context(), claim("b"), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if got := <-seen; got != "ns/b" {
		t.Fatalf("reconciled %q, want ns/b", got)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	// The shared informer still runs; the handler must be gone from it.
	inf := shared.Kube.Core().V1().PersistentVolumeClaims().Informer()
	var other atomic.Int32
	if _, err := inf.AddEventHandler(cache.ResourceEventHandlerFuncs{AddFunc: func(any) { other.Add(1) }}); err != nil {
		t.Fatal(err)
	}
	if _, err := client.CoreV1().PersistentVolumeClaims("ns").Create(t.Context(), claim("c"), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	eventually.Require(t, 10*time.Second, "the other handler to see ns/c", eventually.True("2 adds (b replayed, c)", func() bool { return other.Load() == 2 }))
	select {
	case key := <-seen:
		t.Fatalf("a stopped controller reconciled %s", key)
	default:
	}
}

func TestReadyErrorStopsRun(t *testing.T) {
	rt := testController(t, Config{Name: "test", Kube: fake.NewClientset(), Recorder: &record.FakeRecorder{}}, make(chan string, 1))
	err := rt.Run(context.Background(), func(context.Context) error { return errors.New("records unreadable") })
	if err == nil || err.Error() != "test: records unreadable" {
		t.Fatalf("Run = %v, want the ready error", err)
	}
	select {
	case <-rt.Started():
		t.Fatal("Started closed although ready failed")
	default:
	}
}

func TestSharedCacheWithoutSnapshotInformersIsRefused(t *testing.T) {
	shared := sharedcache.New(fake.NewClientset(), nil)
	defer shared.Shutdown()
	_, err := New(Config{Name: "snap", Kube: fake.NewClientset(), Snapshot: snapFake(), Cache: shared})
	if err == nil || !strings.Contains(err.Error(), "no snapshot informers") {
		t.Fatalf("New = %v, want a refusal naming the missing informers", err)
	}
}

func snapFake() *snapfake.Clientset { return snapfake.NewSimpleClientset() }

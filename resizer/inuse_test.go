package resizer

import (
	"context"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	v1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"
	testingclock "k8s.io/utils/clock/testing"

	"github.com/csi-kit/sidecars/testkit/eventually"
)

func runningPod(name string, claims ...string) *v1.Pod {
	p := &v1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: name}, Status: v1.PodStatus{Phase: v1.PodRunning}}
	for _, c := range claims {
		p.Spec.Volumes = append(p.Spec.Volumes, v1.Volume{Name: c, VolumeSource: v1.VolumeSource{
			PersistentVolumeClaim: &v1.PersistentVolumeClaimVolumeSource{ClaimName: c}}})
	}
	return p
}

// startPodWatch runs runPodWatch on client until the test ends.
func startPodWatch(t *testing.T, client *fake.Clientset, tr *podTracker, clk *testingclock.FakeClock) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); runPodWatch(ctx, client, tr, clk, "") }()
	t.Cleanup(func() { cancel(); <-done })
}

// TestPodWatch: the tracker fed by the paged list and the watch. Pods that
// use no claim are not kept; a pod deleted while watched frees its claim.
//
// The fake clientset does not replay events from a resource version: an
// event between the list and the opening of the watch is lost. The test
// therefore deletes the pod only once the watch is registered.
func TestPodWatch(t *testing.T) {
	client := fake.NewClientset(runningPod("a", "c1"), runningPod("web"), runningPod("b", "c2"))
	watching := make(chan struct{}, 10)
	client.PrependWatchReactor("pods", func(action k8stesting.Action) (bool, watch.Interface, error) {
		w, err := client.Tracker().Watch(v1.SchemeGroupVersion.WithResource("pods"), action.GetNamespace())
		watching <- struct{}{}
		return true, w, err
	})
	freed := make(chan string, 10)
	tr := newPodTracker(func(k string) { freed <- k })
	startPodWatch(t, client, tr, testingclock.NewFakeClock(time.Now()))
	select {
	case <-watching:
	case <-time.After(10 * time.Second):
		t.Fatal("the watch never opened")
	}
	select {
	case <-tr.synced:
	default:
		t.Fatal("the watch opened before the first list completed")
	}
	tr.mu.Lock()
	kept := len(tr.byPod)
	tr.mu.Unlock()
	if kept != 2 || !tr.InUse("ns/c1") || !tr.InUse("ns/c2") {
		t.Errorf("kept %d pods (want the 2 that use claims); c1 %v, c2 %v", kept, tr.InUse("ns/c1"), tr.InUse("ns/c2"))
	}
	if err := client.CoreV1().Pods("ns").Delete(context.Background(), "a", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	select {
	case k := <-freed:
		if k != "ns/c1" {
			t.Errorf("freed %s, want ns/c1", k)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("deleting the pod did not free its claim")
	}
	// A relist that no longer has b frees c2.
	tr.replace(map[string]bool{})
	if tr.InUse("ns/c2") {
		t.Error("a relist without b must free c2")
	}
}

// TestPodRelistBackoff: when the API server keeps answering 410 (an
// expired continue token during the paged list, or an expired resource
// version for the watch), the first relist is immediate and the next ones
// wait 1s, 2s, 4s ... up to 30s on the injected clock, instead of listing
// every pod in a hot loop. Progress on the watch resets the delay.
func TestPodRelistBackoff(t *testing.T) {
	expired := apierrors.NewResourceExpired("too old resource version")
	for _, tc := range []struct {
		name  string
		setup func(c *fake.Clientset, lists *atomic.Int32)
	}{
		{"continue token expires", func(c *fake.Clientset, lists *atomic.Int32) {
			c.PrependReactor("list", "pods", func(action k8stesting.Action) (bool, runtime.Object, error) {
				if action.(k8stesting.ListActionImpl).ListOptions.Continue != "" {
					return true, nil, expired
				}
				lists.Add(1)
				return true, &v1.PodList{ListMeta: metav1.ListMeta{ResourceVersion: "10", Continue: "page-2"},
					Items: []v1.Pod{*runningPod("a", "c1")}}, nil
			})
		}},
		{"watch resource version expires", func(c *fake.Clientset, lists *atomic.Int32) {
			c.PrependReactor("list", "pods", func(k8stesting.Action) (bool, runtime.Object, error) {
				lists.Add(1)
				return true, &v1.PodList{ListMeta: metav1.ListMeta{ResourceVersion: "10"}}, nil
			})
			c.PrependWatchReactor("pods", func(k8stesting.Action) (bool, watch.Interface, error) {
				return true, nil, expired
			})
		}},
		{"watch error event Gone", func(c *fake.Clientset, lists *atomic.Int32) {
			c.PrependReactor("list", "pods", func(k8stesting.Action) (bool, runtime.Object, error) {
				lists.Add(1)
				return true, &v1.PodList{ListMeta: metav1.ListMeta{ResourceVersion: "10"}}, nil
			})
			c.PrependWatchReactor("pods", func(k8stesting.Action) (bool, watch.Interface, error) {
				w := watch.NewFake()
				go w.Error(&apierrors.NewGone("gone").ErrStatus)
				return true, w, nil
			})
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			client := fake.NewClientset()
			var lists atomic.Int32
			tc.setup(client, &lists)
			clk := testingclock.NewFakeClock(time.Now())
			startPodWatch(t, client, newPodTracker(nil), clk)
			// waitBlocked waits (in real time) until runPodWatch waits on
			// the clock, then returns the lists made so far.
			waitBlocked := func(step int) int32 {
				t.Helper()
				eventually.Require(t, 10*time.Second, fmt.Sprintf("step %d: a wait on the clock", step), func(context.Context) error {
					if !clk.HasWaiters() {
						return fmt.Errorf("no wait after %d lists: relisting in a hot loop", lists.Load())
					}
					return nil
				})
				return lists.Load()
			}
			// The first relist is immediate, then 1s, 2s, 4s, 8s, 16s, 30s, 30s.
			want := int32(2)
			if got := waitBlocked(0); got != want {
				t.Fatalf("%d lists before the first wait, want %d", got, want)
			}
			for i, d := range []time.Duration{time.Second, 2 * time.Second, 4 * time.Second, 8 * time.Second,
				16 * time.Second, 30 * time.Second, 30 * time.Second} {
				// The fake clock fires due timers within Step: a shorter
				// wait would be gone (or followed by another list) now.
				clk.Step(d - time.Millisecond)
				if got := lists.Load(); got != want || !clk.HasWaiters() {
					t.Fatalf("step %d: %d lists %v before the wait of %v ends, want %d", i+1, got, d-time.Millisecond, d, want)
				}
				clk.Step(time.Millisecond)
				want++
				if got := waitBlocked(i + 1); got != want {
					t.Fatalf("step %d: %d lists after waiting %v, want %d", i+1, got, d, want)
				}
			}
		})
	}
}

// TestAddRemovePods follows upstream's inuse_pvc_store_test.go, on our
// counting tracker.
func TestAddRemovePods(t *testing.T) {
	pod := func(name string, phase v1.PodPhase, claims ...string) *v1.Pod {
		p := &v1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: name}, Status: v1.PodStatus{Phase: phase}}
		for _, c := range claims {
			p.Spec.Volumes = append(p.Spec.Volumes, v1.Volume{Name: c, VolumeSource: v1.VolumeSource{
				PersistentVolumeClaim: &v1.PersistentVolumeClaimVolumeSource{ClaimName: c}}})
		}
		return p
	}
	var freed []string
	tr := newPodTracker(func(k string) { freed = append(freed, k) })
	tr.onPod(pod("a", v1.PodRunning, "c1"))
	if !tr.InUse("ns/c1") {
		t.Error("with no initial pods: a running pod must be tracked")
	}
	tr.onPod(pod("f", v1.PodFailed, "c2"))
	tr.onPod(pod("s", v1.PodSucceeded, "c2"))
	if tr.InUse("ns/c2") {
		t.Error("adding failed pod / with success pod: must not be tracked")
	}
	tr.onPod(pod("b", v1.PodPending, "c1"))
	tr.onDelete(pod("a", v1.PodRunning, "c1"))
	if !tr.InUse("ns/c1") || len(freed) != 0 {
		t.Errorf("second pod still uses c1; freed = %v", freed)
	}
	tr.onPod(pod("b", v1.PodFailed, "c1")) // finished: counts as removal
	if tr.InUse("ns/c1") || strings.Join(freed, ",") != "ns/c1" {
		t.Errorf("removing running pod: c1 must be free and reported once, freed = %v", freed)
	}
	// Generic ephemeral volumes count under their claim name.
	eph := &v1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "web"}, Spec: v1.PodSpec{Volumes: []v1.Volume{
		{Name: "data", VolumeSource: v1.VolumeSource{Ephemeral: &v1.EphemeralVolumeSource{}}}}}}
	tr.onPod(eph)
	if !tr.InUse("ns/web-data") {
		t.Error("ephemeral volume claim must be tracked")
	}
}

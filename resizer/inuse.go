package resizer

import (
	"context"
	"math/rand/v2"
	"sync"
	"time"

	v1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/kubernetes"
	"k8s.io/klog/v2"
	"k8s.io/utils/clock"

	"github.com/csi-kit/sidecars/internal/kube"
)

// podClaims lists the names of the PVCs a pod uses, including the claims of
// its generic ephemeral volumes.
func podClaims(pod *v1.Pod) []string {
	var out []string
	for _, vol := range pod.Spec.Volumes {
		switch {
		case vol.PersistentVolumeClaim != nil:
			out = append(out, vol.PersistentVolumeClaim.ClaimName)
		case vol.Ephemeral != nil:
			out = append(out, pod.Name+"-"+vol.Name)
		}
	}
	return out
}

// podUsesVolumes reports whether a pod still holds its volumes: pods that
// Succeeded or Failed do not.
func podUsesVolumes(pod *v1.Pod) bool {
	return pod.Status.Phase != v1.PodSucceeded && pod.Status.Phase != v1.PodFailed
}

// podTracker counts, per "namespace/claim", the pods using it. It keeps
// nothing of pods that use no claim, and of the others only their claim
// keys, so that tens of thousands of unrelated pods cost no memory.
type podTracker struct {
	mu     sync.Mutex
	byPod  map[string][]string // pod key -> claim keys it counts for
	claims map[string]int      // claim key -> number of pods
	// freed is called (outside the lock) with each claim whose count fell
	// to zero.
	freed func(claimKey string)
	// synced is closed after the first complete list.
	synced   chan struct{}
	syncOnce sync.Once
}

func newPodTracker(freed func(string)) *podTracker {
	return &podTracker{byPod: map[string][]string{}, claims: map[string]int{}, freed: freed, synced: make(chan struct{})}
}

// waitListed blocks until the first complete list of pods, or until ctx
// ends (its error).
func (t *podTracker) waitListed(ctx context.Context) error {
	select {
	case <-t.synced:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// InUse reports whether a pod uses the claim "namespace/name".
func (t *podTracker) InUse(claimKey string) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.claims[claimKey] > 0
}

// set records the claims pod uses now (none when it is gone or finished).
func (t *podTracker) set(podKey string, claimKeys []string) {
	t.mu.Lock()
	var freed []string
	for _, c := range t.byPod[podKey] {
		if t.claims[c]--; t.claims[c] <= 0 {
			delete(t.claims, c)
			freed = append(freed, c)
		}
	}
	if len(claimKeys) == 0 {
		delete(t.byPod, podKey)
	} else {
		t.byPod[podKey] = claimKeys
	}
	for _, c := range claimKeys {
		t.claims[c]++
	}
	var really []string
	for _, c := range freed {
		if t.claims[c] == 0 {
			really = append(really, c)
		}
	}
	t.mu.Unlock()
	if t.freed != nil {
		for _, c := range really {
			t.freed(c)
		}
	}
}

func (t *podTracker) onPod(obj any) {
	pod, ok := obj.(*v1.Pod)
	if !ok {
		return
	}
	key := pod.Namespace + "/" + pod.Name
	var claims []string
	if podUsesVolumes(pod) {
		for _, c := range podClaims(pod) {
			claims = append(claims, pod.Namespace+"/"+c)
		}
	}
	t.set(key, claims)
}

func (t *podTracker) onDelete(obj any) {
	obj = kube.Unwrap(obj)
	if pod, ok := obj.(*v1.Pod); ok {
		t.set(pod.Namespace+"/"+pod.Name, nil)
	}
}

// replace makes the tracker hold exactly the pods whose keys are in seen
// (the ones that use claims were passed to onPod while listing).
func (t *podTracker) replace(seen map[string]bool) {
	t.mu.Lock()
	var gone []string
	for k := range t.byPod {
		if !seen[k] {
			gone = append(gone, k)
		}
	}
	t.mu.Unlock()
	for _, k := range gone {
		t.set(k, nil)
	}
	t.syncOnce.Do(func() { close(t.synced) })
}

// podListPage is how many pods one list request returns. The pods of a
// page are decoded, reduced to their claims and dropped before the next
// page is read, so memory does not grow with the number of pods.
const podListPage = 500

// Relist backoff of runPodWatch. A relist after a watch that made progress
// is immediate when the API server has forgotten the resource version (410
// Gone, Expired), and waits podRelistDelayStart after any other error. Each
// further failure without progress in between waits twice as long, up to
// podRelistDelayMax, so a continue token or resource version that keeps
// expiring cannot make the tracker list every pod in a hot loop.
const (
	podRelistDelayStart = time.Second
	podRelistDelayMax   = 30 * time.Second
)

// runPodWatch keeps t current until ctx ends: a paged list (a consistent
// snapshot), then a watch from its resource version, re-opened where it
// left off when it ends, and a new list when the API server has forgotten
// that version. A client-go reflector would hold the whole list (every
// pod, decoded) at once; this holds one page. Waits use clk. A non-empty
// rv is the resource version of a list already made: the watch starts
// there.
func runPodWatch(ctx context.Context, client kubernetes.Interface, t *podTracker, clk clock.Clock, rv string) {
	logger := klog.FromContext(ctx)
	var delay time.Duration // 0: the last watch made progress
	for ctx.Err() == nil {
		var err error
		if rv == "" {
			rv, err = listPods(ctx, client, t)
		}
		for err == nil && ctx.Err() == nil {
			start := clk.Now()
			var events int
			rv, events, err = watchPods(ctx, client, t, rv)
			if events > 0 || clk.Since(start) >= podRelistDelayMax {
				delay = 0
			}
		}
		rv = ""
		if ctx.Err() != nil {
			return
		}
		expired := apierrors.IsResourceExpired(err) || apierrors.IsGone(err)
		if expired && delay == 0 {
			logger.V(2).Info("Pod list or watch expired; listing again", "err", err)
			delay = podRelistDelayStart
			continue
		}
		wait := max(delay, podRelistDelayStart)
		logger.Info("Pod list or watch failed; listing again", "err", err, "after", wait)
		timer := clk.NewTimer(wait)
		select {
		case <-ctx.Done():
			timer.Stop()
			return
		case <-timer.C():
		}
		delay = min(2*wait, podRelistDelayMax)
	}
}

// listPods lists every pod page by page into t and returns the list's
// resource version.
func listPods(ctx context.Context, client kubernetes.Interface, t *podTracker) (string, error) {
	seen := map[string]bool{}
	opts := metav1.ListOptions{Limit: podListPage}
	for {
		list, err := client.CoreV1().Pods(metav1.NamespaceAll).List(ctx, opts)
		if err != nil {
			return "", err
		}
		for i := range list.Items {
			pod := &list.Items[i]
			seen[pod.Namespace+"/"+pod.Name] = true
			t.onPod(pod)
		}
		if list.Continue == "" {
			t.replace(seen)
			return list.ResourceVersion, nil
		}
		opts.Continue = list.Continue
	}
}

// watchPods applies pod events from rv on until the watch ends; it returns
// the last resource version seen, how many events came (bookmarks
// included), and nil (watch again from there) or an error (list again).
func watchPods(ctx context.Context, client kubernetes.Interface, t *podTracker, rv string) (_ string, events int, _ error) {
	timeout := int64(300 + rand.IntN(300))
	w, err := client.CoreV1().Pods(metav1.NamespaceAll).Watch(ctx, metav1.ListOptions{
		ResourceVersion: rv, AllowWatchBookmarks: true, TimeoutSeconds: &timeout})
	if err != nil {
		return rv, 0, err
	}
	defer w.Stop()
	for {
		select {
		case <-ctx.Done():
			return rv, events, nil
		case ev, ok := <-w.ResultChan():
			if !ok {
				return rv, events, nil
			}
			switch ev.Type {
			case watch.Error:
				return rv, events, apierrors.FromObject(ev.Object)
			case watch.Added, watch.Modified:
				t.onPod(ev.Object)
			case watch.Deleted:
				t.onDelete(ev.Object)
			}
			events++
			if m, err := meta.Accessor(ev.Object); err == nil && m.GetResourceVersion() != "" {
				rv = m.GetResourceVersion()
			}
		}
	}
}

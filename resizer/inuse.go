package resizer

import (
	"sync"

	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/cache"

	"github.com/csi-kit/sidecars/internal/kube"
)

// SlimPod is the transform applied to pods before they enter the cache: it
// keeps namespace, name, UID, resourceVersion, phase and, as volumes, only
// the claims the pod uses (generic ephemeral volumes become their
// "<pod>-<volume>" claim). Everything else is dropped, so a pod costs a few
// hundred bytes whatever its size.
func SlimPod(obj any) (any, error) {
	pod, ok := obj.(*v1.Pod)
	if !ok {
		return obj, nil // tombstones and the like pass through
	}
	slim := &v1.Pod{
		ObjectMeta: metav1.ObjectMeta{
			Namespace:       pod.Namespace,
			Name:            pod.Name,
			UID:             pod.UID,
			ResourceVersion: pod.ResourceVersion,
		},
		Status: v1.PodStatus{Phase: pod.Status.Phase},
	}
	for _, claim := range PodClaims(pod) {
		slim.Spec.Volumes = append(slim.Spec.Volumes, v1.Volume{VolumeSource: v1.VolumeSource{
			PersistentVolumeClaim: &v1.PersistentVolumeClaimVolumeSource{ClaimName: claim},
		}})
	}
	return slim, nil
}

// PodClaims lists the names of the PVCs a pod uses, including the claims of
// its generic ephemeral volumes.
func PodClaims(pod *v1.Pod) []string {
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

// PodUsesVolumes reports whether a pod still holds its volumes: pods that
// Succeeded or Failed do not.
func PodUsesVolumes(pod *v1.Pod) bool {
	return pod.Status.Phase != v1.PodSucceeded && pod.Status.Phase != v1.PodFailed
}

// podTracker counts, per "namespace/claim", the pods using it.
type podTracker struct {
	mu     sync.Mutex
	byPod  map[string][]string // pod key -> claim keys it counts for
	claims map[string]int      // claim key -> number of pods
	// freed is called (outside the lock) with each claim whose count fell
	// to zero.
	freed func(claimKey string)
}

func newPodTracker(freed func(string)) *podTracker {
	return &podTracker{byPod: map[string][]string{}, claims: map[string]int{}, freed: freed}
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
	if PodUsesVolumes(pod) {
		for _, c := range PodClaims(pod) {
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

func (t *podTracker) handlers() cache.ResourceEventHandler {
	return cache.ResourceEventHandlerFuncs{
		AddFunc:    func(obj any) { t.onPod(obj) },
		UpdateFunc: func(_, obj any) { t.onPod(obj) },
		DeleteFunc: t.onDelete,
	}
}

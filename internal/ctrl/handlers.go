package ctrl

import (
	"sync"
	"time"

	"k8s.io/client-go/tools/cache"

	"github.com/csi-kit/sidecars/internal/kube"
)

// Typed returns event handlers for objects of type T (other types are
// skipped): added calls changed; updated calls it too when relevant (nil:
// always) says the update matters; deleted calls gone (nil: nothing), with
// tombstones unwrapped. changed may be nil for informers only watched for
// deletions.
func Typed[T any](changed func(T), relevant func(old, new T) bool, gone func(T)) cache.ResourceEventHandler {
	return cache.ResourceEventHandlerFuncs{
		AddFunc: func(obj any) {
			if o, ok := obj.(T); ok && changed != nil {
				changed(o)
			}
		},
		UpdateFunc: func(oldObj, newObj any) {
			o, ok1 := oldObj.(T)
			n, ok2 := newObj.(T)
			if ok1 && ok2 && changed != nil && (relevant == nil || relevant(o, n)) {
				changed(n)
			}
		},
		DeleteFunc: func(obj any) {
			if o, ok := kube.Unwrap(obj).(T); ok && gone != nil {
				gone(o)
			}
		},
	}
}

// Updates is Typed without adds: for informers watched only so that an
// object's changes and deletions wake others, not its first sighting (nor
// the initial list).
func Updates[T any](changed func(T), gone func(T)) cache.ResourceEventHandler {
	h := Typed(changed, nil, gone).(cache.ResourceEventHandlerFuncs)
	h.AddFunc = nil
	return h
}

// Current returns the freshest copy of key: the cache's (from get), or
// this process's newer write. found is false when get says the object is
// gone; its remembered copy is then forgotten. Any other error of get is
// returned.
func (f *Fresh[T]) Current(key string, get func(string) (T, error), notFound func(error) bool) (obj T, found bool, err error) {
	cached, err := get(key)
	switch {
	case err != nil && notFound(err):
		f.Forget(key)
		return obj, false, nil
	case err != nil:
		return obj, false, err
	}
	return f.Latest(key, cached), true, nil
}

// Polls spaces repeated checks of one key (readiness polls) from Start,
// doubling up to Max. Unlike the queue's error backoff, a poll is not a
// failure: Result{RequeueAfter: p.Next(key)} keeps the failure count at 0.
type Polls struct {
	Start, Max time.Duration

	mu sync.Mutex
	n  map[string]int
}

// Next returns the delay before the next check of key and counts it.
func (p *Polls) Next(key string) time.Duration {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.n == nil {
		p.n = map[string]int{}
	}
	n := p.n[key]
	p.n[key] = n + 1
	d := p.Start
	for i := 0; i < n && d < p.Max; i++ {
		d *= 2
	}
	return min(d, p.Max)
}

// Reset forgets the checks of key (it became ready, or went away).
func (p *Polls) Reset(key string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	delete(p.n, key)
}

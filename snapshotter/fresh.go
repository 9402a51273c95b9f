package snapshotter

import (
	"strconv"
	"sync"

	"k8s.io/apimachinery/pkg/apis/meta/v1"
)

// fresh remembers the objects this process wrote until the informer has
// caught up, so that a sync right after a write does not act on a stale
// copy (and does not fail on a conflict or repeat the write).
type fresh[T v1.Object] struct {
	mu   sync.Mutex
	objs map[string]T
}

func newFresh[T v1.Object]() *fresh[T] { return &fresh[T]{objs: map[string]T{}} }

// remember stores obj, returned by a write, under key.
func (f *fresh[T]) remember(key string, obj T) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.objs[key] = obj
}

// latest returns the newer of the cached obj and the remembered one, and
// forgets the remembered one once the cache has caught up.
func (f *fresh[T]) latest(key string, cached T) T {
	f.mu.Lock()
	defer f.mu.Unlock()
	mine, ok := f.objs[key]
	if !ok {
		return cached
	}
	if newerOrSame(cached.GetResourceVersion(), mine.GetResourceVersion()) {
		delete(f.objs, key)
		return cached
	}
	return mine
}

// get returns the remembered object of key, for one the cache has not
// seen yet.
func (f *fresh[T]) get(key string) (T, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	obj, ok := f.objs[key]
	return obj, ok
}

// forget drops key.
func (f *fresh[T]) forget(key string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	delete(f.objs, key)
}

// newerOrSame compares resource versions as integers; unparsable versions
// count as newer, so the informer's copy wins.
func newerOrSame(a, b string) bool {
	x, err1 := strconv.ParseUint(a, 10, 64)
	y, err2 := strconv.ParseUint(b, 10, 64)
	if err1 != nil || err2 != nil {
		return true
	}
	return x >= y
}

// keyLocks serialises work on one key with a fixed set of striped mutexes.
type keyLocks struct {
	stripes [64]sync.Mutex
}

func (l *keyLocks) lock(key string) (unlock func()) {
	h := uint32(2166136261)
	for i := 0; i < len(key); i++ {
		h = (h ^ uint32(key[i])) * 16777619
	}
	m := &l.stripes[h%uint32(len(l.stripes))]
	m.Lock()
	return m.Unlock
}

package ctrl

import (
	"strconv"
	"sync"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// Fresh remembers the objects this process wrote until the informer has
// caught up, so that a reconcile right after a write neither acts on the
// older cached copy (expanding a volume twice) nor fails on a conflict.
// Nothing is ever written into an informer's own store.
//
// The rule, the same for every controller: the remembered object wins
// while its resource version is greater than the cached one's, compared as
// numbers; once the cache holds the same version or a newer one, the
// remembered object is dropped. When either version is not a number, the
// cached copy wins.
type Fresh[T metav1.Object] struct {
	mu   sync.Mutex
	objs map[string]T
}

// NewFresh returns an empty store.
func NewFresh[T metav1.Object]() *Fresh[T] { return &Fresh[T]{objs: map[string]T{}} }

// Remember stores obj, as returned by a write, under key.
func (f *Fresh[T]) Remember(key string, obj T) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.objs[key] = obj
}

// Latest returns the newer of cached and the object remembered under key.
func (f *Fresh[T]) Latest(key string, cached T) T {
	f.mu.Lock()
	defer f.mu.Unlock()
	mine, ok := f.objs[key]
	if !ok {
		return cached
	}
	if !Newer(mine.GetResourceVersion(), cached.GetResourceVersion()) {
		delete(f.objs, key)
		return cached
	}
	return mine
}

// Get returns the object remembered under key, for one the cache has not
// seen at all yet (just created).
func (f *Fresh[T]) Get(key string) (T, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	obj, ok := f.objs[key]
	return obj, ok
}

// Forget drops key (the object was deleted).
func (f *Fresh[T]) Forget(key string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	delete(f.objs, key)
}

// Len is the number of objects remembered.
func (f *Fresh[T]) Len() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.objs)
}

// Newer reports whether resource version a is greater than b, compared as
// numbers; false when either is not a number.
func Newer(a, b string) bool {
	x, err1 := strconv.ParseUint(a, 10, 64)
	y, err2 := strconv.ParseUint(b, 10, 64)
	if err1 != nil || err2 != nil {
		return false
	}
	return x > y
}

// KeyLocks serialises work on one key with a fixed set of striped
// mutexes: memory stays constant however many keys there are, at the cost
// of two keys sometimes sharing a stripe.
type KeyLocks struct {
	stripes [64]sync.Mutex
}

// Lock locks key's stripe and returns its unlock.
func (l *KeyLocks) Lock(key string) (unlock func()) {
	h := uint32(2166136261) // FNV-1a
	for i := 0; i < len(key); i++ {
		h = (h ^ uint32(key[i])) * 16777619
	}
	m := &l.stripes[h%uint32(len(l.stripes))]
	m.Lock()
	return m.Unlock
}

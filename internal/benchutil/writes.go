package benchutil

import (
	"fmt"
	"net/http"
	"sort"
	"strings"
	"sync"
	"sync/atomic"

	"k8s.io/client-go/rest"
)

// Writes counts the API requests made through the configs it wrapped:
// writes (anything but GET, which covers LIST and WATCH too) by
// "METHOD resource[/subresource]", and reads (GETs that are not watches).
// The zero value is ready to use.
type Writes struct {
	mu    sync.Mutex
	by    map[string]int
	total atomic.Int64
	reads atomic.Int64
}

// Wrap returns a copy of cfg whose requests w counts.
func (w *Writes) Wrap(cfg *rest.Config) *rest.Config {
	cfg = rest.CopyConfig(cfg)
	cfg.Wrap(func(rt http.RoundTripper) http.RoundTripper {
		return roundTripFunc(func(req *http.Request) (*http.Response, error) {
			switch {
			case req.Method != http.MethodGet:
				w.add(req.Method + " " + ResourceOf(req.URL.Path))
			case req.URL.Query().Get("watch") == "":
				w.reads.Add(1)
			}
			return rt.RoundTrip(req)
		})
	})
	return cfg
}

func (w *Writes) add(k string) {
	w.mu.Lock()
	if w.by == nil {
		w.by = map[string]int{}
	}
	w.by[k]++
	w.mu.Unlock()
	w.total.Add(1)
}

// Total is the number of writes.
func (w *Writes) Total() int { return int(w.total.Load()) }

// Reads is the number of GETs and LISTs (watches excluded).
func (w *Writes) Reads() int { return int(w.reads.Load()) }

// By returns a copy of the writes by "METHOD resource[/subresource]".
func (w *Writes) By() map[string]int {
	w.mu.Lock()
	defer w.mu.Unlock()
	by := make(map[string]int, len(w.by))
	for k, v := range w.by {
		by[k] = v
	}
	return by
}

// Resource is the number of writes to resource (as ResourceOf names it),
// whatever the method.
func (w *Writes) Resource(resource string) int {
	w.mu.Lock()
	defer w.mu.Unlock()
	n := 0
	for k, v := range w.by {
		if _, r, _ := strings.Cut(k, " "); r == resource {
			n += v
		}
	}
	return n
}

// Reset forgets every count.
func (w *Writes) Reset() {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.by = nil
	w.total.Store(0)
	w.reads.Store(0)
}

// String lists the writes as sorted "METHOD resource=count" pairs.
func (w *Writes) String() string {
	by := w.By()
	parts := make([]string, 0, len(by))
	for k, v := range by {
		parts = append(parts, fmt.Sprintf("%s=%d", k, v))
	}
	sort.Strings(parts)
	return strings.Join(parts, " ")
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// ResourceOf turns an API path such as
// /apis/g/v/namespaces/ns/res/name/sub into "res/sub", and
// /api/v1/res/name into "res".
func ResourceOf(path string) string {
	seg := strings.Split(strings.Trim(path, "/"), "/")
	switch {
	case len(seg) > 0 && seg[0] == "api":
		seg = seg[min(2, len(seg)):]
	case len(seg) > 0 && seg[0] == "apis":
		seg = seg[min(3, len(seg)):]
	}
	if len(seg) > 2 && seg[0] == "namespaces" {
		seg = seg[2:]
	}
	switch len(seg) {
	case 0:
		return "?"
	case 1, 2:
		return seg[0]
	}
	return seg[0] + "/" + seg[2]
}

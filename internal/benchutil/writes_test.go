package benchutil

import (
	"net/http"
	"net/http/httptest"
	"testing"

	"k8s.io/client-go/rest"
)

func TestResourceOf(t *testing.T) {
	for path, want := range map[string]string{
		"/api/v1/namespaces/ns/persistentvolumeclaims/c/status":            "persistentvolumeclaims/status",
		"/api/v1/namespaces/ns/events":                                     "events",
		"/api/v1/persistentvolumes/pv-1":                                   "persistentvolumes",
		"/apis/snapshot.storage.k8s.io/v1/volumesnapshotcontents/c/status": "volumesnapshotcontents/status",
		"/apis/snapshot.storage.k8s.io/v1/namespaces/ns/volumesnapshots/s": "volumesnapshots",
		"/api/v1/namespaces":                                               "namespaces",
		"/api/v1":                                                          "?",
	} {
		if got := ResourceOf(path); got != want {
			t.Errorf("ResourceOf(%q) = %q, want %q", path, got, want)
		}
	}
}

func TestWritesCounts(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	defer srv.Close()
	var w Writes
	cfg := w.Wrap(&rest.Config{Host: srv.URL})
	hc, err := rest.HTTPClientFor(cfg)
	if err != nil {
		t.Fatal(err)
	}
	do := func(method, path string) {
		req, _ := http.NewRequest(method, srv.URL+path, nil)
		resp, err := hc.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
	}
	do(http.MethodPost, "/api/v1/namespaces/ns/events")
	do(http.MethodPatch, "/api/v1/namespaces/ns/events/e")
	do(http.MethodPatch, "/api/v1/namespaces/ns/persistentvolumeclaims/c/status")
	do(http.MethodGet, "/api/v1/namespaces/ns/persistentvolumeclaims")
	do(http.MethodGet, "/api/v1/namespaces/ns/persistentvolumeclaims?watch=true")
	if w.Total() != 3 || w.Reads() != 1 || w.Resource("events") != 2 {
		t.Errorf("total %d reads %d events %d, want 3, 1, 2", w.Total(), w.Reads(), w.Resource("events"))
	}
	if got, want := w.String(), "PATCH events=1 PATCH persistentvolumeclaims/status=1 POST events=1"; got != want {
		t.Errorf("String() = %q, want %q", got, want)
	}
	w.Reset()
	if w.Total() != 0 || len(w.By()) != 0 {
		t.Errorf("after Reset: %d writes, %v", w.Total(), w.By())
	}
}

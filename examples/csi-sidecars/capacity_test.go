package main

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/fake"
	"k8s.io/client-go/rest"

	"github.com/csi-kit/sidecars/internal/cmdutil"
)

// TestCapacityFlags: --capacity-threads and --kube-api-capacity-qps/-burst
// reach the all-in-one's provisioner CapacityOptions: Workers, and a
// Client of their own with that budget, whose requests carry the user
// agent csi-sidecars-capacity.
func TestCapacityFlags(t *testing.T) {
	var (
		mu     sync.Mutex
		agents []string
	)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		agents = append(agents, r.Header.Get("User-Agent"))
		mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"kind":"CSIStorageCapacityList","apiVersion":"storage.k8s.io/v1","items":[]}`))
	}))
	defer srv.Close()

	f := parse(t)
	if c := f.prov.Capacity; c.Workers != 1 || c.QPS != 1 || c.Burst != 5 {
		t.Errorf("defaults: threads %d, qps %v, burst %d; want upstream's 1, 1, 5", c.Workers, c.QPS, c.Burst)
	}
	f = parse(t, "--enable-capacity", "--capacity-threads=3", "--kube-api-capacity-qps=7", "--kube-api-capacity-burst=11",
		"--capacity-ownerref-level=-1", "--kube-api-qps=20")
	t.Setenv("NAMESPACE", "ns")
	env := &cmdutil.Env{Config: rest.AddUserAgent(&rest.Config{Host: srv.URL, QPS: 20, Burst: 40}, component), Kube: fake.NewClientset()}
	o, err := f.capacityOptions(context.Background(), env)
	if err != nil {
		t.Fatal(err)
	}
	if o.Workers != 3 || o.Namespace != "ns" || o.Client == nil {
		t.Fatalf("CapacityOptions: Workers %d, Namespace %q, Client %v; want 3, ns, a client", o.Workers, o.Namespace, o.Client)
	}
	if qps := o.Client.StorageV1().RESTClient().GetRateLimiter().QPS(); qps != 7 {
		t.Errorf("capacity client QPS %v, want 7 (the main client has 20)", qps)
	}
	if _, err := o.Client.StorageV1().CSIStorageCapacities("ns").List(context.Background(), metav1.ListOptions{}); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(agents) != 1 || !strings.HasSuffix(agents[0], "/"+component+"-capacity") {
		t.Errorf("user agents of the capacity client's requests: %q, want one ending in /%s-capacity", agents, component)
	}
}

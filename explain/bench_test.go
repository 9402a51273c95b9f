package explain_test

import (
	"fmt"
	"net/http"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	storagev1 "k8s.io/api/storage/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/csi-kit/sidecars/explain"
	"github.com/csi-kit/sidecars/internal/kube"
)

// requestCounter counts API requests by verb class and resource.
type requestCounter struct {
	mu     sync.Mutex
	reads  int
	writes map[string]int
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

func (c *requestCounter) wrap(cfg *rest.Config) *rest.Config {
	cfg = rest.CopyConfig(cfg)
	cfg.WrapTransport = func(rt http.RoundTripper) http.RoundTripper {
		return roundTripFunc(func(r *http.Request) (*http.Response, error) {
			c.mu.Lock()
			if r.Method == http.MethodGet {
				c.reads++
			} else {
				c.writes[resourceOf(r.URL.Path)]++
			}
			c.mu.Unlock()
			return rt.RoundTrip(r)
		})
	}
	return cfg
}

// resourceOf returns the resource of an API path such as
// /api/v1/namespaces/ns/events or /apis/coordination.k8s.io/v1/leases/x.
func resourceOf(path string) string {
	parts := strings.Split(strings.Trim(path, "/"), "/")
	switch {
	case len(parts) > 2 && parts[0] == "api":
		parts = parts[2:]
	case len(parts) > 3 && parts[0] == "apis":
		parts = parts[3:]
	default:
		return path
	}
	if len(parts) > 2 && parts[0] == "namespaces" {
		parts = parts[2:]
	}
	return parts[0]
}

// BenchmarkExplain explains pending claims of a WaitForFirstConsumer class
// with pods and capacity objects around, at the upstream client budget
// (QPS 5, burst 10) and unthrottled. It reports explains per second, API
// reads per explain, API writes (must be 0) and peak RSS of the test
// process.
func BenchmarkExplain(b *testing.B) {
	if cp == nil {
		if testing.Short() {
			b.Skip("needs the control plane (not in -short mode)")
		}
		b.Fatal("control plane not started")
	}
	b.ReportAllocs()
	for _, bc := range []struct {
		name   string
		qps    float32
		burst  int
		claims int
	}{{"qps5", 5, 10, 10}, {"unthrottled", -1, 0, 50}} {
		b.Run(bc.name, func(b *testing.B) { benchExplain(b, bc.qps, bc.burst, bc.claims) })
	}
}

func benchExplain(b *testing.B, qps float32, burst, claims int) {
	w := newWorld(b)
	class := w.class("bench.csi.example.com", storagev1.VolumeBindingWaitForFirstConsumer)
	w.capacity(class, "a", "1Ti")
	for c := 0; c < claims; c++ {
		name := fmt.Sprintf("data-%d", c)
		w.claim(name, class, "1Gi")
		if c%2 == 0 {
			w.pod("pod-"+name, name)
		}
	}
	counter := &requestCounter{writes: map[string]int{}}
	client := kubernetes.NewForConfigOrDie(counter.wrap(kube.WithBudget(cp.Config(), qps, burst)))
	b.ReportAllocs()
	b.ResetTimer()
	start := time.Now()
	ops := 0
	for i := 0; i < b.N; i++ {
		for c := 0; c < claims; c++ {
			rep, err := explain.Explain(w.ctx, client, nil, "pvc", w.ns, fmt.Sprintf("data-%d", c))
			if err != nil {
				b.Fatal(err)
			}
			if !rep.Has(explain.ReasonWaitForFirstConsumer) {
				b.Fatalf("unexpected report:\n%s", rep)
			}
			ops++
			if ops%10 == 0 {
				fmt.Fprintf(os.Stderr, "%s: %d/%d explains\n", b.Name(), ops, b.N*claims)
			}
		}
	}
	elapsed := time.Since(start)
	b.StopTimer()
	writes := 0
	for _, n := range counter.writes {
		writes += n
	}
	b.ReportMetric(float64(ops)/elapsed.Seconds(), "explains/s")
	b.ReportMetric(float64(counter.reads)/float64(ops), "reads/op")
	b.ReportMetric(float64(writes)/float64(ops), "writes/op")
	if hwm := peakRSS(); hwm > 0 {
		b.ReportMetric(float64(hwm)/1024, "peakRSS-MiB")
	}
	if writes != 0 {
		b.Errorf("Explain wrote to the API: %v", counter.writes)
	}
}

// peakRSS reads VmHWM (KiB) of this process; it includes the test binary.
func peakRSS() int64 {
	data, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(data), "\n") {
		if strings.HasPrefix(line, "VmHWM:") {
			var kb int64
			fmt.Sscanf(strings.TrimSpace(strings.TrimPrefix(line, "VmHWM:")), "%d", &kb)
			return kb
		}
	}
	return 0
}

package csiconn

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/pprof"
	"sort"
	"strings"
	"time"

	"github.com/kubernetes-csi/csi-lib-utils/metrics"
	"k8s.io/component-base/metrics/legacyregistry"
	"k8s.io/klog/v2"

	// Register the client-go workqueue and leader-election metrics with the
	// legacy registry, which the endpoint serves beside the CSI metrics.
	_ "k8s.io/component-base/metrics/prometheus/clientgo/leaderelection"
	_ "k8s.io/component-base/metrics/prometheus/workqueue"
)

// HealthChecker is one named health check, the same shape as client-go's
// leader-election HealthzAdaptor, so that adaptor plugs in directly.
type HealthChecker interface {
	Name() string
	Check(req *http.Request) error
}

// HTTPOptions configures the metrics and health endpoint.
type HTTPOptions struct {
	// Address to listen on, e.g. ":8080"; required.
	Address string
	// MetricsPath; default "/metrics".
	MetricsPath string
	// Checks are served at /healthz (all) and /healthz/<name> (each); a
	// leader-election check is therefore at /healthz/leader-election.
	Checks []HealthChecker
	// Pprof serves /debug/pprof/ when set.
	Pprof bool
}

// HTTPServer serves CSI call metrics, client-go workqueue and leader-election
// metrics, and health checks. It serves no object data and no secrets.
type HTTPServer struct {
	opts HTTPOptions
	mux  *http.ServeMux
}

// NewHTTPServer prepares the endpoint; nothing listens until Run.
func NewHTTPServer(opts HTTPOptions, mgr metrics.CSIMetricsManager) (*HTTPServer, error) {
	if opts.Address == "" {
		return nil, errors.New("http endpoint: Address is empty")
	}
	if opts.MetricsPath == "" {
		opts.MetricsPath = "/metrics"
	}
	if !strings.HasPrefix(opts.MetricsPath, "/") {
		return nil, fmt.Errorf("http endpoint: MetricsPath %q must start with /", opts.MetricsPath)
	}
	mux := http.NewServeMux()
	if mgr != nil {
		mgr.WithAdditionalRegistry(legacyregistry.DefaultGatherer).RegisterToServer(mux, opts.MetricsPath)
	} else {
		mux.Handle(opts.MetricsPath, legacyregistry.Handler())
	}
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, r *http.Request) { serveChecks(w, r, opts.Checks) })
	for _, c := range opts.Checks {
		mux.HandleFunc("/healthz/"+c.Name(), func(w http.ResponseWriter, r *http.Request) {
			serveChecks(w, r, []HealthChecker{c})
		})
	}
	if opts.Pprof {
		mux.HandleFunc("/debug/pprof/", pprof.Index)
		mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
		mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
		mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
		mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	}
	return &HTTPServer{opts: opts, mux: mux}, nil
}

// Handler is the endpoint's handler, for embedding in another server.
func (s *HTTPServer) Handler() http.Handler { return s.mux }

// Run listens until ctx ends, then shuts down within five seconds.
func (s *HTTPServer) Run(ctx context.Context) error {
	ln, err := net.Listen("tcp", s.opts.Address)
	if err != nil {
		return fmt.Errorf("http endpoint: listening on %s: %w (is another process using the port?)", s.opts.Address, err)
	}
	return s.Serve(ctx, ln)
}

// Serve serves on ln until ctx ends.
func (s *HTTPServer) Serve(ctx context.Context, ln net.Listener) error {
	srv := &http.Server{Handler: s.mux, ReadHeaderTimeout: 10 * time.Second}
	klog.FromContext(ctx).Info("Serving metrics and health checks", "address", ln.Addr().String(), "metricsPath", s.opts.MetricsPath)
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ln) }()
	select {
	case err := <-done:
		return fmt.Errorf("http endpoint: %w", err)
	case <-ctx.Done():
	}
	shutCtx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	err := srv.Shutdown(shutCtx)
	<-done
	return err
}

func serveChecks(w http.ResponseWriter, r *http.Request, checks []HealthChecker) {
	sorted := append([]HealthChecker(nil), checks...)
	sort.Slice(sorted, func(i, j int) bool { return sorted[i].Name() < sorted[j].Name() })
	var b strings.Builder
	failed := false
	for _, c := range sorted {
		if err := c.Check(r); err != nil {
			failed = true
			fmt.Fprintf(&b, "[-]%s failed: %v\n", c.Name(), err)
		} else {
			fmt.Fprintf(&b, "[+]%s ok\n", c.Name())
		}
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	if failed {
		w.WriteHeader(http.StatusInternalServerError)
		b.WriteString("healthz check failed\n")
	} else {
		b.WriteString("ok\n")
	}
	_, _ = w.Write([]byte(b.String()))
}

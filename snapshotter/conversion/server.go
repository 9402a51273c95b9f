package conversion

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/http"
	"time"

	"k8s.io/klog/v2"
)

// Paths served by Server.
const (
	PathConvert = "/convert"
	PathReadyz  = "/readyz"
	PathHealthz = "/healthz"
)

// Options configures a Server. A zero field means "use the default".
type Options struct {
	// CertFile is the serving certificate in PEM, followed by any
	// intermediate certificates. Required.
	CertFile string
	// KeyFile is the PEM private key of CertFile. Required.
	KeyFile string
	// Address to listen on, as host:port. Default ":443".
	Address string
	// ShutdownTimeout bounds how long Run lets requests in flight finish
	// after its context ends. Default 5s.
	ShutdownTimeout time.Duration
}

func (o Options) withDefaults() Options {
	if o.Address == "" {
		o.Address = ":443"
	}
	if o.ShutdownTimeout == 0 {
		o.ShutdownTimeout = 5 * time.Second
	}
	return o
}

// Validate reports every invalid field at once.
func (o Options) Validate() error {
	var errs []error
	if o.CertFile == "" {
		errs = append(errs, errors.New("CertFile is empty: name the serving certificate (--tls-cert-file)"))
	}
	if o.KeyFile == "" {
		errs = append(errs, errors.New("KeyFile is empty: name the serving key (--tls-private-key-file)"))
	}
	if o.ShutdownTimeout < 0 {
		errs = append(errs, fmt.Errorf("ShutdownTimeout %v: must not be negative", o.ShutdownTimeout))
	}
	return errors.Join(errs...)
}

// Server is the conversion webhook over HTTPS: Handler at PathConvert, and
// PathReadyz and PathHealthz answering "ok" once it serves.
type Server struct {
	opts Options
}

// New validates opts. Nothing is read or started until Run or Serve.
func New(opts Options) (*Server, error) {
	opts = opts.withDefaults()
	if err := opts.Validate(); err != nil {
		return nil, fmt.Errorf("conversion: %w", err)
	}
	return &Server{opts: opts}, nil
}

// Run listens on Options.Address and serves until ctx ends; see Serve.
func (s *Server) Run(ctx context.Context) error {
	kp, err := loadKeyPair(klog.FromContext(ctx), s.opts.CertFile, s.opts.KeyFile)
	if err != nil {
		return fmt.Errorf("conversion: %w", err)
	}
	l, err := net.Listen("tcp", s.opts.Address)
	if err != nil {
		return fmt.Errorf("conversion: %w (choose another address or port)", err)
	}
	return s.serve(ctx, l, kp)
}

// Serve serves TLS 1.2 or newer on l until ctx ends, then stops accepting,
// lets requests in flight finish for up to Options.ShutdownTimeout and
// returns nil. It closes l. The certificate files are read before the
// first connection (an unreadable pair is an error) and again whenever
// they change.
func (s *Server) Serve(ctx context.Context, l net.Listener) error {
	kp, err := loadKeyPair(klog.FromContext(ctx), s.opts.CertFile, s.opts.KeyFile)
	if err != nil {
		_ = l.Close()
		return fmt.Errorf("conversion: %w", err)
	}
	return s.serve(ctx, l, kp)
}

func (s *Server) serve(ctx context.Context, l net.Listener, kp *keyPair) error {
	logger := klog.FromContext(ctx)
	mux := http.NewServeMux()
	mux.Handle(PathConvert, Handler())
	ok := func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte("ok")) }
	mux.HandleFunc(PathReadyz, ok)
	mux.HandleFunc(PathHealthz, ok)
	srv := &http.Server{
		Handler:           mux,
		TLSConfig:         &tls.Config{MinVersion: tls.VersionTLS12, GetCertificate: kp.getCertificate},
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       2 * time.Minute,
		BaseContext:       func(net.Listener) context.Context { return klog.NewContext(context.WithoutCancel(ctx), logger) },
	}
	done := make(chan error, 1)
	failed := make(chan struct{})
	go func() {
		select {
		case <-ctx.Done():
		case <-failed:
			done <- nil
			return
		}
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), s.opts.ShutdownTimeout)
		defer cancel()
		done <- srv.Shutdown(sctx)
	}()
	logger.Info("Serving conversion webhook", "address", l.Addr().String(), "path", PathConvert)
	err := srv.ServeTLS(l, "", "")
	if !errors.Is(err, http.ErrServerClosed) {
		close(failed)
		<-done
		_ = srv.Close()
		return fmt.Errorf("conversion: serving on %s: %w", l.Addr(), err)
	}
	if err := <-done; err != nil {
		return fmt.Errorf("conversion: shutting down: %w", err)
	}
	return nil
}

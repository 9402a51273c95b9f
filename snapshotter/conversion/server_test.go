package conversion

import (
	"context"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"go.uber.org/goleak"
	"k8s.io/klog/v2/ktesting"
)

// startServer serves on a loopback port until the test ends and returns
// the base URL; the cleanup checks that Serve returned nil.
func startServer(t *testing.T, certFile, keyFile string) string {
	t.Helper()
	s, err := New(Options{CertFile: certFile, KeyFile: keyFile})
	if err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	_, ctx := ktesting.NewTestContext(t)
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- s.Serve(ctx, l) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Serve: %v", err)
		}
	})
	return "https://" + l.Addr().String()
}

// handshake opens a new TLS connection and returns the serial of the
// server's certificate.
func handshake(t *testing.T, base string, cfg *tls.Config) (int64, error) {
	t.Helper()
	conn, err := tls.Dial("tcp", strings.TrimPrefix(base, "https://"), cfg)
	if err != nil {
		return 0, err
	}
	defer conn.Close()
	return conn.ConnectionState().PeerCertificates[0].SerialNumber.Int64(), nil
}

func TestServerServes(t *testing.T) {
	// Registered first, so it runs after the server's cleanup.
	ignore := goleak.IgnoreCurrent()
	t.Cleanup(func() { goleak.VerifyNone(t, ignore) })
	ca := newTestCA(t)
	certFile, keyFile := ca.writeServing(t, t.TempDir(), 10)
	base := startServer(t, certFile, keyFile)
	tr := &http.Transport{TLSClientConfig: ca.clientTLS()}
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr}

	for _, p := range []string{PathReadyz, PathHealthz} {
		resp, err := client.Get(base + p)
		if err != nil {
			t.Fatalf("GET %s: %v", p, err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK || string(b) != "ok" {
			t.Errorf("GET %s = %d %q, want 200 ok", p, resp.StatusCode, b)
		}
	}

	resp, err := client.Post(base+PathConvert, "application/json", strings.NewReader(reviewBody(t, V1beta1, obj(t, V1beta2, spec+newStatus))))
	if err != nil {
		t.Fatalf("POST %s: %v", PathConvert, err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("POST %s = %d %s", PathConvert, resp.StatusCode, b)
	}
	if r := decodeReview(t, string(b)); len(r.ConvertedObjects) != 1 || r.Result.Status != "Success" {
		t.Errorf("response = %+v, want one converted object", r)
	}

	old := ca.clientTLS()
	old.MinVersion, old.MaxVersion = tls.VersionTLS10, tls.VersionTLS11
	if _, err := handshake(t, base, old); err == nil {
		t.Errorf("a TLS 1.1 handshake succeeded; want TLS 1.2 at least")
	}
}

func TestServerReloadsCertificate(t *testing.T) {
	ca := newTestCA(t)
	dir := t.TempDir()
	certFile, keyFile := ca.writeServing(t, dir, 1)
	base := startServer(t, certFile, keyFile)

	want := func(serial int64) {
		t.Helper()
		got, err := handshake(t, base, ca.clientTLS())
		if err != nil {
			t.Fatalf("handshake: %v", err)
		}
		if got != serial {
			t.Errorf("server certificate serial = %d, want %d", got, serial)
		}
	}
	want(1)
	ca.writeServing(t, dir, 2)
	want(2)

	// A half-written renewal (new certificate, old key) keeps serial 2.
	c3, _ := ca.serving(t, 3)
	writeAtomic(t, certFile, c3)
	want(2)
	// Garbage likewise.
	writeAtomic(t, keyFile, []byte("not a key"))
	want(2)
	// A file removed for a moment too.
	if err := os.Remove(certFile); err != nil {
		t.Fatal(err)
	}
	want(2)
	ca.writeServing(t, dir, 4)
	want(4)
}

func TestServerOptions(t *testing.T) {
	_, err := New(Options{ShutdownTimeout: -1})
	if err == nil {
		t.Fatal("New accepted empty options")
	}
	for _, w := range []string{"--tls-cert-file", "--tls-private-key-file", "ShutdownTimeout"} {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("error %q does not mention %s", err, w)
		}
	}
}

func TestServerRunFailsOnMissingFiles(t *testing.T) {
	dir := t.TempDir()
	s, err := New(Options{CertFile: filepath.Join(dir, "none.crt"), KeyFile: filepath.Join(dir, "none.key"), Address: "127.0.0.1:0"})
	if err != nil {
		t.Fatal(err)
	}
	_, ctx := ktesting.NewTestContext(t)
	err = s.Run(ctx)
	if !errors.Is(err, os.ErrNotExist) || !strings.Contains(err.Error(), "--tls-cert-file") {
		t.Errorf("Run = %v, want a missing-file error naming --tls-cert-file", err)
	}
	// A key that does not match the certificate.
	ca := newTestCA(t)
	certFile, _ := ca.writeServing(t, dir, 1)
	_, otherKey := ca.serving(t, 2)
	keyFile := filepath.Join(dir, "other.key")
	writeAtomic(t, keyFile, otherKey)
	s, err = New(Options{CertFile: certFile, KeyFile: keyFile, Address: "127.0.0.1:0"})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Run(ctx); err == nil || !strings.Contains(err.Error(), "private key") {
		t.Errorf("Run = %v, want a mismatched-pair error", err)
	}
}

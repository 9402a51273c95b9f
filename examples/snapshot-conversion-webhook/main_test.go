package main

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/csi-kit/sidecars/testkit/eventually"
)

func TestFlagsCheck(t *testing.T) {
	for _, tc := range []struct {
		name string
		f    flags
		want []string // substrings of the error; none = valid
	}{
		{"valid", flags{certFile: "c", keyFile: "k", port: 443}, nil},
		{"nothing", flags{port: 443}, []string{"--tls-cert-file", "--tls-private-key-file"}},
		{"port 0", flags{certFile: "c", keyFile: "k"}, []string{"--port=0"}},
		{"port too high", flags{certFile: "c", keyFile: "k", port: 70000}, []string{"--port=70000"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.f.check()
			if (err != nil) != (len(tc.want) > 0) {
				t.Fatalf("check() = %v, want error: %v", err, len(tc.want) > 0)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not mention %s", err, w)
				}
			}
		})
	}
}

func buildBinary(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), name)
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// TestBinary runs the built binary with upstream's flags: it refuses to start
// without certificate files, serves /readyz and /convert over TLS, and
// exits 0 on SIGTERM.
func TestBinary(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary")
	}
	bin := buildBinary(t)

	var stderr bytes.Buffer
	cmd := exec.Command(bin, "--port=8443")
	cmd.Stderr = &stderr
	err := cmd.Run()
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.ExitCode() != 2 || !strings.Contains(stderr.String(), "--tls-cert-file must be specified") {
		t.Errorf("without certificates: err %v, stderr %q; want exit 2 naming --tls-cert-file", err, stderr.String())
	}

	dir := t.TempDir()
	pool := writeCerts(t, dir)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	logs, err := os.Create(filepath.Join(dir, "log"))
	if err != nil {
		t.Fatal(err)
	}
	defer logs.Close()
	cmd = exec.Command(bin, "--tls-cert-file="+filepath.Join(dir, "tls.crt"), "--tls-private-key-file="+filepath.Join(dir, "tls.key"),
		fmt.Sprintf("--port=%d", port), "--v=4", "--automaxprocs")
	cmd.Stdout, cmd.Stderr = logs, logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	var waitErr error
	go func() { waitErr = cmd.Wait(); close(exited) }()
	t.Cleanup(func() {
		select {
		case <-exited:
		default:
			_ = cmd.Process.Kill()
			<-exited
		}
		if t.Failed() {
			b, _ := os.ReadFile(logs.Name())
			t.Logf("binary log:\n%s", b)
		}
	})

	tr := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}}
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr, Timeout: 10 * time.Second}
	base := fmt.Sprintf("https://127.0.0.1:%d", port)
	eventually.Require(t, 30*time.Second, "/readyz to answer ok", func(ctx context.Context) error {
		resp, err := client.Get(base + "/readyz")
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		if b, _ := io.ReadAll(resp.Body); resp.StatusCode != http.StatusOK || string(b) != "ok" {
			return fmt.Errorf("/readyz = %d %q", resp.StatusCode, b)
		}
		return nil
	})

	review := `{"apiVersion":"apiextensions.k8s.io/v1","kind":"ConversionReview","request":{"uid":"u1","desiredAPIVersion":"groupsnapshot.storage.k8s.io/v1beta1","objects":[` +
		`{"apiVersion":"groupsnapshot.storage.k8s.io/v1beta2","kind":"VolumeGroupSnapshotContent","metadata":{"name":"c"},"status":{"volumeSnapshotInfoList":[{"volumeHandle":"v","snapshotHandle":"s","readyToUse":true}]}}]}}`
	resp, err := client.Post(base+"/convert", "application/json", strings.NewReader(review))
	if err != nil {
		t.Fatalf("POST /convert: %v", err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, w := range []string{`"uid":"u1"`, `"status":"Success"`, `"volumeSnapshotHandlePairList":[{"snapshotHandle":"s","volumeHandle":"v"}]`, `volume-snapshot-info-list`} {
		if resp.StatusCode != http.StatusOK || !strings.Contains(string(b), w) {
			t.Errorf("POST /convert = %d %s; want 200 with %s", resp.StatusCode, b, w)
		}
	}
	resp, err = client.Post(base+"/convert", "application/json", strings.NewReader("{"))
	if err != nil {
		t.Fatalf("POST /convert: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadRequest {
		t.Errorf("malformed review: status %d, want 400", resp.StatusCode)
	}

	tr.CloseIdleConnections()
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case <-exited:
		if waitErr != nil {
			t.Errorf("after SIGTERM: %v, want exit 0", waitErr)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("the binary did not exit within 30s of SIGTERM")
	}
}

// writeCerts writes a serving certificate for 127.0.0.1 and its key to dir
// and returns a pool trusting their CA.
func writeCerts(t *testing.T, dir string) *x509.CertPool {
	t.Helper()
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	caTmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "test CA"}, NotBefore: now.Add(-time.Hour), NotAfter: now.Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, caKey.Public(), caKey)
	if err != nil {
		t.Fatal(err)
	}
	ca, err := x509.ParseCertificate(caDER)
	if err != nil {
		t.Fatal(err)
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "127.0.0.1"}, NotBefore: now.Add(-time.Hour), NotAfter: now.Add(time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}, IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, key.Public(), caKey)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "tls.crt"), pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "tls.key"), pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER}), 0o600); err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(ca)
	return pool
}

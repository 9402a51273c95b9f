package conversion

import (
	"bytes"
	"crypto/tls"
	"fmt"
	"os"
	"sync"

	"k8s.io/klog/v2"
)

// keyPair serves the certificate in two files and picks up new contents:
// every TLS handshake reads both files (a few kilobytes) and parses them
// again only when they changed. A pair that does not load, such as a
// certificate already replaced whose key is not yet, keeps the last good
// one in service; it is retried on the next handshake. Mounted Secrets,
// cert-manager and hand-copied files all work, with no watcher goroutine.
type keyPair struct {
	certFile, keyFile string
	logger            klog.Logger

	mu       sync.Mutex
	cert     *tls.Certificate
	certPEM  []byte
	keyPEM   []byte
	lastFail string // the last reload error logged, to log each once
}

// loadKeyPair reads the pair once; its error says which file is wrong.
func loadKeyPair(logger klog.Logger, certFile, keyFile string) (*keyPair, error) {
	kp := &keyPair{certFile: certFile, keyFile: keyFile, logger: logger}
	if err := kp.reload(); err != nil {
		return nil, err
	}
	return kp, nil
}

// reload reads both files and swaps in the pair when it changed.
func (kp *keyPair) reload() error {
	certPEM, err := os.ReadFile(kp.certFile)
	if err != nil {
		return fmt.Errorf("reading the serving certificate: %w (check --tls-cert-file)", err)
	}
	keyPEM, err := os.ReadFile(kp.keyFile)
	if err != nil {
		return fmt.Errorf("reading the serving key: %w (check --tls-private-key-file)", err)
	}
	kp.mu.Lock()
	defer kp.mu.Unlock()
	if kp.cert != nil && bytes.Equal(certPEM, kp.certPEM) && bytes.Equal(keyPEM, kp.keyPEM) {
		return nil
	}
	cert, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return fmt.Errorf("loading %s and %s: %w (they must be a PEM certificate chain and its PEM private key)", kp.certFile, kp.keyFile, err)
	}
	first := kp.cert == nil
	kp.cert, kp.certPEM, kp.keyPEM, kp.lastFail = &cert, certPEM, keyPEM, ""
	if !first {
		kp.logger.Info("Reloaded the serving certificate", "certFile", kp.certFile)
	}
	return nil
}

// getCertificate is tls.Config.GetCertificate.
func (kp *keyPair) getCertificate(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	if err := kp.reload(); err != nil {
		kp.mu.Lock()
		if msg := err.Error(); msg != kp.lastFail {
			kp.lastFail = msg
			kp.logger.Error(err, "Keeping the previous serving certificate")
		}
		kp.mu.Unlock()
	}
	kp.mu.Lock()
	defer kp.mu.Unlock()
	return kp.cert, nil
}

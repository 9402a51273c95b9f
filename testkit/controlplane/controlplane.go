package controlplane

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"k8s.io/client-go/rest"
)

// ControlPlane is a running set of control-plane processes. Its methods are
// safe for concurrent use.
type ControlPlane struct {
	opts   Options
	binDir string
	dir    string

	pki                 *pki
	adminCert, adminKey []byte
	etcdURL             string
	host                string // https://127.0.0.1:<port>
	kubeconfig          string

	etcd, apiserver, controllerManager, scheduler *process

	apiMu    sync.Mutex // serializes StopAPIServer, StartAPIServer and Stop
	stopped  bool       // Stop was called; guarded by apiMu
	stopOnce sync.Once
	stopErr  error
}

// Files in the control plane's directory.
const (
	fileCA          = "ca.crt"
	fileServingCert = "serving.crt"
	fileServingKey  = "serving.key"
	fileSAKey       = "service-account.key"
	fileSAPub       = "service-account.pub"
	fileKubeconfig  = "admin.kubeconfig"
)

func (c *ControlPlane) file(name string) string { return filepath.Join(c.dir, name) }

// Start builds the binaries if needed (see [EnsureBinaries]), starts the
// processes and installs CRDs, returning once everything is ready. ctx
// bounds the start only: the processes run until [ControlPlane.Stop]. On
// failure nothing is left running, and the directory with the logs is kept
// and named in the error.
func Start(ctx context.Context, opts Options) (*ControlPlane, error) {
	opts = opts.withDefaults()
	if err := opts.Validate(); err != nil {
		return nil, fmt.Errorf("controlplane: invalid options: %w", err)
	}
	binDir, err := EnsureBinaries(ctx, opts)
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "csikit-controlplane-")
	if err != nil {
		return nil, fmt.Errorf("controlplane: %w", err)
	}
	c := &ControlPlane{opts: opts, binDir: binDir, dir: dir, kubeconfig: filepath.Join(dir, fileKubeconfig)}
	begin := time.Now()
	if err := c.start(ctx); err != nil {
		c.killAll()
		return nil, fmt.Errorf("%w\n(control plane files kept in %s; remove the directory when done)", err, dir)
	}
	opts.progressf("control plane ready in %s (files in %s)", time.Since(begin).Round(100*time.Millisecond), dir)
	return c, nil
}

func (c *ControlPlane) start(ctx context.Context) error {
	if err := c.writeCredentials(); err != nil {
		return fmt.Errorf("controlplane: %w", err)
	}
	if err := c.startEtcd(ctx); err != nil {
		return err
	}
	if err := c.startAPIServer(ctx); err != nil {
		return err
	}
	if err := writeKubeconfig(c.kubeconfig, "admin", c.Config()); err != nil {
		return fmt.Errorf("controlplane: %w", err)
	}
	if c.opts.ControllerManager {
		if err := c.startControllerManager(ctx); err != nil {
			return err
		}
	}
	if c.opts.Scheduler {
		if err := c.startScheduler(ctx); err != nil {
			return err
		}
	}
	dirs := c.opts.CRDDirs
	if c.opts.SnapshotCRDs {
		snap, err := SnapshotCRDDir()
		if err != nil {
			return err
		}
		dirs = append(dirs[:len(dirs):len(dirs)], snap)
	}
	if len(dirs) > 0 {
		c.opts.progressf("installing CRDs from %s", strings.Join(dirs, ", "))
		begin := time.Now()
		if err := InstallCRDs(ctx, c.Config(), dirs...); err != nil {
			return err
		}
		c.opts.progressf("CRDs established in %s", time.Since(begin).Round(100*time.Millisecond))
	}
	return nil
}

// writeCredentials creates the CA, the serving certificate, the
// service-account key pair and the admin's client certificate.
func (c *ControlPlane) writeCredentials() error {
	var err error
	if c.pki, err = newPKI(); err != nil {
		return err
	}
	servingCert, servingKey, err := c.pki.servingCert()
	if err != nil {
		return err
	}
	saKey, saPub, err := newServiceAccountKey()
	if err != nil {
		return err
	}
	if c.adminCert, c.adminKey, err = c.pki.clientCert("csikit-admin", []string{"system:masters"}); err != nil {
		return err
	}
	for name, data := range map[string][]byte{
		fileCA:          c.pki.caPEM,
		fileServingCert: servingCert,
		fileServingKey:  servingKey,
		fileSAKey:       saKey,
		fileSAPub:       saPub,
	} {
		if err := os.WriteFile(c.file(name), data, 0o600); err != nil {
			return fmt.Errorf("writing %s: %w", name, err)
		}
	}
	return nil
}

// StartT starts a control plane for a test or benchmark and stops it in
// t.Cleanup. It fails the test with Start's error, which names the logs.
// When the test failed, the directory with the logs is kept and logged.
func StartT(t testing.TB, opts Options) *ControlPlane {
	t.Helper()
	c, err := Start(t.Context(), opts)
	if err != nil {
		t.Fatalf("starting control plane: %v", err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			c.shutdown(false)
			t.Logf("test failed: control plane logs kept in %s", c.dir)
			return
		}
		if err := c.Stop(); err != nil {
			t.Errorf("stopping control plane: %v", err)
		}
	})
	return c
}

// Config returns a fresh client config for a cluster administrator (group
// system:masters), with QPS 1000 and burst 2000. Callers may change it.
func (c *ControlPlane) Config() *rest.Config {
	return restConfig(c.host, c.pki.caPEM, c.adminCert, c.adminKey)
}

// ConfigFor returns a fresh client config authenticating as user in groups,
// with a new client certificate signed by the control plane's CA. Every
// authenticated user is also in system:authenticated. Permissions come from
// RBAC only when Options.RBAC is set; else everyone may do anything. It
// panics if user is empty, which kube-apiserver would not authenticate.
//
// To act as a ServiceAccount use [ControlPlane.ConfigForServiceAccount],
// which adds the ServiceAccount groups.
func (c *ControlPlane) ConfigFor(user string, groups ...string) *rest.Config {
	if user == "" {
		panic("controlplane: ConfigFor: empty user name")
	}
	cert, key, err := c.pki.clientCert(user, groups)
	if err != nil { // only a broken crypto/rand gets here
		panic(fmt.Sprintf("controlplane: ConfigFor %q: %v", user, err))
	}
	return restConfig(c.host, c.pki.caPEM, cert, key)
}

// ConfigForServiceAccount returns a client config for the ServiceAccount
// namespace/name, in the groups kube-apiserver gives ServiceAccounts. The
// ServiceAccount object need not exist.
func (c *ControlPlane) ConfigForServiceAccount(namespace, name string) *rest.Config {
	return c.ConfigFor("system:serviceaccount:"+namespace+":"+name,
		"system:serviceaccounts", "system:serviceaccounts:"+namespace)
}

// KubeconfigPath returns a kubeconfig file for the administrator, for tools
// such as kubectl (export KUBECONFIG=...). It is removed by Stop.
func (c *ControlPlane) KubeconfigPath() string { return c.kubeconfig }

// Host returns kube-apiserver's URL, https://127.0.0.1:<port>.
func (c *ControlPlane) Host() string { return c.host }

// Dir returns the control plane's directory: certificates, kubeconfigs,
// etcd's data and one <process>.log per process.
func (c *ControlPlane) Dir() string { return c.dir }

// ErrStopped is returned when restarting kube-apiserver after Stop.
var ErrStopped = errors.New("controlplane: control plane was stopped")

// StopAPIServer kills kube-apiserver (SIGKILL, like a crash: a graceful
// stop waits ~10s for open watches) and waits for it to exit. etcd,
// kube-controller-manager and kube-scheduler keep running; clients see
// connection errors until StartAPIServer. Stopping a stopped apiserver does
// nothing.
func (c *ControlPlane) StopAPIServer() error {
	c.apiMu.Lock()
	defer c.apiMu.Unlock()
	if c.stopped {
		return ErrStopped
	}
	c.apiserver.kill()
	return nil
}

// StartAPIServer starts kube-apiserver again on the same address, with the
// same data, and waits until it is ready. It does nothing if it is running.
func (c *ControlPlane) StartAPIServer(ctx context.Context) error {
	c.apiMu.Lock()
	defer c.apiMu.Unlock()
	if c.stopped {
		return ErrStopped
	}
	if done, _ := c.apiserver.exited(); !done {
		return nil
	}
	return c.runAPIServer(ctx)
}

// Stop kills every process and removes the control plane's directory. It is
// idempotent; later calls return the first call's result.
func (c *ControlPlane) Stop() error { return c.shutdown(true) }

func (c *ControlPlane) shutdown(removeDir bool) error {
	c.stopOnce.Do(func() {
		c.apiMu.Lock()
		c.stopped = true
		c.apiMu.Unlock()
		c.killAll()
		if !removeDir {
			return
		}
		if err := os.RemoveAll(c.dir); err != nil {
			c.stopErr = fmt.Errorf("controlplane: removing %s: %w", c.dir, err)
		}
	})
	return c.stopErr
}

// killAll stops the processes, dependents first.
func (c *ControlPlane) killAll() {
	for _, p := range []*process{c.scheduler, c.controllerManager, c.apiserver, c.etcd} {
		if p != nil {
			p.kill()
		}
	}
}

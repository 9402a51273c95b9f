package controlplane

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

const (
	portRetries     = 3
	addrInUse       = "address already in use"
	serviceIPRange  = "10.0.0.0/24"
	saIssuer        = "https://kubernetes.default.svc.cluster.local"
	readinessPeriod = 50 * time.Millisecond
)

// startEtcd starts etcd on fresh ports and waits until it is healthy.
func (c *ControlPlane) startEtcd(ctx context.Context) error {
	c.etcd = &process{
		name:    binEtcd,
		path:    filepath.Join(c.binDir, binEtcd),
		logPath: filepath.Join(c.dir, "etcd.log"),
	}
	for attempt := 1; ; attempt++ {
		ports, err := freePorts(2)
		if err != nil {
			return fmt.Errorf("controlplane: etcd: %w", err)
		}
		client := "http://127.0.0.1:" + strconv.Itoa(ports[0])
		peer := "http://127.0.0.1:" + strconv.Itoa(ports[1])
		c.etcdURL = client
		c.etcd.args = []string{
			"--name=default",
			"--data-dir=" + filepath.Join(c.dir, "etcd-data"),
			"--listen-client-urls=" + client,
			"--advertise-client-urls=" + client,
			"--listen-peer-urls=" + peer,
			"--initial-advertise-peer-urls=" + peer,
			"--initial-cluster=default=" + peer,
			"--unsafe-no-fsync",
		}
		err = c.runUntilReady(ctx, c.etcd, func(ctx context.Context, hc *http.Client) error {
			body, err := get(ctx, hc, client+"/health")
			if err == nil && !strings.Contains(body, `"true"`) {
				err = fmt.Errorf("unhealthy: %s", body)
			}
			return err
		}, "read the log; a broken binary is rebuilt after deleting it from "+c.binDir)
		if err != nil && attempt < portRetries && c.etcd.logContains(addrInUse) {
			c.opts.progressf("etcd lost a port race, retrying with new ports")
			continue
		}
		return err
	}
}

// startAPIServer starts kube-apiserver on fresh ports and waits for /readyz.
func (c *ControlPlane) startAPIServer(ctx context.Context) error {
	c.apiserver = &process{
		name:    binAPIServer,
		path:    filepath.Join(c.binDir, binAPIServer),
		logPath: filepath.Join(c.dir, "kube-apiserver.log"),
	}
	for attempt := 1; ; attempt++ {
		ports, err := freePorts(1)
		if err != nil {
			return fmt.Errorf("controlplane: kube-apiserver: %w", err)
		}
		c.host = "https://127.0.0.1:" + strconv.Itoa(ports[0])
		c.apiserver.args = c.apiServerArgs(ports[0])
		err = c.runAPIServer(ctx)
		if err != nil && attempt < portRetries && c.apiserver.logContains(addrInUse) {
			c.opts.progressf("kube-apiserver lost a port race, retrying with a new port")
			continue
		}
		return err
	}
}

func (c *ControlPlane) apiServerArgs(port int) []string {
	authz := "AlwaysAllow"
	if c.opts.RBAC {
		authz = "Node,RBAC"
	}
	args := []string{
		"--etcd-servers=" + c.etcdURL,
		"--bind-address=127.0.0.1",
		"--advertise-address=127.0.0.1",
		"--secure-port=" + strconv.Itoa(port),
		"--cert-dir=" + filepath.Join(c.dir, "apiserver-certs"),
		"--tls-cert-file=" + c.file(fileServingCert),
		"--tls-private-key-file=" + c.file(fileServingKey),
		"--client-ca-file=" + c.file(fileCA),
		"--service-account-issuer=" + saIssuer,
		"--service-account-key-file=" + c.file(fileSAPub),
		"--service-account-signing-key-file=" + c.file(fileSAKey),
		"--service-cluster-ip-range=" + serviceIPRange,
		"--endpoint-reconciler-type=none",
		"--authorization-mode=" + authz,
		"--disable-admission-plugins=ServiceAccount",
		"--allow-privileged=true",
	}
	return append(args, c.opts.ExtraAPIServerArgs...)
}

// runAPIServer starts the apiserver with its current arguments and waits.
func (c *ControlPlane) runAPIServer(ctx context.Context) error {
	return c.runUntilReady(ctx, c.apiserver, func(ctx context.Context, hc *http.Client) error {
		_, err := get(ctx, hc, c.host+"/readyz?verbose")
		return err
	}, "read the log; if etcd is unreachable see "+c.etcd.logPath+
		"; a broken binary is rebuilt after deleting it from "+c.binDir)
}

// runUntilReady starts p and polls check until it succeeds, p exits, the
// start timeout passes or ctx ends. On failure p is killed and the error
// carries the log's tail and the hint next.
func (c *ControlPlane) runUntilReady(ctx context.Context, p *process,
	check func(context.Context, *http.Client) error, next string) error {
	c.opts.progressf("starting %s", p.name)
	start := time.Now()
	if err := p.start(); err != nil {
		return fmt.Errorf("controlplane: %w (binary directory %s)", err, c.binDir)
	}
	hc := c.httpClient()
	defer hc.CloseIdleConnections()
	parent := ctx
	ctx, cancel := context.WithTimeout(parent, c.opts.StartTimeout)
	defer cancel()
	tick := time.NewTicker(readinessPeriod)
	defer tick.Stop()
	var last error
	for {
		if done, err := p.exited(); done {
			if err == nil {
				err = fmt.Errorf("exit status 0")
			}
			return p.failure(fmt.Errorf("exited during start-up: %w", err), next)
		}
		reqCtx, reqCancel := context.WithTimeout(ctx, time.Second)
		last = check(reqCtx, hc)
		reqCancel()
		if last == nil {
			c.opts.progressf("%s ready in %s", p.name, time.Since(start).Round(100*time.Millisecond))
			return nil
		}
		select {
		case <-tick.C:
		case <-ctx.Done():
			p.kill()
			what := fmt.Errorf("not ready after %s (last check: %v)", time.Since(start).Round(time.Second), last)
			if parent.Err() != nil {
				what = fmt.Errorf("start-up abandoned: %w (last check: %v)", parent.Err(), last)
			}
			return p.failure(what, next+"; raise Options.StartTimeout on a slow machine")
		}
	}
}

// httpClient trusts the control plane's CA and presents the admin
// certificate, for readiness checks only.
func (c *ControlPlane) httpClient() *http.Client {
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(c.pki.caPEM)
	tlsCfg := &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
	if cert, err := tls.X509KeyPair(c.adminCert, c.adminKey); err == nil {
		tlsCfg.Certificates = []tls.Certificate{cert}
	}
	return &http.Client{Transport: &http.Transport{TLSClientConfig: tlsCfg, DisableKeepAlives: true}}
}

// get returns the body of a 200 response, else an error with the body.
func get(ctx context.Context, hc *http.Client, url string) (string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return "", err
	}
	resp, err := hc.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("%s: %s: %s", url, resp.Status, summarize(string(body)))
	}
	return string(body), nil
}

// summarize shortens a health response to its failing checks ("[-]..."
// lines of a verbose /readyz), or else to its last lines.
func summarize(body string) string {
	lines := strings.Split(strings.TrimSpace(body), "\n")
	var failing []string
	for _, l := range lines {
		if strings.HasPrefix(l, "[-]") {
			failing = append(failing, l)
		}
	}
	if len(failing) == 0 {
		failing = lines
	}
	if len(failing) > 5 {
		failing = failing[len(failing)-5:]
	}
	return strings.Join(failing, " | ")
}

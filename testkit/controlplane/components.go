package controlplane

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// kcmControllers run in kube-controller-manager when Options.ControllerManager
// is set.
var kcmControllers = []string{
	"persistentvolume-binder-controller",
	"persistentvolume-expander-controller",
	"persistentvolume-protection-controller",
	"persistentvolumeclaim-protection-controller",
	// Deletes the content of deleted namespaces, so that tests can assert
	// that no namespace stays Terminating.
	"namespace-controller",
}

// startControllerManager starts kube-controller-manager and waits for its
// /healthz. Each controller authenticates as its own ServiceAccount in
// kube-system, as in a real cluster, so RBAC problems show up here too.
func (c *ControlPlane) startControllerManager(ctx context.Context) error {
	kubeconfig := filepath.Join(c.dir, "kube-controller-manager.kubeconfig")
	if err := c.writeComponentKubeconfig(kubeconfig, "system:kube-controller-manager"); err != nil {
		return err
	}
	c.controllerManager = &process{
		name:    binControllerManager,
		path:    filepath.Join(c.binDir, binControllerManager),
		logPath: filepath.Join(c.dir, "kube-controller-manager.log"),
	}
	return c.startComponent(ctx, c.controllerManager, func(port int) []string {
		return append(c.servingArgs(port, "kube-controller-manager"),
			"--kubeconfig="+kubeconfig,
			"--controllers="+strings.Join(kcmControllers, ","),
			"--kube-api-qps=1000",
			"--kube-api-burst=2000",
			"--leader-elect=false",
			"--use-service-account-credentials=true",
			"--root-ca-file="+c.file(fileCA),
		)
	})
}

// startScheduler starts kube-scheduler and waits for its /healthz.
func (c *ControlPlane) startScheduler(ctx context.Context) error {
	kubeconfig := filepath.Join(c.dir, "kube-scheduler.kubeconfig")
	if err := c.writeComponentKubeconfig(kubeconfig, "system:kube-scheduler"); err != nil {
		return err
	}
	config := filepath.Join(c.dir, "kube-scheduler.yaml")
	yaml := fmt.Sprintf(`apiVersion: kubescheduler.config.k8s.io/v1
kind: KubeSchedulerConfiguration
clientConnection:
  kubeconfig: %q
  qps: 1000
  burst: 2000
leaderElection:
  leaderElect: false
`, kubeconfig)
	if err := os.WriteFile(config, []byte(yaml), 0o600); err != nil {
		return fmt.Errorf("controlplane: writing %s: %w", config, err)
	}
	c.scheduler = &process{
		name:    binScheduler,
		path:    filepath.Join(c.binDir, binScheduler),
		logPath: filepath.Join(c.dir, "kube-scheduler.log"),
	}
	return c.startComponent(ctx, c.scheduler, func(port int) []string {
		return append(c.servingArgs(port, "kube-scheduler"), "--config="+config)
	})
}

// servingArgs make a component serve /healthz on 127.0.0.1:port with the
// control plane's serving certificate.
func (c *ControlPlane) servingArgs(port int, name string) []string {
	return []string{
		"--bind-address=127.0.0.1",
		"--secure-port=" + strconv.Itoa(port),
		"--tls-cert-file=" + c.file(fileServingCert),
		"--tls-private-key-file=" + c.file(fileServingKey),
		"--cert-dir=" + filepath.Join(c.dir, name+"-certs"),
	}
}

// startComponent starts p with args for a fresh port and waits for /healthz,
// retrying when the port was taken meanwhile.
func (c *ControlPlane) startComponent(ctx context.Context, p *process, args func(port int) []string) error {
	for attempt := 1; ; attempt++ {
		ports, err := freePorts(1)
		if err != nil {
			return fmt.Errorf("controlplane: %s: %w", p.name, err)
		}
		p.args = args(ports[0])
		healthz := "https://127.0.0.1:" + strconv.Itoa(ports[0]) + "/healthz"
		err = c.runUntilReady(ctx, p, func(ctx context.Context, hc *http.Client) error {
			_, err := get(ctx, hc, healthz)
			return err
		}, "read the log; kube-apiserver's log is "+c.apiserver.logPath+
			"; a broken binary is rebuilt after deleting it from "+c.binDir)
		if err != nil && attempt < portRetries && p.logContains(addrInUse) {
			c.opts.progressf("%s lost a port race, retrying with a new port", p.name)
			continue
		}
		return err
	}
}

// writeComponentKubeconfig writes a kubeconfig for a component user, whose
// permissions come from the bootstrap RBAC policy.
func (c *ControlPlane) writeComponentKubeconfig(path, user string) error {
	cert, key, err := c.pki.clientCert(user, nil)
	if err != nil {
		return fmt.Errorf("controlplane: %w", err)
	}
	if err := writeKubeconfig(path, user, restConfig(c.host, c.pki.caPEM, cert, key)); err != nil {
		return fmt.Errorf("controlplane: %w", err)
	}
	return nil
}

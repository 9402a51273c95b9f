package controlplane

import (
	"bytes"
	"context"
	_ "embed"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"
)

// Versions built by build.sh when binaries are missing.
const (
	KubernetesVersion = "v1.37.2"
	EtcdVersion       = "v3.7.3"
)

const (
	binEtcd              = "etcd"
	binAPIServer         = "kube-apiserver"
	binControllerManager = "kube-controller-manager"
	binScheduler         = "kube-scheduler"
)

//go:embed build.sh
var buildScript []byte

// DefaultBinDir is where build.sh caches the binaries unless
// CSIKIT_CONTROLPLANE_DIR says otherwise:
// $HOME/.cache/csi-kit/controlplane/k8s-<version>-etcd-<version>.
func DefaultBinDir() (string, error) {
	home, err := os.UserHomeDir()
	if err != nil {
		return "", fmt.Errorf("controlplane: no home directory for the binary cache (set CSIKIT_CONTROLPLANE_DIR): %w", err)
	}
	return filepath.Join(home, ".cache", "csi-kit", "controlplane",
		"k8s-"+KubernetesVersion+"-etcd-"+EtcdVersion), nil
}

// EnsureBinaries returns a directory holding the binaries opts needs
// (etcd and kube-apiserver, plus kube-controller-manager and kube-scheduler
// when asked for), building them if needed.
//
// The directory is opts.BinDir if set; else $CSIKIT_CONTROLPLANE_DIR if set;
// else $KUBEBUILDER_ASSETS if it already holds every needed binary (it is
// never built into); else [DefaultBinDir]. Building runs the embedded
// build.sh, which needs bash and the go command, fetches sources through the
// Go module proxy and takes 15-35 minutes on a cold Go cache; its progress
// goes to opts.Progress. Concurrent builds into one directory wait for each
// other. Building is bounded by ctx only, not by opts.StartTimeout.
func EnsureBinaries(ctx context.Context, opts Options) (string, error) {
	opts = opts.withDefaults()
	need := opts.binaries()
	dir := opts.BinDir
	if dir == "" {
		dir = os.Getenv("CSIKIT_CONTROLPLANE_DIR")
	}
	if dir == "" {
		if assets := os.Getenv("KUBEBUILDER_ASSETS"); assets != "" && len(missing(assets, need)) == 0 {
			return assets, nil
		}
		var err error
		if dir, err = DefaultBinDir(); err != nil {
			return "", err
		}
	}
	dir, err := filepath.Abs(dir)
	if err != nil {
		return "", fmt.Errorf("controlplane: binary directory: %w", err)
	}
	lack := missing(dir, need)
	if len(lack) == 0 {
		return dir, nil
	}
	opts.progressf("%s missing in %s; building them (15-35 minutes the first time, cached afterwards)",
		strings.Join(lack, ", "), dir)
	start := time.Now()
	if err := runBuildScript(ctx, dir, opts.Progress); err != nil {
		return "", err
	}
	if lack := missing(dir, need); len(lack) != 0 {
		return "", fmt.Errorf("controlplane: build.sh finished but %s still missing in %s", strings.Join(lack, ", "), dir)
	}
	opts.progressf("binaries built in %s", time.Since(start).Round(time.Second))
	return dir, nil
}

// missing returns the names in bins that are not executable files in dir.
func missing(dir string, bins []string) []string {
	var lack []string
	for _, b := range bins {
		fi, err := os.Stat(filepath.Join(dir, b))
		if err != nil || !fi.Mode().IsRegular() || fi.Mode().Perm()&0o111 == 0 {
			lack = append(lack, b)
		}
	}
	return lack
}

// runBuildScript runs the embedded build.sh into dir, streaming its progress
// (stderr) to progress and keeping the tail for the error.
func runBuildScript(ctx context.Context, dir string, progress io.Writer) error {
	script, err := os.CreateTemp("", "csikit-controlplane-build-*.sh")
	if err != nil {
		return fmt.Errorf("controlplane: writing build.sh: %w", err)
	}
	defer os.Remove(script.Name())
	if _, err := script.Write(buildScript); err != nil {
		script.Close()
		return fmt.Errorf("controlplane: writing build.sh: %w", err)
	}
	if err := script.Close(); err != nil {
		return fmt.Errorf("controlplane: writing build.sh: %w", err)
	}

	cmd := exec.CommandContext(ctx, "bash", script.Name())
	cmd.Env = append(os.Environ(),
		"CSIKIT_CONTROLPLANE_DIR="+dir,
		"K8S_VERSION="+KubernetesVersion,
		"ETCD_VERSION="+EtcdVersion,
	)
	var stdout bytes.Buffer
	tail := &tailWriter{max: 4096}
	cmd.Stdout = &stdout
	cmd.Stderr = io.MultiWriter(progress, tail)
	setBuildProcAttr(cmd) // own process group, killed as a whole on cancel
	cmd.WaitDelay = 5 * time.Second
	if err := cmd.Run(); err != nil {
		if ctx.Err() != nil {
			err = errors.Join(err, ctx.Err())
		}
		return fmt.Errorf("controlplane: building binaries into %s failed: %w\n--- end of build output ---\n%s\n"+
			"next: fix the cause above and rerun; to build by hand run testkit/controlplane/build.sh "+
			"with CSIKIT_CONTROLPLANE_DIR=%s", dir, err, tail.String(), dir)
	}
	return nil
}

// tailWriter keeps the last max bytes written to it.
type tailWriter struct {
	max int
	buf []byte
}

func (w *tailWriter) Write(p []byte) (int, error) {
	w.buf = append(w.buf, p...)
	if over := len(w.buf) - w.max; over > 0 {
		w.buf = append(w.buf[:0], w.buf[over:]...)
	}
	return len(p), nil
}

func (w *tailWriter) String() string { return strings.TrimSpace(string(w.buf)) }

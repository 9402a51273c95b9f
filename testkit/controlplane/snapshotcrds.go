package controlplane

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime/debug"
	"strings"
	"time"
)

const (
	snapshotClientModule = "github.com/kubernetes-csi/external-snapshotter/client/v8"
	// snapshotClientVersion is used when neither the caller's module nor
	// the running binary names a version.
	snapshotClientVersion = "v8.7.0"
)

// SnapshotCRDDir returns the config/crd directory of the external-snapshotter
// client module (VolumeSnapshot, VolumeSnapshotContent, VolumeSnapshotClass
// and the VolumeGroupSnapshot kinds), so tests install exactly the CRDs that
// the client code they use was generated for.
//
// It asks `go list -m` in the current directory's module, which finds the
// version that module requires. Failing that, it looks in the module cache
// (`go env GOMODCACHE`) for the version linked into the running binary, or
// else v8.7.0. It needs the go command and the module downloaded; it never
// downloads.
func SnapshotCRDDir() (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var tried []string
	if dir, err := goCmd(ctx, "list", "-m", "-f", "{{.Dir}}", snapshotClientModule); err == nil && dir != "" {
		crd := filepath.Join(dir, "config", "crd")
		if isDir(crd) {
			return crd, nil
		}
		tried = append(tried, crd)
	} else {
		tried = append(tried, fmt.Sprintf("go list -m %s (%v)", snapshotClientModule, err))
	}

	cache := os.Getenv("GOMODCACHE")
	if cache == "" {
		cache, _ = goCmd(ctx, "env", "GOMODCACHE")
	}
	if cache != "" {
		crd := filepath.Join(cache, filepath.FromSlash(snapshotClientModule)+"@"+linkedVersion(), "config", "crd")
		if isDir(crd) {
			return crd, nil
		}
		tried = append(tried, crd)
	}
	return "", fmt.Errorf("controlplane: external-snapshotter CRDs not found (tried %s)\n"+
		"next: add %s to your module's go.mod (go get %s@%s) or run `go mod download %s@%s`",
		strings.Join(tried, "; "), snapshotClientModule, snapshotClientModule, linkedVersion(),
		snapshotClientModule, linkedVersion())
}

// linkedVersion is the snapshot client's version in the running binary's
// build info, if it links the module, else snapshotClientVersion.
func linkedVersion() string {
	if info, ok := debug.ReadBuildInfo(); ok {
		for _, m := range info.Deps {
			if m.Path == snapshotClientModule {
				if m.Replace != nil && m.Replace.Version != "" {
					return m.Replace.Version
				}
				if m.Version != "" && m.Version != "(devel)" {
					return m.Version
				}
			}
		}
	}
	return snapshotClientVersion
}

// goCmd runs the go command and returns its trimmed stdout.
func goCmd(ctx context.Context, args ...string) (string, error) {
	var stdout, stderr bytes.Buffer
	cmd := exec.CommandContext(ctx, "go", args...)
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("%w: %s", err, strings.TrimSpace(stderr.String()))
	}
	return strings.TrimSpace(stdout.String()), nil
}

func isDir(path string) bool {
	fi, err := os.Stat(path)
	return err == nil && fi.IsDir()
}

package version_test

import (
	"archive/tar"
	"bytes"
	"encoding/json"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/mod/module"
	modzip "golang.org/x/mod/zip"
)

// TestGoInstallAtCommit: `go install .../examples/csi-provisioner@<commit>`
// from outside the repository prints that commit in --version. The
// committed tree (HEAD) is served as a pseudo-version from a file-based
// module proxy, placed before the real proxy, which serves the
// dependencies: the same path as installing from the public proxy.
func TestGoInstallAtCommit(t *testing.T) {
	if testing.Short() {
		t.Skip("builds a binary with go install")
	}
	root, err := exec.Command("git", "rev-parse", "--show-toplevel").Output()
	if err != nil {
		t.Skipf("not in a git checkout: %v", err)
	}
	repo := strings.TrimSpace(string(root))
	rev := gitOut(t, repo, "rev-parse", "HEAD")
	unix := gitOut(t, repo, "log", "-1", "--format=%ct", "HEAD")
	var sec int64
	if err := json.Unmarshal([]byte(unix), &sec); err != nil {
		t.Fatalf("commit time %q: %v", unix, err)
	}
	when := time.Unix(sec, 0).UTC()
	const path = "github.com/csi-kit/sidecars"
	pseudo := module.PseudoVersion("v0", "", when, rev[:12])

	// The committed tree, as go mod download would fetch it.
	tmp := t.TempDir()
	src := filepath.Join(tmp, "src")
	archive := exec.Command("git", "-C", repo, "archive", "--format=tar", "HEAD")
	tarball, err := archive.Output()
	if err != nil {
		t.Fatalf("git archive: %v", err)
	}
	untar(t, tarball, src)
	dir := filepath.Join(tmp, "proxy", path, "@v")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	zf, err := os.Create(filepath.Join(dir, pseudo+".zip"))
	if err != nil {
		t.Fatal(err)
	}
	if err := modzip.CreateFromDir(zf, module.Version{Path: path, Version: pseudo}, src); err != nil {
		t.Fatalf("module zip: %v", err)
	}
	zf.Close()
	gomod, err := os.ReadFile(filepath.Join(src, "go.mod"))
	if err != nil {
		t.Fatal(err)
	}
	info, _ := json.Marshal(map[string]any{"Version": pseudo, "Time": when.Format(time.RFC3339)})
	for name, data := range map[string][]byte{pseudo + ".mod": gomod, pseudo + ".info": info, "list": []byte(pseudo + "\n")} {
		if err := os.WriteFile(filepath.Join(dir, name), data, 0o644); err != nil {
			t.Fatal(err)
		}
	}

	upstream, err := exec.Command("go", "env", "GOPROXY").Output()
	if err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(tmp, "bin")
	install := exec.Command("go", "install", path+"/examples/csi-provisioner@"+pseudo)
	install.Dir = tmp // outside any module
	install.Env = append(os.Environ(), "GOBIN="+bin, "GOFLAGS=", "GONOSUMDB="+path, "GOWORK=off",
		"GOPROXY=file://"+filepath.ToSlash(filepath.Join(tmp, "proxy"))+","+strings.TrimSpace(string(upstream)))
	if out, err := install.CombinedOutput(); err != nil {
		t.Fatalf("go install: %v\n%s", err, out)
	}
	out, err := exec.Command(filepath.Join(bin, "csi-provisioner"), "--version").CombinedOutput()
	if err != nil {
		t.Fatalf("--version: %v\n%s", err, out)
	}
	want := "csi-provisioner " + pseudo + " (commit " + rev[:12] + ", go"
	if got := strings.TrimSpace(string(out)); !strings.HasPrefix(got, want) {
		t.Errorf("--version printed %q, want it to start %q", got, want)
	}
}

func gitOut(t *testing.T, dir string, args ...string) string {
	t.Helper()
	out, err := exec.Command("git", append([]string{"-C", dir}, args...)...).Output()
	if err != nil {
		t.Fatalf("git %v: %v", args, err)
	}
	return strings.TrimSpace(string(out))
}

func untar(t *testing.T, data []byte, dst string) {
	t.Helper()
	tr := tar.NewReader(bytes.NewReader(data))
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return
		}
		if err != nil {
			t.Fatal(err)
		}
		p := filepath.Join(dst, filepath.FromSlash(h.Name))
		switch h.Typeflag {
		case tar.TypeDir:
			if err := os.MkdirAll(p, 0o755); err != nil {
				t.Fatal(err)
			}
		case tar.TypeReg:
			if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(p, mustRead(t, tr), os.FileMode(h.Mode)&0o755|0o600); err != nil {
				t.Fatal(err)
			}
		}
	}
}

func mustRead(t *testing.T, r io.Reader) []byte {
	t.Helper()
	b, err := io.ReadAll(r)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

package version_test

import (
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestBinaryVersion links two binaries the way make build does, one that
// takes --version from internal/cmdutil and the example driver with its own
// flag, and checks that both print the linked version and commit.
func TestBinaryVersion(t *testing.T) {
	if testing.Short() {
		t.Skip("builds binaries")
	}
	const (
		ver    = "v9.8.7-test"
		commit = "0123456789abcdef0123456789abcdef01234567"
		pkg    = "github.com/csi-kit/sidecars/internal/version"
	)
	dir := t.TempDir()
	build := exec.Command("go", "build", "-o", dir+string(filepath.Separator),
		"-ldflags", "-X "+pkg+".version="+ver+" -X "+pkg+".commit="+commit,
		"github.com/csi-kit/sidecars/examples/csi-resizer", "github.com/csi-kit/sidecars/examples/driver")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	for _, bin := range []string{"csi-resizer", "driver"} {
		out, err := exec.Command(filepath.Join(dir, bin), "--version").CombinedOutput()
		if err != nil {
			t.Fatalf("%s --version: %v\n%s", bin, err, out)
		}
		want := bin + " " + ver + " (commit " + commit + ", go"
		if got := strings.TrimSpace(string(out)); !strings.HasPrefix(got, want) || strings.Count(got, "\n") != 0 {
			t.Errorf("%s --version printed %q, want one line starting %q", bin, got, want)
		}
	}
}

package main

import (
	"archive/tar"
	"bytes"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/layout"
)

// TestBuildImages builds two images the way make images does, reads each
// tarball back as an OCI image layout and checks the config, the labels
// and that the binary in the layer runs and reports the version.
func TestBuildImages(t *testing.T) {
	if testing.Short() {
		t.Skip("builds static binaries and images")
	}
	o := options{Out: t.TempDir(), Version: "v9.8.7-imagetest", Commit: "89abcdef0123456789abcdef0123456789abcdef", Arch: runtime.GOARCH, Go: "go"}
	var progress bytes.Buffer
	got, err := build(t.Context(), o, []string{"example-driver", "csi-resizer"}, &progress)
	if err != nil {
		t.Fatalf("build: %v\n%s", err, progress.String())
	}
	if len(got) != 2 || got[0].Name != "csi-resizer" || got[1].Name != "example-driver" {
		t.Fatalf("built %+v, want csi-resizer then example-driver", got)
	}
	for _, b := range got {
		t.Run(b.Name, func(t *testing.T) {
			if !strings.Contains(progress.String(), b.Digest.String()) {
				t.Errorf("progress table has no row with digest %s:\n%s", b.Digest, progress.String())
			}
			if want := filepath.Join(o.Out, b.Name+".tar"); b.Path != want {
				t.Errorf("path = %s, want %s", b.Path, want)
			}
			img, ann := loadArchive(t, b.Path)
			if d, _ := img.Digest(); d != b.Digest {
				t.Errorf("digest in the archive = %s, reported %s", d, b.Digest)
			}
			if want := "csi-kit/" + b.Name + ":" + o.Version; ann["io.containerd.image.name"] != want || ann["org.opencontainers.image.ref.name"] != o.Version {
				t.Errorf("index annotations = %v, want name %s and tag %s", ann, want, o.Version)
			}
			cf, err := img.ConfigFile()
			if err != nil {
				t.Fatal(err)
			}
			if cf.OS != "linux" || cf.Architecture != o.Arch {
				t.Errorf("platform = %s/%s, want linux/%s", cf.OS, cf.Architecture, o.Arch)
			}
			if want := []string{"/" + b.Name}; !slices.Equal(cf.Config.Entrypoint, want) {
				t.Errorf("entrypoint = %q, want %q", cf.Config.Entrypoint, want)
			}
			if cf.Config.User != "65532:65532" {
				t.Errorf("user = %q, want 65532:65532", cf.Config.User)
			}
			for k, want := range map[string]string{
				"org.opencontainers.image.version":  o.Version,
				"org.opencontainers.image.revision": o.Commit,
				"org.opencontainers.image.title":    b.Name,
				"org.opencontainers.image.licenses": "Apache-2.0",
				"org.opencontainers.image.source":   "https://github.com/csi-kit/sidecars",
			} {
				if got := cf.Config.Labels[k]; got != want {
					t.Errorf("label %s = %q, want %q", k, got, want)
				}
			}

			bin := extractBinary(t, img, b.Name)
			if runtime.GOOS != "linux" {
				t.Skipf("the binary is for linux, this is %s", runtime.GOOS)
			}
			out, err := exec.Command(bin, "--version").CombinedOutput()
			if err != nil {
				t.Fatalf("%s --version: %v\n%s", b.Name, err, out)
			}
			if !strings.Contains(string(out), o.Version) || !strings.Contains(string(out), o.Commit) {
				t.Errorf("%s --version printed %q, want version %s and commit %s", b.Name, out, o.Version, o.Commit)
			}
		})
	}

	// docs/operations.md promises equal digests for equal inputs.
	o.Out = t.TempDir()
	again, err := build(t.Context(), o, []string{"example-driver"}, io.Discard)
	if err != nil {
		t.Fatalf("second build: %v", err)
	}
	if again[0].Digest != got[1].Digest {
		t.Errorf("rebuilding example-driver gave digest %s, first build %s", again[0].Digest, got[1].Digest)
	}
}

func TestOptionsValidate(t *testing.T) {
	good := options{Out: "out", Version: "v0.1.0-3-gabcdef0-dirty", Commit: "abc", Arch: "arm64", Go: "go"}
	if err := good.validate(); err != nil {
		t.Errorf("validate(%+v) = %v, want nil", good, err)
	}
	bad := options{Out: "out", Version: "v0.1.0/x", Arch: "arm64", Go: "go"}
	err := bad.validate()
	if err == nil || !strings.Contains(err.Error(), "-version") || !strings.Contains(err.Error(), "-commit") {
		t.Errorf("validate(%+v) = %v, want errors about -version and -commit", bad, err)
	}
	if _, err := choose([]string{"csi-resizer", "nope"}); err == nil || !strings.Contains(err.Error(), `"nope"`) {
		t.Errorf("choose(nope) = %v, want an error naming it", err)
	}
}

// loadArchive unpacks an OCI archive and returns its only image and the
// annotations of its index entry.
func loadArchive(t *testing.T, archive string) (v1.Image, map[string]string) {
	t.Helper()
	dir := t.TempDir()
	f, err := os.Open(archive)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	tr := tar.NewReader(f)
	for {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatalf("reading %s: %v", archive, err)
		}
		dst := filepath.Join(dir, filepath.FromSlash(hdr.Name))
		if hdr.Typeflag == tar.TypeDir {
			if err := os.MkdirAll(dst, 0o755); err != nil {
				t.Fatal(err)
			}
			continue
		}
		data, err := io.ReadAll(tr)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(dst, data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	p, err := layout.FromPath(dir)
	if err != nil {
		t.Fatalf("%s is not an OCI image layout: %v", archive, err)
	}
	idx, err := p.ImageIndex()
	if err != nil {
		t.Fatal(err)
	}
	im, err := idx.IndexManifest()
	if err != nil {
		t.Fatal(err)
	}
	if len(im.Manifests) != 1 {
		t.Fatalf("index has %d manifests, want 1", len(im.Manifests))
	}
	img, err := idx.Image(im.Manifests[0].Digest)
	if err != nil {
		t.Fatal(err)
	}
	return img, im.Manifests[0].Annotations
}

// extractBinary checks that the image has one layer holding exactly the
// executable /<name>, and writes it to a file.
func extractBinary(t *testing.T, img v1.Image, name string) string {
	t.Helper()
	layers, err := img.Layers()
	if err != nil {
		t.Fatal(err)
	}
	if len(layers) != 1 {
		t.Fatalf("image has %d layers, want 1", len(layers))
	}
	rc, err := layers[0].Uncompressed()
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	tr := tar.NewReader(rc)
	hdr, err := tr.Next()
	if err != nil {
		t.Fatalf("layer: %v", err)
	}
	if hdr.Name != name || hdr.Typeflag != tar.TypeReg || hdr.Mode&0o111 == 0 {
		t.Fatalf("layer entry %q (type %c, mode %o), want the executable %q", hdr.Name, hdr.Typeflag, hdr.Mode, name)
	}
	bin := filepath.Join(t.TempDir(), name)
	f, err := os.OpenFile(bin, os.O_CREATE|os.O_WRONLY, 0o755)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(f, tr); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	if next, err := tr.Next(); !errors.Is(err, io.EOF) {
		t.Errorf("layer has more than the binary: %v %v", next, err)
	}
	return bin
}

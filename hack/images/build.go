package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// image is one binary and the package it is built from.
type image struct{ name, pkg string }

// images are what make images builds, in this order.
var images = []image{
	{"csi-provisioner", "./examples/csi-provisioner"},
	{"csi-resizer", "./examples/csi-resizer"},
	{"csi-snapshotter", "./examples/csi-snapshotter"},
	{"snapshot-controller", "./examples/snapshot-controller"},
	{"snapshot-conversion-webhook", "./examples/snapshot-conversion-webhook"},
	{"csi-sidecars", "./examples/csi-sidecars"},
	{"example-driver", "./examples/driver"},
}

func names() []string {
	var n []string
	for _, im := range images {
		n = append(n, im.name)
	}
	return n
}

const (
	module      = "github.com/csi-kit/sidecars"
	versionPkg  = module + "/internal/version"
	repository  = "csi-kit" // images are csi-kit/<name>:<version>
	sourceLabel = "https://" + module
)

// options are the command line.
type options struct {
	Out, Version, Commit, Arch, Go string
}

// tagRE is what a registry accepts as a tag.
var tagRE = regexp.MustCompile(`^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$`)

func (o options) validate() error {
	var errs []error
	if !tagRE.MatchString(o.Version) {
		errs = append(errs, fmt.Errorf("-version=%q: want an image tag such as v0.1.0 (make images passes `git describe --tags --always --dirty`)", o.Version))
	}
	if o.Commit == "" {
		errs = append(errs, errors.New("-commit: empty; pass `git rev-parse HEAD`"))
	}
	if o.Out == "" || o.Arch == "" || o.Go == "" {
		errs = append(errs, errors.New("-out, -arch and -go must not be empty"))
	}
	return errors.Join(errs...)
}

// built is one written image.
type built struct {
	Name, Ref, Path string
	Size            int64 // of the tarball
	Digest          v1.Hash
}

// build compiles the binaries of the named images (all when none are
// named) and writes one image tarball each to o.Out, printing a row per
// image to progress as it is written.
func build(ctx context.Context, o options, only []string, progress io.Writer) ([]built, error) {
	if err := o.validate(); err != nil {
		return nil, err
	}
	todo, err := choose(only)
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(o.Out, 0o755); err != nil {
		return nil, fmt.Errorf("creating the output directory: %w", err)
	}
	work, err := os.MkdirTemp(o.Out, ".build-")
	if err != nil {
		return nil, fmt.Errorf("creating a work directory: %w", err)
	}
	defer os.RemoveAll(work)

	fmt.Fprintf(progress, "building %d binaries for linux/%s, version %s, commit %s\n", len(todo), o.Arch, o.Version, o.Commit)
	bins, err := compile(ctx, o, todo, filepath.Join(work, "bin"))
	if err != nil {
		return nil, err
	}
	width := len("IMAGE")
	for _, im := range todo {
		width = max(width, len(im.name))
	}
	fmt.Fprintf(progress, "%-*s  %9s  %-71s  %s\n", width, "IMAGE", "SIZE", "DIGEST", "PATH")
	var out []built
	for i, im := range todo {
		if err := ctx.Err(); err != nil {
			return out, err
		}
		b, err := buildOne(o, im, bins[i], work)
		if err != nil {
			return out, fmt.Errorf("image %s: %w", im.name, err)
		}
		fmt.Fprintf(progress, "%-*s  %9s  %-71s  %s\n", width, b.Name, mib(b.Size), b.Digest, b.Path)
		out = append(out, b)
	}
	return out, nil
}

// choose returns the named images in their usual order.
func choose(only []string) ([]image, error) {
	if len(only) == 0 {
		return images, nil
	}
	var todo []image
	for _, im := range images {
		if slices.Contains(only, im.name) {
			todo = append(todo, im)
		}
	}
	for _, n := range only {
		if !slices.Contains(names(), n) {
			return nil, fmt.Errorf("no image %q: choose from %v", n, names())
		}
	}
	return todo, nil
}

// compile builds the static binaries in one go build, so the packages
// they share compile once, and returns their paths in todo's order.
func compile(ctx context.Context, o options, todo []image, dir string) ([]string, error) {
	args := []string{"build", "-trimpath", "-o", dir + string(filepath.Separator),
		"-ldflags", fmt.Sprintf("-s -w -X %s.version=%s -X %s.commit=%s", versionPkg, o.Version, versionPkg, o.Commit)}
	var bins []string
	for _, im := range todo {
		args = append(args, im.pkg)
		bins = append(bins, filepath.Join(dir, path.Base(im.pkg)))
	}
	cmd := exec.CommandContext(ctx, o.Go, args...)
	cmd.Dir = moduleRoot(o.Go)
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOARCH="+o.Arch)
	if out, err := cmd.CombinedOutput(); err != nil {
		return nil, fmt.Errorf("go build of %v failed: %w\n%s", todo, err, out)
	}
	return bins, nil
}

// moduleRoot is the directory of go.mod, so the package paths resolve
// wherever the command runs from.
func moduleRoot(goCmd string) string {
	out, err := exec.Command(goCmd, "env", "GOMOD").Output()
	gomod := strings.TrimSpace(string(out))
	if err != nil || filepath.Base(gomod) != "go.mod" {
		return "" // the current directory; go build says what is wrong
	}
	return filepath.Dir(gomod)
}

func mib(n int64) string { return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20)) }

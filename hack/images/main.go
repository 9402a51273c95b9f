// Command images builds one OCI image per csi-kit binary without a
// container engine. Each image has a single layer holding the static
// binary at /<name>, runs it as user 65532:65532 and is written as an OCI
// image-layout tarball (an "oci-archive") to <out>/<name>.tar, tagged
// csi-kit/<name>:<version>.
//
//	go run ./hack/images -version v0.1.0 -commit $(git rev-parse HEAD)                # every image
//	go run ./hack/images -version v0.1.0 -commit $(git rev-parse HEAD) csi-resizer    # some of them
//
// make images passes the version and commit from git. See docs/operations.md
// for loading and pushing the tarballs.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"runtime"
	"strings"
)

func main() {
	var o options
	flag.StringVar(&o.Out, "out", "_output/images", "directory the <name>.tar files are written to")
	flag.StringVar(&o.Version, "version", "", "version linked into the binaries and used as the image tag (required)")
	flag.StringVar(&o.Commit, "commit", "", "git commit linked into the binaries and labelled on the images (required)")
	flag.StringVar(&o.Arch, "arch", runtime.GOARCH, "GOARCH of the binaries and the images")
	flag.StringVar(&o.Go, "go", "go", "go command that builds the binaries")
	flag.Usage = func() {
		fmt.Fprintf(flag.CommandLine.Output(), "usage: images -version V -commit C [flags] [image...]\nimages: %s\n", strings.Join(names(), ", "))
		flag.PrintDefaults()
	}
	flag.Parse()

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	if _, err := build(ctx, o, flag.Args(), os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "images:", err)
		os.Exit(1)
	}
}

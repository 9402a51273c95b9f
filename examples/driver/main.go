// Command driver is an example CSI driver: Controller, Node and Identity
// services in one binary on a unix socket, over a simulated backend that
// behaves like zonal cloud disks (--mode=cloud-disk), node-local LVM
// volumes (--mode=local) or an RBD-style backend that expands volumes only
// while unused (--mode=offline). With --state-dir its volumes and
// snapshots survive restarts. See docs/driver.md.
//
//	driver --endpoint=unix:///csi/csi.sock --driver=disk.csi.example.com \
//	    --nodeid=node-a --mode=cloud-disk --zones=node-a=zone-a,node-b=zone-b \
//	    --state-dir=/var/lib/example-driver --v=5
//
// Bad flags exit 2 with one line on stderr; SIGTERM or SIGINT stops the
// driver, which removes its socket, and exits 0.
package main

import (
	"cmp"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"maps"
	"os"
	"os/signal"
	"slices"
	"strings"
	"syscall"
	"time"

	"google.golang.org/grpc/status"
	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/klog/v2/textlogger"

	"github.com/csi-kit/sidecars/internal/version"
	"github.com/csi-kit/sidecars/testkit/fakedriver"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	os.Exit(run(ctx, os.Args[1:], os.Stdout, os.Stderr))
}

// run serves until ctx ends and returns the exit status: 0 after a clean
// stop, 1 when the driver cannot serve, 2 for bad flags.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	cfg, err := parseFlags(args, stdout)
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	if err != nil {
		fmt.Fprintf(stderr, "driver: %s\n", oneLine(err))
		return 2
	}
	if cfg.showVersion {
		fmt.Fprintln(stdout, version.Line("driver"))
		return 0
	}
	logger := textlogger.NewLogger(textlogger.NewConfig(textlogger.Verbosity(cfg.level), textlogger.Output(stderr)))
	cfg.opts.Observe = func(method string, err error, took time.Duration) {
		if err != nil {
			logger.V(2).Info("CSI call failed", "method", method, "code", status.Code(err), "err", status.Convert(err).Message(), "took", took)
			return
		}
		logger.V(5).Info("CSI call", "method", method, "took", took)
	}
	d, err := fakedriver.New(cfg.opts)
	if err != nil {
		fmt.Fprintf(stderr, "driver: %s\n", oneLine(err))
		return 2
	}
	if err := d.Serve(); err != nil {
		fmt.Fprintf(stderr, "driver: %s\n", oneLine(err))
		return 1
	}
	fmt.Fprintln(stdout, summary(cfg, d))
	<-ctx.Done()
	d.Stop()
	logger.V(1).Info("stopped", "endpoint", d.Endpoint())
	return 0
}

// summary is the startup line: who, where, what is simulated and kept.
func summary(cfg config, d *fakedriver.Driver) string {
	o, p := cfg.opts, presets[cfg.mode]
	size := func(n int64, zero string) string {
		if n == 0 {
			return zero
		}
		return resource.NewQuantity(n, resource.BinarySI).String()
	}
	var topo []string
	for _, k := range slices.Sorted(maps.Keys(o.Topology)) {
		topo = append(topo, k+"="+o.Topology[k])
	}
	state := "memory only"
	if o.StateDir != "" {
		state = fmt.Sprintf("%s (%d volumes, %d snapshots)", o.StateDir, len(d.Volumes()), len(d.Snapshots()))
	}
	return fmt.Sprintf("%s %s serving %s: mode=%s node=%s topology=[%s] nodes=%d pool=%s min-size=%s size-step=%s expansion=%s node-expansion-required=%v state=%s",
		d.Name(), fakedriver.Version, d.Endpoint(), cfg.mode, d.NodeID(), strings.Join(topo, ","), len(o.Nodes)+1,
		size(cmp.Or(o.NodeCapacity, o.Capacity), "unlimited"), size(o.MinSize, "none"), size(o.SizeStep, "none"), p.expansion, o.NodeExpansionRequired, state)
}

// oneLine joins a multi-error into one line.
func oneLine(err error) string { return strings.ReplaceAll(err.Error(), "\n", "; ") }

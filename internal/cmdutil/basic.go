package cmdutil

import (
	"context"
	"flag"
	"fmt"
	"os"

	logsapi "k8s.io/component-base/logs/api/v1"
	"k8s.io/klog/v2"

	"github.com/csi-kit/sidecars/internal/version"
)

// Basic holds the flags of a binary that talks to neither the API server
// nor a CSI driver, such as the conversion webhook: the same logging flags
// as Common, --automaxprocs and --version.
type Basic struct {
	ShowVersion  bool
	Automaxprocs bool
	// logging uses only the logging fields of a Common, so that the
	// flags are registered and validated the one way every binary uses.
	logging Common
}

// RegisterBasic adds b's flags to fs.
func RegisterBasic(fs *flag.FlagSet, b *Basic) {
	fs.BoolVar(&b.ShowVersion, "version", false, "Print the version and exit.")
	registerAutomaxprocs(fs, &b.Automaxprocs)
	registerLogging(fs, &b.logging)
}

// MainBasic runs a Basic binary and returns its exit code: 0 after --version
// or a clean shutdown (SIGTERM or SIGINT), 2 on bad flags, 1 when run fails,
// with the error logged and written to the termination log.
func MainBasic(name string, b *Basic, run func(ctx context.Context) error) int {
	if b.ShowVersion {
		fmt.Println(version.Line(name))
		return 0
	}
	if err := b.logging.setupErr; err != nil {
		fmt.Fprintf(os.Stderr, "%s: %v\n", name, err)
		return 2
	}
	// Once per process, before any goroutine logs.
	if err := logsapi.ValidateAndApply(b.logging.Logging, b.logging.logGates); err != nil {
		fmt.Fprintf(os.Stderr, "%s: logging flags: %v\n", name, err)
		return 2
	}
	ctx := SignalContext()
	defer klog.Flush()
	logger := klog.FromContext(ctx)
	build := version.Get()
	logger.Info("Starting", "program", name, "version", build.Version, "commit", build.Commit, "go", build.Go)
	logMaxProcs(logger, b.Automaxprocs)
	if err := run(ctx); err != nil && ctx.Err() == nil {
		logger.Error(err, "Exiting", "program", name)
		writeTerminationLog(err)
		return 1
	}
	logger.Info("Stopped", "program", name)
	return 0
}

package cmdutil

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"golang.org/x/sync/errgroup"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	logsapi "k8s.io/component-base/logs/api/v1"
	"k8s.io/klog/v2"

	"github.com/csi-kit/sidecars/csiconn"
	"github.com/csi-kit/sidecars/internal/kube"
	"github.com/csi-kit/sidecars/internal/version"
	"github.com/csi-kit/sidecars/leaderelection"
)

// Program describes one binary.
type Program struct {
	// Name of the binary, used in logs and user agents.
	Name string
	// LockComponent and LockName choose the Lease: LockName wins when set,
	// otherwise leaderelection.LockName(LockComponent, driver name).
	LockComponent string
	LockName      string
	Common        *Common
	// MigrationMetrics adds the migrated label to the CSI operation metrics
	// when the driver is the CSI driver of a migrated in-tree plugin (as
	// the provisioner and the resizer do).
	MigrationMetrics bool
	// Run runs the controllers until ctx ends; it is called only while
	// leading when election is enabled.
	Run func(ctx context.Context, env *Env) error
}

// Env is what Main built for Run.
type Env struct {
	// Config is the rest config with the controller's client budget.
	Config *rest.Config
	// Kube is a clientset on Config.
	Kube kubernetes.Interface
	// Conn is the ready CSI connection; nil for NoCSI binaries.
	Conn *csiconn.Conn
	// Identity is this process's leader-election identity ("" without election).
	Identity string
}

// Parse parses args into fs and exits with status 2 on a parse error, like
// flag.ExitOnError, after printing what to do.
func Parse(fs *flag.FlagSet, args []string) {
	if c, ok := commons.Load(fs); ok {
		tapReleaseGate(fs, c.(*Common))
	}
	fs.Init(fs.Name(), flag.ContinueOnError)
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			os.Exit(0)
		}
		fmt.Fprintf(os.Stderr, "%s: %v (see --help for the accepted flags)\n", fs.Name(), err)
		os.Exit(2)
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(os.Stderr, "%s: unexpected arguments %q: every option is a --flag\n", fs.Name(), fs.Args())
		os.Exit(2)
	}
}

// Main runs p and returns the process exit code: 0 after a clean shutdown
// (SIGTERM or SIGINT), 1 on any error, which is logged with what to do.
func Main(p Program) int {
	c := p.Common
	if c.ShowVersion {
		fmt.Println(version.Line(p.Name))
		return 0
	}
	if err := c.Check(); err != nil {
		fmt.Fprintf(os.Stderr, "%s: %v\n", p.Name, err)
		return 2
	}
	// Once per process, before any goroutine logs: format, verbosity,
	// flush frequency and output streams take effect here.
	if err := logsapi.ValidateAndApply(c.Logging, c.logGates); err != nil {
		fmt.Fprintf(os.Stderr, "%s: logging flags: %v\n", p.Name, err)
		return 2
	}
	ctx := SignalContext()
	defer klog.Flush()
	if err := run(ctx, p); err != nil && ctx.Err() == nil {
		klog.FromContext(ctx).Error(err, "Exiting", "program", p.Name)
		writeTerminationLog(err)
		return 1
	}
	klog.FromContext(ctx).Info("Stopped", "program", p.Name)
	return 0
}

func run(ctx context.Context, p Program) error {
	c := p.Common
	logger := klog.FromContext(ctx)
	build := version.Get()
	logger.Info("Starting", "program", p.Name, "version", build.Version, "commit", build.Commit, "go", build.Go)
	logMaxProcs(logger, c.Automaxprocs)

	cfg, err := kube.RestConfig(c.Kubeconfig, c.Master, float32(c.QPS), c.Burst)
	if err != nil {
		return err
	}
	cfg = rest.AddUserAgent(cfg, p.Name)
	client, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return fmt.Errorf("creating Kubernetes client: %w", err)
	}
	env := &Env{Config: cfg, Kube: client}

	var metricsMgr = csiconn.NewMetricsManager()
	driver := ""
	if !c.noCSI {
		conn, err := csiconn.Connect(ctx, csiconn.Options{Address: c.CSIAddress, CallTimeout: c.Timeout, Metrics: metricsMgr})
		if err != nil {
			return err
		}
		if p.MigrationMetrics && csiconn.IsMigratedDriver(conn.DriverName()) {
			// The label set is fixed when the connection is made: connect
			// again with a manager that has the migrated label.
			_ = conn.Close()
			metricsMgr = csiconn.NewMigrationMetricsManager()
			conn, err = csiconn.Connect(ctx, csiconn.Options{Address: c.CSIAddress, CallTimeout: c.Timeout, Metrics: metricsMgr})
			if err != nil {
				return err
			}
		}
		defer conn.Close()
		env.Conn = conn
		driver = conn.DriverName()
	}

	g, gctx := errgroup.WithContext(ctx)
	var checks []csiconn.HealthChecker
	var elector *leaderelection.Elector
	if c.LeaderElection.Enabled {
		opts := c.LeaderElection.Options
		opts.LockName = p.LockName
		if opts.LockName == "" {
			opts.LockName = leaderelection.LockName(p.LockComponent, driver)
		}
		leClient, err := leaderelection.NewClient(cfg, opts)
		if err != nil {
			return fmt.Errorf("creating leader election client: %w", err)
		}
		elector, err = leaderelection.New(opts, leClient)
		if err != nil {
			return err
		}
		env.Identity = elector.Identity()
		if c.HTTPEndpoint != "" {
			checks = append(checks, elector.HealthCheck())
		}
	}
	addr := firstNonEmpty(c.HTTPEndpoint, c.MetricsAddress)
	if c.Pprof && addr == "" {
		logger.Info("Warning: --enable-pprof has no effect without --http-endpoint")
	}
	if addr != "" {
		srv, err := csiconn.NewHTTPServer(csiconn.HTTPOptions{Address: addr, MetricsPath: c.MetricsPath, Checks: checks, Pprof: c.Pprof}, metricsMgr)
		if err != nil {
			return err
		}
		g.Go(func() error { return srv.Run(gctx) })
	}
	g.Go(func() error {
		var err error
		if elector != nil {
			err = elector.Run(gctx, func(ctx context.Context) error { return p.Run(ctx, env) })
		} else {
			err = p.Run(gctx, env)
		}
		if err == nil && gctx.Err() == nil {
			err = errors.New("controllers stopped unexpectedly")
		}
		return err
	})
	return g.Wait()
}

// SignalContext is cancelled by the first SIGTERM or SIGINT; a second one
// exits at once.
func SignalContext() context.Context {
	ctx, cancel := context.WithCancel(context.Background())
	ch := make(chan os.Signal, 2)
	signal.Notify(ch, syscall.SIGTERM, syscall.SIGINT)
	go func() {
		<-ch
		klog.Info("Shutting down: stopping work and releasing the lease (signal again to exit at once)")
		cancel()
		<-ch
		os.Exit(1)
	}()
	return ctx
}

func writeTerminationLog(err error) {
	// Kubernetes shows this file as the container's termination message.
	_ = os.WriteFile("/dev/termination-log", []byte(err.Error()), 0o644)
}

func firstNonEmpty(s ...string) string {
	for _, v := range s {
		if v != "" {
			return v
		}
	}
	return ""
}

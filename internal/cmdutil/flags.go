// Package cmdutil is the wiring shared by the example binaries: the upstream
// flags every sidecar accepts, and Main, which turns them into a client, a
// CSI connection, a metrics endpoint and a leader-elected run.
package cmdutil

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"time"

	"k8s.io/component-base/featuregate"
	logsapi "k8s.io/component-base/logs/api/v1"
	_ "k8s.io/component-base/logs/json/register" // --logging-format=json
	"k8s.io/klog/v2"

	"github.com/csi-kit/sidecars/internal/kube"
	"github.com/csi-kit/sidecars/leaderelection"
)

// Common holds the flags every binary shares.
type Common struct {
	CSIAddress     string
	Kubeconfig     string
	Master         string
	Timeout        time.Duration
	QPS            float64
	Burst          int
	HTTPEndpoint   string
	MetricsAddress string
	MetricsPath    string
	ShowVersion    bool
	Automaxprocs   bool
	// Pprof serves /debug/pprof/ on the HTTP endpoint; binaries that have
	// upstream's --enable-pprof bind it (RegisterPprof).
	Pprof          bool
	LeaderElection leaderelection.Flags
	// Logging holds --logging-format, --log-flush-frequency, -v, --vmodule
	// and the --log-{text,json}-{split-stream,info-buffer-size} flags, read
	// and applied by component-base as in every Kubernetes component.
	Logging *logsapi.LoggingConfiguration

	noCSI bool
	// logGates are the logging feature gates (LoggingAlphaOptions,
	// LoggingBetaOptions, ContextualLogging), set through the binary's
	// --feature-gates.
	logGates featuregate.MutableVersionedFeatureGate
	// setupErr is a failure while registering, reported by Check.
	setupErr error
}

// Defaults are the per-binary defaults of the common flags.
type Defaults struct {
	// Timeout of each CSI call (provisioner and resizer 10s, snapshotter 1m).
	Timeout time.Duration
	// NoCSI leaves out the CSI flags, for controllers that talk to no driver.
	NoCSI bool
}

// Register adds the common flags to fs, and klog's flags (--v, --vmodule,
// --logtostderr, ...).
func Register(fs *flag.FlagSet, c *Common, d Defaults) {
	c.noCSI = d.NoCSI
	if !d.NoCSI {
		fs.StringVar(&c.CSIAddress, "csi-address", "/run/csi/socket", "Address of the CSI driver socket.")
		fs.DurationVar(&c.Timeout, "timeout", d.Timeout, "Timeout for each call to the CSI driver.")
		Removed(fs, "connection-timeout", "removed upstream in v2.0 (a no-op since v1.1): the driver is waited for and probed until it is ready; delete the flag")
	}
	fs.StringVar(&c.Kubeconfig, "kubeconfig", os.Getenv("KUBECONFIG"), "Path to a kubeconfig; empty means the in-cluster config.")
	fs.StringVar(&c.Master, "master", "", "Address of the Kubernetes API server; overrides the kubeconfig's.")
	fs.Float64Var(&c.QPS, "kube-api-qps", kube.DefaultQPS, "QPS of the Kubernetes client (negative: no client-side limit). Upstream's default is 5.")
	fs.IntVar(&c.Burst, "kube-api-burst", kube.DefaultBurst, "Burst of the Kubernetes client. Upstream's default is 10.")
	fs.StringVar(&c.HTTPEndpoint, "http-endpoint", "", "TCP address (e.g. :8080) serving metrics and /healthz/leader-election; empty disables it.")
	fs.StringVar(&c.MetricsAddress, "metrics-address", "", "Deprecated: use --http-endpoint. Address serving metrics only.")
	fs.StringVar(&c.MetricsPath, "metrics-path", "/metrics", "HTTP path of the metrics.")
	fs.BoolVar(&c.ShowVersion, "version", false, "Print the version and exit.")
	registerAutomaxprocs(fs, &c.Automaxprocs)
	leaderelection.RegisterFlags(fs, &c.LeaderElection)
	registerLogging(fs, c)
	commons.Store(fs, c)
}

// registerLogging adds component-base's logging flags, then klog's own
// flags (--logtostderr, --add_dir_header, ...) except -v and --vmodule,
// which component-base owns and hands to klog when Main applies them.
func registerLogging(fs *flag.FlagSet, c *Common) {
	c.Logging = logsapi.NewLoggingConfiguration()
	logsapi.AddGoFlags(c.Logging, fs)
	c.logGates = featuregate.NewFeatureGate()
	if err := logsapi.AddFeatureGates(c.logGates); err != nil {
		c.setupErr = fmt.Errorf("logging feature gates: %w", err)
	}
	var klogFlags flag.FlagSet
	klog.InitFlags(&klogFlags)
	klogFlags.VisitAll(func(f *flag.Flag) {
		if fs.Lookup(f.Name) == nil {
			fs.Var(f.Value, f.Name, f.Usage)
		}
	})
}

// automaxprocsUsage says what --automaxprocs does here. Upstream's flag
// sets GOMAXPROCS from the cgroup CPU quota once at start; the Go runtime
// of these binaries (1.25 and later) already does that by default, and
// follows later changes of the limit, so the flag only logs the value.
const automaxprocsUsage = "Set GOMAXPROCS from the container's CPU limit, as upstream. The Go runtime of this binary already does so by default (and follows changes of the limit), with or without the flag; set, the value is logged at start. GOMAXPROCS in the environment wins either way."

func registerAutomaxprocs(fs *flag.FlagSet, on *bool) {
	fs.BoolVar(on, "automaxprocs", false, automaxprocsUsage)
}

// logMaxProcs logs GOMAXPROCS at start when --automaxprocs is set, the
// one visible trace of the flag (see automaxprocsUsage).
func logMaxProcs(logger klog.Logger, automaxprocs bool) {
	if !automaxprocs {
		return
	}
	src := "Go runtime default: the container's CPU limit, else the CPU count"
	if v := os.Getenv("GOMAXPROCS"); v != "" {
		src = "env GOMAXPROCS"
	}
	logger.Info("GOMAXPROCS", "value", runtime.GOMAXPROCS(0), "from", src, "cpus", runtime.NumCPU())
}

// RegisterPprof adds --enable-pprof, for the binaries whose upstream
// counterpart has it.
func RegisterPprof(fs *flag.FlagSet, c *Common) {
	fs.BoolVar(&c.Pprof, "enable-pprof", false, "Serve /debug/pprof/ (Go profiling) on --http-endpoint.")
}

// commons maps each flag set given to Register to its Common, so that Parse
// can route the leader-election feature gate from the binary's own
// --feature-gates to the election.
var commons sync.Map // *flag.FlagSet → *Common

// tapReleaseGate wraps the binary's --feature-gates, if it has one: the
// binary parses its own gates as before; ReleaseLeaderElectionOnExit also
// reaches c.LeaderElection (false keeps the Lease on exit; unset or true
// releases it); the logging gates (LoggingAlphaOptions, LoggingBetaOptions,
// ContextualLogging) go to the logging configuration only. Every binary
// gets these gates this one way, whatever parser its other gates use.
func tapReleaseGate(fs *flag.FlagSet, c *Common) {
	if f := fs.Lookup("feature-gates"); f != nil {
		if _, done := f.Value.(releaseGate); !done {
			f.Value = releaseGate{Value: f.Value, le: &c.LeaderElection, logGates: c.logGates}
		}
	}
}

// loggingGates are the gates component-base's logging reads. Only these
// leave the binary's --feature-gates; AllAlpha and AllBeta still reach the
// binary's own parser, which decides about them as before.
var loggingGates = map[featuregate.Feature]bool{
	logsapi.LoggingAlphaOptions: true, logsapi.LoggingBetaOptions: true, logsapi.ContextualLogging: true,
}

type releaseGate struct {
	flag.Value
	le       *leaderelection.Flags
	logGates featuregate.MutableFeatureGate
}

// String tolerates the zero releaseGate the flag package builds when it
// prints defaults.
func (g releaseGate) String() string {
	if g.Value == nil {
		return ""
	}
	return g.Value.String()
}

func (g releaseGate) Set(s string) error {
	var own []string
	logging := map[string]bool{}
	for _, kv := range strings.Split(s, ",") {
		kv = strings.TrimSpace(kv)
		k, v, ok := strings.Cut(kv, "=")
		if ok && loggingGates[featuregate.Feature(k)] {
			b, err := strconv.ParseBool(v)
			if err != nil {
				return fmt.Errorf("feature gate %s=%q: want true or false", k, v)
			}
			logging[k] = b
			continue
		}
		if kv != "" {
			own = append(own, kv)
		}
		if !ok || k != leaderelection.ReleaseOnExitGate {
			continue
		}
		b, err := strconv.ParseBool(v)
		if err != nil {
			return fmt.Errorf("feature gate %s=%q: %w", k, v, err)
		}
		g.le.SetReleaseOnExit(b)
	}
	if len(logging) > 0 {
		if err := g.logGates.SetFromMap(logging); err != nil {
			return err
		}
	}
	if len(own) > 0 {
		return g.Value.Set(strings.Join(own, ","))
	}
	return nil
}

// Check validates the parsed flags; every problem is reported at once.
func (c *Common) Check() error {
	var errs []error
	if c.HTTPEndpoint != "" && c.MetricsAddress != "" {
		errs = append(errs, fmt.Errorf("--http-endpoint and --metrics-address are both set: keep only --http-endpoint"))
	}
	if c.setupErr != nil {
		errs = append(errs, c.setupErr)
	}
	if c.Logging != nil {
		if ferrs := logsapi.Validate(c.Logging, c.logGates, nil); len(ferrs) > 0 {
			errs = append(errs, fmt.Errorf("logging flags: %w (the [Alpha] --log-*-split-stream and --log-*-info-buffer-size flags need --feature-gates=LoggingAlphaOptions=true)", ferrs.ToAggregate()))
		}
	}
	if !c.noCSI && c.Timeout <= 0 {
		errs = append(errs, fmt.Errorf("--timeout=%v must be positive", c.Timeout))
	}
	if c.QPS >= 0 && c.Burst <= 0 {
		errs = append(errs, fmt.Errorf("--kube-api-burst=%d must be positive", c.Burst))
	}
	if err := c.LeaderElection.Check(); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// DeprecatedBool registers a removed boolean flag that is accepted, ignored
// and warned about, so old manifests keep starting.
func DeprecatedBool(fs *flag.FlagSet, name, why string) {
	fs.Var(&deprecated{name: name, why: why, boolean: true}, name, "Deprecated and ignored: "+why)
}

// DeprecatedString registers a removed flag with a value, accepted, ignored
// and warned about.
func DeprecatedString(fs *flag.FlagSet, name, why string) {
	fs.Var(&deprecated{name: name, why: why}, name, "Deprecated and ignored: "+why)
}

// Removed registers a flag that upstream removed and that has no meaning
// here: any use of it fails parsing with a message that names the flag and
// says why (what replaces it, or that it can go), instead of the bare
// "flag provided but not defined" or, worse, a flag parsed and ignored.
// It parses as a boolean flag, so that the message shows whether a value
// follows or not.
func Removed(fs *flag.FlagSet, name, why string) {
	fs.Var(removed{why: why}, name, "Refused: "+why+".")
}

type removed struct{ why string }

func (r removed) String() string   { return "" }
func (r removed) IsBoolFlag() bool { return true }
func (r removed) Set(string) error { return errors.New(r.why) }

type deprecated struct {
	name, why, value string
	boolean          bool
}

func (d *deprecated) String() string   { return d.value }
func (d *deprecated) IsBoolFlag() bool { return d.boolean }
func (d *deprecated) Set(s string) error {
	d.value = s
	fmt.Fprintf(os.Stderr, "Warning: flag --%s is deprecated and ignored: %s\n", d.name, d.why)
	return nil
}

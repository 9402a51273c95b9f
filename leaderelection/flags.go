package leaderelection

import (
	"flag"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
)

// Flags holds the values of the upstream leader-election flags.
type Flags struct {
	// Enabled is --leader-election (or the old --enable-leader-election).
	Enabled bool
	// Options gets --leader-election-namespace, -lease-duration,
	// -renew-deadline, -retry-period and -labels.
	Options Options

	typeSeen string
	warn     io.Writer
}

// RegisterFlags registers on fs the upstream flags
//
//	--leader-election, --leader-election-namespace,
//	--leader-election-lease-duration, --leader-election-renew-deadline,
//	--leader-election-retry-period, --leader-election-labels
//
// and the old spellings that real manifests still pass:
//
//	--enable-leader-election (same as --leader-election)
//	--leader-election-type   (only "leases" is accepted, with a warning)
//
// Deprecation warnings go to stderr. Call Check after fs.Parse.
func RegisterFlags(fs *flag.FlagSet, f *Flags) {
	f.warn = os.Stderr
	fs.BoolVar(&f.Enabled, "leader-election", false, "Enable leader election on a coordination.k8s.io Lease.")
	fs.Var(deprecatedBool{f: f, target: &f.Enabled, name: "enable-leader-election", use: "--leader-election"},
		"enable-leader-election", "Deprecated: use --leader-election.")
	fs.Var(leaseType{f: f}, "leader-election-type", "Deprecated: only \"leases\" is supported and it is the only lock type used.")
	fs.StringVar(&f.Options.Namespace, "leader-election-namespace", "", "Namespace of the leader election Lease. Default: $POD_NAMESPACE, else the service account's namespace, else \"default\".")
	fs.DurationVar(&f.Options.LeaseDuration, "leader-election-lease-duration", DefaultLeaseDuration, "Duration non-leader candidates wait before forcing to acquire leadership.")
	fs.DurationVar(&f.Options.RenewDeadline, "leader-election-renew-deadline", DefaultRenewDeadline, "Duration the leader retries refreshing leadership before giving up.")
	fs.DurationVar(&f.Options.RetryPeriod, "leader-election-retry-period", DefaultRetryPeriod, "Duration clients wait between attempts to acquire or renew leadership.")
	fs.Var(labelsValue{m: &f.Options.Labels}, "leader-election-labels", "Labels for the Lease, as key:value,key2:value2.")
}

// ReleaseOnExitGate is the upstream feature gate that decides whether a
// stopping leader releases its Lease. Unlike upstream, where it is off by
// default, this package releases unless the gate is set to false.
const ReleaseOnExitGate = "ReleaseLeaderElectionOnExit"

// SetReleaseOnExit applies --feature-gates=ReleaseLeaderElectionOnExit=v:
// false keeps the Lease when the process stops (Options.KeepOnCancel), so a
// standby takes over only when it expires.
func (f *Flags) SetReleaseOnExit(v bool) { f.Options.KeepOnCancel = !v }

// Check validates the parsed values and returns every problem at once.
// Election timings are only checked when election is enabled.
func (f *Flags) Check() error {
	if !f.Enabled {
		return nil
	}
	opts := f.Options
	opts.LockName = "check"
	if err := opts.WithDefaults().Validate(); err != nil {
		return fmt.Errorf("invalid leader election flags: %w", err)
	}
	return nil
}

type deprecatedBool struct {
	f      *Flags
	target *bool
	name   string
	use    string
}

func (d deprecatedBool) String() string {
	if d.target == nil {
		return "false"
	}
	return strconv.FormatBool(*d.target)
}
func (d deprecatedBool) IsBoolFlag() bool { return true }
func (d deprecatedBool) Set(s string) error {
	v, err := strconv.ParseBool(s)
	if err != nil {
		return fmt.Errorf("want true or false, got %q", s)
	}
	fmt.Fprintf(d.f.warn, "Warning: flag --%s is deprecated, use %s instead.\n", d.name, d.use)
	*d.target = v
	return nil
}

type leaseType struct{ f *Flags }

func (l leaseType) String() string {
	if l.f == nil || l.f.typeSeen == "" {
		return "leases"
	}
	return l.f.typeSeen
}
func (l leaseType) Set(s string) error {
	if !strings.EqualFold(s, "leases") {
		return fmt.Errorf("lock type %q is not supported: only \"leases\" exists (endpoints and configmaps locks were removed from Kubernetes); drop the flag or set it to leases", s)
	}
	l.f.typeSeen = "leases"
	fmt.Fprintf(l.f.warn, "Warning: flag --leader-election-type is deprecated and ignored: Leases are always used.\n")
	return nil
}

type labelsValue struct{ m *map[string]string }

func (l labelsValue) String() string {
	if l.m == nil || *l.m == nil {
		return ""
	}
	var parts []string
	for k, v := range *l.m {
		parts = append(parts, k+":"+v)
	}
	return strings.Join(parts, ",")
}

func (l labelsValue) Set(s string) error {
	out := map[string]string{}
	for _, kv := range strings.Split(s, ",") {
		kv = strings.TrimSpace(kv)
		if kv == "" {
			continue
		}
		k, v, ok := strings.Cut(kv, ":")
		if !ok || k == "" {
			return fmt.Errorf("label %q is not key:value", kv)
		}
		out[k] = v
	}
	*l.m = out
	return nil
}

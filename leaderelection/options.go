package leaderelection

import (
	"cmp"
	"errors"
	"fmt"
	"os"
	"regexp"
	"strings"
	"time"

	"github.com/google/uuid"
	"k8s.io/utils/clock"
)

// Options configures an Elector. A zero field means "use the default".
type Options struct {
	// LockName is the Lease name; required. Use LockName to derive it the
	// way the upstream sidecars do.
	LockName string
	// Namespace of the Lease; default: env POD_NAMESPACE, else the service
	// account's namespace file, else "default".
	Namespace string
	// Identity of this candidate; default: hostname + "_" + a random UUID.
	Identity string
	// LeaseDuration a standby waits before taking over a lease that is not
	// renewed; default 15s.
	LeaseDuration time.Duration
	// RenewDeadline bounds the leader's term: its work context ends renew
	// deadline after the start of its last successful renewal, before any
	// release is tried. Must be at least 1s (stopMargin) below
	// LeaseDuration: that difference is the time the work has to stop
	// before a standby may start. Default 10s.
	RenewDeadline time.Duration
	// RetryPeriod between attempts to acquire or renew; default 5s.
	RetryPeriod time.Duration
	// HealthTimeout is how far past the lease expiry the health check
	// tolerates a leader that has not renewed; default 20s.
	HealthTimeout time.Duration
	// KeepOnCancel disables releasing the Lease when Run stops leading of
	// its own accord (ctx cancelled or work returned). Release is the
	// default: a planned handover then takes milliseconds instead of a
	// full lease duration. The binaries set it from
	// --feature-gates=ReleaseLeaderElectionOnExit=false.
	KeepOnCancel bool
	// ReleaseTimeout bounds the release, which is tried only after the
	// work has returned; default 2s.
	ReleaseTimeout time.Duration
	// Clock times renewals, terms and polls; default: the real clock.
	Clock clock.WithTicker
	// Labels are set on the Lease object.
	Labels map[string]string
}

// Defaults, equal to the upstream sidecars'.
const (
	DefaultLeaseDuration  = 15 * time.Second
	DefaultRenewDeadline  = 10 * time.Second
	DefaultRetryPeriod    = 5 * time.Second
	DefaultHealthTimeout  = 20 * time.Second
	DefaultReleaseTimeout = 2 * time.Second
)

// stopMargin is the least time between the end of a leader's term (renew
// deadline after its last successful renewal started) and the earliest
// moment a standby may take over (lease duration after it saw that
// renewal): the time the work has to stop.
const stopMargin = time.Second

// jitterFactor is client-go's: renew deadline must exceed retry × 1.2.
const jitterFactor = 1.2

const serviceAccountNamespaceFile = "/var/run/secrets/kubernetes.io/serviceaccount/namespace"

// WithDefaults returns o with every zero field filled.
func (o Options) WithDefaults() Options {
	o.LeaseDuration = cmp.Or(o.LeaseDuration, DefaultLeaseDuration)
	o.RenewDeadline = cmp.Or(o.RenewDeadline, DefaultRenewDeadline)
	o.RetryPeriod = cmp.Or(o.RetryPeriod, DefaultRetryPeriod)
	o.HealthTimeout = cmp.Or(o.HealthTimeout, DefaultHealthTimeout)
	o.ReleaseTimeout = cmp.Or(o.ReleaseTimeout, DefaultReleaseTimeout)
	if o.Clock == nil {
		o.Clock = clock.RealClock{}
	}
	if o.Namespace == "" {
		o.Namespace = defaultNamespace()
	}
	if o.Identity == "" {
		o.Identity = UniqueIdentity()
	}
	return o
}

// Validate reports every invalid field at once, naming the field and its bound.
func (o Options) Validate() error {
	var errs []error
	if o.LockName == "" {
		errs = append(errs, errors.New("LockName is empty: derive it with LockName(component, driver)"))
	}
	if o.LeaseDuration <= 0 {
		errs = append(errs, fmt.Errorf("lease duration %v must be positive", o.LeaseDuration))
	}
	if o.RenewDeadline <= 0 {
		errs = append(errs, fmt.Errorf("renew deadline %v must be positive", o.RenewDeadline))
	}
	if o.RetryPeriod <= 0 {
		errs = append(errs, fmt.Errorf("retry period %v must be positive", o.RetryPeriod))
	}
	if o.LeaseDuration > 0 && o.RenewDeadline > 0 && o.LeaseDuration-o.RenewDeadline < stopMargin {
		errs = append(errs, fmt.Errorf("lease duration %v must exceed renew deadline %v by at least %v, the time the work has to stop before a standby may take over",
			o.LeaseDuration, o.RenewDeadline, stopMargin))
	}
	if o.RenewDeadline > 0 && o.RetryPeriod > 0 && float64(o.RenewDeadline) <= jitterFactor*float64(o.RetryPeriod) {
		errs = append(errs, fmt.Errorf("renew deadline %v must be greater than %.1f × retry period %v (= %v)",
			o.RenewDeadline, jitterFactor, o.RetryPeriod, time.Duration(jitterFactor*float64(o.RetryPeriod))))
	}
	if o.LeaseDuration > 0 && o.LeaseDuration%time.Second != 0 {
		errs = append(errs, fmt.Errorf("lease duration %v must be whole seconds (the Lease stores seconds)", o.LeaseDuration))
	}
	if o.ReleaseTimeout < 0 {
		errs = append(errs, fmt.Errorf("release timeout %v must not be negative", o.ReleaseTimeout))
	}
	if o.HealthTimeout < 0 {
		errs = append(errs, fmt.Errorf("health timeout %v must not be negative", o.HealthTimeout))
	}
	if o.Identity == "" {
		errs = append(errs, errors.New("identity is empty"))
	}
	if o.Namespace == "" {
		errs = append(errs, errors.New("namespace is empty"))
	}
	return errors.Join(errs...)
}

// Upstream component names for LockName.
const (
	ComponentProvisioner = "provisioner"
	ComponentResizer     = "external-resizer"
	ComponentSnapshotter = "external-snapshotter-leader"
	ComponentSnapshotCtl = "snapshot-controller-leader"
)

var invalidLockChars = regexp.MustCompile(`[^a-zA-Z0-9-]`)

// LockName derives the Lease name the upstream sidecars use for a driver:
// the provisioner uses the driver name alone, the resizer
// "external-resizer-<driver>", the snapshotter
// "external-snapshotter-leader-<driver>"; characters outside [a-zA-Z0-9-]
// become "-" and a trailing "-" gets an "X".
// For ComponentSnapshotCtl (the driver-independent snapshot controller) the
// driver is ignored and the name is "snapshot-controller-leader".
func LockName(component, driver string) string {
	var name string
	switch component {
	case ComponentProvisioner, "":
		name = driver
	case ComponentSnapshotCtl:
		name = ComponentSnapshotCtl
	default:
		name = component + "-" + driver
	}
	return sanitize(name)
}

func sanitize(name string) string {
	name = invalidLockChars.ReplaceAllString(name, "-")
	if strings.HasSuffix(name, "-") {
		name += "X"
	}
	return name
}

// UniqueIdentity is the hostname with a random suffix, sanitised like a
// lock name.
func UniqueIdentity() string {
	host, err := os.Hostname()
	if err != nil || host == "" {
		host = "unknown-host"
	}
	return sanitize(host) + "_" + uuid.NewString()
}

func defaultNamespace() string {
	if ns := os.Getenv("POD_NAMESPACE"); ns != "" {
		return ns
	}
	if data, err := os.ReadFile(serviceAccountNamespaceFile); err == nil {
		if ns := strings.TrimSpace(string(data)); ns != "" {
			return ns
		}
	}
	return "default"
}

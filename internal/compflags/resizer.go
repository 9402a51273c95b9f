package compflags

import (
	"flag"
	"fmt"
	"os"
	"strconv"
	"time"

	"github.com/csi-kit/sidecars/leaderelection"
	"github.com/csi-kit/sidecars/resizer"
)

// Resizer holds the resizer's own flags.
type Resizer struct {
	// Options receives --workers, --resync-period, --extra-modify-metadata,
	// --handle-volume-inuse-error (whose false sets
	// DisableVolumeInUseHandling) and --mark-in-progress-before-call (whose
	// false sets DisableMarkInProgress).
	Options resizer.Options
	// WarnCSITimeout makes the deprecated --csiTimeout print a warning when
	// set. Set it before parsing.
	WarnCSITimeout bool
}

// RegisterResizer registers the flags that only the resizer reads on fs,
// filling r; timeout is the binary's --timeout, which the deprecated
// --csiTimeout also sets; le is the binary's leader election, whose
// Lease holder identity --leader-election-identity sets.
func RegisterResizer(fs *flag.FlagSet, r *Resizer, timeout *time.Duration, le *leaderelection.Flags) {
	o := &r.Options
	fs.IntVar(&o.Workers, "workers", resizer.DefaultWorkers, "Number of PVCs handled in parallel.")
	fs.DurationVar(&o.ResyncPeriod, "resync-period", resizer.DefaultResyncPeriod, "Resync period of the informers.")
	fs.Var(&notBool{target: &o.DisableVolumeInUseHandling}, "handle-volume-inuse-error", "Track which pods use which PVCs, so that drivers that expand only OFFLINE are not called for a volume in use. Pods are cached only for such drivers.")
	fs.BoolVar(&o.ExtraModifyMetadata, "extra-modify-metadata", false, "Add csi.storage.k8s.io/pvc/name, pvc/namespace and pv/name to the parameters of ControllerModifyVolume.")
	fs.Var(&notBool{target: &o.DisableMarkInProgress}, "mark-in-progress-before-call", "Write allocatedResources and ControllerResizeInProgress and emit a Resizing event before each ControllerExpandVolume, as upstream does. =false saves one PVC write and one event per resize, but after a leader change and a lowered request a PVC may record less than the volume's size.")
	fs.Var(&durationAlias{target: timeout, name: "csiTimeout", warn: &r.WarnCSITimeout}, "csiTimeout", "Deprecated (removed upstream in v1.0): use --timeout.")
	fs.StringVar(&le.Options.Identity, "leader-election-identity", "", "Holder identity written in the leader election Lease, unique per replica (default: the hostname with a random suffix). Used with --leader-election.")
}

// notBool is a boolean flag that stores its negation in target, so that a
// flag defaulting to true can fill a Disable* option. The default is true
// (target false).
type notBool struct{ target *bool }

func (b *notBool) IsBoolFlag() bool { return true }

func (b *notBool) String() string {
	if b.target == nil {
		return "false" // the zero Value, which flag compares with the default
	}
	return strconv.FormatBool(!*b.target)
}

func (b *notBool) Set(s string) error {
	v, err := strconv.ParseBool(s)
	if err != nil {
		return err
	}
	*b.target = !v
	return nil
}

// durationAlias is a deprecated spelling of --timeout.
type durationAlias struct {
	target *time.Duration
	name   string
	warn   *bool
}

func (d *durationAlias) String() string {
	if d.target == nil {
		return ""
	}
	return d.target.String()
}

func (d *durationAlias) Set(s string) error {
	v, err := time.ParseDuration(s)
	if err != nil {
		return err
	}
	if *d.warn {
		fmt.Fprintf(os.Stderr, "Warning: --%s is deprecated: use --timeout\n", d.name)
	}
	*d.target = v
	return nil
}

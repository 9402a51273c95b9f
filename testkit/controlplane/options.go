package controlplane

import (
	"errors"
	"fmt"
	"io"
	"time"
)

// Options configures a control plane. A zero field means "use the default".
type Options struct {
	// BinDir holds etcd, kube-apiserver, kube-controller-manager and
	// kube-scheduler. Default: $CSIKIT_CONTROLPLANE_DIR, else
	// $KUBEBUILDER_ASSETS if it holds every binary needed, else
	// [DefaultBinDir]. Missing binaries are built; see [EnsureBinaries].
	BinDir string

	// ControllerManager also starts kube-controller-manager running only the
	// persistent-volume binder, expander and protection controllers and the
	// claim protection controller, each with its own ServiceAccount identity.
	// Start waits for its /healthz, not for its informers to sync.
	ControllerManager bool

	// Scheduler also starts kube-scheduler. Start waits for its /healthz.
	Scheduler bool

	// RBAC runs kube-apiserver with --authorization-mode=Node,RBAC, so
	// clients from [ControlPlane.ConfigFor] see the permissions granted to
	// them. Default: AlwaysAllow, every authenticated user may do anything.
	RBAC bool

	// CRDDirs are directories of CustomResourceDefinition YAML files
	// installed, and waited for, before Start returns.
	CRDDirs []string

	// SnapshotCRDs installs the VolumeSnapshot and VolumeGroupSnapshot CRDs
	// shipped with the external-snapshotter client module; see
	// [SnapshotCRDDir].
	SnapshotCRDs bool

	// Progress receives human-readable progress lines. Default: none.
	Progress io.Writer

	// ExtraAPIServerArgs are appended to kube-apiserver's command line. A
	// repeated single-valued flag overrides the default; a repeated list flag
	// (such as --etcd-servers) adds to it.
	ExtraAPIServerArgs []string

	// StartTimeout bounds the wait for each process to become ready, not the
	// building of binaries. Default: 60s.
	StartTimeout time.Duration
}

const defaultStartTimeout = 60 * time.Second

func (o Options) withDefaults() Options {
	if o.Progress == nil {
		o.Progress = io.Discard
	}
	if o.StartTimeout == 0 {
		o.StartTimeout = defaultStartTimeout
	}
	return o
}

// Validate reports every invalid field at once.
func (o Options) Validate() error {
	var errs []error
	if o.StartTimeout < 0 {
		errs = append(errs, fmt.Errorf("StartTimeout %v: must not be negative", o.StartTimeout))
	}
	for i, d := range o.CRDDirs {
		if d == "" {
			errs = append(errs, fmt.Errorf("CRDDirs[%d]: empty path", i))
		}
	}
	return errors.Join(errs...)
}

// binaries lists the executables these options need.
func (o Options) binaries() []string {
	bins := []string{binEtcd, binAPIServer}
	if o.ControllerManager {
		bins = append(bins, binControllerManager)
	}
	if o.Scheduler {
		bins = append(bins, binScheduler)
	}
	return bins
}

func (o Options) progressf(format string, args ...any) {
	fmt.Fprintf(o.Progress, "controlplane: "+format+"\n", args...)
}

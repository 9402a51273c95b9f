// Command csi-resizer expands and modifies the PersistentVolumes of one CSI
// driver. It accepts the flags of the upstream external-resizer.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/csi-kit/sidecars/internal/cmdutil"
	"github.com/csi-kit/sidecars/internal/kube"
	"github.com/csi-kit/sidecars/leaderelection"
	"github.com/csi-kit/sidecars/resizer"
)

func main() {
	fs := flag.NewFlagSet("csi-resizer", flag.ExitOnError)
	var c cmdutil.Common
	cmdutil.Register(fs, &c, cmdutil.Defaults{Timeout: resizer.DefaultTimeout})
	var (
		opts     resizer.Options
		inUse    = true
		gates    = featureGates{}
		csiTimer = durationAlias{target: &c.Timeout, name: "csiTimeout"}
	)
	fs.IntVar(&opts.Workers, "workers", resizer.DefaultWorkers, "Number of PVCs handled in parallel.")
	fs.DurationVar(&opts.RetryIntervalStart, "retry-interval-start", resizer.DefaultRetryIntervalStart, "Initial retry interval of a failed resize or modify; doubles on each failure.")
	fs.DurationVar(&opts.RetryIntervalMax, "retry-interval-max", resizer.DefaultRetryIntervalMax, "Maximum retry interval; also how long an infeasible size or class waits before it is tried again unchanged.")
	fs.DurationVar(&opts.ResyncPeriod, "resync-period", resizer.DefaultResyncPeriod, "Resync period of the informers.")
	fs.BoolVar(&inUse, "handle-volume-inuse-error", true, "Track which pods use which PVCs, so that drivers that expand only OFFLINE are not called for a volume in use. Pods are cached only for such drivers.")
	fs.BoolVar(&opts.ExtraModifyMetadata, "extra-modify-metadata", false, "Add csi.storage.k8s.io/pvc/name, pvc/namespace and pv/name to the parameters of ControllerModifyVolume.")
	fs.BoolVar(&opts.MarkInProgressBeforeCall, "mark-in-progress-before-call", false, "Write ControllerResizeInProgress and emit a Resizing event before each ControllerExpandVolume, as upstream does (one more PVC write and event per resize).")
	fs.Var(gates, "feature-gates", "Comma-separated Gate=true|false: AnnotateFsResize, RecoverVolumeExpansionFailure, VolumeAttributesClass, ReleaseLeaderElectionOnExit.")
	fs.Var(&csiTimer, "csiTimeout", "Deprecated (removed upstream in v1.0): use --timeout.")
	cmdutil.DeprecatedString(fs, "leader-election-identity", "the identity is the hostname.")
	cmdutil.Parse(fs, os.Args[1:])

	opts.HandleVolumeInUseError = &inUse
	opts.Timeout = c.Timeout
	if v, ok := gates["AnnotateFsResize"]; ok && !v {
		opts.DisablePreResizeAnnotation = true
	}
	if v, ok := gates["VolumeAttributesClass"]; ok && !v {
		opts.DisableModify = true
	}
	if v, ok := gates["RecoverVolumeExpansionFailure"]; ok && !v {
		fmt.Fprintln(os.Stderr, "Warning: RecoverVolumeExpansionFailure is GA and always on; --feature-gates=RecoverVolumeExpansionFailure=false is ignored")
	}

	os.Exit(cmdutil.Main(cmdutil.Program{
		Name:          "csi-resizer",
		LockComponent: leaderelection.ComponentResizer,
		Common:        &c,
		Run: func(ctx context.Context, env *cmdutil.Env) error {
			drv, err := resizer.NewCSIDriver(ctx, env.Conn)
			if err != nil {
				return err
			}
			rec, stop, err := kube.NewRecorder(env.Config, "external-resizer "+drv.Name())
			if err != nil {
				return err
			}
			defer stop()
			o := opts
			o.Recorder = rec
			r, err := resizer.New(o, env.Kube, drv)
			if err != nil {
				return err
			}
			return r.Run(ctx)
		},
	}))
}

// featureGates parses --feature-gates=A=true,B=false. Unknown gates are an
// error, as upstream's are.
type featureGates map[string]bool

var knownGates = map[string]bool{
	"AnnotateFsResize": true, "RecoverVolumeExpansionFailure": true,
	"VolumeAttributesClass": true, "ReleaseLeaderElectionOnExit": true,
}

func (g featureGates) String() string {
	var parts []string
	for k, v := range g {
		parts = append(parts, k+"="+strconv.FormatBool(v))
	}
	return strings.Join(parts, ",")
}

func (g featureGates) Set(s string) error {
	for _, kv := range strings.Split(s, ",") {
		kv = strings.TrimSpace(kv)
		if kv == "" {
			continue
		}
		k, v, ok := strings.Cut(kv, "=")
		if !ok {
			return fmt.Errorf("%q: want Gate=true|false", kv)
		}
		if !knownGates[k] {
			return fmt.Errorf("unknown feature gate %q", k)
		}
		b, err := strconv.ParseBool(v)
		if err != nil {
			return fmt.Errorf("%q: %w", kv, err)
		}
		g[k] = b
	}
	return nil
}

// durationAlias is a deprecated spelling of a duration flag.
type durationAlias struct {
	target *time.Duration
	name   string
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
	fmt.Fprintf(os.Stderr, "Warning: --%s is deprecated: use --timeout\n", d.name)
	*d.target = v
	return nil
}

package main

import (
	"context"
	"errors"
	"fmt"

	"github.com/container-storage-interface/spec/lib/go/csi"
	snapclient "github.com/kubernetes-csi/external-snapshotter/client/v8/clientset/versioned"
	"golang.org/x/sync/errgroup"
	"k8s.io/client-go/dynamic"
	"k8s.io/klog/v2"

	"github.com/csi-kit/sidecars/csiconn"
	"github.com/csi-kit/sidecars/internal/cmdutil"
	"github.com/csi-kit/sidecars/internal/compflags"
	"github.com/csi-kit/sidecars/internal/kube"
	"github.com/csi-kit/sidecars/provisioner"
	"github.com/csi-kit/sidecars/resizer"
	"github.com/csi-kit/sidecars/sharedcache"
	"github.com/csi-kit/sidecars/snapshotter"
)

// plan says which controllers run.
type plan struct {
	Provisioner, Resizer, Snapshotter, Controller bool
}

func (p plan) String() string {
	return fmt.Sprintf("provisioner=%t resizer=%t snapshotter=%t snapshot-controller=%t",
		p.Provisioner, p.Resizer, p.Snapshotter, p.Controller)
}

// decidePlan turns the --enable-* flags and the driver's capabilities into
// the controllers to run: a controller runs when enabled and the driver can
// do its work. skipped names each enabled controller left out, and why.
func decidePlan(f *flags, caps csiconn.Capabilities, res resizer.DriverCapabilities) (p plan, skipped []string) {
	has := func(t csi.ControllerServiceCapability_RPC_Type) bool {
		return caps.ControllerService && caps.HasController(t)
	}
	p.Provisioner = f.enableProvisioner && has(csi.ControllerServiceCapability_RPC_CREATE_DELETE_VOLUME)
	if f.enableProvisioner && !p.Provisioner {
		skipped = append(skipped, "provisioner: the driver lacks CREATE_DELETE_VOLUME")
	}
	p.Resizer = f.enableResizer && (res.ControllerExpand || res.Modify || res.NodeExpand)
	if f.enableResizer && !p.Resizer {
		skipped = append(skipped, "resizer: the driver has neither EXPAND_VOLUME, MODIFY_VOLUME nor node EXPAND_VOLUME")
	}
	p.Snapshotter = f.enableSnapshotter && has(csi.ControllerServiceCapability_RPC_CREATE_DELETE_SNAPSHOT)
	if f.enableSnapshotter && !p.Snapshotter {
		skipped = append(skipped, "snapshotter: the driver lacks CREATE_DELETE_SNAPSHOT")
	}
	p.Controller = f.enableController
	return p, skipped
}

// capacityOptions builds the provisioner's capacity options of
// --enable-capacity, with the client of --kube-api-capacity-qps/-burst.
func (f *flags) capacityOptions(ctx context.Context, env *cmdutil.Env) (*provisioner.CapacityOptions, error) {
	return compflags.CapacityOptions(ctx, env.Kube, env.Config, f.prov.Capacity, component)
}

// run builds the enabled controllers on env's one client and connection and
// runs them until ctx ends or one fails; the first error stops the others
// and is returned.
func run(ctx context.Context, env *cmdutil.Env, f *flags) error {
	logger := klog.FromContext(ctx)
	conn := env.Conn
	resDrv, err := resizer.NewCSIDriver(ctx, conn)
	if err != nil {
		return err
	}
	p, skipped := decidePlan(f, conn.Capabilities(), resDrv.Capabilities())
	for _, s := range skipped {
		logger.Info("Controller not started", "reason", s)
	}
	if p == (plan{}) {
		return errors.New("no controller to run: the driver offers nothing the enabled controllers handle")
	}
	logger.Info("Starting controllers", "driver", conn.DriverName(), "plan", p.String())

	snap, err := snapclient.NewForConfig(env.Config)
	if err != nil {
		return err
	}
	// One events client for every controller, with its own budget.
	events, err := kube.NewEventClient(env.Config, "csi-sidecars")
	if err != nil {
		return err
	}
	// One informer cache for every controller: one watch and one cached
	// copy per resource.
	shared := sharedcache.New(env.Kube, snap)
	defer shared.Shutdown()
	var runners []namedRunner
	if p.Provisioner {
		rec, stop, err := kube.RecorderFor(events, "external-provisioner")
		if err != nil {
			return err
		}
		defer stop()
		o := f.prov.Finish(f.common.LeaderElection.Options.Namespace)
		o.Registerer, o.Cache, o.SnapshotClient, o.Recorder = cmdutil.LegacyRegisterer{}, shared, snap, rec
		if f.prov.Capacity.Enable {
			if o.Capacity, err = f.capacityOptions(ctx, env); err != nil {
				return err
			}
		}
		if o.CrossNamespaceDataSources {
			if o.DynamicClient, err = dynamic.NewForConfig(env.Config); err != nil {
				return err
			}
		}
		pr, err := provisioner.New(o, env.Kube, conn)
		if err != nil {
			return err
		}
		runners = append(runners, namedRunner{"provisioner", pr.Run})
	}
	if p.Resizer {
		rec, stop, err := kube.RecorderFor(events, "external-resizer "+conn.DriverName())
		if err != nil {
			return err
		}
		defer stop()
		o := f.res.Options
		o.Recorder, o.Cache = rec, shared
		r, err := resizer.New(o, env.Kube, resDrv)
		if err != nil {
			return err
		}
		runners = append(runners, namedRunner{"resizer", r.Run})
	}
	if p.Snapshotter {
		drv, err := snapshotter.NewCSIDriver(conn)
		if err != nil {
			return err
		}
		rec, stop, err := kube.RecorderFor(events, snapshotter.SidecarComponent+" "+conn.DriverName())
		if err != nil {
			return err
		}
		defer stop()
		o := f.side
		o.DriverName, o.Recorder, o.Cache, o.SnapshotClient = conn.DriverName(), rec, shared, snap
		s, err := snapshotter.NewSidecar(o, env.Kube, drv)
		if err != nil {
			return err
		}
		runners = append(runners, namedRunner{"snapshotter", s.Run})
	}
	if p.Controller {
		rec, stop, err := kube.RecorderFor(events, snapshotter.ControllerComponent)
		if err != nil {
			return err
		}
		defer stop()
		o := f.ctl
		o.Recorder, o.Registerer, o.Cache, o.SnapshotClient = rec, cmdutil.LegacyRegisterer{}, shared, snap
		c, err := snapshotter.NewController(o, env.Kube)
		if err != nil {
			return err
		}
		runners = append(runners, namedRunner{"snapshot-controller", c.Run})
	}
	// The connection's loss stops every controller, also those that do
	// not watch it themselves.
	runners = append(runners, namedRunner{"csi-connection", conn.WatchLoss})
	return runAll(ctx, runners)
}

type namedRunner struct {
	name string
	run  func(context.Context) error
}

// runAll runs every runner in an errgroup: the first to fail (or to stop
// while ctx is still live) cancels the others, and its error is returned.
func runAll(ctx context.Context, runners []namedRunner) error {
	g, gctx := errgroup.WithContext(ctx)
	for _, r := range runners {
		g.Go(func() error {
			err := r.run(gctx)
			if err == nil && gctx.Err() == nil {
				err = errors.New("stopped unexpectedly")
			}
			if err != nil && gctx.Err() == nil {
				return fmt.Errorf("%s: %w", r.name, err)
			}
			return err
		})
	}
	return g.Wait()
}

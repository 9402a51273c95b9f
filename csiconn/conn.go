package csiconn

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/container-storage-interface/spec/lib/go/csi"
	"github.com/kubernetes-csi/csi-lib-utils/connection"
	"github.com/kubernetes-csi/csi-lib-utils/metrics"
	"github.com/kubernetes-csi/csi-lib-utils/rpc"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/connectivity"
	"google.golang.org/grpc/status"
	csitrans "k8s.io/csi-translation-lib"
	"k8s.io/klog/v2"
)

// Options configures Connect. A zero field means "use the default".
type Options struct {
	// Address of the driver: "/path", "unix:///path" or another gRPC target.
	Address string
	// CallTimeout bounds each CSI call made through Conn.CallContext,
	// including the probe and capability calls at start; default 10s.
	CallTimeout time.Duration
	// ConnectTimeout bounds the wait for the socket to accept; default 30s.
	ConnectTimeout time.Duration
	// ReadyTimeout bounds the wait for Probe to report ready; zero (the
	// default) waits until ctx ends, as the upstream sidecars do, so a
	// driver that takes long to start does not restart its sidecars. The
	// driver is probed once per second meanwhile.
	ReadyTimeout time.Duration
	// ReadyLogInterval is how often the wait for readiness is logged, with
	// what the last probe answered; default 30s.
	ReadyLogInterval time.Duration
	// DriverName, when set, must equal the name the driver reports.
	DriverName string
	// Metrics records every call; default: a new sidecar metrics manager
	// (csi_sidecar_operations_seconds). Use Conn.Metrics to serve it.
	Metrics metrics.CSIMetricsManager
	// Reconnect keeps re-dialing after a loss instead of failing every later
	// call with Unavailable. Conn.Lost is closed either way.
	Reconnect bool
}

// Defaults for Options.
const (
	DefaultCallTimeout      = 10 * time.Second
	DefaultConnectTimeout   = 30 * time.Second
	DefaultReadyLogInterval = 30 * time.Second
)

// probeInterval is the pause between two probes of a driver not yet ready.
const probeInterval = time.Second

func (o Options) withDefaults() Options {
	if o.CallTimeout == 0 {
		o.CallTimeout = DefaultCallTimeout
	}
	if o.ConnectTimeout == 0 {
		o.ConnectTimeout = DefaultConnectTimeout
	}
	if o.ReadyLogInterval == 0 {
		o.ReadyLogInterval = DefaultReadyLogInterval
	}
	if o.Metrics == nil {
		o.Metrics = metrics.NewCSIMetricsManagerForSidecar("")
	}
	return o
}

// Validate reports every invalid field at once.
func (o Options) Validate() error {
	var errs []error
	if strings.TrimSpace(o.Address) == "" {
		errs = append(errs, errors.New("Address is empty: set it to the driver's socket, e.g. /csi/csi.sock"))
	}
	if o.CallTimeout < 0 {
		errs = append(errs, fmt.Errorf("CallTimeout %v must not be negative", o.CallTimeout))
	}
	if o.ConnectTimeout < 0 {
		errs = append(errs, fmt.Errorf("ConnectTimeout %v must not be negative", o.ConnectTimeout))
	}
	if o.ReadyTimeout < 0 {
		errs = append(errs, fmt.Errorf("ReadyTimeout %v must not be negative", o.ReadyTimeout))
	}
	if o.ReadyLogInterval < 0 {
		errs = append(errs, fmt.Errorf("ReadyLogInterval %v must not be negative", o.ReadyLogInterval))
	}
	return errors.Join(errs...)
}

// Conn is a ready connection to one CSI driver.
type Conn struct {
	opts    Options
	grpc    *grpc.ClientConn
	name    string
	caps    Capabilities
	lost    chan struct{}
	lostMu  sync.Once
	closeMu sync.Once
	stop    context.CancelFunc
	stopped chan struct{}
}

// Connect dials the driver, waits until it accepts, probes it until ready,
// and reads its name and capabilities. Each wait is bounded by its timeout and
// by ctx; the error says which step failed and what to check.
func Connect(ctx context.Context, opts Options) (*Conn, error) {
	opts = opts.withDefaults()
	if err := opts.Validate(); err != nil {
		return nil, fmt.Errorf("csi connection: %w", err)
	}
	logger := klog.FromContext(ctx).WithValues("address", opts.Address)
	ctx = klog.NewContext(ctx, logger)
	c := &Conn{opts: opts, lost: make(chan struct{})}

	logger.V(2).Info("Connecting to CSI driver")
	start := time.Now()
	gc, err := connection.Connect(ctx, opts.Address, opts.Metrics,
		connection.WithTimeout(opts.ConnectTimeout),
		connection.OnConnectionLoss(c.onLoss))
	if err != nil {
		if ctx.Err() != nil {
			return nil, fmt.Errorf("connecting to CSI driver at %s: %w", opts.Address, ctx.Err())
		}
		return nil, fmt.Errorf("CSI driver at %s did not accept a connection within %v (%v): check that the driver is running and that the address points to its socket", opts.Address, opts.ConnectTimeout, err)
	}
	c.grpc = gc
	c.startLossDetection(ctx)

	if err := c.waitReady(ctx); err != nil {
		c.Close()
		return nil, err
	}
	if err := c.readIdentity(ctx); err != nil {
		c.Close()
		return nil, err
	}
	opts.Metrics.SetDriverName(c.name)
	logger.Info("Connected to CSI driver", "driver", c.name, "after", time.Since(start).Round(time.Millisecond), "capabilities", c.caps.String())
	return c, nil
}

// startLossDetection makes gRPC re-dial as soon as an established
// connection drops. gRPC otherwise leaves a dropped connection idle until
// the next call, so a driver that dies while nothing is calling it would go
// unnoticed; the re-dial runs the dialer, which reports the loss.
func (c *Conn) startLossDetection(ctx context.Context) {
	watchCtx, stop := context.WithCancel(context.WithoutCancel(ctx))
	c.stop, c.stopped = stop, make(chan struct{})
	go func() {
		defer close(c.stopped)
		for {
			state := c.grpc.GetState()
			switch state {
			case connectivity.Shutdown:
				return
			case connectivity.Idle:
				c.grpc.Connect()
			}
			if !c.grpc.WaitForStateChange(watchCtx, state) {
				return
			}
		}
	}()
}

func (c *Conn) onLoss(ctx context.Context) bool {
	c.lostMu.Do(func() {
		klog.FromContext(ctx).Error(nil, "Lost connection to CSI driver", "address", c.opts.Address)
		close(c.lost)
	})
	return c.opts.Reconnect
}

// waitReady probes the driver once per second until it reports ready, ctx
// ends or ReadyTimeout (when set) passes. Our own loop rather than
// csi-lib-utils' rpc.ProbeForever: that one logs every attempt (3,600 lines
// an hour for a driver that waits for its backend); this one logs once per
// ReadyLogInterval what it waits for. As there, an answer other than ready,
// not ready or a probe timeout ends the wait with an error.
func (c *Conn) waitReady(ctx context.Context) error {
	if c.opts.ReadyTimeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, c.opts.ReadyTimeout)
		defer cancel()
	}
	logger := klog.FromContext(ctx)
	tick := time.NewTicker(probeInterval)
	defer tick.Stop()
	start := time.Now()
	nextLog := start.Add(c.opts.ReadyLogInterval)
	probes := 0
	for {
		probes++
		callCtx, cancel := c.CallContext(ctx)
		ready, err := rpc.Probe(callCtx, c.grpc)
		cancel()
		var last string
		switch {
		case err == nil && ready:
			if probes > 1 {
				logger.Info("CSI driver is ready", "waited", time.Since(start).Round(time.Second), "probes", probes)
			}
			return nil
		case ctx.Err() != nil:
			if c.opts.ReadyTimeout > 0 && errors.Is(ctx.Err(), context.DeadlineExceeded) {
				return fmt.Errorf("CSI driver at %s did not report ready within %v: check the driver's own logs for why its Probe fails", c.opts.Address, c.opts.ReadyTimeout)
			}
			return fmt.Errorf("waiting for CSI driver at %s to report ready: %w", c.opts.Address, ctx.Err())
		case err == nil:
			last = "Probe answered ready=false"
		case status.Code(err) == codes.DeadlineExceeded:
			last = fmt.Sprintf("Probe did not answer within %v", c.opts.CallTimeout)
		default:
			return fmt.Errorf("probing CSI driver at %s: %w: check the driver's own logs", c.opts.Address, err)
		}
		if now := time.Now(); !now.Before(nextLog) {
			logger.Info("Waiting for the CSI driver to report ready", "waited", now.Sub(start).Round(time.Second), "probes", probes, "last", last)
			nextLog = now.Add(c.opts.ReadyLogInterval)
		}
		select {
		case <-ctx.Done():
		case <-tick.C:
		}
	}
}

func (c *Conn) readIdentity(ctx context.Context) error {
	callCtx, cancel := c.CallContext(ctx)
	defer cancel()
	name, err := rpc.GetDriverName(callCtx, c.grpc)
	if err != nil {
		return fmt.Errorf("reading the name of the CSI driver at %s: %w", c.opts.Address, err)
	}
	if c.opts.DriverName != "" && c.opts.DriverName != name {
		return fmt.Errorf("CSI driver at %s is %q, not the expected %q: point the address at the right driver's socket or fix the expected driver name", c.opts.Address, name, c.opts.DriverName)
	}
	c.name = name
	caps, err := readCapabilities(ctx, c)
	if err != nil {
		return fmt.Errorf("reading capabilities of CSI driver %q: %w", name, err)
	}
	c.caps = caps
	return nil
}

// CallContext derives a context bounded by the per-call timeout.
func (c *Conn) CallContext(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(ctx, c.opts.CallTimeout)
}

// CallTimeout is the per-call timeout in force.
func (c *Conn) CallTimeout() time.Duration { return c.opts.CallTimeout }

// DriverName is the name reported by GetPluginInfo.
func (c *Conn) DriverName() string { return c.name }

// Capabilities are those read at Connect.
func (c *Conn) Capabilities() Capabilities { return c.caps }

// Lost is closed when an established connection drops.
func (c *Conn) Lost() <-chan struct{} { return c.lost }

// GRPC is the underlying client connection, for calls this package does not wrap.
func (c *Conn) GRPC() *grpc.ClientConn { return c.grpc }

// Identity, Controller, Node and GroupController are typed clients on the connection.
func (c *Conn) Identity() csi.IdentityClient     { return csi.NewIdentityClient(c.grpc) }
func (c *Conn) Controller() csi.ControllerClient { return csi.NewControllerClient(c.grpc) }
func (c *Conn) Node() csi.NodeClient             { return csi.NewNodeClient(c.grpc) }
func (c *Conn) GroupController() csi.GroupControllerClient {
	return csi.NewGroupControllerClient(c.grpc)
}

// Metrics is the manager recording this connection's calls.
func (c *Conn) Metrics() metrics.CSIMetricsManager { return c.opts.Metrics }

// Close closes the connection; safe to call more than once.
func (c *Conn) Close() error {
	var err error
	c.closeMu.Do(func() {
		if c.stop != nil {
			c.stop()
			<-c.stopped
		}
		if c.grpc != nil {
			err = c.grpc.Close()
		}
	})
	return err
}

// WatchLoss returns an error wrapping ErrConnectionLost once the connection
// is lost, or nil when ctx ends first. Controllers run it beside their
// workers and return its error from Run.
func (c *Conn) WatchLoss(ctx context.Context) error {
	select {
	case <-ctx.Done():
		return nil
	case <-c.lost:
		return fmt.Errorf("%w at %s: restart to re-read the driver's capabilities", ErrConnectionLost, c.opts.Address)
	}
}

// NewMetricsManager returns the metrics manager the sidecars use: the
// histogram csi_sidecar_operations_seconds, driver name set at Connect.
func NewMetricsManager() metrics.CSIMetricsManager {
	return metrics.NewCSIMetricsManagerForSidecar("")
}

// NewMigrationMetricsManager is NewMetricsManager with the label migrated:
// "true" on calls whose context carries connection.AdditionalInfo with
// Migrated "true" (operations on migrated in-tree volumes), else "false".
func NewMigrationMetricsManager() metrics.CSIMetricsManager {
	return metrics.NewCSIMetricsManagerWithOptions("", metrics.WithProcessStartTime(false), metrics.WithMigration())
}

// IsMigratedDriver reports whether driver is the CSI driver of an in-tree
// plugin that the translation library migrates.
func IsMigratedDriver(driver string) bool {
	return csitrans.New().IsMigratedCSIDriverByName(driver)
}

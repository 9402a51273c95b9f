package fakedriver

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/container-storage-interface/spec/lib/go/csi"
	"google.golang.org/grpc"
)

// Driver is a fake CSI driver: Identity, Controller, Node and
// GroupController services over a unix socket, backed by memory. All
// methods are safe for concurrent use.
type Driver struct {
	opts   Options
	ownDir bool             // the socket directory is ours to create and remove
	pools  map[string]int64 // configured pool sizes by segmentKey; read-only

	mu sync.Mutex // guards be
	be *backend

	faults  *faults    // has its own lock; never held together with mu
	pending pendingOps // create operations in progress, by name

	saveMu sync.Mutex // serialises state file writes; taken before mu
	saved  []byte     // the state file's content as last written or read
	loaded bool       // the state file was read; guarded by life

	life   sync.Mutex    // guards the fields below: one serving session
	srv    *grpc.Server  // nil when stopped
	stop   chan struct{} // closed by Stop: abandons hung and delayed calls
	served chan struct{} // closed when the session's Serve returns
}

// New checks opts and returns a stopped driver with an empty backend.
// Nothing is created on disk until Serve.
func New(opts Options) (*Driver, error) {
	ownDir := opts.Endpoint == "" // before withDefaults picks one
	opts, err := opts.withDefaults()
	if err != nil {
		return nil, fmt.Errorf("fakedriver: %w", err)
	}
	if opts.Endpoint, err = filepath.Abs(opts.Endpoint); err != nil {
		return nil, fmt.Errorf("fakedriver: %w", err)
	}
	if err := opts.Validate(); err != nil {
		return nil, fmt.Errorf("fakedriver: %w", err)
	}
	return &Driver{
		opts:   opts,
		ownDir: ownDir,
		pools:  configuredPools(opts),
		be:     newBackend(),
		faults: newFaults(opts.RequestHistory),
	}, nil
}

// Start returns a serving driver for a test and stops it in t.Cleanup. It
// fails the test when the driver cannot start, so call it from the test's
// goroutine.
func Start(t testing.TB, opts Options) *Driver {
	t.Helper()
	d, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	if err := d.Serve(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(d.Stop)
	return d
}

// Serve binds the socket and serves in the background. Unlike
// net/http's Serve it does not block: it returns once clients can
// connect. Serving twice without Stop is an error.
func (d *Driver) Serve() error {
	d.life.Lock()
	defer d.life.Unlock()
	return d.serveLocked()
}

// Stop stops serving: it abandons calls that are hanging or sleeping
// (they return Unavailable and leave the backend alone), waits for every
// handler to return, closes all connections and removes the socket (and
// its directory when the driver chose it). The backend and the fault
// settings survive, so Restart resumes where Stop left off. Stopping a
// stopped driver does nothing.
func (d *Driver) Stop() {
	d.life.Lock()
	defer d.life.Unlock()
	d.stopLocked()
}

// Restart stops the driver if it is serving, as a crash would, then serves
// again on the same socket with the same backend. Clients see their
// connection drop and must reconnect.
func (d *Driver) Restart() error {
	d.life.Lock()
	defer d.life.Unlock()
	d.stopLocked()
	return d.serveLocked()
}

// Run serves until ctx ends, then stops. It is meant for demos and
// benchmarks; tests use Start.
func (d *Driver) Run(ctx context.Context) error {
	if err := d.Serve(); err != nil {
		return err
	}
	<-ctx.Done()
	d.Stop()
	return nil
}

// Endpoint is the address to dial, "unix:///path/to/csi.sock".
func (d *Driver) Endpoint() string { return "unix://" + d.opts.Endpoint }

// SocketPath is the path of the unix socket.
func (d *Driver) SocketPath() string { return d.opts.Endpoint }

// Name is the driver name GetPluginInfo reports.
func (d *Driver) Name() string { return d.opts.Name }

// NodeID is the node ID NodeGetInfo reports.
func (d *Driver) NodeID() string { return d.opts.NodeID }

func (d *Driver) serveLocked() error {
	if d.srv != nil {
		return errors.New("fakedriver: already serving")
	}
	if err := d.loadState(); err != nil {
		return fmt.Errorf("fakedriver: state: %w", err)
	}
	path := d.opts.Endpoint
	if d.ownDir {
		if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
			return fmt.Errorf("fakedriver: %w", err)
		}
	}
	// A socket left behind by a killed process blocks Listen; other files
	// are not ours to remove.
	if fi, err := os.Lstat(path); err == nil && fi.Mode()&os.ModeSocket != 0 {
		_ = os.Remove(path)
	}
	lis, err := net.Listen("unix", path)
	if err != nil {
		return fmt.Errorf("fakedriver: %w", err)
	}
	stop := make(chan struct{})
	srv := grpc.NewServer(
		grpc.UnaryInterceptor(d.intercept(stop)),
		grpc.WaitForHandlers(true),
	)
	csi.RegisterIdentityServer(srv, identity{d: d})
	csi.RegisterNodeServer(srv, node{d: d})
	if d.opts.Capabilities.Controller {
		csi.RegisterControllerServer(srv, controller{d: d})
	}
	if d.opts.Capabilities.GroupController {
		csi.RegisterGroupControllerServer(srv, groupController{d: d})
	}
	d.mu.Lock()
	d.be.probes = 0 // a (re)started driver warms up again
	d.mu.Unlock()
	served := make(chan struct{})
	go func() {
		defer close(served)
		_ = srv.Serve(lis) // returns when Stop closes the listener
	}()
	d.srv, d.stop, d.served = srv, stop, served
	return nil
}

func (d *Driver) stopLocked() {
	if d.srv == nil {
		return
	}
	close(d.stop)
	d.srv.Stop() // waits for handlers: grpc.WaitForHandlers
	<-d.served
	d.srv, d.stop, d.served = nil, nil, nil
	_ = os.Remove(d.opts.Endpoint)
	if d.ownDir {
		_ = os.Remove(filepath.Dir(d.opts.Endpoint))
	}
}

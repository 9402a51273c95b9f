package fakedriver

import (
	"context"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/container-storage-interface/spec/lib/go/csi"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
)

// knownMethods holds the short names of every CSI method the driver can
// serve, e.g. "CreateVolume".
var knownMethods = func() map[string]bool {
	m := map[string]bool{}
	for _, sd := range []grpc.ServiceDesc{csi.Identity_ServiceDesc, csi.Controller_ServiceDesc, csi.Node_ServiceDesc, csi.GroupController_ServiceDesc} {
		for _, md := range sd.Methods {
			m[md.MethodName] = true
		}
	}
	return m
}()

// failure is a run of injected errors left to return.
type failure struct {
	code codes.Code
	left int
}

// faults holds the injected behaviour and the call records, per method
// short name.
type faults struct {
	mu       sync.Mutex
	history  int
	calls    map[string]int
	inFlight map[string]int
	peak     map[string]int // highest inFlight since start or ResetCalls
	requests map[string][]proto.Message
	failNext map[string][]failure
	errs     map[string]codes.Code
	latency  map[string]time.Duration
	hangs    map[string]chan struct{}
}

func newFaults(history int) *faults {
	return &faults{
		history:  history,
		calls:    map[string]int{},
		inFlight: map[string]int{},
		peak:     map[string]int{},
		requests: map[string][]proto.Message{},
		failNext: map[string][]failure{},
		errs:     map[string]codes.Code{},
		latency:  map[string]time.Duration{},
		hangs:    map[string]chan struct{}{},
	}
}

// FailNext makes the next n calls of method fail with code, after any
// failures queued before. codes.OK queues calls that run normally, so
// FailNext(m, codes.OK, 1) then FailNext(m, codes.Aborted, 1) fails the
// second call only. method is a short name such as
// "ControllerExpandVolume"; an unknown name panics.
func (d *Driver) FailNext(method string, code codes.Code, n int) {
	mustKnow(method)
	if n <= 0 {
		return
	}
	f := d.faults
	f.mu.Lock()
	defer f.mu.Unlock()
	f.failNext[method] = append(f.failNext[method], failure{code: code, left: n})
}

// SetError makes every call of method fail with code until ClearErrors.
// Queued FailNext errors come first.
func (d *Driver) SetError(method string, code codes.Code) {
	mustKnow(method)
	f := d.faults
	f.mu.Lock()
	defer f.mu.Unlock()
	f.errs[method] = code
}

// ClearErrors drops every error set by FailNext and SetError.
func (d *Driver) ClearErrors() {
	f := d.faults
	f.mu.Lock()
	defer f.mu.Unlock()
	clear(f.failNext)
	clear(f.errs)
}

// SetLatency delays every call of method by dur before it takes effect;
// 0 removes the delay. The delay ignores the client: a call whose client
// gave up still completes on the server afterwards, as a slow real driver
// does. Stop abandons delayed calls.
func (d *Driver) SetLatency(method string, dur time.Duration) {
	mustKnow(method)
	f := d.faults
	f.mu.Lock()
	defer f.mu.Unlock()
	if dur <= 0 {
		delete(f.latency, method)
		return
	}
	f.latency[method] = dur
}

// Hang blocks every later call of method, whatever its client does,
// until Unhang(method), when the blocked calls go on and take effect, or
// Stop, which abandons them without touching the backend.
func (d *Driver) Hang(method string) {
	mustKnow(method)
	f := d.faults
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.hangs[method] == nil {
		f.hangs[method] = make(chan struct{})
	}
}

// Unhang releases the calls of method blocked by Hang.
func (d *Driver) Unhang(method string) {
	mustKnow(method)
	f := d.faults
	f.mu.Lock()
	defer f.mu.Unlock()
	if ch := f.hangs[method]; ch != nil {
		close(ch)
		delete(f.hangs, method)
	}
}

// Calls counts the calls of method received since the start or the last
// ResetCalls, failed and abandoned ones included.
func (d *Driver) Calls(method string) int {
	mustKnow(method)
	f := d.faults
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.calls[method]
}

// InFlight counts the calls of method the server is handling now,
// hanging and delayed ones included.
func (d *Driver) InFlight(method string) int {
	mustKnow(method)
	f := d.faults
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.inFlight[method]
}

// PeakInFlight is the highest number of calls of method the server was
// handling at once since the start or the last ResetCalls (hanging and
// delayed ones included): with a slow method it shows how many calls a
// client runs in parallel, without timing anything.
func (d *Driver) PeakInFlight(method string) int {
	mustKnow(method)
	f := d.faults
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.peak[method]
}

// ResetCalls zeroes the call counters and forgets recorded requests; the
// peaks of PeakInFlight start again from the calls in flight now.
func (d *Driver) ResetCalls() {
	f := d.faults
	f.mu.Lock()
	defer f.mu.Unlock()
	clear(f.calls)
	clear(f.requests)
	clear(f.peak)
	for m, n := range f.inFlight {
		if n > 0 {
			f.peak[m] = n
		}
	}
}

// Requests returns copies of the last requests of method, oldest first,
// at most Options.RequestHistory of them. Assert on them with type
// assertions, e.g. r.(*csi.CreateVolumeRequest).GetSecrets().
func (d *Driver) Requests(method string) []proto.Message {
	mustKnow(method)
	f := d.faults
	f.mu.Lock()
	defer f.mu.Unlock()
	out := make([]proto.Message, len(f.requests[method]))
	for i, r := range f.requests[method] {
		out[i] = proto.Clone(r)
	}
	return out
}

// enter records a call and returns what it must wait for.
func (f *faults) enter(method string, req any) (hang <-chan struct{}, delay time.Duration) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls[method]++
	f.inFlight[method]++
	f.peak[method] = max(f.peak[method], f.inFlight[method])
	if m, ok := req.(proto.Message); ok && f.history > 0 {
		rs := append(f.requests[method], proto.Clone(m))
		if len(rs) > f.history {
			rs = slices.Delete(rs, 0, len(rs)-f.history)
		}
		f.requests[method] = rs
	}
	return f.hangs[method], f.latency[method]
}

func (f *faults) leave(method string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.inFlight[method]--
}

// injected pops the error a call of method must fail with, if any.
func (f *faults) injected(method string) (codes.Code, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if q := f.failNext[method]; len(q) > 0 {
		code := q[0].code
		if q[0].left--; q[0].left == 0 {
			q = q[1:]
		}
		if len(q) == 0 {
			delete(f.failNext, method)
		} else {
			f.failNext[method] = q
		}
		return code, true
	}
	code, ok := f.errs[method]
	return code, ok
}

// intercept wraps every call of one serving session: it counts and records
// the call, applies hang, latency, injected errors and required secrets,
// then runs the handler detached from the client's cancellation. stop is
// the session's stop channel.
func (d *Driver) intercept(stop <-chan struct{}) grpc.UnaryServerInterceptor {
	return func(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (_ any, err error) {
		method := info.FullMethod[strings.LastIndex(info.FullMethod, "/")+1:]
		// As the CSI spec asks of real drivers, a second call for an object
		// whose operation is still running answers ABORTED instead of
		// racing it.
		if release, busy := d.pending.claim(method, req); busy {
			return nil, status.Errorf(codes.Aborted, "fakedriver: an operation on %s is still in progress", pendingKey(method, req))
		} else {
			defer release()
		}
		hang, delay := d.faults.enter(method, req)
		defer d.faults.leave(method)
		if observe := d.opts.Observe; observe != nil {
			began := time.Now()
			defer func() { observe(method, err, time.Since(began)) }()
		}
		if hang != nil {
			select {
			case <-hang:
			case <-stop:
				return nil, status.Errorf(codes.Unavailable, "fakedriver: stopped while %s hung", method)
			}
		}
		if delay > 0 {
			t := time.NewTimer(delay)
			select {
			case <-t.C:
			case <-stop:
				t.Stop()
				return nil, status.Errorf(codes.Unavailable, "fakedriver: stopped while %s was delayed", method)
			}
		}
		if code, ok := d.faults.injected(method); ok && code != codes.OK {
			return nil, status.Errorf(code, "fakedriver: injected %v for %s", code, method)
		}
		if want := d.opts.RequireSecrets[method]; want != nil {
			s, _ := req.(interface{ GetSecrets() map[string]string })
			if s == nil {
				return nil, status.Errorf(codes.InvalidArgument, "%s carries no secrets", method)
			}
			if err := checkSecrets(method, want, s.GetSecrets()); err != nil {
				return nil, err
			}
		}
		resp, err := handler(context.WithoutCancel(ctx), req)
		if !readOnlyMethods[method] {
			if serr := d.saveState(); serr != nil && err == nil {
				return nil, status.Errorf(codes.Internal, "fakedriver: %s took effect but saving the state failed: %v", method, serr)
			}
		}
		return resp, err
	}
}

// pendingOps tracks the named create operations in progress.
type pendingOps struct {
	mu  sync.Mutex
	ops map[string]bool
}

// pendingKey names the object a create request is about, or "".
func pendingKey(method string, req any) string {
	switch method {
	case "CreateVolume", "CreateSnapshot", "CreateVolumeGroupSnapshot":
		if n, ok := req.(interface{ GetName() string }); ok && n.GetName() != "" {
			return method + "/" + n.GetName()
		}
	}
	return ""
}

// claim marks the request's object busy; busy is true if it already was.
func (p *pendingOps) claim(method string, req any) (release func(), busy bool) {
	key := pendingKey(method, req)
	if key == "" {
		return func() {}, false
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.ops == nil {
		p.ops = map[string]bool{}
	}
	if p.ops[key] {
		return nil, true
	}
	p.ops[key] = true
	return func() {
		p.mu.Lock()
		delete(p.ops, key)
		p.mu.Unlock()
	}, false
}

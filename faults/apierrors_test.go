package faults

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	snapclient "github.com/kubernetes-csi/external-snapshotter/client/v8/clientset/versioned"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/csi-kit/sidecars/csiconn"
	"github.com/csi-kit/sidecars/internal/kube"
	"github.com/csi-kit/sidecars/provisioner"
	"github.com/csi-kit/sidecars/resizer"
	"github.com/csi-kit/sidecars/sharedcache"
	"github.com/csi-kit/sidecars/snapshotter"
	"github.com/csi-kit/sidecars/testkit/fakedriver"
)

// apiFault is one answer the API server may give instead of doing the
// request: a status code, or (code 0) no answer at all until the request's
// context ends or hang passes.
type apiFault struct {
	code   int
	reason string
}

// apiFaults are injected in this order on every (verb, resource) pair.
var apiFaults = []apiFault{
	{http.StatusForbidden, "Forbidden"},
	{http.StatusNotFound, "NotFound"},
	{http.StatusConflict, "Conflict"},
	{http.StatusTooManyRequests, "TooManyRequests"},
	{http.StatusInternalServerError, "InternalError"},
	{http.StatusServiceUnavailable, "ServiceUnavailable"},
	{0, "timeout"},
}

// apiErrorInjector fails the first len(apiFaults)*perFault requests of
// every (verb, resource) pair it sees, each fault perFault times in a row,
// then lets the pair's requests through.
type apiErrorInjector struct {
	perFault int
	hang     time.Duration

	mu       sync.Mutex
	seen     map[string]int // requests so far per pair
	injected map[string]int // per fault reason
}

func newAPIErrorInjector(perFault int, hang time.Duration) *apiErrorInjector {
	return &apiErrorInjector{perFault: perFault, hang: hang, seen: map[string]int{}, injected: map[string]int{}}
}

func (a *apiErrorInjector) wrap(cfg *rest.Config) *rest.Config {
	cfg = rest.CopyConfig(cfg)
	cfg.Wrap(func(rt http.RoundTripper) http.RoundTripper {
		return roundTrip(func(req *http.Request) (*http.Response, error) {
			pair := requestPair(req)
			a.mu.Lock()
			n := a.seen[pair]
			a.seen[pair] = n + 1
			var f *apiFault
			if i := n / a.perFault; i < len(apiFaults) {
				f = &apiFaults[i]
				a.injected[f.reason]++
			}
			a.mu.Unlock()
			if f == nil {
				return rt.RoundTrip(req)
			}
			if req.Body != nil {
				_ = req.Body.Close()
			}
			if f.code == 0 {
				select {
				case <-req.Context().Done():
					return nil, req.Context().Err()
				case <-time.After(a.hang):
					return nil, injectedTimeout{}
				}
			}
			body := fmt.Sprintf(`{"kind":"Status","apiVersion":"v1","status":"Failure","reason":%q,"code":%d,"message":"injected by the fault suite on %s"}`,
				f.reason, f.code, pair)
			h := http.Header{"Content-Type": []string{"application/json"}}
			if f.code == http.StatusTooManyRequests {
				h.Set("Retry-After", "1")
			}
			return &http.Response{StatusCode: f.code, Status: fmt.Sprintf("%d %s", f.code, http.StatusText(f.code)),
				Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1, Header: h, Body: io.NopCloser(strings.NewReader(body)),
				ContentLength: int64(len(body)), Request: req}, nil
		})
	})
	return cfg
}

// injectedTimeout is what a client sees when the server never answers.
type injectedTimeout struct{}

func (injectedTimeout) Error() string   { return "injected by the fault suite: i/o timeout" }
func (injectedTimeout) Timeout() bool   { return true }
func (injectedTimeout) Temporary() bool { return true }

// requestPair names a request by verb and resource (with subresource),
// without namespace or name: "patch persistentvolumeclaims/status".
func requestPair(req *http.Request) string {
	parts := strings.Split(strings.Trim(req.URL.Path, "/"), "/")
	// /api/v1/... or /apis/group/version/...
	switch {
	case len(parts) >= 2 && parts[0] == "api":
		parts = parts[2:]
	case len(parts) >= 3 && parts[0] == "apis":
		parts = parts[3:]
	default:
		return "get " + req.URL.Path
	}
	if len(parts) == 0 {
		return "discovery " + req.URL.Path
	}
	if parts[0] == "namespaces" && len(parts) >= 3 {
		parts = parts[2:]
	}
	resource, named := parts[0], len(parts) >= 2
	if len(parts) >= 3 {
		resource += "/" + parts[2]
	}
	verb := strings.ToLower(req.Method)
	switch req.Method {
	case http.MethodGet:
		switch {
		case req.URL.Query().Get("watch") == "true" || req.URL.Query().Get("watch") == "1":
			verb = "watch"
		case !named:
			verb = "list"
		default:
			verb = "get"
		}
	case http.MethodPost:
		verb = "create"
	case http.MethodPut:
		verb = "update"
	case http.MethodDelete:
		if !named {
			verb = "deletecollection"
		}
	}
	return verb + " " + resource
}

func (a *apiErrorInjector) report() (pairs []string, injected map[string]int) {
	a.mu.Lock()
	defer a.mu.Unlock()
	for p := range a.seen {
		pairs = append(pairs, p)
	}
	sort.Strings(pairs)
	injected = map[string]int{}
	for k, v := range a.injected {
		injected[k] = v
	}
	return pairs, injected
}

// TestAPIErrorOnEveryVerb: no answer of the API server (403, 404, 409, 429
// with Retry-After, 500, 503, or none until a timeout) to any request may
// crash a controller or wedge it. Every (verb, resource) pair the
// provisioner, resizer, snapshot controller and sidecar use fails once with
// each; claims are then provisioned, resized, snapshotted and deleted, and
// everything reaches its state with the invariants holding.
func TestAPIErrorOnEveryVerb(t *testing.T) {
	e := newEnv(t, "apiserver", fakedriver.Options{Capabilities: snapshotCaps()})
	sc := e.class("sc", nil)
	vscName := e.snapshotClass()
	inj := newAPIErrorInjector(1, 3*time.Second)
	cfg := inj.wrap(cp.Config())
	client, snaps := kubernetes.NewForConfigOrDie(cfg), snapclient.NewForConfigOrDie(cfg)
	shared := sharedcache.New(client, snaps)
	t.Cleanup(shared.Shutdown)
	// Events go through the faulty client too.
	rec, stopRec, err := kube.RecorderFor(client, "csi-sidecars")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(stopRec)
	conn := e.connect(csiconn.Options{})
	p, err := provisioner.New(provisionerOptions(provisioner.Options{Cache: shared, SnapshotClient: snaps, Recorder: rec}), client, conn)
	if err != nil {
		t.Fatal(err)
	}
	rdrv, err := resizer.NewCSIDriver(e.ctx, conn)
	if err != nil {
		t.Fatal(err)
	}
	r, err := resizer.New(resizer.Options{Cache: shared, Recorder: rec, RetryIntervalStart: 100 * time.Millisecond,
		RetryIntervalMax: 2 * time.Second}, client, rdrv)
	if err != nil {
		t.Fatal(err)
	}
	ctl, err := snapshotter.NewController(snapshotter.ControllerOptions{SnapshotClient: snaps, Cache: shared, Recorder: rec,
		RetryIntervalStart: 100 * time.Millisecond, RetryIntervalMax: 2 * time.Second}, client)
	if err != nil {
		t.Fatal(err)
	}
	sdrv, err := snapshotter.NewCSIDriver(conn)
	if err != nil {
		t.Fatal(err)
	}
	side, err := snapshotter.NewSidecar(snapshotter.SidecarOptions{SnapshotClient: snaps, DriverName: e.driver, Cache: shared, Recorder: rec,
		RetryIntervalStart: 100 * time.Millisecond, RetryIntervalMax: 2 * time.Second, ReadyPollStart: 100 * time.Millisecond}, client, sdrv)
	if err != nil {
		t.Fatal(err)
	}
	runners := map[string]*runner{}
	for name, run := range map[string]func(context.Context) error{"provisioner": p.Run, "resizer": r.Run,
		"snapshot-controller": ctl.Run, "snapshotter": side.Run} {
		runners[name] = e.run(name, e.ctx, run)
	}
	// A controller that returns early (other than by a panic, which ends
	// the test binary) has given up on an API answer.
	alive := func() {
		t.Helper()
		for name, r := range runners {
			select {
			case err := <-r.done:
				r.once.Do(func() { r.err = err })
				t.Fatalf("%s: Run returned %v while the case ran", name, err)
			default:
			}
		}
	}

	names := e.claims("c", sc.Name, "1Gi", 6)
	e.waitBound(3*time.Minute, names...)
	alive()
	for _, n := range names[:3] {
		e.request(n, "2Gi")
	}
	e.waitCapacity(2*time.Minute, "2Gi", names[:3]...)
	alive()
	var snapNames []string
	for _, n := range names[:3] {
		e.snapshot("s-"+n, n, vscName)
		snapNames = append(snapNames, "s-"+n)
	}
	e.waitSnapshotsReady(2*time.Minute, snapNames...)
	alive()
	e.check()
	if err := e.snaps.SnapshotV1().VolumeSnapshots(e.ns).DeleteCollection(e.ctx, metav1.DeleteOptions{}, metav1.ListOptions{}); err != nil {
		t.Fatal(err)
	}
	e.eventually("backend snapshots deleted", 2*time.Minute, func() (bool, string) {
		n := len(e.drv.Snapshots())
		return n == 0, fmt.Sprintf("%d backend snapshots; %s", n, e.stuckFinalizers())
	})
	alive()
	e.check()
	e.drain()
	alive()

	pairs, injected := inj.report()
	total := 0
	for _, n := range injected {
		total += n
	}
	e.fault(total)
	t.Logf("%d faults injected (%v) on %d (verb, resource) pairs: %s", total, injected, len(pairs), strings.Join(pairs, ", "))
	for _, f := range apiFaults {
		if injected[f.reason] == 0 {
			t.Errorf("%s never injected", f.reason)
		}
	}
	for _, want := range []string{"create persistentvolumes", "patch persistentvolumeclaims/status", "patch volumesnapshotcontents/status",
		"create volumesnapshotcontents", "list persistentvolumeclaims", "watch persistentvolumeclaims"} {
		i := sort.SearchStrings(pairs, want)
		if i == len(pairs) || pairs[i] != want {
			t.Errorf("pair %q never requested: the controllers' verbs changed, update the case", want)
		}
	}
}

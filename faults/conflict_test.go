package faults

import (
	"context"
	"fmt"
	"io"
	"net/http"
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

// conflicter answers the first PUT or PATCH of every object URL (the
// status subresource counts apart) with 409 Conflict without sending it,
// as if another writer had changed the object just before: every update
// the controllers make must be retried.
type conflicter struct {
	mu       sync.Mutex
	seen     map[string]bool
	injected int
}

func (c *conflicter) wrap(cfg *rest.Config) *rest.Config {
	cfg = rest.CopyConfig(cfg)
	cfg.Wrap(func(rt http.RoundTripper) http.RoundTripper {
		return roundTrip(func(req *http.Request) (*http.Response, error) {
			if req.Method != http.MethodPut && req.Method != http.MethodPatch {
				return rt.RoundTrip(req)
			}
			key := req.Method + " " + req.URL.Path
			c.mu.Lock()
			first := !c.seen[key]
			c.seen[key] = true
			if first {
				c.injected++
			}
			c.mu.Unlock()
			if !first {
				return rt.RoundTrip(req)
			}
			if req.Body != nil {
				_ = req.Body.Close()
			}
			body := fmt.Sprintf(`{"kind":"Status","apiVersion":"v1","status":"Failure","reason":"Conflict","code":409,`+
				`"message":"Operation cannot be fulfilled on %s: the object has been modified; please apply your changes to the latest version and try again"}`, req.URL.Path)
			return &http.Response{StatusCode: http.StatusConflict, Status: "409 Conflict", Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1,
				Header: http.Header{"Content-Type": []string{"application/json"}}, Body: io.NopCloser(strings.NewReader(body)),
				ContentLength: int64(len(body)), Request: req}, nil
		})
	})
	return cfg
}

func (c *conflicter) count() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.injected
}

type roundTrip func(*http.Request) (*http.Response, error)

func (f roundTrip) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// TestConflictOnEveryUpdate: every PUT and PATCH of the provisioner,
// resizer, snapshot controller and sidecar fails once with a conflict.
// Claims are provisioned, resized and snapshotted, snapshots and claims
// deleted; everything reaches its state and nothing is left behind.
func TestConflictOnEveryUpdate(t *testing.T) {
	caps := snapshotCaps()
	e := newEnv(t, "apiserver", fakedriver.Options{Capabilities: caps})
	sc := e.class("sc", nil)
	vscName := e.snapshotClass()
	conflicts := &conflicter{seen: map[string]bool{}}
	cfg := conflicts.wrap(cp.Config())
	client, snaps := kubernetes.NewForConfigOrDie(cfg), snapclient.NewForConfigOrDie(cfg)
	shared := sharedcache.New(client, snaps)
	t.Cleanup(shared.Shutdown)
	rec, stopRec, err := kube.RecorderFor(kubernetes.NewForConfigOrDie(cp.Config()), "csi-sidecars")
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
		RetryIntervalMax: time.Second}, client, rdrv)
	if err != nil {
		t.Fatal(err)
	}
	ctl, err := snapshotter.NewController(snapshotter.ControllerOptions{SnapshotClient: snaps, Cache: shared, Recorder: rec,
		RetryIntervalStart: 100 * time.Millisecond, RetryIntervalMax: time.Second}, client)
	if err != nil {
		t.Fatal(err)
	}
	sdrv, err := snapshotter.NewCSIDriver(conn)
	if err != nil {
		t.Fatal(err)
	}
	side, err := snapshotter.NewSidecar(snapshotter.SidecarOptions{SnapshotClient: snaps, DriverName: e.driver, Cache: shared, Recorder: rec,
		RetryIntervalStart: 100 * time.Millisecond, RetryIntervalMax: time.Second, ReadyPollStart: 100 * time.Millisecond}, client, sdrv)
	if err != nil {
		t.Fatal(err)
	}
	for name, run := range map[string]func(context.Context) error{"provisioner": p.Run, "resizer": r.Run,
		"snapshot-controller": ctl.Run, "snapshotter": side.Run} {
		e.run(name, e.ctx, run)
	}

	names := e.claims("c", sc.Name, "1Gi", 10)
	e.waitBound(60*time.Second, names...)
	for _, n := range names {
		e.request(n, "2Gi")
	}
	e.waitCapacity(60*time.Second, "2Gi", names...)
	var snapNames []string
	for _, n := range names {
		e.snapshot("s-"+n, n, vscName)
		snapNames = append(snapNames, "s-"+n)
	}
	e.waitSnapshotsReady(60*time.Second, snapNames...)
	// A result that could not be recorded (PV or PVC patch refused) is
	// learned again by repeating the idempotent call: at most one repeat
	// per refused write.
	if got := e.drv.Calls("ControllerExpandVolume"); got < len(names) || got > 3*len(names) {
		t.Errorf("ControllerExpandVolume called %d times for %d claims, want %d to %d", got, len(names), len(names), 3*len(names))
	}
	e.check()
	if err := e.snaps.SnapshotV1().VolumeSnapshots(e.ns).DeleteCollection(e.ctx, metav1.DeleteOptions{}, metav1.ListOptions{}); err != nil {
		t.Fatal(err)
	}
	e.eventually("backend snapshots deleted", 60*time.Second, func() (bool, string) {
		n := len(e.drv.Snapshots())
		return n == 0, fmt.Sprintf("%d backend snapshots", n)
	})
	e.fault(conflicts.count())
	t.Logf("%d conflicts injected", conflicts.count())
	if conflicts.count() < 3*len(names) {
		t.Errorf("only %d conflicts injected: the controllers wrote less than expected", conflicts.count())
	}
	e.check()
	e.drain()
}

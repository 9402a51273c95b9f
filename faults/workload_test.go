package faults

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-logr/logr"
	crdv1 "github.com/kubernetes-csi/external-snapshotter/client/v8/apis/volumesnapshot/v1"
	snapclient "github.com/kubernetes-csi/external-snapshotter/client/v8/clientset/versioned"
	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
	"k8s.io/klog/v2"

	"github.com/csi-kit/sidecars/csiconn"
	"github.com/csi-kit/sidecars/internal/benchutil"
	"github.com/csi-kit/sidecars/internal/kube"
	"github.com/csi-kit/sidecars/leaderelection"
	"github.com/csi-kit/sidecars/provisioner"
	"github.com/csi-kit/sidecars/resizer"
	"github.com/csi-kit/sidecars/sharedcache"
	"github.com/csi-kit/sidecars/snapshotter"
	"github.com/csi-kit/sidecars/testkit/fakedriver"
)

// TestLoadWithLeaderChanges provisions, resizes and snapshots N claims
// (CSIKIT_LOAD_N, default 500; `make bench` runs 5000) with a stack of every controller in one
// process sharing one cache and one Lease, as csi-sidecars runs them. The
// leader is cancelled once during provisioning and once during resizing;
// a standby takes over each time. Every claim must end Bound at 2Gi with a
// ready snapshot, the backend must hold exactly the volumes and snapshots
// the API references, and no finalizer may be left without its owner. A
// replica that loses its Lease on its own (a starved renewal on a loaded
// machine) starts again with a new elector, as its container would be
// restarted. The file is named so that the case runs last in the suite.
func TestLoadWithLeaderChanges(t *testing.T) {
	n := 500
	if v, err := strconv.Atoi(os.Getenv("CSIKIT_LOAD_N")); err == nil && v > 0 {
		n = v
	}
	caps := snapshotCaps()
	e := newEnv(t, "load", fakedriver.Options{Capabilities: caps, RequestHistory: 1})
	sc := e.class("sc", nil)
	vscName := e.snapshotClass()
	lock := leaderelection.LockName(leaderelection.ComponentProvisioner, e.driver)
	say := func(format string, args ...any) { fmt.Fprintf(os.Stderr, "load: "+format+"\n", args...) }
	start := time.Now()

	// replica starts one stack under leader election and returns its
	// current elector and its runner. A lost Lease restarts it.
	replica := func(id string) (*atomic.Pointer[leaderelection.Elector], *runner) {
		var current atomic.Pointer[leaderelection.Elector]
		elector := func() *leaderelection.Elector {
			el, err := leaderelection.New(leaderelection.Options{LockName: lock, Namespace: e.ns, Identity: id,
				LeaseDuration: 4 * time.Second, RenewDeadline: 2 * time.Second, RetryPeriod: 500 * time.Millisecond},
				kubernetes.NewForConfigOrDie(cp.Config()))
			if err != nil {
				t.Error(err)
				return nil
			}
			current.Store(el)
			return el
		}
		if elector() == nil {
			t.FailNow()
		}
		conn := e.connect(csiconn.Options{})
		// Thousands of objects: per-object log lines would flood the test
		// log (and its memory); errors still fail the case through Run.
		quiet := klog.NewContext(e.ctx, logr.Discard())
		r := e.run(id, quiet, func(ctx context.Context) error {
			for {
				err := current.Load().Run(ctx, func(ctx context.Context) error { return e.stack(ctx, conn) })
				if ctx.Err() != nil || !errors.Is(err, leaderelection.ErrLeaseLost) {
					return err
				}
				say("replica %s lost its Lease under load; restarting it", id)
				if elector() == nil {
					return err
				}
			}
		})
		return &current, r
	}
	leaderOf := func(els map[string]*atomic.Pointer[leaderelection.Elector]) string {
		for id, el := range els {
			if el.Load().Leader() == id {
				return id
			}
		}
		return ""
	}
	els := map[string]*atomic.Pointer[leaderelection.Elector]{}
	runners := map[string]*runner{}
	for _, id := range []string{"r-0", "r-1"} {
		els[id], runners[id] = replica(id)
	}
	// changeLeader cancels the current leader, starts a fresh standby, and
	// waits for another replica to lead.
	changeLeader := func(next string) {
		t.Helper()
		old := ""
		e.eventually("a leader", 30*time.Second, func() (bool, string) { old = leaderOf(els); return old != "", "none leads" })
		runners[old].cancel()
		if err := runners[old].wait(t, 60*time.Second); err != nil {
			t.Errorf("leader %s: Run returned %v", old, err)
		}
		delete(els, old)
		els[next], runners[next] = replica(next)
		e.fault(1)
		at := time.Now()
		e.eventually("a new leader", 30*time.Second, func() (bool, string) {
			l := leaderOf(els)
			return l != "" && l != old, "leader " + l
		})
		say("leader %s stopped; %s leads after %v", old, leaderOf(els), time.Since(at).Round(time.Millisecond))
	}
	progress := func(what string, timeout time.Duration, done func() int, onThird func()) time.Duration {
		t.Helper()
		at := time.Now()
		p := benchutil.NewProgress(10 * time.Second)
		fired := onThird == nil
		e.eventually(what, timeout, func() (bool, string) {
			d := done()
			if !fired && d >= n/3 {
				fired = true
				onThird()
			}
			p.Printf("load: %s: %d/%d after %v (leader %q)", what, d, n, time.Since(at).Round(time.Second), leaderOf(els))
			return d >= n, fmt.Sprintf("%d/%d", d, n)
		})
		say("%s: %d in %v", what, n, time.Since(at).Round(time.Millisecond))
		return time.Since(at)
	}

	say("creating %d claims in %s", n, e.ns)
	names := make([]string, n)
	benchutil.Parallel(n, 32, func(i int) {
		names[i] = fmt.Sprintf("c-%d", i)
		if _, err := e.kube.CoreV1().PersistentVolumeClaims(e.ns).Create(e.ctx, e.newClaim(names[i], sc.Name, "1Gi"), metav1.CreateOptions{}); err != nil {
			t.Error(err)
		}
	})
	listClaims := func() []v1.PersistentVolumeClaim {
		l, err := e.kube.CoreV1().PersistentVolumeClaims(e.ns).List(e.ctx, metav1.ListOptions{ResourceVersion: "0"})
		if err != nil {
			return nil
		}
		return l.Items
	}
	provisioned := progress("PVs created", 10*time.Minute, func() int {
		pvs, _ := e.pvs()
		return len(pvs)
	}, func() { changeLeader("r-2") })
	bound := progress("claims bound (by kube-controller-manager)", 15*time.Minute, func() int {
		c := 0
		for _, pvc := range listClaims() {
			if pvc.Status.Phase == v1.ClaimBound {
				c++
			}
		}
		return c
	}, nil)

	say("raising every request to 2Gi")
	benchutil.Parallel(n, 32, func(i int) {
		patch := []byte(`{"spec":{"resources":{"requests":{"storage":"2Gi"}}}}`)
		if _, err := e.kube.CoreV1().PersistentVolumeClaims(e.ns).Patch(e.ctx, names[i], types.MergePatchType, patch, metav1.PatchOptions{}); err != nil {
			t.Error(err)
		}
	})
	want := resource.MustParse("2Gi")
	resized := progress("claims resized", 15*time.Minute, func() int {
		c := 0
		for _, pvc := range listClaims() {
			if q := pvc.Status.Capacity[v1.ResourceStorage]; q.Cmp(want) == 0 {
				c++
			}
		}
		return c
	}, func() { changeLeader("r-3") })

	say("creating %d snapshots", n)
	benchutil.Parallel(n, 32, func(i int) {
		claim, class := names[i], vscName
		s := &crdv1.VolumeSnapshot{ObjectMeta: metav1.ObjectMeta{Name: "s-" + names[i], Namespace: e.ns},
			Spec: crdv1.VolumeSnapshotSpec{Source: crdv1.VolumeSnapshotSource{PersistentVolumeClaimName: &claim},
				VolumeSnapshotClassName: &class}}
		if _, err := e.snaps.SnapshotV1().VolumeSnapshots(e.ns).Create(e.ctx, s, metav1.CreateOptions{}); err != nil {
			t.Error(err)
		}
	})
	snapped := progress("snapshots ready", 15*time.Minute, func() int {
		l, err := e.snaps.SnapshotV1().VolumeSnapshots(e.ns).List(e.ctx, metav1.ListOptions{ResourceVersion: "0"})
		if err != nil {
			return 0
		}
		c := 0
		for _, s := range l.Items {
			if s.Status != nil && s.Status.ReadyToUse != nil && *s.Status.ReadyToUse {
				c++
			}
		}
		return c
	}, nil)

	if got := len(e.drv.Volumes()); got != n {
		t.Errorf("backend holds %d volumes for %d claims", got, n)
	}
	if got := len(e.drv.Snapshots()); got != n {
		t.Errorf("backend holds %d snapshots for %d VolumeSnapshots", got, n)
	}
	e.check()
	say("%d claims: provisioned %v, bound %v, resized %v, snapshots ready %v; total %v; peak RSS of the test process (two to three stacks, the fake driver, the checks) %.0f MiB",
		n, provisioned.Round(time.Second), bound.Round(time.Second), resized.Round(time.Second), snapped.Round(time.Second),
		time.Since(start).Round(time.Second), float64(benchutil.PeakRSS())/(1<<20))
}

// stack runs provisioner, resizer, snapshot controller and snapshot
// sidecar on conn with one shared cache, until ctx ends or one fails.
func (e *env) stack(ctx context.Context, conn *csiconn.Conn) error {
	client := kubernetes.NewForConfigOrDie(cp.Config())
	snaps := snapclient.NewForConfigOrDie(cp.Config())
	shared := sharedcache.New(client, snaps)
	defer shared.Shutdown()
	rec, stopRec, err := kube.RecorderFor(client, "csi-sidecars")
	if err != nil {
		return err
	}
	defer stopRec()
	p, err := provisioner.New(provisionerOptions(provisioner.Options{Workers: 50, Cache: shared, SnapshotClient: snaps, Recorder: rec}), client, conn)
	if err != nil {
		return err
	}
	rdrv, err := resizer.NewCSIDriver(ctx, conn)
	if err != nil {
		return err
	}
	r, err := resizer.New(resizer.Options{Cache: shared, Recorder: rec, RetryIntervalStart: 100 * time.Millisecond,
		RetryIntervalMax: 2 * time.Second}, client, rdrv)
	if err != nil {
		return err
	}
	ctl, err := snapshotter.NewController(snapshotter.ControllerOptions{SnapshotClient: snaps, Cache: shared, Recorder: rec,
		RetryIntervalStart: 100 * time.Millisecond, RetryIntervalMax: 2 * time.Second}, client)
	if err != nil {
		return err
	}
	sdrv, err := snapshotter.NewCSIDriver(conn)
	if err != nil {
		return err
	}
	side, err := snapshotter.NewSidecar(snapshotter.SidecarOptions{SnapshotClient: snaps, DriverName: e.driver, Cache: shared, Recorder: rec,
		RetryIntervalStart: 100 * time.Millisecond, RetryIntervalMax: 2 * time.Second, ReadyPollStart: 100 * time.Millisecond}, client, sdrv)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	runs := []func(context.Context) error{p.Run, r.Run, ctl.Run, side.Run}
	errs := make(chan error, len(runs))
	for _, run := range runs {
		go func() {
			err := run(ctx)
			if err != nil {
				cancel(err)
			}
			errs <- err
		}()
	}
	var first error
	for range runs {
		if err := <-errs; err != nil && first == nil {
			first = err
			klog.FromContext(ctx).Error(err, "Controller failed; stopping the stack")
		}
	}
	return first
}

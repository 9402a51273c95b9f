package faults

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	v1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/csi-kit/sidecars/csiconn"
	"github.com/csi-kit/sidecars/testkit/fakedriver"
)

// errorCodes are the gRPC codes a driver may answer, final, transient and
// (for expansion) infeasible alike.
var errorCodes = []codes.Code{codes.InvalidArgument, codes.NotFound, codes.AlreadyExists, codes.PermissionDenied,
	codes.ResourceExhausted, codes.FailedPrecondition, codes.Aborted, codes.OutOfRange, codes.Unimplemented,
	codes.Internal, codes.Unavailable, codes.DeadlineExceeded, codes.Unknown, codes.DataLoss}

// TestDriverAnswersEveryCode: for each of CreateVolume, ControllerExpandVolume,
// CreateSnapshot, DeleteSnapshot and DeleteVolume, and each error code, the
// driver fails the next calls with that code, then recovers. The
// controllers (all four, on one shared cache) must get every object to its
// state: a claim Bound, resized, snapshotted, its snapshot and the claim
// deleted with nothing left on the backend. Expansion errors that the
// classifier calls infeasible instead mark the claim
// ControllerResizeInfeasible with a Warning, are not retried, and a request
// lowered back to the old size clears the mark. NotFound from a delete
// means "already gone" (CSI) and is not injected there.
func TestDriverAnswersEveryCode(t *testing.T) {
	e := newEnv(t, "driver", fakedriver.Options{Capabilities: snapshotCaps()})
	sc := e.class("sc", nil)
	vscName := e.snapshotClass()
	conn := e.connect(csiconn.Options{})
	e.run("stack", e.ctx, func(ctx2 context.Context) error { return e.stack(ctx2, conn) })

	const fails = 2
	claim := func(name string) *v1.PersistentVolumeClaim {
		c, err := e.kube.CoreV1().PersistentVolumeClaims(e.ns).Get(e.ctx, name, metav1.GetOptions{})
		if err != nil {
			return nil
		}
		return c
	}
	resize := func(name, size string) {
		t.Helper()
		patch := []byte(fmt.Sprintf(`{"spec":{"resources":{"requests":{"storage":%q}}}}`, size))
		if _, err := e.kube.CoreV1().PersistentVolumeClaims(e.ns).Patch(e.ctx, name, types.MergePatchType, patch, metav1.PatchOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	capacityIs := func(name, size string) (bool, string) {
		c := claim(name)
		if c == nil {
			return false, "no claim"
		}
		want := resource.MustParse(size)
		q := c.Status.Capacity[v1.ResourceStorage]
		return q.Cmp(want) == 0, fmt.Sprintf("capacity %s, statuses %v", q.String(), c.Status.AllocatedResourceStatuses)
	}
	warned := func(name, reason string) bool {
		w, err := e.warnings()
		if err != nil {
			return false
		}
		for _, r := range w[name] {
			if strings.HasPrefix(r, reason) {
				return true
			}
		}
		return false
	}
	outcomes := map[string]int{}
	for _, code := range errorCodes {
		name := "c-" + strings.ToLower(code.String())
		t.Run(code.String(), func(t *testing.T) {
			// CreateVolume
			e.drv.FailNext("CreateVolume", code, fails)
			if _, err := e.kube.CoreV1().PersistentVolumeClaims(e.ns).Create(e.ctx, e.newClaim(name, sc.Name, "1Gi"), metav1.CreateOptions{}); err != nil {
				t.Fatal(err)
			}
			e.waitBound(60*time.Second, name)
			if !warned(name, "ProvisioningFailed") {
				t.Errorf("CreateVolume %v: no ProvisioningFailed warning on %s", code, name)
			}

			// ControllerExpandVolume
			expandErr := status.Error(code, "injected")
			if csiconn.Classify(csiconn.OpExpandVolume, expandErr) == csiconn.Infeasible {
				e.drv.SetError("ControllerExpandVolume", code)
				before := e.drv.Calls("ControllerExpandVolume")
				resize(name, "2Gi")
				e.eventually("expansion marked infeasible", 30*time.Second, func() (bool, string) {
					c := claim(name)
					st := v1.ClaimResourceStatus("")
					if c != nil {
						st = c.Status.AllocatedResourceStatuses[v1.ResourceStorage]
					}
					return st == v1.PersistentVolumeClaimControllerResizeInfeasible && warned(name, "VolumeResizeFailed"), string(st)
				})
				time.Sleep(2 * time.Second)
				// Retried only on the (doubling) retry interval, never in a
				// loop: 100ms, 200ms, 400ms, 800ms fit in the two seconds.
				if n := e.drv.Calls("ControllerExpandVolume") - before; n < 1 || n > 5 {
					t.Errorf("ControllerExpandVolume %v: %d calls in ~2s, want 1 to 5 (backoff)", code, n)
				}
				// The user lowers the request (the API server wants it above
				// the current capacity) and the driver accepts that size.
				e.drv.ClearErrors()
				resize(name, "1536Mi")
				e.eventually("infeasible mark cleared, smaller size applied", 30*time.Second, func() (bool, string) {
					ok, why := capacityIs(name, "1536Mi")
					_, marked := claim(name).Status.AllocatedResourceStatuses[v1.ResourceStorage]
					return ok && !marked, why
				})
				outcomes["expand-infeasible"]++
			} else {
				e.drv.FailNext("ControllerExpandVolume", code, fails)
				resize(name, "2Gi")
				e.eventually("claim resized", 60*time.Second, func() (bool, string) { return capacityIs(name, "2Gi") })
				if !warned(name, "VolumeResizeFailed") {
					t.Errorf("ControllerExpandVolume %v: no VolumeResizeFailed warning on %s", code, name)
				}
				outcomes["expand-retried"]++
			}

			// CreateSnapshot
			e.drv.FailNext("CreateSnapshot", code, fails)
			e.snapshot("s-"+name, name, vscName)
			e.waitSnapshotsReady(60*time.Second, "s-"+name)

			// DeleteSnapshot
			if code != codes.NotFound {
				e.drv.FailNext("DeleteSnapshot", code, fails)
			}
			if err := e.snaps.SnapshotV1().VolumeSnapshots(e.ns).Delete(e.ctx, "s-"+name, metav1.DeleteOptions{}); err != nil {
				t.Fatal(err)
			}
			e.eventually("snapshot gone", 60*time.Second, func() (bool, string) {
				_, err := e.snaps.SnapshotV1().VolumeSnapshots(e.ns).Get(e.ctx, "s-"+name, metav1.GetOptions{})
				return apierrors.IsNotFound(err) && len(e.drv.Snapshots()) == 0, fmt.Sprintf("get: %v, %d backend snapshots", err, len(e.drv.Snapshots()))
			})

			// DeleteVolume
			if code != codes.NotFound {
				e.drv.FailNext("DeleteVolume", code, fails)
			}
			if err := e.kube.CoreV1().PersistentVolumeClaims(e.ns).Delete(e.ctx, name, metav1.DeleteOptions{}); err != nil {
				t.Fatal(err)
			}
			e.eventually("volume gone", 60*time.Second, func() (bool, string) {
				pvs, err := e.pvs()
				if err != nil {
					return false, err.Error()
				}
				return len(pvs) == 0 && len(e.drv.Volumes()) == 0 && claim(name) == nil,
					fmt.Sprintf("%d PVs, %d backend volumes", len(pvs), len(e.drv.Volumes()))
			})
			e.drv.ClearErrors()
			e.fault(4*fails + 1)
			outcomes["cases"]++
		})
	}
	t.Logf("outcomes: %v", outcomes)
	e.check()
}

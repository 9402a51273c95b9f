package resizer_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/fake"
	"k8s.io/client-go/tools/record"
	"k8s.io/klog/v2/ktesting"

	"github.com/csi-kit/sidecars/resizer"
	"github.com/csi-kit/sidecars/testkit/eventually"
	"github.com/csi-kit/sidecars/testkit/fakedriver"
)

// A driver that declares neither ONLINE nor OFFLINE and answers
// FailedPrecondition while a pod uses the PVC is not called again until
// the pod is gone (upstream's "pvc-inuse with failedprecondition"), then
// expanded at once.
func TestInUseReactiveForUndeclaredMode(t *testing.T) {
	_, ctx := ktesting.NewTestContext(t)
	ctx, cancel := context.WithCancel(ctx)
	pod := &v1.Pod{
		ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "app"},
		Spec: v1.PodSpec{Volumes: []v1.Volume{{Name: "d", VolumeSource: v1.VolumeSource{
			PersistentVolumeClaim: &v1.PersistentVolumeClaimVolumeSource{ClaimName: "data"}}}}},
		Status: v1.PodStatus{Phase: v1.PodRunning},
	}
	client := fake.NewClientset(pvcFixture("30Gi", "20Gi"), pvFixture("20Gi", "rec.csi.test"), pod)
	drv := &recordingDriver{caps: &resizer.DriverCapabilities{ControllerExpand: true},
		errs: []error{status.Error(codes.FailedPrecondition, "volume is published")}}
	r, err := resizer.New(resizer.Options{Recorder: record.NewFakeRecorder(100), ResyncPeriod: -1,
		RetryIntervalStart: 10 * time.Millisecond, RetryIntervalMax: 50 * time.Millisecond}, client, drv)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	}()
	eventually.Require(t, 10*time.Second, "the FailedPrecondition call",
		eventually.True("a ControllerExpandVolume call", func() bool { return drv.calls() > 0 }))
	// With a 10ms retry interval an ungated controller would call again
	// many times within this window.
	time.Sleep(500 * time.Millisecond)
	if n := drv.calls(); n != 1 {
		t.Fatalf("%d calls while the pod uses the PVC, want 1 (the FailedPrecondition one)", n)
	}
	if err := client.CoreV1().Pods("default").Delete(ctx, "app", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	eventually.Require(t, 10*time.Second, "expansion after the pod was deleted",
		eventually.True("a second ControllerExpandVolume call", func() bool { return drv.calls() >= 2 }))
}

// An OFFLINE-only driver is not called while a pod uses the PVC; the
// expansion runs as soon as the pod is gone.
func TestOfflineOnlyWaitsForPod(t *testing.T) {
	caps := fakedriver.Resizer
	caps.ExpandOnline, caps.ExpandOffline = false, true
	e := newIdleEnv(t, fakedriver.Options{Capabilities: caps})
	id := e.backendVolume("disk", gi(1))
	pvc, pv := e.boundPair("data", "1Gi", id, nil)
	e.drv.SetVolumeInUse(id, true)
	pod := &v1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "app", Namespace: e.ns},
		Spec: v1.PodSpec{
			Containers: []v1.Container{{Name: "c", Image: "busybox"}},
			Volumes: []v1.Volume{{Name: "d", VolumeSource: v1.VolumeSource{
				PersistentVolumeClaim: &v1.PersistentVolumeClaimVolumeSource{ClaimName: pvc.Name}}}},
		},
	}
	if _, err := e.kube.CoreV1().Pods(e.ns).Create(e.ctx, pod, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	// The resizer starts with the pod in place, so its first pod list has
	// it before any decision.
	e.run(resizer.Options{})
	if err := e.request(pvc.Name, "2Gi"); err != nil {
		t.Fatal(err)
	}
	e.waitEvent(pvc.Name, resizer.EventResizeFailed, "only supports offline expansion and volume is currently in-use")
	// The event is sent just before the status is written.
	e.eventually(10*time.Second, "blocked status", func() (bool, string) {
		got := e.pvc(pvc.Name)
		return rstatus(got) == v1.PersistentVolumeClaimControllerResizeInProgress && hasCond(got, v1.PersistentVolumeClaimResizing),
			fmt.Sprintf("R=%q conditions %v", rstatus(got), got.Status.Conditions)
	})
	if n := e.drv.Calls("ControllerExpandVolume"); n != 0 {
		t.Fatalf("ControllerExpandVolume called %d times while the volume is in use", n)
	}
	zero := int64(0)
	e.drv.SetVolumeInUse(id, false)
	deleted := time.Now()
	if err := e.kube.CoreV1().Pods(e.ns).Delete(context.Background(), "app", metav1.DeleteOptions{GracePeriodSeconds: &zero}); err != nil {
		t.Fatal(err)
	}
	e.eventually(15*time.Second, "expanded after the pod left", func() (bool, string) {
		p := storage(e.pv(pv.Name).Spec.Capacity)
		return p == "2Gi", "PV " + p
	})
	t.Logf("expanded %v after the pod was deleted", time.Since(deleted).Round(time.Millisecond))
	if n := e.drv.Calls("ControllerExpandVolume"); n != 1 {
		t.Errorf("ControllerExpandVolume called %d times, want 1", n)
	}
}

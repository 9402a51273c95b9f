package resizer_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/fake"
	"k8s.io/client-go/tools/record"
	"k8s.io/klog/v2/ktesting"

	"github.com/csi-kit/sidecars/resizer"
	"github.com/csi-kit/sidecars/testkit/eventually"
)

// recordingDriver is a resizer.Driver that records its calls.
type recordingDriver struct {
	mu      sync.Mutex
	expands []resizer.ExpandRequest
	caps    *resizer.DriverCapabilities
	errs    []error // returned by the next calls, in order
}

func (d *recordingDriver) Name() string { return "rec.csi.test" }
func (d *recordingDriver) Capabilities() resizer.DriverCapabilities {
	if d.caps != nil {
		return *d.caps
	}
	return resizer.DriverCapabilities{ControllerExpand: true, ExpandOnline: true}
}
func (d *recordingDriver) ExpandVolume(_ context.Context, req resizer.ExpandRequest) (int64, bool, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.expands = append(d.expands, req)
	if len(d.errs) > 0 {
		err := d.errs[0]
		d.errs = d.errs[1:]
		return 0, false, err
	}
	return req.RequiredBytes, false, nil
}
func (d *recordingDriver) ModifyVolume(context.Context, resizer.ModifyRequest) error { return nil }
func (d *recordingDriver) calls() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return len(d.expands)
}

// A PVC seen before its PV is expanded once the PV appears (the PV add
// handler enqueues its claim), with no resync. The fake clientset is used
// because the PV binder of a real control plane resets such a claim.
func TestPVArrivesAfterPVC(t *testing.T) {
	_, ctx := ktesting.NewTestContext(t)
	ctx, cancel := context.WithCancel(ctx)
	pvc := pvcFixture("30Gi", "20Gi")
	client := fake.NewClientset(pvc)
	drv := &recordingDriver{}
	r, err := resizer.New(resizer.Options{Recorder: record.NewFakeRecorder(100), ResyncPeriod: -1}, client, drv)
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
	<-r.Started()
	if drv.calls() != 0 {
		t.Fatalf("expanded without a PV")
	}
	if _, err := client.CoreV1().PersistentVolumes().Create(ctx, pvFixture("20Gi", "rec.csi.test"), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	eventually.Require(t, 10*time.Second, "the PVC expanded after its PV appeared",
		eventually.True("a ControllerExpandVolume call", func() bool { return drv.calls() > 0 }))
	eventually.Require(t, 10*time.Second, "PV capacity 30Gi", func(ctx context.Context) error {
		pv, err := client.CoreV1().PersistentVolumes().Get(ctx, "pv-1", metav1.GetOptions{})
		if err != nil {
			return err
		}
		if q := pv.Spec.Capacity[v1.ResourceStorage]; q.String() != "30Gi" {
			return fmt.Errorf("PV capacity %s", q.String())
		}
		return nil
	})
}

func pvcFixture(s, c string) *v1.PersistentVolumeClaim {
	return &v1.PersistentVolumeClaim{
		ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "data", UID: "u1", ResourceVersion: "1"},
		Spec: v1.PersistentVolumeClaimSpec{VolumeName: "pv-1",
			Resources: v1.VolumeResourceRequirements{Requests: v1.ResourceList{v1.ResourceStorage: mustQ(s)}}},
		Status: v1.PersistentVolumeClaimStatus{Phase: v1.ClaimBound, Capacity: v1.ResourceList{v1.ResourceStorage: mustQ(c)}},
	}
}

func pvFixture(p, driver string) *v1.PersistentVolume {
	return &v1.PersistentVolume{
		ObjectMeta: metav1.ObjectMeta{Name: "pv-1", UID: "pv-u1"},
		Spec: v1.PersistentVolumeSpec{
			Capacity:               v1.ResourceList{v1.ResourceStorage: mustQ(p)},
			AccessModes:            []v1.PersistentVolumeAccessMode{v1.ReadWriteOnce},
			PersistentVolumeSource: v1.PersistentVolumeSource{CSI: &v1.CSIPersistentVolumeSource{Driver: driver, VolumeHandle: "h-1"}},
			ClaimRef:               &v1.ObjectReference{Namespace: "default", Name: "data", UID: "u1"},
		},
	}
}

package snapshotter

import (
	"strings"
	"testing"
	"time"

	snapfake "github.com/kubernetes-csi/external-snapshotter/client/v8/clientset/versioned/fake"
	kubefake "k8s.io/client-go/kubernetes/fake"
)

func TestOptionsValidate(t *testing.T) {
	if err := (ControllerOptions{}).withDefaults().Validate(); err != nil {
		t.Errorf("controller defaults: %v", err)
	}
	if err := (SidecarOptions{DriverName: "d"}).withDefaults().Validate(); err != nil {
		t.Errorf("sidecar defaults: %v", err)
	}
	err := SidecarOptions{Workers: -1, SnapshotNameUUIDLength: 40, RetryIntervalStart: time.Second, RetryIntervalMax: time.Millisecond, ReadyPollStart: 1, ReadyPollMax: 1}.Validate()
	for _, want := range []string{"DriverName", "Workers", "SnapshotNameUUIDLength", "RetryIntervalMax"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Validate = %v, want mention of %s", err, want)
		}
	}
	if err := (ControllerOptions{Workers: -2, RetryIntervalStart: -1, RetryIntervalMax: 1}).Validate(); err == nil || !strings.Contains(err.Error(), "Workers") || !strings.Contains(err.Error(), "RetryIntervalStart") {
		t.Errorf("controller Validate = %v", err)
	}
}

// The constructors report every problem at once, the missing clients and
// driver included; a negative ResyncPeriod means never and is accepted.
func TestConstructorsReportEverything(t *testing.T) {
	_, err := NewController(ControllerOptions{Workers: -1}, nil)
	for _, want := range []string{"Workers", "kube client", "SnapshotClient"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("NewController = %v, want mention of %s", err, want)
		}
	}
	_, err = NewSidecar(SidecarOptions{Timeout: -time.Second}, kubefake.NewClientset(), nil)
	for _, want := range []string{"DriverName", "Timeout", "SnapshotClient", "driver is nil"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("NewSidecar = %v, want mention of %s", err, want)
		}
	}
	if _, err := NewController(ControllerOptions{SnapshotClient: snapfake.NewSimpleClientset(), ResyncPeriod: -1}, kubefake.NewClientset()); err != nil {
		t.Errorf("NewController with ResyncPeriod -1 (never) = %v", err)
	}
	if _, err := NewSidecar(SidecarOptions{SnapshotClient: snapfake.NewSimpleClientset(), DriverName: "d", ResyncPeriod: -1}, kubefake.NewClientset(), &scriptDriver{}); err != nil {
		t.Errorf("NewSidecar with ResyncPeriod -1 (never) = %v", err)
	}
}

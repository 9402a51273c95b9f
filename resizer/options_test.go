package resizer

import (
	"context"
	"strings"
	"testing"

	"k8s.io/client-go/kubernetes/fake"
)

type nopDriver struct {
	name string
	caps DriverCapabilities
}

func (d nopDriver) Name() string                     { return d.name }
func (d nopDriver) Capabilities() DriverCapabilities { return d.caps }
func (d nopDriver) ExpandVolume(context.Context, ExpandRequest) (int64, bool, error) {
	return 0, false, nil
}
func (d nopDriver) ModifyVolume(context.Context, ModifyRequest) error { return nil }

func TestNewValidates(t *testing.T) {
	ok := nopDriver{name: "d.csi", caps: DriverCapabilities{ControllerExpand: true}}
	_, err := New(Options{Workers: -1, Timeout: -1, RetryIntervalStart: 10e9, RetryIntervalMax: 1e9,
		MarkInProgressBeforeCall: true, DisableMarkInProgress: true}, nil, nopDriver{})
	if err == nil {
		t.Fatal("want an error")
	}
	for _, want := range []string{"Workers -1", "Timeout -1", "RetryIntervalMax 1s", "kubernetes client is nil", "driver name is empty", "DisableMarkInProgress contradict"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not mention %q", err, want)
		}
	}
	if _, err := New(Options{}, fake.NewClientset(), nopDriver{name: "d.csi"}); err == nil || !strings.Contains(err.Error(), "nothing to do") {
		t.Errorf("a driver without expansion or modify must be refused, got %v", err)
	}
	r, err := New(Options{}, fake.NewClientset(), ok)
	if err != nil {
		t.Fatal(err)
	}
	if r.opts.Workers != 10 || r.opts.Timeout != DefaultTimeout || r.opts.RetryIntervalStart != DefaultRetryIntervalStart ||
		r.opts.RetryIntervalMax != DefaultRetryIntervalMax || r.opts.DisableVolumeInUseHandling {
		t.Errorf("defaults not applied: %+v", r.opts)
	}
	if !r.trackPods() {
		t.Error("a driver that does not declare ONLINE needs pod tracking")
	}
	online := ok
	online.caps.ExpandOnline = true
	if r, _ := New(Options{}, fake.NewClientset(), online); r.trackPods() {
		t.Error("an ONLINE driver needs no pod informer")
	}
	if r, _ := New(Options{DisableVolumeInUseHandling: true}, fake.NewClientset(), ok); r.trackPods() {
		t.Error("--handle-volume-inuse-error=false must turn tracking off")
	}
}

package provisioner

import (
	"strings"
	"testing"
	"time"

	"github.com/container-storage-interface/spec/lib/go/csi"
	snapfake "github.com/kubernetes-csi/external-snapshotter/client/v8/clientset/versioned/fake"
	"k8s.io/client-go/kubernetes/fake"

	"github.com/csi-kit/sidecars/csiconn"
	"github.com/csi-kit/sidecars/sharedcache"
)

func TestOptionsDefaultsAndValidation(t *testing.T) {
	o := Options{}.withDefaults()
	if o.ResyncPeriod != DefaultResyncPeriod || o.Clock == nil || o.IntentDelay != defaultIntentDelay {
		t.Errorf("defaults: ResyncPeriod %v, Clock %v, IntentDelay %v; want %v, the real clock, %v",
			o.ResyncPeriod, o.Clock, o.IntentDelay, DefaultResyncPeriod, defaultIntentDelay)
	}
	if o := (Options{ResyncPeriod: -1}).withDefaults(); o.ResyncPeriod >= 0 {
		t.Errorf("ResyncPeriod -1 became %v; negative must stay negative (never resync)", o.ResyncPeriod)
	}

	kube := fake.NewClientset()
	noSnap := sharedcache.New(kube, nil)
	defer noSnap.Shutdown()
	err := Options{Cache: noSnap, SnapshotClient: snapfake.NewSimpleClientset(), Workers: -1, CloneProtectionWorkers: -2, Timeout: time.Second, IntentDelay: 2 * time.Second,
		Capacity: &CapacityOptions{Namespace: "ns", Workers: -2}}.withDefaults().Validate()
	for _, want := range []string{"Cache:", "Workers -1", "CloneProtectionWorkers -2", "IntentDelay 2s", "Capacity.Workers -2"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Validate = %v; want every bad field reported, %q among them", err, want)
		}
	}
	if c := (Options{Capacity: &CapacityOptions{Namespace: "ns"}}).withDefaults().Capacity; c.Workers != 1 || c.PollInterval != DefaultCapacityPollInterval {
		t.Errorf("Capacity defaults: Workers %d, PollInterval %v; want 1 (upstream --capacity-threads), %v", c.Workers, c.PollInterval, DefaultCapacityPollInterval)
	}
	withSnap := sharedcache.New(kube, snapfake.NewSimpleClientset())
	defer withSnap.Shutdown()
	if err := (Options{Cache: withSnap, SnapshotClient: snapfake.NewSimpleClientset()}).withDefaults().Validate(); err != nil {
		t.Errorf("a Cache with snapshot informers: Validate = %v, want nil", err)
	}
}

// staticDriver is a Driver for tests that make no CSI call.
type staticDriver struct{ caps csiconn.Capabilities }

func (staticDriver) DriverName() string                   { return "static.csi.test" }
func (d staticDriver) Capabilities() csiconn.Capabilities { return d.caps }
func (staticDriver) Controller() csi.ControllerClient     { return nil }

// TestNewTouchesNoSharedCache: New requests no informer and registers no
// handler, so a Provisioner built and never run leaves a shared Cache as
// it found it; only Run does.
func TestNewTouchesNoSharedCache(t *testing.T) {
	kube := fake.NewClientset()
	shared := sharedcache.New(kube, snapfake.NewSimpleClientset())
	defer shared.Shutdown()
	drv := staticDriver{csiconn.Capabilities{ControllerService: true, Topology: true, Controller: map[csi.ControllerServiceCapability_RPC_Type]bool{
		csi.ControllerServiceCapability_RPC_CREATE_DELETE_VOLUME:     true,
		csi.ControllerServiceCapability_RPC_PUBLISH_UNPUBLISH_VOLUME: true,
	}}}
	if _, err := New(Options{Cache: shared, SnapshotClient: snapfake.NewSimpleClientset(),
		Capacity: &CapacityOptions{Namespace: "kube-system"}}, kube, drv); err != nil {
		t.Fatal(err)
	}
	shared.Start()
	if started := shared.Kube.WaitForCacheSync(t.Context().Done()); len(started) != 0 {
		t.Errorf("New requested %d informers of the shared cache (%v); want none before Run", len(started), started)
	}
	if started := shared.Snapshot.WaitForCacheSync(t.Context().Done()); len(started) != 0 {
		t.Errorf("New requested %d snapshot informers of the shared cache; want none before Run", len(started))
	}
}

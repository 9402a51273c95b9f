package provisioner

import (
	"strings"
	"testing"
	"time"

	snapfake "github.com/kubernetes-csi/external-snapshotter/client/v8/clientset/versioned/fake"
	"k8s.io/client-go/kubernetes/fake"

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
	err := Options{Cache: noSnap, SnapshotClient: snapfake.NewSimpleClientset(), Workers: -1, Timeout: time.Second, IntentDelay: 2 * time.Second}.withDefaults().Validate()
	for _, want := range []string{"Cache:", "Workers -1", "IntentDelay 2s"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Validate = %v; want every bad field reported, %q among them", err, want)
		}
	}
	withSnap := sharedcache.New(kube, snapfake.NewSimpleClientset())
	defer withSnap.Shutdown()
	if err := (Options{Cache: withSnap, SnapshotClient: snapfake.NewSimpleClientset()}).withDefaults().Validate(); err != nil {
		t.Errorf("a Cache with snapshot informers: Validate = %v, want nil", err)
	}
}

package provisioner

import (
	"testing"
	"time"

	v1 "k8s.io/api/core/v1"

	"github.com/csi-kit/sidecars/testkit/eventually"
	"github.com/csi-kit/sidecars/testkit/fakedriver"
)

// TestClonedClaim: deleted source claims keep the clone-protection
// finalizer while a Pending claim clones from them, and lose it, on the
// clone-source queue (two workers here), once their clones are bound. The
// retry backoff may reach a minute meanwhile: a clone that binds requeues
// its source at once.
func TestClonedClaim(t *testing.T) {
	e := newEnv(t, fakedriver.Options{Capabilities: noTopology()})
	e.start(Options{CloneProtectionWorkers: 2, RetryIntervalMax: time.Minute}, nil)
	sc := e.class("std", nil)
	sources := []string{"src-a", "src-b"}
	for _, s := range sources {
		e.claim(s, sc.Name, "1Gi", nil)
	}
	for _, s := range sources {
		e.waitBound(s)
	}
	e.drv.Hang("CreateVolume")
	for _, s := range sources {
		e.claim("copy-of-"+s, sc.Name, "1Gi", func(c *v1.PersistentVolumeClaim) {
			c.Spec.DataSource = &v1.TypedLocalObjectReference{Kind: "PersistentVolumeClaim", Name: s}
		})
	}
	eventually.Require(t, 30*time.Second, "both clones in flight", eventually.True("both clones in flight", func() bool {
		return e.drv.InFlight("CreateVolume") >= 2
	}))
	for _, s := range sources {
		if !hasFinalizer(e.getClaim(s).Finalizers, FinalizerCloneSource) {
			t.Fatalf("source %s lacks %s while cloned", s, FinalizerCloneSource)
		}
		e.deleteClaim(s)
	}
	time.Sleep(3 * time.Second) // the queue retries meanwhile; its backoff grows
	for _, s := range sources {
		c := e.getClaim(s)
		if c == nil || c.DeletionTimestamp == nil || !hasFinalizer(c.Finalizers, FinalizerCloneSource) {
			t.Fatalf("source %s released while its clone is Pending: %+v", s, c)
		}
	}
	e.drv.Unhang("CreateVolume")
	for _, s := range sources {
		e.waitBound("copy-of-" + s)
	}
	eventually.Require(t, 20*time.Second, "sources gone", eventually.True("sources gone", func() bool {
		for _, s := range sources {
			if e.getClaim(s) != nil {
				return false
			}
		}
		return true
	}))
}

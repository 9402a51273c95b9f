package provisioner

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	storagev1 "k8s.io/api/storage/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	"github.com/csi-kit/sidecars/testkit/eventually"
	"github.com/csi-kit/sidecars/testkit/fakedriver"
)

// TestCapacityWFFC (seed 001): local volumes go only to nodes whose
// published capacity fits, because the scheduler reads CSIStorageCapacity.
func TestCapacityWFFC(t *testing.T) {
	key := "topology.local.csi/node"
	e := newEnv(t, fakedriver.Options{Capabilities: fakedriver.Provisioner, NodeID: "small",
		Topology: map[string]string{key: "small"}, Capacity: 1 << 30,
		Nodes: []fakedriver.Node{{ID: "big", Topology: map[string]string{key: "big"}, Capacity: 20 << 30}}})
	if _, err := e.kube.StorageV1().CSIDrivers().Create(e.ctx, &storagev1.CSIDriver{ObjectMeta: metav1.ObjectMeta{Name: e.driver},
		Spec: storagev1.CSIDriverSpec{StorageCapacity: ptr.To(true), AttachRequired: ptr.To(false)}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = e.kube.StorageV1().CSIDrivers().Delete(context.Background(), e.driver, metav1.DeleteOptions{})
	})
	e.node(e.ns+"-small", map[string]string{key: "small", "test": e.ns}, key)
	e.node(e.ns+"-big", map[string]string{key: "big", "test": e.ns}, key)
	sc := e.class("local", wffcMode)
	e.start(Options{VolumeNamePrefix: "local", StrictTopology: true, Capacity: &CapacityOptions{Namespace: e.ns, PollInterval: time.Second,
		Owner: &metav1.OwnerReference{APIVersion: "v1", Kind: "Namespace", Name: e.ns, UID: "00000000-0000-0000-0000-000000000001"}}}, nil)
	eventually.Require(e.t, 30*time.Second, "two CSIStorageCapacity objects", eventually.True("two CSIStorageCapacity objects", func() bool {
		l, err := e.kube.StorageV1().CSIStorageCapacities(e.ns).List(e.ctx, metav1.ListOptions{})
		if err != nil || len(l.Items) != 2 {
			return false
		}
		for _, o := range l.Items {
			if o.StorageClassName != sc.Name || o.Capacity == nil || len(o.OwnerReferences) != 1 {
				return false
			}
		}
		return true
	}))
	for i := 0; i < 3; i++ {
		e.claim(fmt.Sprintf("data-%d", i), sc.Name, "5Gi", nil)
		e.pod(fmt.Sprintf("app-%d", i), map[string]string{"test": e.ns}, fmt.Sprintf("data-%d", i))
	}
	for i := 0; i < 3; i++ {
		pv := e.waitBound(fmt.Sprintf("data-%d", i))
		if !strings.HasPrefix(pv.Name, "local-") {
			t.Errorf("PV name %s lacks the prefix", pv.Name)
		}
		if v := pv.Spec.NodeAffinity.Required.NodeSelectorTerms[0].MatchExpressions[0].Values[0]; v != "big" {
			t.Errorf("claim %d placed on %s, want big", i, v)
		}
	}
	// The published capacity of the big node went down by 15Gi.
	eventually.Require(e.t, 30*time.Second, "capacity refreshed", eventually.True("capacity refreshed", func() bool {
		l, err := e.kube.StorageV1().CSIStorageCapacities(e.ns).List(e.ctx, metav1.ListOptions{})
		if err != nil {
			return false
		}
		for _, o := range l.Items {
			if o.NodeTopology.MatchLabels[key] == "big" && o.Capacity.Value() == 5<<30 {
				return true
			}
		}
		return false
	}))
}

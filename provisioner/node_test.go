package provisioner

import (
	"fmt"
	"testing"
	"time"

	v1 "k8s.io/api/core/v1"
	storagev1 "k8s.io/api/storage/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/csi-kit/sidecars/csiconn"
	"github.com/csi-kit/sidecars/testkit/eventually"
	"github.com/csi-kit/sidecars/testkit/fakedriver"
)

func TestDecideNodeClaim(t *testing.T) {
	immediate := &storagev1.StorageClass{ObjectMeta: metav1.ObjectMeta{Name: "imm"}}
	claim := func(selected string) *v1.PersistentVolumeClaim {
		c := &v1.PersistentVolumeClaim{ObjectMeta: metav1.ObjectMeta{Name: "c", Annotations: map[string]string{}}}
		if selected != "" {
			c.Annotations[annSelectedNode] = selected
		}
		return c
	}
	for _, tc := range []struct {
		name      string
		in        claimAction
		pvc       *v1.PersistentVolumeClaim
		class     *storagev1.StorageClass
		immediate bool
		want      claimAction
	}{
		{"selected here", claimProvision, claim("a"), immediate, true, claimProvision},
		{"selected elsewhere", claimProvision, claim("b"), immediate, true, claimIgnore},
		{"WFFC, not yet scheduled", claimWait, claim(""), immediate, true, claimWait},
		{"Immediate, no node: offer", claimProvision, claim(""), immediate, true, claimTake},
		{"Immediate, no node, immediate binding off", claimProvision, claim(""), immediate, false, claimIgnore},
		{"no class", claimProvision, claim(""), nil, true, claimIgnore},
		{"intent conversion stays", claimConvertIntent, claim("b"), immediate, true, claimConvertIntent},
		{"ignore stays", claimIgnore, claim("a"), immediate, true, claimIgnore},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, why := decideNodeClaim(tc.in, "", tc.pvc, tc.class, "a", tc.immediate)
			if got != tc.want {
				t.Errorf("action %v (%s), want %v", got, why, tc.want)
			}
		})
	}
}

func TestManagedByNode(t *testing.T) {
	p := &Provisioner{opts: Options{NodeDeployment: &NodeDeployment{NodeName: "worker-1"}}}
	if got := p.managedBy(); got != "external-provisioner-worker-1" {
		t.Errorf("managedBy = %q", got)
	}
	long := fmt.Sprintf("%0100d", 7)
	p.opts.NodeDeployment.NodeName = long
	got := p.managedBy()
	if len(got) != 63 || got[:len(managedByDefault)] != managedByDefault {
		t.Errorf("managedBy for a long name = %q (%d chars), want 63 starting with %s", got, len(got), managedByDefault)
	}
	p.opts.NodeDeployment = nil
	if got := p.managedBy(); got != managedByDefault {
		t.Errorf("managedBy without node deployment = %q", got)
	}
}

// TestNodeDeployment: one provisioner per node, each with its own driver
// (node-local storage). A claim scheduled to node b is provisioned by b
// alone, with b's topology; an Immediate claim is taken by exactly one
// node; an Immediate claim whose class allows only node a goes to a.
func TestNodeDeployment(t *testing.T) {
	key := "topology.example.com/node"
	e := newEnv(t, fakedriver.Options{Capabilities: fakedriver.Provisioner, NodeID: "a", Topology: map[string]string{key: "a"}})
	drvB := fakedriver.Start(t, fakedriver.Options{Name: e.driver, Capabilities: fakedriver.Provisioner, NodeID: "b", Topology: map[string]string{key: "b"}})
	connB, err := csiconn.Connect(e.ctx, csiconn.Options{Address: drvB.Endpoint()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = connB.Close() })
	nodeOpts := func(node string) Options {
		return Options{NodeDeployment: &NodeDeployment{NodeName: e.ns + "-" + node, ImmediateBinding: true,
			BaseDelay: 300 * time.Millisecond, MaxDelay: time.Second}}
	}
	e.start(nodeOpts("a"), nil)
	connA := e.conn
	e.conn = connB
	e.start(nodeOpts("b"), nil)
	e.conn = connA

	wffc := e.class("local", wffcMode)
	e.claim("scheduled", wffc.Name, "1Gi", func(c *v1.PersistentVolumeClaim) {
		c.Annotations = map[string]string{annSelectedNode: e.ns + "-b"}
	})
	pv := e.waitBound("scheduled")
	if len(e.drv.Volumes()) != 0 || len(drvB.Volumes()) != 1 {
		t.Errorf("volumes on a: %d, on b: %d; want the scheduled claim on b only", len(e.drv.Volumes()), len(drvB.Volumes()))
	}
	if got := affinityValue(pv, key); got != "b" {
		t.Errorf("PV node affinity %s=%q, want b", key, got)
	}

	imm := e.class("imm", nil)
	e.claim("anywhere", imm.Name, "1Gi", nil)
	e.waitBound("anywhere")
	if n := len(e.drv.Volumes()) + len(drvB.Volumes()); n != 2 {
		t.Errorf("%d volumes on both nodes after the Immediate claim, want 2 (one node took it)", n)
	}
	if sel := e.getClaim("anywhere").Annotations[annSelectedNode]; sel != e.ns+"-a" && sel != e.ns+"-b" {
		t.Errorf("Immediate claim's selected node %q, want one of the two nodes", sel)
	}

	onlyA := e.class("only-a", func(sc *storagev1.StorageClass) {
		sc.AllowedTopologies = []v1.TopologySelectorTerm{{MatchLabelExpressions: []v1.TopologySelectorLabelRequirement{{Key: key, Values: []string{"a"}}}}}
	})
	e.claim("pinned", onlyA.Name, "1Gi", nil)
	e.waitBound("pinned")
	if sel := e.getClaim("pinned").Annotations[annSelectedNode]; sel != e.ns+"-a" {
		t.Errorf("claim of a class allowing only a: selected node %q", sel)
	}
	for _, name := range []string{"scheduled", "anywhere", "pinned"} {
		e.deleteClaim(name)
	}
	eventually.Require(e.t, 30*time.Second, "volumes deleted on their nodes", eventually.True("volumes deleted on their nodes", func() bool {
		return len(e.drv.Volumes())+len(drvB.Volumes()) == 0
	}))
}

func affinityValue(pv *v1.PersistentVolume, key string) string {
	if pv.Spec.NodeAffinity == nil || pv.Spec.NodeAffinity.Required == nil {
		return ""
	}
	for _, term := range pv.Spec.NodeAffinity.Required.NodeSelectorTerms {
		for _, r := range term.MatchExpressions {
			if r.Key == key && len(r.Values) == 1 {
				return r.Values[0]
			}
		}
	}
	return ""
}

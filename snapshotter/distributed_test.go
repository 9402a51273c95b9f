package snapshotter

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	crdv1 "github.com/kubernetes-csi/external-snapshotter/client/v8/apis/volumesnapshot/v1"
	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"

	"github.com/csi-kit/sidecars/csiconn"
	"github.com/csi-kit/sidecars/internal/kube"
	"github.com/csi-kit/sidecars/testkit/controlplane"
	"github.com/csi-kit/sidecars/testkit/fakedriver"
)

func testNode(name string, lbl map[string]string) *v1.Node {
	return &v1.Node{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: lbl}}
}

func pinnedPV(terms ...v1.NodeSelectorTerm) *v1.PersistentVolume {
	pv := &v1.PersistentVolume{ObjectMeta: metav1.ObjectMeta{Name: "pv"}}
	if terms != nil {
		pv.Spec.NodeAffinity = &v1.VolumeNodeAffinity{Required: &v1.NodeSelector{NodeSelectorTerms: terms}}
	}
	return pv
}

func labelTerm(key string, values ...string) v1.NodeSelectorTerm {
	return v1.NodeSelectorTerm{MatchExpressions: []v1.NodeSelectorRequirement{{Key: key, Operator: v1.NodeSelectorOpIn, Values: values}}}
}

// TestManagedByNode: the node of a content is the one matching the PV's
// required node affinity, the lowest name among several, none without a
// match or an affinity.
func TestManagedByNode(t *testing.T) {
	nodes := []*v1.Node{
		testNode("node-c", map[string]string{v1.LabelHostname: "node-c", "rack": "r1"}),
		testNode("node-a", map[string]string{v1.LabelHostname: "node-a", "rack": "r1", "disk": "ssd"}),
		testNode("node-b", map[string]string{v1.LabelHostname: "node-b", "rack": "r2"}),
	}
	for _, tc := range []struct {
		name string
		pv   *v1.PersistentVolume
		want string
	}{
		{"no affinity", pinnedPV(), ""},
		{"affinity without required", &v1.PersistentVolume{Spec: v1.PersistentVolumeSpec{NodeAffinity: &v1.VolumeNodeAffinity{}}}, ""},
		{"hostname", pinnedPV(labelTerm(v1.LabelHostname, "node-b")), "node-b"},
		{"custom label", pinnedPV(labelTerm("disk", "ssd")), "node-a"},
		{"metadata.name field", pinnedPV(v1.NodeSelectorTerm{MatchFields: []v1.NodeSelectorRequirement{{Key: "metadata.name", Operator: v1.NodeSelectorOpIn, Values: []string{"node-c"}}}}), "node-c"},
		{"several match: lowest name", pinnedPV(labelTerm("rack", "r1")), "node-a"},
		{"terms are ORed", pinnedPV(labelTerm("rack", "r9"), labelTerm("rack", "r2")), "node-b"},
		{"no node matches", pinnedPV(labelTerm(v1.LabelHostname, "gone")), ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := managedByNode(tc.pv, nodes); got != tc.want {
				t.Errorf("managedByNode = %q, want %q", got, tc.want)
			}
			// the answer does not depend on the nodes' order
			rev := slices.Clone(nodes)
			slices.Reverse(rev)
			if got := managedByNode(tc.pv, rev); got != tc.want {
				t.Errorf("managedByNode over reversed nodes = %q, want %q", got, tc.want)
			}
		})
	}
}

// TestSidecarHandlesOwnNode: a node-mode sidecar takes only the contents
// labelled for its node, even if one reached its cache.
func TestSidecarHandlesOwnNode(t *testing.T) {
	h := ptr("vol")
	vsc := func(lbl map[string]string) *crdv1.VolumeSnapshotContent {
		return &crdv1.VolumeSnapshotContent{ObjectMeta: metav1.ObjectMeta{Labels: lbl},
			Spec: crdv1.VolumeSnapshotContentSpec{Driver: "d", Source: crdv1.VolumeSnapshotContentSource{VolumeHandle: h}}}
	}
	node := &Sidecar{opts: SidecarOptions{DriverName: "d", NodeName: "node-a"}}
	all := &Sidecar{opts: SidecarOptions{DriverName: "d"}}
	for _, tc := range []struct {
		lbl           map[string]string
		node, cluster bool
	}{
		{map[string]string{LabelManagedBy: "node-a"}, true, true},
		{map[string]string{LabelManagedBy: "node-b"}, false, true},
		{nil, false, true},
	} {
		if got := node.handles(vsc(tc.lbl)); got != tc.node {
			t.Errorf("node sidecar handles %v = %v, want %v", tc.lbl, got, tc.node)
		}
		if got := all.handles(vsc(tc.lbl)); got != tc.cluster {
			t.Errorf("cluster sidecar handles %v = %v, want %v", tc.lbl, got, tc.cluster)
		}
	}
}

func TestSidecarNodeNameValidated(t *testing.T) {
	o := SidecarOptions{DriverName: "d", NodeName: strings.Repeat("n", 64)}
	if err := o.withDefaults().Validate(); err == nil || !strings.Contains(err.Error(), "NodeName") {
		t.Errorf("64-character NodeName: Validate = %v, want an error about NodeName", err)
	}
	o.NodeName = "node-1.example"
	if err := o.withDefaults().Validate(); err != nil {
		t.Errorf("NodeName %q: %v", o.NodeName, err)
	}
}

// nodeSidecar is one node's driver and sidecar of a distributed test.
type nodeSidecar struct {
	node string
	drv  *fakedriver.Driver
	conn *csiconn.Conn
	s    *Sidecar
}

// TestDistributedSnapshotting runs one controller with distributed
// snapshotting and, on two nodes, a driver of the same name with its own
// node-mode sidecar. Each PV is pinned to one node (by hostname, by a
// custom label); each snapshot must be cut by its node's driver only, and
// each sidecar must not even cache the other node's content.
func TestDistributedSnapshotting(t *testing.T) {
	e := newEnv(t, envOptions{})
	nodes := []*nodeSidecar{{node: e.ns + "-node-a"}, {node: e.ns + "-node-b"}}
	for i, n := range nodes {
		if err := controlplane.CreateNode(e.ctx, e.kube, n.node, map[string]string{"disk.csi.test/pool": fmt.Sprintf("pool-%d", i)}); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = e.kube.CoreV1().Nodes().Delete(context.Background(), n.node, metav1.DeleteOptions{}) })
		n.drv = fakedriver.Start(t, fakedriver.Options{Name: e.driver, Capabilities: fakedriver.Snapshotter, NodeID: n.node})
		conn, err := csiconn.Connect(e.ctx, csiconn.Options{Address: n.drv.Endpoint(), CallTimeout: 2 * time.Second})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { conn.Close() })
		n.conn = conn
	}
	e.class("gold", crdv1.VolumeSnapshotContentDelete, false, nil)
	// PV a: pinned by hostname; PV b: by the custom pool label.
	affinity := []v1.NodeSelectorTerm{labelTerm(v1.LabelHostname, nodes[0].node), labelTerm("disk.csi.test/pool", "pool-1")}
	for i, n := range nodes {
		resp, err := n.conn.Controller().CreateVolume(e.ctx, volumeRequest(fmt.Sprintf("%s-vol-%d", e.ns, i)))
		if err != nil {
			t.Fatal(err)
		}
		aff := &v1.VolumeNodeAffinity{Required: &v1.NodeSelector{NodeSelectorTerms: []v1.NodeSelectorTerm{affinity[i]}}}
		if _, err := makePinnedPVC(e.ctx, e.kube, e.ns, fmt.Sprintf("data-%d", i), e.driver, resp.GetVolume().GetVolumeId(), aff); err != nil {
			t.Fatal(err)
		}
	}

	e.startController(ControllerOptions{DistributedSnapshotting: true})
	for _, n := range nodes {
		rec, stop, _ := kube.RecorderFor(e.kube, SidecarComponent+" "+e.driver)
		e.onStop(stop)
		drv, err := NewCSIDriver(n.conn)
		if err != nil {
			t.Fatal(err)
		}
		n.s, err = NewSidecar(SidecarOptions{SnapshotClient: e.snap, DriverName: e.driver, NodeName: n.node, Recorder: rec,
			RetryIntervalStart: 100 * time.Millisecond, RetryIntervalMax: 2 * time.Second, ReadyPollStart: 100 * time.Millisecond}, e.kube, drv)
		if err != nil {
			t.Fatal(err)
		}
		e.run("sidecar "+n.node, n.s.Run)
	}

	for i := range nodes {
		e.snapshot(fmt.Sprintf("snap-%d", i), fmt.Sprintf("data-%d", i), "gold")
	}
	for i, n := range nodes {
		vs := e.waitReady(fmt.Sprintf("snap-%d", i))
		vsc, err := e.snap.SnapshotV1().VolumeSnapshotContents().Get(e.ctx, *vs.Status.BoundVolumeSnapshotContentName, metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if got := vsc.Labels[LabelManagedBy]; got != n.node {
			t.Errorf("content %s: label %s = %q, want %q", vsc.Name, LabelManagedBy, got, n.node)
		}
		snaps := n.drv.Snapshots()
		if len(snaps) != 1 {
			t.Fatalf("driver of %s holds %d snapshots, want 1: %+v", n.node, len(snaps), snaps)
		}
		if want := "snapshot-" + string(vs.UID); snaps[0].Name != want {
			t.Errorf("driver of %s cut %q, want %q (its own volume's snapshot)", n.node, snaps[0].Name, want)
		}
		if vsc.Status == nil || vsc.Status.SnapshotHandle == nil || *vsc.Status.SnapshotHandle != snaps[0].ID {
			t.Errorf("content %s status %+v, want handle %s from the driver of %s", vsc.Name, vsc.Status, snaps[0].ID, n.node)
		}
		if calls := n.drv.Calls("CreateSnapshot"); calls < 1 {
			t.Errorf("driver of %s got no CreateSnapshot call", n.node)
		}
	}
	// The label selector keeps the other node's content out of each
	// sidecar's cache.
	for _, n := range nodes {
		if !started(n.s.rt.Load()) {
			t.Fatalf("sidecar of %s not synced", n.node)
		}
		cached, err := n.s.vscLister.List(labels.Everything())
		if err != nil {
			t.Fatal(err)
		}
		for _, c := range cached {
			if c.Labels[LabelManagedBy] != n.node {
				t.Errorf("sidecar of %s caches content %s of node %q", n.node, c.Name, c.Labels[LabelManagedBy])
			}
		}
		if len(cached) == 0 {
			t.Errorf("sidecar of %s caches no content", n.node)
		}
	}
}

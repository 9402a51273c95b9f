package provisioner

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/container-storage-interface/spec/lib/go/csi"
	snapv1 "github.com/kubernetes-csi/external-snapshotter/client/v8/apis/volumesnapshot/v1"
	"google.golang.org/grpc/codes"
	v1 "k8s.io/api/core/v1"
	storagev1 "k8s.io/api/storage/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

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
	e.eventually("two CSIStorageCapacity objects", 30*time.Second, func() (bool, error) {
		l, err := e.kube.StorageV1().CSIStorageCapacities(e.ns).List(e.ctx, metav1.ListOptions{})
		if err != nil || len(l.Items) != 2 {
			return false, err
		}
		for _, o := range l.Items {
			if o.StorageClassName != sc.Name || o.Capacity == nil || len(o.OwnerReferences) != 1 {
				return false, fmt.Errorf("object %+v", o)
			}
		}
		return true, nil
	})
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
	e.eventually("capacity refreshed", 30*time.Second, func() (bool, error) {
		l, err := e.kube.StorageV1().CSIStorageCapacities(e.ns).List(e.ctx, metav1.ListOptions{})
		if err != nil {
			return false, err
		}
		for _, o := range l.Items {
			if o.NodeTopology.MatchLabels[key] == "big" && o.Capacity.Value() == 5<<30 {
				return true, nil
			}
		}
		return false, nil
	})
}

func TestRestoreFromSnapshot(t *testing.T) {
	e := newEnv(t, fakedriver.Options{Capabilities: noTopology()})
	e.start(Options{}, nil)
	sc := e.class("std", nil)
	e.claim("src", sc.Name, "1Gi", nil)
	srcPV := e.waitBound("src")
	snap, err := e.conn.Controller().CreateSnapshot(e.ctx, &csi.CreateSnapshotRequest{Name: "snap-1", SourceVolumeId: srcPV.Spec.CSI.VolumeHandle})
	if err != nil {
		t.Fatal(err)
	}
	handle := snap.Snapshot.SnapshotId
	vs, err := e.snaps.SnapshotV1().VolumeSnapshots(e.ns).Create(e.ctx, &snapv1.VolumeSnapshot{
		ObjectMeta: metav1.ObjectMeta{Name: "snap", Namespace: e.ns},
		Spec:       snapv1.VolumeSnapshotSpec{Source: snapv1.VolumeSnapshotSource{VolumeSnapshotContentName: ptr.To(e.ns + "-content")}},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	content, err := e.snaps.SnapshotV1().VolumeSnapshotContents().Create(e.ctx, &snapv1.VolumeSnapshotContent{
		ObjectMeta: metav1.ObjectMeta{Name: e.ns + "-content"},
		Spec: snapv1.VolumeSnapshotContentSpec{Driver: e.driver, DeletionPolicy: snapv1.VolumeSnapshotContentRetain,
			Source:            snapv1.VolumeSnapshotContentSource{SnapshotHandle: &handle},
			VolumeSnapshotRef: v1.ObjectReference{Name: "snap", Namespace: e.ns, UID: vs.UID}},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = e.snaps.SnapshotV1().VolumeSnapshotContents().Delete(context.Background(), content.Name, metav1.DeleteOptions{})
	})
	e.claim("restored", sc.Name, "1Gi", func(c *v1.PersistentVolumeClaim) {
		c.Spec.DataSource = &v1.TypedLocalObjectReference{APIGroup: ptr.To(snapshotAPIGroup), Kind: "VolumeSnapshot", Name: "snap"}
	})
	// Not ready yet: no volume, a clear event.
	e.waitEvent("restored", ReasonProvisioningFailed, "not bound to a content yet")
	content.Status = &snapv1.VolumeSnapshotContentStatus{SnapshotHandle: &handle, ReadyToUse: ptr.To(true), RestoreSize: ptr.To(int64(1 << 30))}
	if _, err := e.snaps.SnapshotV1().VolumeSnapshotContents().UpdateStatus(e.ctx, content, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	vs.Status = &snapv1.VolumeSnapshotStatus{BoundVolumeSnapshotContentName: &content.Name, ReadyToUse: ptr.To(true)}
	e.drv.Hang("CreateVolume")
	if _, err := e.snaps.SnapshotV1().VolumeSnapshots(e.ns).UpdateStatus(e.ctx, vs, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	e.eventually("restore in flight", 30*time.Second, func() (bool, error) { return e.drv.InFlight("CreateVolume") > 0, nil })
	if s, err := e.snaps.SnapshotV1().VolumeSnapshots(e.ns).Get(e.ctx, "snap", metav1.GetOptions{}); err != nil ||
		!hasFinalizer(s.Finalizers, FinalizerSnapshotSource) {
		t.Errorf("snapshot not protected during the restore: %v %v", s.Finalizers, err)
	}
	e.drv.Unhang("CreateVolume")
	pv := e.waitBound("restored")
	e.eventually("source protection removed", 30*time.Second, func() (bool, error) {
		s, err := e.snaps.SnapshotV1().VolumeSnapshots(e.ns).Get(e.ctx, "snap", metav1.GetOptions{})
		return err == nil && !hasFinalizer(s.Finalizers, FinalizerSnapshotSource), err
	})
	for _, v := range e.drv.Volumes() {
		if v.ID == pv.Spec.CSI.VolumeHandle && v.SourceSnapshotID != handle {
			t.Errorf("restored volume source %q, want %q", v.SourceSnapshotID, handle)
		}
	}
}

func TestClone(t *testing.T) {
	e := newEnv(t, fakedriver.Options{Capabilities: noTopology()})
	e.start(Options{}, nil)
	sc := e.class("std", nil)
	e.claim("src", sc.Name, "1Gi", nil)
	srcPV := e.waitBound("src")
	e.claim("small", sc.Name, "512Mi", func(c *v1.PersistentVolumeClaim) {
		c.Spec.DataSource = &v1.TypedLocalObjectReference{Kind: "PersistentVolumeClaim", Name: "src"}
	})
	e.claim("copy", sc.Name, "1Gi", func(c *v1.PersistentVolumeClaim) {
		c.Spec.DataSource = &v1.TypedLocalObjectReference{Kind: "PersistentVolumeClaim", Name: "src"}
	})
	pv := e.waitBound("copy")
	for _, v := range e.drv.Volumes() {
		if v.ID == pv.Spec.CSI.VolumeHandle && v.SourceVolumeID != srcPV.Spec.CSI.VolumeHandle {
			t.Errorf("clone source %q, want %q", v.SourceVolumeID, srcPV.Spec.CSI.VolumeHandle)
		}
	}
	if src := e.getClaim("src"); !hasFinalizer(src.Finalizers, FinalizerCloneSource) {
		t.Errorf("source finalizers %v lack %s", src.Finalizers, FinalizerCloneSource)
	}
	e.waitEvent("small", ReasonProvisioningFailed, "smaller than the source")
	// Deleting the source waits for the pending clone, then goes.
	e.deleteClaim("small")
	e.deleteClaim("src")
	e.eventually("source claim gone", 30*time.Second, func() (bool, error) { return e.getClaim("src") == nil, nil })
}

func TestSecretsTemplating(t *testing.T) {
	e := newEnv(t, fakedriver.Options{Capabilities: noTopology(),
		RequireSecrets: map[string]map[string]string{"CreateVolume": {"token": "s3cr3t"}, "DeleteVolume": {"token": "s3cr3t"}}})
	e.start(Options{}, nil)
	if _, err := e.kube.CoreV1().Secrets(e.ns).Create(e.ctx, &v1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "db-creds", Namespace: e.ns},
		StringData: map[string]string{"token": "s3cr3t"}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	sc := e.class("sec", func(sc *storagev1.StorageClass) {
		sc.Parameters = map[string]string{
			"csi.storage.k8s.io/provisioner-secret-name":      "${pvc.annotations['team']}-creds",
			"csi.storage.k8s.io/provisioner-secret-namespace": "${pvc.namespace}",
			"csi.storage.k8s.io/node-stage-secret-name":       "stage-${pvc.name}",
			"csi.storage.k8s.io/node-stage-secret-namespace":  "${pvc.namespace}",
		}
	})
	e.claim("data", sc.Name, "1Gi", func(c *v1.PersistentVolumeClaim) { c.Annotations = map[string]string{"team": "db"} })
	pv := e.waitBound("data")
	if pv.Annotations[annDeletionSecretName] != "db-creds" || pv.Annotations[annDeletionSecretNamespace] != e.ns {
		t.Errorf("deletion secret annotations %v", pv.Annotations)
	}
	if r := pv.Spec.CSI.NodeStageSecretRef; r == nil || r.Name != "stage-data" || r.Namespace != e.ns {
		t.Errorf("node stage secret ref %v", r)
	}
	e.deleteClaim("data")
	e.eventually("volume deleted with the secret", 30*time.Second, func() (bool, error) { return len(e.drv.Volumes()) == 0, nil })
}

// TestResourceExhaustedReschedule: the claim goes back to the scheduler.
func TestResourceExhaustedReschedule(t *testing.T) {
	key := "topology.example.com/node"
	e := newEnv(t, fakedriver.Options{Capabilities: fakedriver.Provisioner, NodeID: "n", Topology: map[string]string{key: "n"}})
	e.node(e.ns+"-n", map[string]string{key: "n", "test": e.ns}, key)
	e.drv.FailNext("CreateVolume", codes.ResourceExhausted, 1)
	e.start(Options{}, nil)
	sc := e.class("local", wffcMode)
	e.claim("data", sc.Name, "1Gi", nil)
	e.pod("app", map[string]string{"test": e.ns}, "data")
	e.waitEvent("data", ReasonProvisioningFailed, "the scheduler will pick another node")
	e.waitBound("data")
	if n := e.drv.Calls("CreateVolume"); n != 2 {
		t.Errorf("CreateVolume calls %d, want 2 (one exhausted, one after rescheduling)", n)
	}
}

// TestFaultTimeoutThenDelete: the driver hangs past the timeout, the claim
// is deleted, the driver recovers: nothing is left on the backend. With a
// negative IntentDelay the record is on the claim before the first call;
// with the default it is written while the slow call runs.
func TestFaultTimeoutThenDelete(t *testing.T) {
	for _, tc := range []struct {
		name  string
		delay time.Duration
	}{{"record-first", -1}, {"record-while-slow", 100 * time.Millisecond}} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, fakedriver.Options{Capabilities: noTopology()})
			e.drv.Hang("CreateVolume")
			e.start(Options{Timeout: 500 * time.Millisecond, IntentDelay: tc.delay}, nil)
			sc := e.class("std", nil)
			e.claim("data", sc.Name, "1Gi", nil)
			e.eventually("a create in flight", 30*time.Second, func() (bool, error) { return e.drv.InFlight("CreateVolume") > 0, nil })
			uid := e.getClaim("data").UID
			recorded := func() bool { return e.record(uid) != nil }
			if tc.delay < 0 && !recorded() {
				t.Fatalf("no provisioning record before CreateVolume")
			}
			e.eventually("intent recorded during the call", 10*time.Second, func() (bool, error) { return recorded(), nil })
			e.deleteClaim("data")
			time.Sleep(700 * time.Millisecond) // let the call time out on our side
			e.drv.Unhang("CreateVolume")
			e.eventually("claim gone", 30*time.Second, func() (bool, error) { return e.getClaim("data") == nil, nil })
			e.eventually("backend empty and record gone", 30*time.Second, func() (bool, error) {
				return len(e.drv.Volumes()) == 0 && e.record(uid) == nil, nil
			})
			if d := e.drv.Calls("DeleteVolume"); d == 0 {
				t.Errorf("no DeleteVolume call")
			}
		})
	}
}

// TestIntentOnlyWhenSlow: a driver that answers at once costs no claim
// write (no intent finalizer on the bound claim); a claim deleted during a
// slow call, before its record could be written, still leaves nothing on
// the backend, whether the call then succeeds or times out.
func TestIntentOnlyWhenSlow(t *testing.T) {
	t.Run("fast", func(t *testing.T) {
		e := newEnv(t, fakedriver.Options{Capabilities: noTopology()})
		e.start(Options{}, nil)
		sc := e.class("std", nil)
		e.claim("data", sc.Name, "1Gi", nil)
		e.waitBound("data")
		if r := e.record(e.getClaim("data").UID); r != nil {
			t.Errorf("fast create wrote a provisioning record: %s", r.Name)
		}
	})
	for _, tc := range []struct {
		name    string
		timeout time.Duration
	}{{"deleted-then-succeeds", 10 * time.Second}, {"deleted-then-times-out", 1500 * time.Millisecond}} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, fakedriver.Options{Capabilities: noTopology()})
			e.drv.Hang("CreateVolume")
			e.start(Options{Timeout: tc.timeout, IntentDelay: time.Second}, nil)
			sc := e.class("std", nil)
			e.claim("data", sc.Name, "1Gi", nil)
			e.eventually("a create in flight", 30*time.Second, func() (bool, error) { return e.drv.InFlight("CreateVolume") > 0, nil })
			e.deleteClaim("data") // before IntentDelay: no record can be written
			e.eventually("claim gone", 30*time.Second, func() (bool, error) { return e.getClaim("data") == nil, nil })
			time.Sleep(tc.timeout / 2)
			e.drv.Unhang("CreateVolume")
			e.eventually("backend empty", 30*time.Second, func() (bool, error) {
				return len(e.drv.Volumes()) == 0 && e.drv.Calls("CreateVolume") > 0 && e.drv.Calls("DeleteVolume") > 0, nil
			})
		})
	}
}

// TestFaultRestartMidCreate: the provisioner stops while CreateVolume
// hangs; a new one finishes: one volume, bound.
func TestFaultRestartMidCreate(t *testing.T) {
	e := newEnv(t, fakedriver.Options{Capabilities: noTopology()})
	e.drv.Hang("CreateVolume")
	stop := e.start(Options{Timeout: 5 * time.Second}, nil)
	sc := e.class("std", nil)
	e.claim("data", sc.Name, "1Gi", nil)
	e.eventually("a create in flight", 30*time.Second, func() (bool, error) { return e.drv.InFlight("CreateVolume") > 0, nil })
	stop()
	e.drv.Unhang("CreateVolume") // the first create completes on the backend, unseen
	e.start(Options{}, nil)
	pv := e.waitBound("data")
	if v := e.drv.Volumes(); len(v) != 1 || v[0].ID != pv.Spec.CSI.VolumeHandle {
		t.Errorf("backend volumes %v, want exactly the PV's %s", v, pv.Spec.CSI.VolumeHandle)
	}
}

// TestFaultClearEvents: each failure gives a clear event and no hot loop.
func TestFaultClearEvents(t *testing.T) {
	key := "topology.example.com/node"
	e := newEnv(t, fakedriver.Options{Capabilities: fakedriver.Provisioner, NodeID: "n", Topology: map[string]string{key: "n"}})
	e.node(e.ns+"-n", map[string]string{key: "n"}, key)
	e.start(Options{RetryIntervalStart: 500 * time.Millisecond, RetryIntervalMax: 5 * time.Second}, nil)
	missing := e.class("missing", func(sc *storagev1.StorageClass) {
		sc.Parameters = map[string]string{"csi.storage.k8s.io/provisioner-secret-name": "nope",
			"csi.storage.k8s.io/provisioner-secret-namespace": e.ns}
	})
	typo := e.class("typo", func(sc *storagev1.StorageClass) {
		sc.Parameters = map[string]string{"csi.storage.k8s.io/fs-type": "ext4"}
	})
	rejected := e.class("rejected", func(sc *storagev1.StorageClass) { sc.Parameters = map[string]string{"bogus": "1"} })
	wf := e.class("wffc", wffcMode)
	e.claim("missing", missing.Name, "1Gi", nil)
	e.claim("typo", typo.Name, "1Gi", nil)
	e.drv.SetError("CreateVolume", codes.InvalidArgument)
	e.claim("rejected", rejected.Name, "1Gi", nil)
	e.claim("badnode", wf.Name, "1Gi", func(c *v1.PersistentVolumeClaim) {
		c.Annotations = map[string]string{annSelectedNode: "no-such-node"}
	})
	e.waitEvent("missing", ReasonProvisioningFailed, `error getting secret nope in namespace `+e.ns)
	e.waitEvent("typo", ReasonProvisioningFailed, `unknown parameter key "csi.storage.k8s.io/fs-type"`)
	e.waitEvent("rejected", ReasonProvisioningFailed, "infeasible")
	e.waitEvent("badnode", ReasonProvisioningFailed, `selected node "no-such-node" not found`)
	e.eventually("selected-node removed", 10*time.Second, func() (bool, error) {
		return e.getClaim("badnode").Annotations[annSelectedNode] == "", nil
	})
	time.Sleep(3 * time.Second)
	for _, c := range []string{"missing", "typo", "rejected", "badnode"} {
		n := len(e.events(c, ReasonProvisioningFailed))
		if n == 0 || n > 6 {
			t.Errorf("claim %s: %d failure events in ~3s, want a few (backoff)", c, n)
		}
	}
	if n := len(e.events("badnode", ReasonProvisioningFailed)); n != 1 {
		t.Errorf("badnode: %d events, want 1 (handed back to the scheduler once)", n)
	}
	if n := e.drv.Calls("CreateVolume"); n == 0 || n > 8 {
		t.Errorf("CreateVolume calls for the rejected claim: %d, want a few", n)
	}

}

package provisioner

import (
	"testing"
	"time"

	v1 "k8s.io/api/core/v1"
	storagev1 "k8s.io/api/storage/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/csi-kit/sidecars/testkit/eventually"
	"github.com/csi-kit/sidecars/testkit/fakedriver"
)

func noTopology() fakedriver.Capabilities {
	c := fakedriver.Provisioner
	c.Topology = false
	c.PublishUnpublish = false
	return c
}

func TestImmediateDeleteAndRetain(t *testing.T) {
	e := newEnv(t, fakedriver.Options{Capabilities: noTopology()})
	e.start(Options{ExtraCreateMetadata: true}, nil)
	del := e.class("delete", func(sc *storagev1.StorageClass) {
		sc.Parameters = map[string]string{"type": "fast", "csi.storage.k8s.io/fstype": "xfs"}
		sc.MountOptions = []string{"noatime"}
	})
	retain := e.class("retain", func(sc *storagev1.StorageClass) {
		r := v1.PersistentVolumeReclaimRetain
		sc.ReclaimPolicy = &r
	})
	a := e.claim("a", del.Name, "1Gi", nil)
	b := e.claim("b", retain.Name, "2Gi", nil)

	pv := e.waitBound("a")
	if pv.Name != "pvc-"+string(a.UID) {
		t.Errorf("PV name %s, want pvc-<uid>", pv.Name)
	}
	if pv.Annotations[annProvisionedBy] != e.driver || !hasFinalizer(pv.Finalizers, FinalizerPV) ||
		pv.Spec.PersistentVolumeReclaimPolicy != v1.PersistentVolumeReclaimDelete || pv.Spec.CSI.FSType != "xfs" ||
		len(pv.Spec.MountOptions) != 1 || pv.Spec.ClaimRef.UID != a.UID {
		t.Errorf("PV %s: annotations %v finalizers %v policy %s fsType %q mount %v", pv.Name, pv.Annotations, pv.Finalizers,
			pv.Spec.PersistentVolumeReclaimPolicy, pv.Spec.CSI.FSType, pv.Spec.MountOptions)
	}
	reqs := e.drv.Requests("CreateVolume")
	found := false
	for _, r := range reqs {
		p := r.(interface{ GetParameters() map[string]string }).GetParameters()
		if p[keyPVCName] == "a" {
			found = true
			if p["type"] != "fast" || p[keyPVCNamespace] != e.ns || p[keyPVName] != pv.Name || p["csi.storage.k8s.io/fstype"] != "" {
				t.Errorf("CreateVolume parameters %v", p)
			}
		}
	}
	if !found {
		t.Errorf("no CreateVolume for claim a with extra metadata in %d requests", len(reqs))
	}
	e.waitEvent("a", ReasonProvisioningSucceeded, pv.Name)

	pvb := e.waitBound("b")
	if hasFinalizer(pvb.Finalizers, FinalizerPV) {
		t.Errorf("Retain PV has the deletion finalizer")
	}
	e.deleteClaim("a")
	e.deleteClaim("b")
	eventually.Require(e.t, 30*time.Second, "PV of a deleted", eventually.True("PV of a deleted", func() bool {
		_, err := e.kube.CoreV1().PersistentVolumes().Get(e.ctx, pv.Name, metav1.GetOptions{})
		return err != nil
	}))
	eventually.Require(e.t, 30*time.Second, "Retain PV released", eventually.True("Retain PV released", func() bool {
		p, err := e.kube.CoreV1().PersistentVolumes().Get(e.ctx, pvb.Name, metav1.GetOptions{})
		return err == nil && p.Status.Phase == v1.VolumeReleased
	}))
	vols := e.drv.Volumes()
	if len(vols) != 1 || vols[0].Name != pvb.Name {
		t.Errorf("backend volumes %v, want only the retained %s", vols, pvb.Name)
	}
	_ = b
}

// TestZonalWFFC (seed 003): the PV's node affinity follows the zone of the
// node the scheduler picked.
func TestZonalWFFC(t *testing.T) {
	zoneKey := "topology.example.com/zone"
	e := newEnv(t, fakedriver.Options{Capabilities: fakedriver.Provisioner, NodeID: "x",
		Topology: map[string]string{zoneKey: "z1"},
		Nodes:    []fakedriver.Node{{ID: "y", Topology: map[string]string{zoneKey: "z2"}}}})
	e.node(e.ns+"-n1", map[string]string{zoneKey: "z1", "test": e.ns}, zoneKey)
	e.node(e.ns+"-n2", map[string]string{zoneKey: "z2", "test": e.ns}, zoneKey)
	e.start(Options{}, nil)
	sc := e.class("zonal", wffcMode)
	e.claim("data", sc.Name, "1Gi", nil)
	time.Sleep(time.Second) // a WFFC claim must not be provisioned before a pod uses it
	if n := e.drv.Calls("CreateVolume"); n != 0 {
		t.Fatalf("CreateVolume called %d times before scheduling", n)
	}
	e.pod("app", map[string]string{zoneKey: "z2", "test": e.ns}, "data")
	pv := e.waitBound("data")
	aff := pv.Spec.NodeAffinity
	if aff == nil || len(aff.Required.NodeSelectorTerms) != 1 || aff.Required.NodeSelectorTerms[0].MatchExpressions[0].Key != zoneKey ||
		aff.Required.NodeSelectorTerms[0].MatchExpressions[0].Values[0] != "z2" {
		t.Errorf("node affinity %+v, want zone z2", aff)
	}
	pvc := e.getClaim("data")
	if pvc.Annotations[annSelectedNode] != e.ns+"-n2" {
		t.Errorf("selected node %q", pvc.Annotations[annSelectedNode])
	}
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
	eventually.Require(e.t, 30*time.Second, "volume deleted with the secret", eventually.True("volume deleted with the secret", func() bool { return len(e.drv.Volumes()) == 0 }))
}

// TestMissingClassThenCreated: a claim whose class does not exist yet gets
// a clear event and is provisioned once the class appears.
func TestMissingClassThenCreated(t *testing.T) {
	e := newEnv(t, fakedriver.Options{Capabilities: noTopology()})
	e.start(Options{}, nil)
	name := e.ns + "-late"
	e.claim("data", name, "1Gi", func(c *v1.PersistentVolumeClaim) {
		c.Annotations = map[string]string{annStorageProvisioner: e.driver}
	})
	e.waitEvent("data", ReasonProvisioningFailed, `storageclass "`+name+`" not found`)
	e.class("late", nil)
	e.waitBound("data")
}

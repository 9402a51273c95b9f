package provisioner

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	libmetrics "github.com/kubernetes-csi/csi-lib-utils/metrics"
	v1 "k8s.io/api/core/v1"
	storagev1 "k8s.io/api/storage/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/csi-kit/sidecars/csiconn"
	"github.com/csi-kit/sidecars/resizer"
	"github.com/csi-kit/sidecars/testkit/eventually"
	"github.com/csi-kit/sidecars/testkit/fakedriver"
)

// TestMigrationAWSEBS runs an in-tree kubernetes.io/aws-ebs claim through
// a driver named ebs.csi.aws.com: provisioned from the translated class,
// bound to an in-tree PV, expanded by the resizer and deleted.
func TestMigrationAWSEBS(t *testing.T) {
	e := newEnv(t, fakedriver.Options{Capabilities: fakedriver.Resizer})
	// Replace the env's driver by one carrying the EBS CSI driver's name,
	// connected with a metrics manager that has the migrated label.
	e.driver = ebsDriver
	e.drv = fakedriver.Start(t, fakedriver.Options{Name: ebsDriver, Capabilities: fakedriver.Resizer})
	mgr := libmetrics.NewCSIMetricsManagerWithOptions("", libmetrics.WithProcessStartTime(false), libmetrics.WithMigration())
	conn, err := csiconn.Connect(e.ctx, csiconn.Options{Address: e.drv.Endpoint(), Metrics: mgr})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	e.conn = conn
	e.start(Options{}, nil)

	rdrv, err := resizer.NewCSIDriver(e.ctx, conn)
	if err != nil {
		t.Fatal(err)
	}
	r, err := resizer.New(resizer.Options{RetryIntervalStart: 100 * time.Millisecond, RetryIntervalMax: 2 * time.Second}, e.kube, rdrv)
	if err != nil {
		t.Fatal(err)
	}
	rctx, rcancel := context.WithCancel(e.ctx)
	rdone := make(chan error, 1)
	go func() { rdone <- r.Run(rctx) }()
	t.Cleanup(func() {
		rcancel()
		if err := <-rdone; err != nil {
			t.Errorf("resizer Run: %v", err)
		}
	})

	yes := true
	class := e.class("ebs", func(sc *storagev1.StorageClass) {
		sc.Provisioner = ebsInTree
		sc.Parameters = map[string]string{"type": "gp3", "fsType": "xfs"}
		sc.AllowVolumeExpansion = &yes
	})
	e.claim("data", class.Name, "1Gi", nil)

	pv := e.waitBound("data")
	// kube-controller-manager (CSI migration of aws-ebs is always on)
	// names the CSI driver on claims of the in-tree class.
	if got := e.getClaim("data").Annotations[annStorageProvisioner]; got != ebsDriver {
		t.Errorf("claim's %s = %q, want %s as set by kube-controller-manager", annStorageProvisioner, got, ebsDriver)
	}
	if pv.Spec.CSI != nil || pv.Spec.AWSElasticBlockStore == nil {
		t.Fatalf("PV %s is not in in-tree form: %+v", pv.Name, pv.Spec.PersistentVolumeSource)
	}
	if pv.Annotations[annMigratedTo] != ebsDriver || pv.Annotations[annProvisionedBy] != ebsInTree {
		t.Errorf("PV annotations %v: want %s=%s and %s=%s", pv.Annotations, annMigratedTo, ebsDriver, annProvisionedBy, ebsInTree)
	}
	if pv.Spec.AWSElasticBlockStore.FSType != "xfs" {
		t.Errorf("PV fsType %q, want xfs from the class's in-tree fsType parameter", pv.Spec.AWSElasticBlockStore.FSType)
	}
	vols := e.drv.Volumes()
	if len(vols) != 1 || vols[0].ID != pv.Spec.AWSElasticBlockStore.VolumeID {
		t.Fatalf("backend volumes %+v, want one with the PV's volume ID %s", vols, pv.Spec.AWSElasticBlockStore.VolumeID)
	}
	if vols[0].Parameters["type"] != "gp3" || vols[0].Parameters["fsType"] != "" {
		t.Errorf("CreateVolume parameters %v: want the translated class (type=gp3, fsType moved to the CSI key)", vols[0].Parameters)
	}
	want := `migrated="true"`
	if got := gatherOps(t, mgr, "CreateVolume"); !strings.Contains(got, want) {
		t.Errorf("CreateVolume metrics lack %s:\n%s", want, got)
	}

	// Expand: kube-controller-manager hands the claim to the resizer.
	patch := []byte(`{"spec":{"resources":{"requests":{"storage":"3Gi"}}}}`)
	if _, err := e.kube.CoreV1().PersistentVolumeClaims(e.ns).Patch(e.ctx, "data", types.MergePatchType, patch, metav1.PatchOptions{}); err != nil {
		t.Fatal(err)
	}
	size := resource.MustParse("3Gi")
	eventually.Require(e.t, 60*time.Second, "claim capacity 3Gi", eventually.True("claim capacity 3Gi", func() bool {
		c := e.getClaim("data")
		got, ok := c.Status.Capacity[v1.ResourceStorage]
		return ok && got.Cmp(size) == 0
	}))
	if c := e.getClaim("data"); c.Annotations[resizer.AnnStorageResizer] != ebsDriver {
		t.Errorf("claim's %s = %q, want %s", resizer.AnnStorageResizer, c.Annotations[resizer.AnnStorageResizer], ebsDriver)
	}
	pv, err = e.kube.CoreV1().PersistentVolumes().Get(e.ctx, pv.Name, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if got := pv.Spec.Capacity[v1.ResourceStorage]; got.Cmp(size) != 0 || pv.Spec.AWSElasticBlockStore == nil || pv.Spec.CSI != nil {
		t.Errorf("PV after expansion: capacity %s, source %+v; want 3Gi, still in-tree", got.String(), pv.Spec.PersistentVolumeSource)
	}
	if vols := e.drv.Volumes(); len(vols) != 1 || vols[0].CapacityBytes < size.Value() {
		t.Errorf("backend after expansion: %+v", vols)
	}
	if got := gatherOps(t, mgr, "ControllerExpandVolume"); !strings.Contains(got, want) {
		t.Errorf("ControllerExpandVolume metrics lack %s:\n%s", want, got)
	}

	// Delete: reclaim Delete reaches DeleteVolume through the translation.
	e.deleteClaim("data")
	eventually.Require(e.t, 60*time.Second, "PV deleted", eventually.True("PV deleted", func() bool {
		_, err := e.kube.CoreV1().PersistentVolumes().Get(e.ctx, pv.Name, metav1.GetOptions{})
		return apierrors.IsNotFound(err)
	}))
	if n := e.drv.Calls("DeleteVolume"); n < 1 {
		t.Errorf("DeleteVolume called %d times", n)
	}
	if vols := e.drv.Volumes(); len(vols) != 0 {
		t.Errorf("backend not empty after deletion: %+v", vols)
	}
	if got := gatherOps(t, mgr, "DeleteVolume"); !strings.Contains(got, want) {
		t.Errorf("DeleteVolume metrics lack %s:\n%s", want, got)
	}

	// A claim that names the in-tree plugin itself and is marked
	// migrated-to this driver (as kube-controller-manager marks claims of
	// migrated plugins in clusters that keep the in-tree name) is served
	// the same way.
	e.claim("intree", class.Name, "1Gi", func(c *v1.PersistentVolumeClaim) {
		c.Annotations = map[string]string{annStorageProvisioner: ebsInTree, annMigratedTo: ebsDriver}
	})
	pv = e.waitBound("intree")
	if pv.Spec.AWSElasticBlockStore == nil || pv.Annotations[annMigratedTo] != ebsDriver {
		t.Errorf("PV of the in-tree-annotated claim: source %+v, annotations %v", pv.Spec.PersistentVolumeSource, pv.Annotations)
	}
	e.deleteClaim("intree")
	eventually.Require(e.t, 60*time.Second, "backend empty", eventually.True("backend empty", func() bool { return len(e.drv.Volumes()) == 0 }))
}

// gatherOps returns the csi_sidecar_operations_seconds series of method
// as text, one label set a line.
func gatherOps(t *testing.T, mgr libmetrics.CSIMetricsManager, method string) string {
	t.Helper()
	families, err := mgr.GetRegistry().Gather()
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	for _, f := range families {
		if f.GetName() != "csi_sidecar_operations_seconds" {
			continue
		}
		for _, m := range f.GetMetric() {
			var labels []string
			for _, l := range m.GetLabel() {
				labels = append(labels, fmt.Sprintf("%s=%q", l.GetName(), l.GetValue()))
			}
			if line := strings.Join(labels, ","); strings.Contains(line, "/"+method+`"`) {
				b.WriteString(line + "\n")
			}
		}
	}
	return b.String()
}

package provisioner

import (
	"context"
	"testing"

	v1 "k8s.io/api/core/v1"
	storagev1 "k8s.io/api/storage/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

const (
	ebsDriver = "ebs.csi.aws.com"
	ebsInTree = "kubernetes.io/aws-ebs"
)

func TestDecideClaimMigration(t *testing.T) {
	inTreeClass := &storagev1.StorageClass{ObjectMeta: metav1.ObjectMeta{Name: "sc"}, Provisioner: ebsInTree}
	claim := func(ann map[string]string) *v1.PersistentVolumeClaim {
		sc := "sc"
		return &v1.PersistentVolumeClaim{ObjectMeta: metav1.ObjectMeta{Name: "c", Namespace: "ns", UID: "u", Annotations: ann},
			Spec: v1.PersistentVolumeClaimSpec{StorageClassName: &sc}}
	}
	for _, tc := range []struct {
		name   string
		pvc    *v1.PersistentVolumeClaim
		class  *storagev1.StorageClass
		driver string
		want   claimAction
	}{
		{"in-tree name without migrated-to: the in-tree plugin's", claim(map[string]string{annStorageProvisioner: ebsInTree}), inTreeClass, ebsDriver, claimIgnore},
		{"beta in-tree name without migrated-to", claim(map[string]string{annBetaStorageProvisioner: ebsInTree}), inTreeClass, ebsDriver, claimIgnore},
		{"beta in-tree name with migrated-to", claim(map[string]string{annBetaStorageProvisioner: ebsInTree, annMigratedTo: ebsDriver}), inTreeClass, ebsDriver, claimProvision},
		{"in-tree name with migrated-to", claim(map[string]string{annStorageProvisioner: ebsInTree, annMigratedTo: ebsDriver}), inTreeClass, ebsDriver, claimProvision},
		{"in-tree name of another driver", claim(map[string]string{annStorageProvisioner: "kubernetes.io/gce-pd"}), inTreeClass, ebsDriver, claimIgnore},
		{"in-tree name, driver is not its CSI driver", claim(map[string]string{annStorageProvisioner: ebsInTree}), inTreeClass, drv, claimIgnore},
		{"migrated-to us, class of another in-tree plugin", claim(map[string]string{annStorageProvisioner: "kubernetes.io/gce-pd", annMigratedTo: ebsDriver}),
			&storagev1.StorageClass{ObjectMeta: metav1.ObjectMeta{Name: "sc"}, Provisioner: "kubernetes.io/gce-pd"}, ebsDriver, claimIgnore},
		{"migrated-to another driver", claim(map[string]string{annStorageProvisioner: "kubernetes.io/gce-pd", annMigratedTo: "pd.csi.storage.gke.io"}), inTreeClass, ebsDriver, claimIgnore},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got, why := decideClaim(tc.pvc, tc.class, tc.driver, false); got != tc.want {
				t.Errorf("decideClaim = %v (%s), want %v", got, why, tc.want)
			}
		})
	}
}

func inTreePV(mut func(*v1.PersistentVolume)) *v1.PersistentVolume {
	pv := &v1.PersistentVolume{
		ObjectMeta: metav1.ObjectMeta{Name: "pv", Annotations: map[string]string{annProvisionedBy: ebsInTree, annMigratedTo: ebsDriver}},
		Spec: v1.PersistentVolumeSpec{PersistentVolumeReclaimPolicy: v1.PersistentVolumeReclaimDelete,
			PersistentVolumeSource: v1.PersistentVolumeSource{AWSElasticBlockStore: &v1.AWSElasticBlockStoreVolumeSource{VolumeID: "vol-1", FSType: "ext4"}}},
		Status: v1.PersistentVolumeStatus{Phase: v1.VolumeBound},
	}
	if mut != nil {
		mut(pv)
	}
	return pv
}

func TestDecideVolumeMigration(t *testing.T) {
	for _, tc := range []struct {
		name   string
		pv     *v1.PersistentVolume
		driver string
		want   volumeAction
	}{
		{"bound migrated PV gets the finalizer", inTreePV(nil), ebsDriver, volumeAddFinalizer},
		{"released migrated PV is deleted", inTreePV(func(p *v1.PersistentVolume) {
			p.Status.Phase = v1.VolumeReleased
			p.Finalizers = []string{FinalizerPV}
		}), ebsDriver, volumeDelete},
		{"provisioned by the in-tree name, no migrated-to", inTreePV(func(p *v1.PersistentVolume) {
			delete(p.Annotations, annMigratedTo)
			p.Status.Phase = v1.VolumeReleased
		}), ebsDriver, volumeDelete},
		{"static in-tree PV migrated to us", inTreePV(func(p *v1.PersistentVolume) {
			p.Annotations = map[string]string{annMigratedTo: ebsDriver}
		}), ebsDriver, volumeAddFinalizer},
		{"another driver", inTreePV(func(p *v1.PersistentVolume) { p.Status.Phase = v1.VolumeReleased }), drv, volumeIgnore},
		{"retain", inTreePV(func(p *v1.PersistentVolume) {
			p.Spec.PersistentVolumeReclaimPolicy = v1.PersistentVolumeReclaimRetain
			p.Status.Phase = v1.VolumeReleased
		}), ebsDriver, volumeIgnore},
		{"in-tree source of a plugin not migrated to us", inTreePV(func(p *v1.PersistentVolume) {
			p.Spec.AWSElasticBlockStore = nil
			p.Spec.GCEPersistentDisk = &v1.GCEPersistentDiskVolumeSource{PDName: "d"}
			p.Finalizers = []string{FinalizerPV}
		}), ebsDriver, volumeRemoveFinalizer},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := decideVolume(tc.pv, tc.driver); got != tc.want {
				t.Errorf("decideVolume = %v, want %v", got, tc.want)
			}
		})
	}
}

func TestMigrationTranslation(t *testing.T) {
	ctx := context.Background()
	src, migrated, err := csiSource(ctx, inTreePV(nil), ebsDriver)
	if err != nil || !migrated || src.VolumeHandle != "vol-1" || src.Driver != ebsDriver {
		t.Errorf("csiSource = %+v, %v, %v; want handle vol-1 of %s, migrated", src, migrated, err, ebsDriver)
	}
	if _, _, err := csiSource(ctx, inTreePV(nil), drv); err == nil {
		t.Error("csiSource translated an EBS PV for another driver")
	}
	class := &storagev1.StorageClass{ObjectMeta: metav1.ObjectMeta{Name: "sc"}, Provisioner: ebsInTree,
		Parameters: map[string]string{"type": "gp3", "fsType": "xfs", "zone": "z1"}}
	got, ok, err := translateClass(ctx, class, ebsDriver)
	if err != nil || !ok {
		t.Fatalf("translateClass = %v, %v", ok, err)
	}
	if got.Parameters["csi.storage.k8s.io/fstype"] != "xfs" || got.Parameters["type"] != "gp3" || len(got.AllowedTopologies) != 1 {
		t.Errorf("translated class: parameters %v, topologies %v", got.Parameters, got.AllowedTopologies)
	}
	if class.Parameters["fsType"] != "xfs" || len(class.AllowedTopologies) != 0 {
		t.Errorf("translateClass changed the cached class: %v", class)
	}
	if got, ok, err := translateClass(ctx, class, drv); ok || err != nil || got != class {
		t.Errorf("class for another driver translated: %v %v", ok, err)
	}
}

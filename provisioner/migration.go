package provisioner

import (
	"context"
	"fmt"

	"github.com/kubernetes-csi/csi-lib-utils/connection"
	v1 "k8s.io/api/core/v1"
	storagev1 "k8s.io/api/storage/v1"
	csitrans "k8s.io/csi-translation-lib"
	"k8s.io/klog/v2"
)

// translator maps in-tree volume plugins to CSI drivers and back; all
// in-tree ↔ CSI conversions go through it.
var translator = csitrans.New()

// migratesTo reports whether name is an in-tree plugin that the
// translation library migrates to driver (kubernetes.io/aws-ebs to
// ebs.csi.aws.com, for example).
func migratesTo(name, driver string) bool {
	if name == "" || !translator.IsMigratableIntreePluginByName(name) {
		return false
	}
	csiName, err := translator.GetCSINameFromInTreeName(name)
	return err == nil && csiName == driver
}

// servesProvisioner reports whether a claim or class naming provisioner
// name is served by driver: its own name, or an in-tree plugin migrated
// to it.
func servesProvisioner(name, driver string) bool {
	return name == driver || migratesTo(name, driver)
}

// migratedPV reports whether pv is an in-tree PV whose plugin is migrated
// to driver.
func migratedPV(pv *v1.PersistentVolume, driver string) bool {
	if pv.Spec.CSI != nil || !translator.IsPVMigratable(pv) {
		return false
	}
	name, err := translator.GetInTreePluginNameFromSpec(pv, nil)
	return err == nil && migratesTo(name, driver)
}

// translateClass returns the CSI form of an in-tree class migrated to
// driver, and whether it was translated; other classes come back as they
// are.
func translateClass(ctx context.Context, class *storagev1.StorageClass, driver string) (*storagev1.StorageClass, bool, error) {
	if !migratesTo(class.Provisioner, driver) {
		return class, false, nil
	}
	c, err := translator.TranslateInTreeStorageClassToCSI(klog.FromContext(ctx), class.Provisioner, class)
	if err != nil {
		return nil, false, fmt.Errorf("translating in-tree StorageClass %s of %s to CSI driver %s: %w; fix the class parameters", class.Name, class.Provisioner, driver, err)
	}
	return c, true, nil
}

// csiSource returns the CSI source of pv: its own, or for a migrated
// in-tree PV the translated one (migrated is then true).
func csiSource(ctx context.Context, pv *v1.PersistentVolume, driver string) (src *v1.CSIPersistentVolumeSource, migrated bool, err error) {
	if pv.Spec.CSI != nil {
		return pv.Spec.CSI, false, nil
	}
	if !migratedPV(pv, driver) {
		return nil, false, fmt.Errorf("PV %s has neither a CSI source nor an in-tree source migrated to %s", pv.Name, driver)
	}
	t, err := translator.TranslateInTreePVToCSI(klog.FromContext(ctx), pv)
	if err != nil {
		return nil, true, fmt.Errorf("translating in-tree PV %s to CSI: %w", pv.Name, err)
	}
	return t.Spec.CSI, true, nil
}

// volumeHandle returns the CSI volume handle of pv, translating migrated
// in-tree PVs; "" when there is none.
func volumeHandle(ctx context.Context, pv *v1.PersistentVolume, driver string) string {
	src, _, err := csiSource(ctx, pv, driver)
	if err != nil {
		return ""
	}
	return src.VolumeHandle
}

// markMigrated makes the CSI calls made with ctx count as migrated in the
// operation metrics (label migrated="true" when the metrics manager has it).
func markMigrated(ctx context.Context) context.Context {
	return context.WithValue(ctx, connection.AdditionalInfoKey, connection.AdditionalInfo{Migrated: "true"})
}

package resizer

import (
	"context"
	"fmt"

	"github.com/kubernetes-csi/csi-lib-utils/connection"
	v1 "k8s.io/api/core/v1"
	csitrans "k8s.io/csi-translation-lib"
	"k8s.io/klog/v2"
)

// translator maps in-tree volume plugins to CSI drivers; every in-tree to
// CSI conversion of the resizer goes through it.
var translator = csitrans.New()

// migratedTo reports whether pv is an in-tree PV whose plugin the
// translation library migrates to driver.
func migratedTo(pv *v1.PersistentVolume, driver string) bool {
	if pv == nil || pv.Spec.CSI != nil || !translator.IsPVMigratable(pv) {
		return false
	}
	plugin, err := translator.GetInTreePluginNameFromSpec(pv, nil)
	if err != nil {
		return false
	}
	name, err := translator.GetCSINameFromInTreeName(plugin)
	return err == nil && name == driver
}

// translateMigrated returns the CSI form of a migrated in-tree PV for the
// resizer of driver, and true; any other PV comes back unchanged with
// false. A migrated PV is the resizer's only when kube-controller-manager
// handed its claim over: the claim's volume.kubernetes.io/storage-resizer
// annotation names driver. Patches computed between two translated copies
// touch only what the resizer changed, never the in-tree source.
func translateMigrated(ctx context.Context, pvc *v1.PersistentVolumeClaim, pv *v1.PersistentVolume, driver string) (*v1.PersistentVolume, bool, error) {
	if !migratedTo(pv, driver) || pvc == nil || pvc.Annotations[AnnStorageResizer] != driver {
		return pv, false, nil
	}
	t, err := translator.TranslateInTreePVToCSI(klog.FromContext(ctx), pv)
	if err != nil {
		return pv, false, fmt.Errorf("translating in-tree PV %s to CSI driver %s: %w", pv.Name, driver, err)
	}
	return t, true, nil
}

// markMigrated makes the CSI calls made with ctx count as migrated in the
// operation metrics (label migrated="true" when the metrics manager has it).
func markMigrated(ctx context.Context) context.Context {
	return context.WithValue(ctx, connection.AdditionalInfoKey, connection.AdditionalInfo{Migrated: "true"})
}

package explain

import (
	"strings"
	"testing"

	"github.com/csi-kit/sidecars/provisioner"
	"github.com/csi-kit/sidecars/resizer"
	"github.com/csi-kit/sidecars/snapshotter"
)

// TestNamesMatchControllers keeps the event reasons and finalizers this
// package matches on equal to what the controllers of this module write.
func TestNamesMatchControllers(t *testing.T) {
	for _, tc := range []struct{ ours, theirs string }{
		{eventProvisioningFailed, provisioner.ReasonProvisioningFailed},
		{eventVolumeFailedDelete, provisioner.ReasonVolumeFailedDelete},
		{finalizerProvisionerPV, provisioner.FinalizerPV},
		{finalizerIntent, provisioner.FinalizerIntent},
		{finalizerCloneSource, provisioner.FinalizerCloneSource},
		{finalizerRestoreSource, provisioner.FinalizerSnapshotSource},
		{annProvisioningVolume, provisioner.AnnProvisioningVolumeName},
		{eventVolumeResizeFailed, resizer.EventResizeFailed},
		{eventFileSystemResizeRequired, resizer.EventFileSystemResizeRequired},
		{eventSnapshotCreationFailed, snapshotter.ReasonSnapshotCreationFailed},
		{eventSnapshotContentCheck, snapshotter.ReasonSnapshotContentCheckandUpdate},
		{eventSnapshotDeleteError, snapshotter.ReasonSnapshotDeleteError},
		{eventSnapshotDeletePending, snapshotter.ReasonSnapshotDeletePending},
		{finalizerPVCAsSource, snapshotter.FinalizerPVCAsSource},
		{finalizerSnapshotAsSource, snapshotter.FinalizerSnapshotAsSource},
		{finalizerSnapshotBound, snapshotter.FinalizerSnapshotBound},
		{finalizerContentBound, snapshotter.FinalizerContentBound},
		{annDefaultSnapClass, snapshotter.AnnDefaultClass},
	} {
		if tc.ours != tc.theirs {
			t.Errorf("explain matches %q, the controller writes %q", tc.ours, tc.theirs)
		}
	}
	if msg := resizer.InUseMessage("ns", "data", "d"); !strings.Contains(msg, offlineInUseText) {
		t.Errorf("resizer in-use message %q does not contain %q", msg, offlineInUseText)
	}
}

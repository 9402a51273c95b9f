package csiconn

import (
	"testing"

	"github.com/kubernetes-csi/csi-lib-utils/metrics"
)

func TestMigrationMetrics(t *testing.T) {
	if !IsMigratedDriver("ebs.csi.aws.com") || IsMigratedDriver("hostpath.csi.k8s.io") {
		t.Error("IsMigratedDriver: want true for ebs.csi.aws.com only")
	}
	if !NewMigrationMetricsManager().HaveAdditionalLabel(metrics.LabelMigrated) {
		t.Error("migration metrics manager lacks the migrated label")
	}
	if NewMetricsManager().HaveAdditionalLabel(metrics.LabelMigrated) {
		t.Error("plain metrics manager has the migrated label")
	}
}

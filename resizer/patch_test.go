package resizer

import (
	"encoding/json"
	"strings"
	"testing"

	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
)

func TestPatchDataCarriesResourceVersion(t *testing.T) {
	old := claim("2Gi", "1Gi", "", "")
	old.ResourceVersion = "42"
	updated := MarkExpanded(old, resource.MustParse("2Gi"), resource.MustParse("2Gi"), false, now)
	data, err := patchData(old, updated, v1.PersistentVolumeClaim{}, old.ResourceVersion)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(data, &m); err != nil {
		t.Fatal(err)
	}
	if rv := m["metadata"].(map[string]any)["resourceVersion"]; rv != "42" {
		t.Errorf("resourceVersion in patch = %v, want 42: %s", rv, data)
	}
	if !strings.Contains(string(data), `"allocatedResources"`) || strings.Contains(string(data), `"spec"`) {
		t.Errorf("patch must carry the status and no spec: %s", data)
	}
	data, _ = patchData(old, updated, v1.PersistentVolumeClaim{}, "")
	if strings.Contains(string(data), "resourceVersion") {
		t.Errorf("no precondition asked: %s", data)
	}
}

package resizer

import (
	"strings"
	"testing"
	"time"

	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

var now = metav1.NewTime(time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC))

func condTypes(pvc *v1.PersistentVolumeClaim) string {
	var out []string
	for _, c := range pvc.Status.Conditions {
		out = append(out, string(c.Type))
	}
	return strings.Join(out, ",")
}

// TestResizeFunctions follows upstream's resize_status_test.go.
func TestResizeFunctions(t *testing.T) {
	withOther := func(pvc *v1.PersistentVolumeClaim) *v1.PersistentVolumeClaim {
		return withPVC(pvc, func(c *v1.PersistentVolumeClaim) {
			if c.Status.AllocatedResourceStatuses == nil {
				c.Status.AllocatedResourceStatuses = map[v1.ResourceName]v1.ClaimResourceStatus{}
			}
			c.Status.AllocatedResourceStatuses["example.com/other"] = nrp
		})
	}
	t.Run("mark fs resize, with no other conditions", func(t *testing.T) {
		got := MarkExpanded(claim("2Gi", "1Gi", "", ""), resource.MustParse("2Gi"), resource.MustParse("2Gi"), true, now)
		if r := got.Status.AllocatedResourceStatuses[v1.ResourceStorage]; r != nrp {
			t.Errorf("R = %q, want NodeResizePending", r)
		}
		if condTypes(got) != "FileSystemResizePending" {
			t.Errorf("conditions = %s", condTypes(got))
		}
		if got.Status.Capacity.Storage().String() != "1Gi" {
			t.Errorf("capacity must wait for kubelet, got %s", got.Status.Capacity.Storage())
		}
		if got.Status.AllocatedResources.Storage().String() != "2Gi" {
			t.Errorf("A = %s, want 2Gi", got.Status.AllocatedResources.Storage())
		}
	})
	t.Run("mark fs resize, when other resource statuses are present", func(t *testing.T) {
		got := MarkExpanded(withOther(claim("2Gi", "1Gi", "", "")), resource.MustParse("2Gi"), resource.MustParse("2Gi"), true, now)
		if got.Status.AllocatedResourceStatuses["example.com/other"] != nrp || got.Status.AllocatedResourceStatuses[v1.ResourceStorage] != nrp {
			t.Errorf("statuses = %v", got.Status.AllocatedResourceStatuses)
		}
	})
	t.Run("mark controller resize in-progress", func(t *testing.T) {
		got := MarkInProgress(claim("2Gi", "1Gi", "", "", v1.PersistentVolumeClaimControllerResizeError), resource.MustParse("2Gi"), now)
		if got.Status.AllocatedResourceStatuses[v1.ResourceStorage] != crip || condTypes(got) != "Resizing" {
			t.Errorf("R = %v conditions = %s", got.Status.AllocatedResourceStatuses, condTypes(got))
		}
	})
	t.Run("mark controller resize failed", func(t *testing.T) {
		got := MarkFailed(claim("2Gi", "1Gi", "", ""), resource.MustParse("2Gi"), true, "OutOfRange: too big", now)
		if got.Status.AllocatedResourceStatuses[v1.ResourceStorage] != cri || condTypes(got) != "ControllerResizeError" {
			t.Errorf("R = %v conditions = %s", got.Status.AllocatedResourceStatuses, condTypes(got))
		}
		if msg := got.Status.Conditions[0].Message; msg != "failed to expand pvc with OutOfRange: too big" {
			t.Errorf("message = %q", msg)
		}
		got = MarkFailed(claim("2Gi", "1Gi", "", ""), resource.MustParse("2Gi"), false, "Internal", now)
		if got.Status.AllocatedResourceStatuses[v1.ResourceStorage] != crip || condTypes(got) != "Resizing,ControllerResizeError" {
			t.Errorf("non-infeasible: R = %v conditions = %s", got.Status.AllocatedResourceStatuses, condTypes(got))
		}
	})
	t.Run("mark resize finished", func(t *testing.T) {
		in := claim("2Gi", "1Gi", "2Gi", crip, v1.PersistentVolumeClaimResizing, v1.PersistentVolumeClaimVolumeModifyingVolume)
		got := MarkExpanded(in, resource.MustParse("2Gi"), resource.MustParse("2Gi"), false, now)
		if got.Status.AllocatedResourceStatuses != nil {
			t.Errorf("storage key must go and the map become nil, got %v", got.Status.AllocatedResourceStatuses)
		}
		if condTypes(got) != "ModifyingVolume" {
			t.Errorf("resize conditions must go, others stay: %s", condTypes(got))
		}
		if got.Status.Capacity.Storage().String() != "2Gi" || got.Annotations[AnnNodeExpansionNotRequired] != "true" {
			t.Errorf("capacity %s annotations %v", got.Status.Capacity.Storage(), got.Annotations)
		}
		got = MarkExpanded(withOther(in), resource.MustParse("2Gi"), resource.MustParse("2Gi"), false, now)
		if len(got.Status.AllocatedResourceStatuses) != 1 {
			t.Errorf("other keys must stay: %v", got.Status.AllocatedResourceStatuses)
		}
	})
	t.Run("mark done clears controller state", func(t *testing.T) {
		got := MarkDoneAt(claim("3G", "3G", "10G", cri, v1.PersistentVolumeClaimControllerResizeError), resource.MustParse("3G"))
		if got.Status.AllocatedResourceStatuses != nil || condTypes(got) != "" || got.Status.AllocatedResources.Storage().String() != "3G" {
			t.Errorf("got R=%v conds=%s A=%s", got.Status.AllocatedResourceStatuses, condTypes(got), got.Status.AllocatedResources.Storage())
		}
	})
	t.Run("input untouched", func(t *testing.T) {
		in := claim("2Gi", "1Gi", "", "")
		_ = MarkExpanded(in, resource.MustParse("2Gi"), resource.MustParse("2Gi"), false, now)
		if in.Status.AllocatedResources != nil || in.Annotations != nil {
			t.Error("status functions must not modify their argument")
		}
	})
}

// TestMergeResizeConditions follows upstream's util_test.go.
func TestMergeResizeConditions(t *testing.T) {
	old := metav1.NewTime(now.Add(-time.Hour))
	in := claim("2Gi", "1Gi", "", "")
	in.Status.Conditions = []v1.PersistentVolumeClaimCondition{
		{Type: v1.PersistentVolumeClaimVolumeModifyingVolume, Status: v1.ConditionTrue},
		{Type: v1.PersistentVolumeClaimResizing, Status: v1.ConditionTrue, LastTransitionTime: old},
	}
	t.Run("should not remove previous non-resize conditions", func(t *testing.T) {
		got := MarkExpanded(in, resource.MustParse("2Gi"), resource.MustParse("2Gi"), true, now)
		if condTypes(got) != "ModifyingVolume,FileSystemResizePending" {
			t.Errorf("conditions = %s", condTypes(got))
		}
	})
	t.Run("no transition keeps the old time", func(t *testing.T) {
		got := MarkInProgress(in, resource.MustParse("2Gi"), now)
		if !got.Status.Conditions[1].LastTransitionTime.Equal(&old) {
			t.Errorf("LastTransitionTime = %v, want %v", got.Status.Conditions[1].LastTransitionTime, old)
		}
	})
	t.Run("should not keep previous resize conditions of same type", func(t *testing.T) {
		got := MarkFailed(in, resource.MustParse("2Gi"), false, "x", now)
		n := 0
		for _, c := range got.Status.Conditions {
			if c.Type == v1.PersistentVolumeClaimResizing {
				n++
			}
		}
		if n != 1 {
			t.Errorf("%d Resizing conditions", n)
		}
	})
}

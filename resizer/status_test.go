package resizer

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/container-storage-interface/spec/lib/go/csi"
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

// TestVolumeCapability follows upstream's TestGetVolumeCapabilities.
func TestVolumeCapability(t *testing.T) {
	block := v1.PersistentVolumeBlock
	rwo, rox, rwx, rwop := v1.ReadWriteOnce, v1.ReadOnlyMany, v1.ReadWriteMany, v1.ReadWriteOncePod
	for _, tc := range []struct {
		name   string
		modes  []v1.PersistentVolumeAccessMode
		block  bool
		fsType string
		opts   []string
		snmw   bool
		want   csi.VolumeCapability_AccessMode_Mode
		err    bool
	}{
		{name: "RWX", modes: []v1.PersistentVolumeAccessMode{rwx}, want: csi.VolumeCapability_AccessMode_MULTI_NODE_MULTI_WRITER},
		{name: "Block RWX", modes: []v1.PersistentVolumeAccessMode{rwx}, block: true, want: csi.VolumeCapability_AccessMode_MULTI_NODE_MULTI_WRITER},
		{name: "RWX + specified fsType", modes: []v1.PersistentVolumeAccessMode{rwx}, fsType: "ext4", want: csi.VolumeCapability_AccessMode_MULTI_NODE_MULTI_WRITER},
		{name: "RWO", modes: []v1.PersistentVolumeAccessMode{rwo}, want: csi.VolumeCapability_AccessMode_SINGLE_NODE_WRITER},
		{name: "Block RWO", modes: []v1.PersistentVolumeAccessMode{rwo}, block: true, want: csi.VolumeCapability_AccessMode_SINGLE_NODE_WRITER},
		{name: "ROX", modes: []v1.PersistentVolumeAccessMode{rox}, want: csi.VolumeCapability_AccessMode_MULTI_NODE_READER_ONLY},
		{name: "RWX + anytyhing", modes: []v1.PersistentVolumeAccessMode{rwx, rox, rwo}, want: csi.VolumeCapability_AccessMode_MULTI_NODE_MULTI_WRITER},
		{name: "mount options", modes: []v1.PersistentVolumeAccessMode{rwo}, opts: []string{"noatime"}, want: csi.VolumeCapability_AccessMode_SINGLE_NODE_WRITER},
		{name: "ROX+RWO", modes: []v1.PersistentVolumeAccessMode{rox, rwo}, err: true},
		{name: "nothing", err: true},
		{name: "RWX with SINGLE_NODE_MULTI_WRITER capable driver", modes: []v1.PersistentVolumeAccessMode{rwx}, snmw: true, want: csi.VolumeCapability_AccessMode_MULTI_NODE_MULTI_WRITER},
		{name: "ROX with SINGLE_NODE_MULTI_WRITER capable driver", modes: []v1.PersistentVolumeAccessMode{rox}, snmw: true, want: csi.VolumeCapability_AccessMode_MULTI_NODE_READER_ONLY},
		{name: "RWO with SINGLE_NODE_MULTI_WRITER capable driver", modes: []v1.PersistentVolumeAccessMode{rwo}, snmw: true, want: csi.VolumeCapability_AccessMode_SINGLE_NODE_MULTI_WRITER},
		{name: "RWOP with SINGLE_NODE_MULTI_WRITER capable driver", modes: []v1.PersistentVolumeAccessMode{rwop}, snmw: true, want: csi.VolumeCapability_AccessMode_SINGLE_NODE_SINGLE_WRITER},
		{name: "ROX+RWO with SINGLE_NODE_MULTI_WRITER capable driver", modes: []v1.PersistentVolumeAccessMode{rox, rwo}, snmw: true, err: true},
		{name: "ROX+RWOP with SINGLE_NODE_MULTI_WRITER capable driver", modes: []v1.PersistentVolumeAccessMode{rox, rwop}, snmw: true, err: true},
		{name: "RWO+RWOP with SINGLE_NODE_MULTI_WRITER capable driver", modes: []v1.PersistentVolumeAccessMode{rwo, rwop}, snmw: true, err: true},
		{name: "nothing with SINGLE_NODE_MULTI_WRITER capable driver", snmw: true, err: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			pv := withPV(volume("1Gi"), func(pv *v1.PersistentVolume) {
				pv.Spec.AccessModes = tc.modes
				pv.Spec.CSI.FSType = tc.fsType
				pv.Spec.MountOptions = tc.opts
				if tc.block {
					pv.Spec.VolumeMode = &block
				}
			})
			got, err := volumeCapability(pv, tc.snmw)
			if tc.err {
				if err == nil {
					t.Fatalf("want an error, got %v", got)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got.GetAccessMode().GetMode() != tc.want {
				t.Errorf("mode = %v, want %v", got.GetAccessMode().GetMode(), tc.want)
			}
			if tc.block != (got.GetBlock() != nil) {
				t.Errorf("block = %v, want %v", got.GetBlock() != nil, tc.block)
			}
			if !tc.block && (got.GetMount().GetFsType() != tc.fsType || strings.Join(got.GetMount().GetMountFlags(), ",") != strings.Join(tc.opts, ",")) {
				t.Errorf("mount = %v", got.GetMount())
			}
		})
	}
}

// TestAddRemovePods follows upstream's inuse_pvc_store_test.go, on our
// counting tracker.
func TestAddRemovePods(t *testing.T) {
	pod := func(name string, phase v1.PodPhase, claims ...string) *v1.Pod {
		p := &v1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: name}, Status: v1.PodStatus{Phase: phase}}
		for _, c := range claims {
			p.Spec.Volumes = append(p.Spec.Volumes, v1.Volume{Name: c, VolumeSource: v1.VolumeSource{
				PersistentVolumeClaim: &v1.PersistentVolumeClaimVolumeSource{ClaimName: c}}})
		}
		return p
	}
	var freed []string
	tr := newPodTracker(func(k string) { freed = append(freed, k) })
	tr.onPod(pod("a", v1.PodRunning, "c1"))
	if !tr.InUse("ns/c1") {
		t.Error("with no initial pods: a running pod must be tracked")
	}
	tr.onPod(pod("f", v1.PodFailed, "c2"))
	tr.onPod(pod("s", v1.PodSucceeded, "c2"))
	if tr.InUse("ns/c2") {
		t.Error("adding failed pod / with success pod: must not be tracked")
	}
	tr.onPod(pod("b", v1.PodPending, "c1"))
	tr.onDelete(pod("a", v1.PodRunning, "c1"))
	if !tr.InUse("ns/c1") || len(freed) != 0 {
		t.Errorf("second pod still uses c1; freed = %v", freed)
	}
	tr.onPod(pod("b", v1.PodFailed, "c1")) // finished: counts as removal
	if tr.InUse("ns/c1") || strings.Join(freed, ",") != "ns/c1" {
		t.Errorf("removing running pod: c1 must be free and reported once, freed = %v", freed)
	}
	// Generic ephemeral volumes count under their claim name.
	eph := &v1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "web"}, Spec: v1.PodSpec{Volumes: []v1.Volume{
		{Name: "data", VolumeSource: v1.VolumeSource{Ephemeral: &v1.EphemeralVolumeSource{}}}}}}
	tr.onPod(eph)
	if !tr.InUse("ns/web-data") {
		t.Error("ephemeral volume claim must be tracked")
	}
}

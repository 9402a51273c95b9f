package resizer

import (
	"math"
	"testing"

	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
)

const (
	crip = v1.PersistentVolumeClaimControllerResizeInProgress
	cri  = v1.PersistentVolumeClaimControllerResizeInfeasible
	nrp  = v1.PersistentVolumeClaimNodeResizePending
	nrip = v1.PersistentVolumeClaimNodeResizeInProgress
	nri  = v1.PersistentVolumeClaimNodeResizeInfeasible
)

// TestDecide covers the decision part of upstream's TestController,
// TestExpandAndRecover and the claimRef checks, plus our own additions
// (MarkDone, node-only, infeasible backoff, recovery by lowering).
func TestDecide(t *testing.T) {
	for _, tc := range []struct {
		name       string
		in         Input
		want       Action
		wantTarget string
		ignored    bool
	}{
		// controller_test.go: no call
		{name: "PVC not found", in: Input{PVC: nil, PV: volume("1Gi")}, want: None, ignored: true},
		{name: "PVC doesn't need resize (S = C)", in: Input{PVC: claim("1Gi", "1Gi", "", ""), PV: volume("1Gi")}, want: None},
		{name: "PV not found", in: Input{PVC: claim("2Gi", "1Gi", "", ""), PV: nil}, want: None, ignored: true},
		{name: "pv claimref does not have pvc UID", in: Input{PVC: claim("2Gi", "1Gi", "", ""),
			PV: withPV(volume("1Gi"), func(pv *v1.PersistentVolume) { pv.Spec.ClaimRef.UID = "other" })}, want: None, ignored: true},
		{name: "pv claimref does not have PVC namespace", in: Input{PVC: claim("2Gi", "1Gi", "", ""),
			PV: withPV(volume("1Gi"), func(pv *v1.PersistentVolume) { pv.Spec.ClaimRef.Namespace = "other" })}, want: None, ignored: true},
		{name: "pv claimref is nil", in: Input{PVC: claim("2Gi", "1Gi", "", ""),
			PV: withPV(volume("1Gi"), func(pv *v1.PersistentVolume) { pv.Spec.ClaimRef = nil })}, want: None, ignored: true},
		{name: "PVC of another driver", in: Input{PVC: claim("2Gi", "1Gi", "", ""),
			PV: withPV(volume("1Gi"), func(pv *v1.PersistentVolume) { pv.Spec.CSI.Driver = "other.csi" })}, want: None, ignored: true},
		{name: "PV without CSI source", in: Input{PVC: claim("2Gi", "1Gi", "", ""),
			PV: withPV(volume("1Gi"), func(pv *v1.PersistentVolume) {
				pv.Spec.CSI = nil
				pv.Spec.HostPath = &v1.HostPathVolumeSource{Path: "/tmp"}
			})}, want: None, ignored: true},
		{name: "PVC not bound", in: Input{PVC: withPVC(claim("2Gi", "1Gi", "", ""), func(c *v1.PersistentVolumeClaim) { c.Status.Phase = v1.ClaimPending }),
			PV: volume("1Gi")}, want: None, ignored: true},
		{name: "PVC without volumeName", in: Input{PVC: withPVC(claim("2Gi", "1Gi", "", ""), func(c *v1.PersistentVolumeClaim) { c.Spec.VolumeName = "" }),
			PV: volume("1Gi")}, want: None, ignored: true},
		// controller_test.go: call
		{name: "Resize PVC, no FS resize", in: Input{PVC: claim("2Gi", "1Gi", "", ""), PV: volume("1Gi"), ControllerExpansion: true},
			want: ExpandInController, wantTarget: "2Gi"},
		// expand_and_recover_test.go
		{name: "pvc.spec.size > pv.spec.size, resize_status=node_expansion_inprogress (no status yet)",
			in: Input{PVC: claim("2G", "1G", "", ""), PV: volume("1G"), ControllerExpansion: true}, want: ExpandInController, wantTarget: "2G"},
		{name: "pvc.spec.size = pv.spec.size, resize_status=no_expansion_inprogress",
			in: Input{PVC: claim("1G", "1G", "", ""), PV: volume("1G"), ControllerExpansion: true}, want: None},
		{name: "pvc.spec.size > pv.spec.size, S>C, P=S, no status (fallback call)",
			in: Input{PVC: claim("2G", "1G", "", ""), PV: volume("2G"), ControllerExpansion: true}, want: ExpandInController, wantTarget: "2G"},
		{name: "controller_expansion_infeasible, user lowered (5,3,10,CRI,3)",
			in: Input{PVC: claim("5G", "3G", "10G", cri), PV: volume("3G"), ControllerExpansion: true}, want: Recover, wantTarget: "5G"},
		{name: "controller_expansion_fail(final, but feasible) (5,3,10,CRIP,3) after a final error",
			in: Input{PVC: claim("5G", "3G", "10G", crip), PV: volume("3G"), ControllerExpansion: true, FinalErrorSeen: true}, want: Recover, wantTarget: "5G"},
		{name: "controller_expansion_inprogress (5,3,10,CRIP,3) no final error keeps A",
			in: Input{PVC: claim("5G", "3G", "10G", crip), PV: volume("3G"), ControllerExpansion: true}, want: ExpandInController, wantTarget: "10G"},
		{name: "node_expansion_infeasible, disable_controller_expansion (5,3,10,NRI,10)",
			in: Input{PVC: claim("5G", "3G", "10G", nri), PV: volume("10G"), ControllerExpansion: false}, want: Recover, wantTarget: "5G"},
		{name: "pvc.spec.size = pv.spec.size, resize_status=node_expansion_pending (1,1,1,NRP,1)",
			in: Input{PVC: claim("1G", "1G", "1G", nrp), PV: volume("1G"), ControllerExpansion: true}, want: None},
		{name: "pv.spec.size >= pvc.spec.size, resize_status=node_expansion_failed (2,1,2,NRI,2)",
			in: Input{PVC: claim("2G", "1G", "2G", nri), PV: volume("2G"), ControllerExpansion: true}, want: ExpandInController, wantTarget: "2G"},
		{name: "resize_status-node_expansion_pending (10,1,3,NRP,3)",
			in: Input{PVC: claim("10G", "1G", "3G", nrp), PV: volume("3G"), ControllerExpansion: true}, want: None},
		{name: "resize_status-node_expansion_inprogress (10,1,3,NRIP,3)",
			in: Input{PVC: claim("10G", "1G", "3G", nrip), PV: volume("3G"), ControllerExpansion: true}, want: None},
		{name: "P >= S, NRP: waiting for kubelet",
			in: Input{PVC: claim("2G", "1G", "2G", nrp), PV: volume("2G"), ControllerExpansion: true}, want: None},
		{name: "P < S, NRP, P below A: expand to A",
			in: Input{PVC: claim("10G", "1G", "5G", nrp), PV: volume("3G"), ControllerExpansion: true}, want: ExpandInController, wantTarget: "5G"},
		{name: "P >= S, no status, FileSystemResizePending: wait (old kubelet)",
			in: Input{PVC: claim("2G", "1G", "", "", v1.PersistentVolumeClaimFileSystemResizePending), PV: volume("2G"), ControllerExpansion: true}, want: None},
		// ours: infeasible backoff, node-only, MarkDone
		{name: "infeasible at A = S within backoff: wait",
			in: Input{PVC: claim("10G", "3G", "10G", cri), PV: volume("3G"), ControllerExpansion: true, InfeasibleBackoff: true}, want: None},
		{name: "infeasible at A = S after backoff: retry",
			in: Input{PVC: claim("10G", "3G", "10G", cri), PV: volume("3G"), ControllerExpansion: true}, want: ExpandInController, wantTarget: "10G"},
		{name: "node-only driver",
			in: Input{PVC: claim("2Gi", "1Gi", "", ""), PV: volume("1Gi")}, want: ExpandOnNode, wantTarget: "2Gi"},
		{name: "request lowered back to capacity after infeasible: mark done",
			in: Input{PVC: claim("3G", "3G", "10G", cri), PV: volume("3G"), ControllerExpansion: true}, want: MarkDone, wantTarget: "3G"},
		{name: "request at capacity, CRIP left over: mark done",
			in: Input{PVC: claim("3G", "3G", "3G", crip), PV: volume("3G"), ControllerExpansion: true}, want: MarkDone, wantTarget: "3G"},
		{name: "request at capacity, node step pending: none",
			in: Input{PVC: claim("3G", "3G", "5G", nrp), PV: volume("5G"), ControllerExpansion: true}, want: None},
		// sizes above math.MaxInt64 bytes: refused, never sent wrapped
		{name: "request 10E does not fit in int64 bytes",
			in: Input{PVC: claim("10E", "1Gi", "", ""), PV: volume("1Gi"), ControllerExpansion: true}, want: RefuseSize, wantTarget: "10E"},
		{name: "request of 2^63 bytes does not fit",
			in: Input{PVC: claim("9223372036854775808", "1Gi", "", ""), PV: volume("1Gi"), ControllerExpansion: true}, want: RefuseSize, wantTarget: "9223372036854775808"},
		{name: "request 10E, node-only driver",
			in: Input{PVC: claim("10E", "1Gi", "", ""), PV: volume("1Gi")}, want: RefuseSize, wantTarget: "10E"},
		{name: "request 10E after an infeasible 10E",
			in: Input{PVC: claim("10E", "1Gi", "10E", cri), PV: volume("1Gi"), ControllerExpansion: true}, want: RefuseSize, wantTarget: "10E"},
		{name: "request of math.MaxInt64 bytes fits",
			in: Input{PVC: claim("9223372036854775807", "1Gi", "", ""), PV: volume("1Gi"), ControllerExpansion: true}, want: ExpandInController, wantTarget: "9223372036854775807"},
		{name: "request raised to 10E while a resize to 2Gi is in progress: finish 2Gi first",
			in: Input{PVC: claim("10E", "1Gi", "2Gi", crip), PV: volume("1Gi"), ControllerExpansion: true}, want: ExpandInController, wantTarget: "2Gi"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.in.DriverName = testDriver
			d := Decide(tc.in)
			if d.Action != tc.want {
				t.Fatalf("Decide = %v (%s), want %v", d.Action, d.Reason, tc.want)
			}
			if d.Ignored != tc.ignored {
				t.Errorf("Ignored = %v (%s), want %v", d.Ignored, d.Reason, tc.ignored)
			}
			if tc.wantTarget != "" && d.Target.Cmp(resource.MustParse(tc.wantTarget)) != 0 {
				t.Errorf("Target = %s (%s), want %s", d.Target.String(), d.Reason, tc.wantTarget)
			}
		})
	}
}

func TestBytes(t *testing.T) {
	for _, tc := range []struct {
		q      string
		want   int64
		wantOK bool
	}{
		{"1Gi", 1 << 30, true},
		{"1.5", 2, true}, // rounded up
		{"9223372036854775807", math.MaxInt64, true},
		{"9223372036854775808", 0, false}, // Value() wraps it negative
		{"8Ei", math.MaxInt64, true},      // parsing clamps binary sizes to MaxInt64
		{"10E", 0, false},                 // Value() wraps it to 0
		{"0", 0, false},
	} {
		got, ok := toBytes(resource.MustParse(tc.q))
		if got != tc.want || ok != tc.wantOK {
			t.Errorf("toBytes(%s) = %d, %v; want %d, %v", tc.q, got, ok, tc.want, tc.wantOK)
		}
	}
}

func TestCapacityAfterExpand(t *testing.T) {
	target := resource.MustParse("2Gi")
	for _, tc := range []struct {
		got    int64
		want   string
		wantOK bool
	}{
		{got: 2 << 30, want: "2Gi", wantOK: true},
		{got: 3 << 30, want: "3Gi", wantOK: true},
		{got: 0, want: "2Gi", wantOK: false},
		{got: 1 << 30, want: "2Gi", wantOK: false},
	} {
		q, ok := capacityAfterExpand(target, tc.got)
		if q.Cmp(resource.MustParse(tc.want)) != 0 || ok != tc.wantOK {
			t.Errorf("capacityAfterExpand(2Gi, %d) = %s, %v; want %s, %v", tc.got, q.String(), ok, tc.want, tc.wantOK)
		}
	}
}

func TestPreResizeAnnotationStale(t *testing.T) {
	annotated := withPV(volume("2Gi"), func(pv *v1.PersistentVolume) {
		pv.Annotations = map[string]string{AnnPreResizeCapacity: "1Gi"}
	})
	if !preResizeAnnotationStale(claim("2Gi", "2Gi", "", ""), annotated) {
		t.Error("PV nodeExpand Complete: annotation should be stale once C >= P")
	}
	if preResizeAnnotationStale(claim("2Gi", "1Gi", "", ""), annotated) {
		t.Error("annotation must stay while the node step is pending")
	}
	if preResizeAnnotationStale(claim("2Gi", "2Gi", "", ""), volume("2Gi")) {
		t.Error("no annotation, nothing stale")
	}
}

func TestNeedsResize(t *testing.T) {
	if !NeedsResize(claim("2Gi", "1Gi", "", "")) || NeedsResize(claim("1Gi", "1Gi", "", "")) {
		t.Error("NeedsResize must be S > C")
	}
	// S > C even though P >= S: still needs resize (upstream's rule).
	if !NeedsResize(claim("2Gi", "1Gi", "2Gi", "")) {
		t.Error("NeedsResize must ignore P and A")
	}
}

package resizer

import (
	"testing"

	v1 "k8s.io/api/core/v1"
	storagev1 "k8s.io/api/storage/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func vacClaim(spec, current string, ms *v1.ModifyVolumeStatus, conds ...v1.PersistentVolumeClaimConditionType) *v1.PersistentVolumeClaim {
	pvc := claim("1Gi", "1Gi", "", "", conds...)
	if spec != "" {
		pvc.Spec.VolumeAttributesClassName = &spec
	}
	if current != "" {
		pvc.Status.CurrentVolumeAttributesClassName = &current
	}
	pvc.Status.ModifyVolumeStatus = ms
	return pvc
}

func modStatus(target string, s v1.PersistentVolumeClaimModifyVolumeStatus) *v1.ModifyVolumeStatus {
	return &v1.ModifyVolumeStatus{TargetVolumeAttributesClassName: target, Status: s}
}

// TestDecideModify covers the decisions of upstream's modifycontroller
// TestController, TestSyncPVC, TestInfeasibleRetry, TestModify,
// TestModifyUncertain and TestCancel.
func TestDecideModify(t *testing.T) {
	inProgress, infeasible := v1.PersistentVolumeClaimModifyVolumeInProgress, v1.PersistentVolumeClaimModifyVolumeInfeasible
	for _, tc := range []struct {
		name       string
		in         ModifyInput
		want       ModifyAction
		wantTarget string
		ignored    bool
		backoff    bool
		resume     bool // finishing an unfinished call: no VolumeModify event
	}{
		{name: "Modify called", in: ModifyInput{PVC: vacClaim("gold", "silver", nil), PV: volume("1Gi")}, want: ModifyCall, wantTarget: "gold"},
		{name: "First time modify (current nil)", in: ModifyInput{PVC: vacClaim("gold", "", nil), PV: volume("1Gi")}, want: ModifyCall, wantTarget: "gold"},
		{name: "Nothing to modify", in: ModifyInput{PVC: vacClaim("gold", "gold", nil), PV: volume("1Gi")}, want: ModifyNone},
		{name: "Should execute ModifyVolume for InProgress target if PVC has empty Spec.VACName",
			in: ModifyInput{PVC: vacClaim("", "silver", modStatus("gold", inProgress)), PV: volume("1Gi")}, want: ModifyCall, wantTarget: "gold", resume: true},
		{name: "Should NOT modify when rollback to empty VACName",
			in: ModifyInput{PVC: vacClaim("", "silver", nil), PV: volume("1Gi")}, want: ModifyNone},
		{name: "Should NOT modify if PVC managed by another CSI Driver",
			in: ModifyInput{PVC: vacClaim("gold", "", nil), PV: withPV(volume("1Gi"), func(pv *v1.PersistentVolume) { pv.Spec.CSI.Driver = "x" })}, want: ModifyNone, ignored: true},
		{name: "Should NOT modify if PVC deleted", in: ModifyInput{PVC: nil, PV: volume("1Gi")}, want: ModifyNone, ignored: true},
		{name: "Should NOT modify if PVC not in bound state",
			in: ModifyInput{PVC: withPVC(vacClaim("gold", "", nil), func(c *v1.PersistentVolumeClaim) { c.Status.Phase = v1.ClaimPending }), PV: volume("1Gi")}, want: ModifyNone, ignored: true},
		{name: "Should NOT modify if PV not created yet", in: ModifyInput{PVC: vacClaim("gold", "", nil)}, want: ModifyNone, ignored: true},
		{name: "Should NOT modify if PV wasn't provisioned by CSI driver",
			in: ModifyInput{PVC: vacClaim("gold", "", nil), PV: withPV(volume("1Gi"), func(pv *v1.PersistentVolume) { pv.Spec.CSI = nil })}, want: ModifyNone, ignored: true},
		{name: "Should NOT retry infeasible error normally",
			in: ModifyInput{PVC: vacClaim("gold", "silver", modStatus("gold", infeasible)), PV: volume("1Gi"), InfeasibleBackoff: true}, want: ModifyNone, backoff: true},
		{name: "Should EVENTUALLY retry infeasible error",
			in: ModifyInput{PVC: vacClaim("gold", "silver", modStatus("gold", infeasible)), PV: volume("1Gi")}, want: ModifyCall, wantTarget: "gold"},
		{name: "rollback from an infeasible VAC re-applies the current one",
			in: ModifyInput{PVC: vacClaim("silver", "silver", modStatus("gold", infeasible)), PV: volume("1Gi"), InfeasibleBackoff: true}, want: ModifyCall, wantTarget: "silver"},
		{name: "uncertain: a new spec VAC is ignored",
			in: ModifyInput{PVC: vacClaim("platinum", "silver", modStatus("gold", inProgress)), PV: volume("1Gi"), Uncertain: true}, want: ModifyCall, wantTarget: "gold", resume: true},
		{name: "certain InProgress: the new spec VAC wins",
			in: ModifyInput{PVC: vacClaim("platinum", "silver", modStatus("gold", inProgress)), PV: volume("1Gi")}, want: ModifyCall, wantTarget: "platinum"},
		{name: "cancel: spec empty, not InProgress, ModifyingVolume present",
			in: ModifyInput{PVC: vacClaim("", "silver", modStatus("gold", infeasible), v1.PersistentVolumeClaimVolumeModifyingVolume), PV: volume("1Gi")}, want: ModifyCancel},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.in.DriverName = testDriver
			d := DecideModify(tc.in)
			if d.Action != tc.want || d.Ignored != tc.ignored || d.Backoff != tc.backoff {
				t.Fatalf("DecideModify = %v ignored=%v backoff=%v (%s); want %v ignored=%v backoff=%v", d.Action, d.Ignored, d.Backoff, d.Reason, tc.want, tc.ignored, tc.backoff)
			}
			if d.Resume != tc.resume {
				t.Errorf("Resume = %v, want %v", d.Resume, tc.resume)
			}
			if d.Target != tc.wantTarget && tc.wantTarget != "" {
				t.Errorf("Target = %q, want %q", d.Target, tc.wantTarget)
			}
		})
	}
}

// TestMarkModify follows upstream's modify_status_test.go.
func TestMarkModify(t *testing.T) {
	base := vacClaim("gold", "silver", nil)
	t.Run("as failed (final)", func(t *testing.T) {
		got := MarkModifyFailed(base, "gold", false, true, "Internal", "Final error", now)
		ms := got.Status.ModifyVolumeStatus
		if ms.Status != v1.PersistentVolumeClaimModifyVolumeInProgress || ms.TargetVolumeAttributesClassName != "gold" {
			t.Errorf("status = %+v", ms)
		}
		if condTypes(got) != "ModifyingVolume,ModifyVolumeError" || got.Status.Conditions[0].Message != `Modifying volume to "gold" failed. Waiting for retry.` ||
			got.Status.Conditions[1].Reason != "Internal" || got.Status.Conditions[1].Message != "Final error" {
			t.Errorf("conditions = %+v", got.Status.Conditions)
		}
	})
	t.Run("as uncertain", func(t *testing.T) {
		got := MarkModifyFailed(base, "gold", false, false, "Aborted", "busy", now)
		if got.Status.Conditions[0].Message != `Modifying volume to "gold" is still in progress.` {
			t.Errorf("message = %q", got.Status.Conditions[0].Message)
		}
	})
	t.Run("as infeasible", func(t *testing.T) {
		got := MarkModifyFailed(base, "gold", true, true, "InvalidArgument", "no", now)
		if got.Status.ModifyVolumeStatus.Status != v1.PersistentVolumeClaimModifyVolumeInfeasible {
			t.Errorf("status = %+v", got.Status.ModifyVolumeStatus)
		}
	})
	t.Run("as pending keeps the old target and conditions", func(t *testing.T) {
		in := vacClaim("missing", "silver", modStatus("whatever", v1.PersistentVolumeClaimModifyVolumeInProgress), v1.PersistentVolumeClaimVolumeModifyingVolume)
		got := MarkModifyPending(in)
		if got.Status.ModifyVolumeStatus.Status != v1.PersistentVolumeClaimModifyVolumePending || got.Status.ModifyVolumeStatus.TargetVolumeAttributesClassName != "whatever" || condTypes(got) != "ModifyingVolume" {
			t.Errorf("got %+v %s", got.Status.ModifyVolumeStatus, condTypes(got))
		}
	})
	t.Run("completed, and clear conditions", func(t *testing.T) {
		in := MarkModifyFailed(base, "gold", false, true, "Internal", "x", now)
		in.Status.Conditions = append(in.Status.Conditions, v1.PersistentVolumeClaimCondition{Type: v1.PersistentVolumeClaimResizing, Status: v1.ConditionTrue})
		got := MarkModified(in, "gold")
		if got.Status.ModifyVolumeStatus != nil || ptrString(got.Status.CurrentVolumeAttributesClassName) != "gold" || condTypes(got) != "Resizing" {
			t.Errorf("got %+v current=%s conds=%s", got.Status.ModifyVolumeStatus, ptrString(got.Status.CurrentVolumeAttributesClassName), condTypes(got))
		}
	})
	t.Run("cancel removes ModifyingVolume only", func(t *testing.T) {
		in := MarkModifyFailed(base, "gold", false, true, "Internal", "x", now)
		got := MarkModifyCanceled(in)
		if condTypes(got) != "ModifyVolumeError" {
			t.Errorf("conds=%s", condTypes(got))
		}
	})
}

func TestModifyParameters(t *testing.T) {
	vac := &storagev1.VolumeAttributesClass{ObjectMeta: metav1.ObjectMeta{Name: "gold"}, Parameters: map[string]string{"iops": "4567"}}
	got := modifyParameters(vac, claim("1Gi", "1Gi", "", ""), volume("1Gi"), false)
	if len(got) != 1 || got["iops"] != "4567" {
		t.Errorf("modify volume success: params = %v", got)
	}
	got = modifyParameters(vac, claim("1Gi", "1Gi", "", ""), volume("1Gi"), true)
	if len(got) != 4 || got["csi.storage.k8s.io/pvc/name"] != "claim" || got["csi.storage.k8s.io/pvc/namespace"] != "ns" || got["csi.storage.k8s.io/pv/name"] != "pv" {
		t.Errorf("with extra metadata: params = %v", got)
	}
	if len(vac.Parameters) != 1 {
		t.Error("the class's own parameters must not change")
	}
}

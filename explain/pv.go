package explain

import (
	"fmt"
	"strings"

	"github.com/csi-kit/sidecars/internal/names"
	v1 "k8s.io/api/core/v1"
)

func diagnosePV(in *Input) []Finding {
	pv := in.PV
	if pv == nil {
		return notFound(in)
	}
	driver := ""
	if pv.Spec.CSI != nil {
		driver = pv.Spec.CSI.Driver
	}
	claim := "none"
	if ref := pv.Spec.ClaimRef; ref != nil {
		claim = ref.Namespace + "/" + ref.Name
	}
	var fs []Finding
	if pv.DeletionTimestamp != nil {
		if hasFinalizer(pv.Finalizers, finalizerPVProtection) && pv.Status.Phase == v1.VolumeBound {
			fs = append(fs, Finding{Severity: Warning, Reason: ReasonDeletionPending,
				Message: fmt.Sprintf("the volume is being deleted but is still bound to claim %s, so %s keeps it", claim, finalizerPVProtection),
				Action:  "delete the claim first (the volume goes with it if its reclaim policy is Delete)"})
		}
		for _, f := range pv.Finalizers {
			if strings.HasPrefix(f, "external-attacher/") {
				fs = append(fs, Finding{Severity: Warning, Reason: ReasonDeletionPending,
					Message: fmt.Sprintf("the volume is still attached to a node (finalizer %s): its VolumeAttachment must go first", f),
					Action:  "stop the pods using it; if the node is gone, delete the VolumeAttachment objects naming this volume"})
			}
		}
	}
	switch pv.Status.Phase {
	case v1.VolumeBound:
		if !problems(fs) {
			fs = append(fs, Finding{Severity: Info, Reason: ReasonBoundOK,
				Message: fmt.Sprintf("bound to claim %s, %s", claim, fmtQ(pv.Spec.Capacity[v1.ResourceStorage]))})
		}
	case v1.VolumeAvailable:
		fs = append(fs, Finding{Severity: Info, Reason: ReasonAvailable,
			Message: "the volume is not bound to any claim",
			Action:  "a claim binds it when its class, size, access modes and volume mode match (or when it names the volume in spec.volumeName)"})
	case v1.VolumeFailed:
		fs = append(fs, Finding{Severity: Error, Reason: ReasonVolumeFailed,
			Message: "the volume failed: " + pv.Status.Message,
			Action:  "fix the cause; delete the PV (and the backend volume if needed) when it is no longer useful"})
	case v1.VolumeReleased:
		if pv.Spec.PersistentVolumeReclaimPolicy != v1.PersistentVolumeReclaimDelete {
			fs = append(fs, Finding{Severity: Info, Reason: ReasonReleased,
				Message: fmt.Sprintf("claim %s was deleted; reclaim policy %s keeps the volume and its data", claim, pv.Spec.PersistentVolumeReclaimPolicy),
				Action:  "delete the PV (and the backend volume) when the data is not needed, or remove spec.claimRef so a new claim can bind it"})
			break
		}
		fs = append(fs, deleteFindings(in, driver, claim)...)
	}
	if pv.DeletionTimestamp != nil && hasFinalizer(pv.Finalizers, names.FinalizerProvisionerPV) && pv.Status.Phase != v1.VolumeReleased {
		fs = append(fs, deleteFindings(in, driver, claim)...)
	}
	if len(fs) == 0 {
		fs = append(fs, Finding{Severity: Info, Reason: ReasonDeletionPending,
			Message: fmt.Sprintf("the volume is in phase %q", pv.Status.Phase)})
	}
	return fs
}

// deleteFindings explains a volume the provisioner should delete.
func deleteFindings(in *Input, driver, claim string) []Finding {
	var fs []Finding
	if e := latestEvent(in.Events, string(KindPV), in.PV.Name, names.ReasonVolumeFailedDelete); e != nil {
		fs = append(fs, Finding{Severity: Error, Reason: ReasonDeletionFailed,
			Message: "deleting the backend volume failed" + countNote(e) + ": " + e.Message,
			Action:  "fix the cause (a missing deletion secret, a volume still in use or with snapshots on the backend); the provisioner retries"})
	}
	if driver != "" {
		if f := leaderFinding(in, ReasonNoProvisionerLeader, provisionerLease(driver),
			fmt.Sprintf("provisioner of %s", driver), "deletes this volume"); f != nil {
			fs = append(fs, *f)
		}
	}
	if !problems(fs) {
		fs = append(fs, Finding{Severity: Info, Reason: ReasonDeletionPending,
			Message: fmt.Sprintf("claim %s was deleted; the provisioner deletes the backend volume and then the PV", claim),
			Action:  "wait; if this lasts minutes, read the provisioner's logs"})
	}
	return fs
}

package explain

import (
	"fmt"
	"strings"

	"github.com/csi-kit/sidecars/internal/names"
	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/apimachinery/pkg/labels"
)

// resizeFindings explains a bound claim whose request differs from its
// capacity, or that carries resize state.
func resizeFindings(in *Input) []Finding {
	pvc := in.PVC
	req, hasReq := pvc.Spec.Resources.Requests[v1.ResourceStorage]
	capa := pvc.Status.Capacity[v1.ResourceStorage]
	status := pvc.Status.AllocatedResourceStatuses[v1.ResourceStorage]
	conds := map[v1.PersistentVolumeClaimConditionType]*v1.PersistentVolumeClaimCondition{}
	for i := range pvc.Status.Conditions {
		c := &pvc.Status.Conditions[i]
		if c.Status == v1.ConditionTrue {
			conds[c.Type] = c
		}
	}
	grow := hasReq && req.Cmp(capa) > 0
	if !grow && status == "" && conds[v1.PersistentVolumeClaimResizing] == nil &&
		conds[v1.PersistentVolumeClaimFileSystemResizePending] == nil &&
		conds[v1.PersistentVolumeClaimControllerResizeError] == nil && conds[v1.PersistentVolumeClaimNodeResizeError] == nil {
		return nil
	}
	target := req
	if a, ok := pvc.Status.AllocatedResources[v1.ResourceStorage]; ok {
		target = a
	}
	driver := pvc.Annotations[names.AnnStorageResizer]
	if driver == "" && in.PV != nil && in.PV.Spec.CSI != nil {
		driver = in.PV.Spec.CSI.Driver
	}
	pods := activePods(in.Pods)
	var fs []Finding

	if in.StorageClass != nil && grow && (in.StorageClass.AllowVolumeExpansion == nil || !*in.StorageClass.AllowVolumeExpansion) &&
		pvc.Annotations[names.AnnStorageResizer] == "" {
		fs = append(fs, Finding{Severity: Error, Reason: ReasonExpansionNotAllowed,
			Message: fmt.Sprintf("class %s does not allow volume expansion (allowVolumeExpansion is not true)", in.StorageClass.Name),
			Action:  fmt.Sprintf("set allowVolumeExpansion: true on the class if the driver can expand, or lower the request back to %s", fmtQ(capa))})
	}

	switch {
	case status == v1.PersistentVolumeClaimControllerResizeInfeasible:
		why := ""
		if c := conds[v1.PersistentVolumeClaimControllerResizeError]; c != nil {
			why = ": " + c.Message
		}
		fs = append(fs, Finding{Severity: Error, Reason: ReasonExpansionInfeasible,
			Message: fmt.Sprintf("expansion infeasible: the driver refused to expand the volume to %s%s", fmtQ(target), why),
			Action:  infeasibleAction(in, capa)})
	case conds[v1.PersistentVolumeClaimControllerResizeError] != nil:
		fs = append(fs, Finding{Severity: Error, Reason: ReasonControllerResizeFailed,
			Message: "expanding the volume on the storage backend failed: " + conds[v1.PersistentVolumeClaimControllerResizeError].Message,
			Action:  fmt.Sprintf("the resizer retries with backoff; fix the cause, or lower the request (not below %s) to give up", fmtQ(capa))})
	}

	if offline := offlineInUse(in, conds[v1.PersistentVolumeClaimResizing]); offline != "" && grow && status != v1.PersistentVolumeClaimNodeResizePending {
		msg := fmt.Sprintf("the driver %s expands volumes only offline and the volume is in use", driver)
		if len(pods) > 0 {
			msg += " by pod " + list(pods)
		}
		fs = append(fs, Finding{Severity: Warning, Reason: ReasonOfflineExpansionInUse, Message: msg,
			Action: "stop the pods using the claim (scale the workload to 0); the expansion starts as soon as no pod uses it, then start them again"})
	}

	switch {
	case status == v1.PersistentVolumeClaimNodeResizeInfeasible:
		why := ""
		if c := conds[v1.PersistentVolumeClaimNodeResizeError]; c != nil {
			why = ": " + c.Message
		}
		fs = append(fs, Finding{Severity: Error, Reason: ReasonNodeExpansionInfeasible,
			Message: "kubelet cannot grow the file system to " + fmtQ(target) + why,
			Action:  fmt.Sprintf("lower the request (not below %s); the resizer then retries with the smaller size", fmtQ(capa))})
	case conds[v1.PersistentVolumeClaimNodeResizeError] != nil:
		fs = append(fs, Finding{Severity: Error, Reason: ReasonNodeResizeFailed,
			Message: "kubelet failed to grow the file system: " + conds[v1.PersistentVolumeClaimNodeResizeError].Message,
			Action:  "read the kubelet and node plugin logs on the node running the pod; kubelet retries on the next mount or sync"})
	case status == v1.PersistentVolumeClaimNodeResizePending || conds[v1.PersistentVolumeClaimFileSystemResizePending] != nil ||
		status == v1.PersistentVolumeClaimNodeResizeInProgress:
		size := fmtQ(target)
		if in.PV != nil {
			if p, ok := in.PV.Spec.Capacity[v1.ResourceStorage]; ok {
				size = fmtQ(p)
			}
		}
		f := Finding{Severity: Warning, Reason: ReasonFileSystemResizePending}
		if len(pods) > 0 {
			f.Message = fmt.Sprintf("file system resize pending: the volume is %s on the backend; kubelet grows the file system when it mounts the volume, and the driver expands offline or the resize did not finish while pod %s runs", size, list(pods))
			f.Action = fmt.Sprintf("restart pod %s (delete it; its controller recreates it), and kubelet finishes the resize at mount", list(pods))
		} else {
			f.Message = fmt.Sprintf("file system resize pending: the volume is %s on the backend; kubelet grows the file system the next time a pod mounts it", size)
			f.Action = "start a pod that uses the claim"
		}
		if status == v1.PersistentVolumeClaimNodeResizeInProgress {
			f.Severity, f.Message, f.Action = Info, "kubelet is growing the file system to "+size, "wait"
		}
		fs = append(fs, f)
	}

	if !problems(fs) && grow {
		if driver != "" {
			if f := leaderFinding(in, ReasonNoResizerLeader, resizerLease(driver),
				fmt.Sprintf("resizer of %s", driver), "expands this claim"); f != nil {
				fs = append(fs, *f)
			}
		}
		if e := latestEvent(in.Events, string(KindPVC), pvc.Name, names.ReasonVolumeResizeFailed); e != nil && !strings.Contains(e.Message, names.OfflineExpansionText) {
			fs = append(fs, Finding{Severity: Warning, Reason: ReasonControllerResizeFailed,
				Message: "the last expansion attempt failed" + countNote(e) + ": " + e.Message,
				Action:  fmt.Sprintf("the resizer retries with backoff; fix the cause, or lower the request (not below %s) to give up", fmtQ(capa))})
		}
	}
	if !problems(fs) && !hasReason(fs, ReasonFileSystemResizePending) && (grow || status == v1.PersistentVolumeClaimControllerResizeInProgress) {
		fs = append(fs, Finding{Severity: Info, Reason: ReasonResizing,
			Message: fmt.Sprintf("expanding from %s to %s", fmtQ(capa), fmtQ(target)),
			Action:  "wait; the resizer expands the volume, then kubelet the file system if needed"})
	}
	return fs
}

// offlineInUse returns the text that shows the resizer holds the claim
// back because its offline-only driver cannot expand it while in use.
func offlineInUse(in *Input, resizing *v1.PersistentVolumeClaimCondition) string {
	if resizing != nil && strings.Contains(resizing.Message, names.OfflineExpansionText) {
		return resizing.Message
	}
	e := latestEvent(in.Events, string(KindPVC), in.PVC.Name, names.ReasonVolumeResizeFailed)
	if e != nil && strings.Contains(e.Message, names.OfflineExpansionText) {
		return e.Message
	}
	return ""
}

// infeasibleAction says how far to lower the request: to at most the
// current capacity plus the free space of the volume's topology segment
// when CSIStorageCapacity tells, never below the current capacity.
func infeasibleAction(in *Input, capa resource.Quantity) string {
	if maxSize, seg, ok := reachable(in, capa); ok {
		return fmt.Sprintf("lower the request to ≤ %s (current %s plus %s free in %s) and not below %s; the resizer retries at once with the new size",
			fmtQ(maxSize), fmtQ(capa), fmtQ(seg.usable()), seg.desc, fmtQ(capa))
	}
	return fmt.Sprintf("lower the request to a size the driver accepts, not below the current %s (back to %s cancels the expansion); the resizer retries at once with the new size", fmtQ(capa), fmtQ(capa))
}

// reachable is the largest size the volume can grow to from the capacity
// of the segment its PV lives in.
func reachable(in *Input, capa resource.Quantity) (resource.Quantity, segment, bool) {
	if in.PV == nil || in.StorageClass == nil {
		return resource.Quantity{}, segment{}, false
	}
	pvLabels := pvTopology(in.PV)
	for _, s := range segmentsOf(in.Capacities, in.StorageClass.Name) {
		if s.free == nil || !s.sel.Matches(labels.Set(pvLabels)) {
			continue
		}
		n := capa.DeepCopy()
		n.Add(*s.free)
		if s.max != nil && s.max.Cmp(n) < 0 {
			n = s.max.DeepCopy()
		}
		return n, s, true
	}
	return resource.Quantity{}, segment{}, false
}

// pvTopology returns the single-valued In terms of a PV's node affinity as
// labels.
func pvTopology(pv *v1.PersistentVolume) map[string]string {
	out := map[string]string{}
	if pv.Spec.NodeAffinity == nil || pv.Spec.NodeAffinity.Required == nil {
		return out
	}
	for _, t := range pv.Spec.NodeAffinity.Required.NodeSelectorTerms {
		for _, e := range t.MatchExpressions {
			if e.Operator == v1.NodeSelectorOpIn && len(e.Values) == 1 {
				out[e.Key] = e.Values[0]
			}
		}
	}
	return out
}

// modifyFindings explains VolumeAttributesClass changes.
func modifyFindings(pvc *v1.PersistentVolumeClaim) []Finding {
	var fs []Finding
	for _, c := range pvc.Status.Conditions {
		if c.Status != v1.ConditionTrue {
			continue
		}
		switch c.Type {
		case v1.PersistentVolumeClaimVolumeModifyVolumeError:
			fs = append(fs, Finding{Severity: Error, Reason: ReasonModifyVolumeFailed,
				Message: "changing the volume's attributes class failed: " + c.Message,
				Action:  "fix the VolumeAttributesClass or set spec.volumeAttributesClassName back to the current class; the resizer retries"})
		case v1.PersistentVolumeClaimVolumeModifyingVolume:
			fs = append(fs, Finding{Severity: Info, Reason: ReasonModifyingVolume, Message: c.Message, Action: "wait"})
		}
	}
	if st := pvc.Status.ModifyVolumeStatus; st != nil && st.Status == v1.PersistentVolumeClaimModifyVolumeInfeasible && !hasReason(fs, ReasonModifyVolumeFailed) {
		fs = append(fs, Finding{Severity: Error, Reason: ReasonModifyVolumeFailed,
			Message: fmt.Sprintf("the driver cannot apply VolumeAttributesClass %s", st.TargetVolumeAttributesClassName),
			Action:  "set spec.volumeAttributesClassName back to the current class or to one the driver supports"})
	}
	return fs
}

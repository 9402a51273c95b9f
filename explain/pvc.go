package explain

import (
	"fmt"
	"strings"

	"github.com/csi-kit/sidecars/internal/names"
	v1 "k8s.io/api/core/v1"
	storagev1 "k8s.io/api/storage/v1"
)

func diagnosePVC(in *Input) []Finding {
	pvc := in.PVC
	if pvc == nil {
		return notFound(in)
	}
	var fs []Finding
	if pvc.DeletionTimestamp != nil {
		fs = append(fs, claimDeletion(in)...)
	}
	switch pvc.Status.Phase {
	case v1.ClaimLost:
		fs = append(fs, Finding{Severity: Error, Reason: ReasonClaimLost,
			Message: fmt.Sprintf("the claim was bound to volume %s, which no longer exists or no longer points back to it", pvc.Spec.VolumeName),
			Action:  "restore the PV (with spec.claimRef naming this claim) or delete the claim and create a new one; the data may be gone"})
	case v1.ClaimBound:
		fs = append(fs, resizeFindings(in)...)
		fs = append(fs, modifyFindings(pvc)...)
		if !problems(fs) && !hasReason(fs, ReasonResizing) && !hasReason(fs, ReasonModifyingVolume) {
			size := pvc.Status.Capacity[v1.ResourceStorage]
			fs = append(fs, Finding{Severity: Info, Reason: ReasonBoundOK,
				Message: fmt.Sprintf("bound to volume %s, %s", pvc.Spec.VolumeName, fmtQ(size))})
		}
	default:
		fs = append(fs, pendingFindings(in)...)
	}
	return fs
}

// pendingFindings explains a claim that is not bound yet.
func pendingFindings(in *Input) []Finding {
	pvc := in.PVC
	if pvc.Spec.VolumeName != "" && in.PV == nil {
		return []Finding{{Severity: Error, Reason: ReasonWaitingForProvisioner,
			Message: fmt.Sprintf("the claim asks for the specific volume %s, which does not exist", pvc.Spec.VolumeName),
			Action:  "create that PV, or recreate the claim without spec.volumeName"}}
	}
	className := claimClass(pvc)
	switch {
	case className == nil && in.DefaultStorageClass == nil:
		return []Finding{{Severity: Warning, Reason: ReasonNoStorageClass,
			Message: "the claim names no storage class and the cluster has no default class, so it binds only to a pre-created PV that matches it",
			Action:  "set spec.storageClassName, mark a class default (storageclass.kubernetes.io/is-default-class: \"true\"), or create a matching PV"}}
	case className != nil && *className == "":
		return []Finding{{Severity: Warning, Reason: ReasonNoStorageClass,
			Message: "the claim asks for no class (storageClassName: \"\"), so it binds only to a pre-created PV without a class",
			Action:  "create a matching PV, or set spec.storageClassName to a class with a provisioner"}}
	case in.StorageClassMissing || in.StorageClass == nil:
		name := ""
		if className != nil {
			name = *className
		}
		return []Finding{{Severity: Error, Reason: ReasonStorageClassMissing,
			Message: fmt.Sprintf("storage class %q does not exist", name),
			Action:  "create the class or recreate the claim with an existing class (storageClassName cannot be changed)"}}
	}
	class := in.StorageClass
	if class.Provisioner == noProvisioner {
		return []Finding{{Severity: Warning, Reason: ReasonNoDynamicProvisioning,
			Message: fmt.Sprintf("class %s has no provisioner (%s): volumes are never created for it, only pre-created PVs bind", class.Name, noProvisioner),
			Action:  "create a PV of that class matching the claim's size, access modes and (for local volumes) a node the pod can run on"}}
	}
	var fs []Finding
	fs = append(fs, dataSourceFindings(in)...)
	selected := pvc.Annotations[names.AnnSelectedNode]
	wffc := class.VolumeBindingMode != nil && *class.VolumeBindingMode == storagev1.VolumeBindingWaitForFirstConsumer
	if wffc && selected == "" {
		return append(fs, firstConsumerFindings(in)...)
	}
	var node *v1.Node
	if selected != "" {
		node = findNode(in.Nodes, selected)
		if node == nil {
			fs = append(fs, Finding{Severity: Error, Reason: ReasonSelectedNodeMissing,
				Message: fmt.Sprintf("the scheduler chose node %s for the volume, and that node no longer exists", selected),
				Action:  fmt.Sprintf("delete and recreate the pod; if the claim keeps the annotation, remove %s from it so the scheduler can choose again", names.AnnSelectedNode)})
		} else if f := driverOnNode(in, class.Provisioner, selected); f != nil {
			fs = append(fs, *f)
		}
	}
	if f := capacityFinding(in, pvc, node); f != nil && (node != nil || selected == "") {
		fs = append(fs, *f)
	}
	driver := provisionerOf(pvc, class)
	if driver != "" && !inTree(driver) {
		if f := leaderFinding(in, ReasonNoProvisionerLeader, provisionerLease(driver),
			fmt.Sprintf("provisioner of %s", driver), "creates volumes for this claim"); f != nil {
			fs = append(fs, *f)
		}
	}
	if e := latestEvent(in.Events, string(KindPVC), pvc.Name, names.ReasonProvisioningFailed); e != nil {
		fs = append(fs, Finding{Severity: Error, Reason: ReasonProvisioningFailed,
			Message: "the last attempt to create the volume failed" + countNote(e) + ": " + e.Message,
			Action:  provisioningAction(e.Message)})
	}
	if !problems(fs) {
		msg := fmt.Sprintf("waiting for %s to create the volume", driver)
		if node != nil {
			msg += " on node " + node.Name
		}
		if e := latestEvent(in.Events, string(KindPVC), pvc.Name, eventExternalProvisioning); e != nil {
			msg += "; last event: " + e.Message
		}
		fs = append(fs, Finding{Severity: Info, Reason: ReasonWaitingForProvisioner, Message: msg,
			Action: "nothing yet; if this lasts minutes, read the provisioner's logs and its ProvisioningFailed events"})
	}
	return fs
}

// firstConsumerFindings explains a claim of a WaitForFirstConsumer class
// that has no selected node yet.
func firstConsumerFindings(in *Input) []Finding {
	class := in.StorageClass.Name
	pods := activePods(in.Pods)
	if len(pods) == 0 {
		return []Finding{{Severity: Info, Reason: ReasonWaitForFirstConsumer,
			Message: fmt.Sprintf("waiting for first consumer: class %s creates the volume only once a pod using the claim is scheduled, and no pod uses it", class),
			Action:  "create a pod that mounts the claim; this is normal for this class"}}
	}
	var fs []Finding
	for i := range in.Pods {
		p := &in.Pods[i]
		if p.Spec.NodeName != "" || p.Status.Phase == v1.PodSucceeded || p.Status.Phase == v1.PodFailed {
			continue
		}
		msg := ""
		for _, c := range p.Status.Conditions {
			if c.Type == v1.PodScheduled && c.Status == v1.ConditionFalse && c.Message != "" {
				msg = c.Message
			}
		}
		if e := latestEvent(in.Events, "Pod", p.Name, eventFailedScheduling); e != nil && msg == "" {
			msg = e.Message
		}
		if msg == "" {
			continue // not tried yet
		}
		fs = append(fs, Finding{Severity: Warning, Reason: ReasonPodNotScheduled,
			Message: fmt.Sprintf("the volume waits for pod %s to be scheduled, and the scheduler cannot place it: %s", p.Name, msg),
			Action:  "fix what the scheduler reports (node selectors, taints, resources, storage capacity)"})
	}
	if f := capacityFinding(in, in.PVC, nil); f != nil {
		fs = append(fs, *f)
	}
	if len(fs) == 0 {
		fs = append(fs, Finding{Severity: Info, Reason: ReasonWaitForFirstConsumer,
			Message: fmt.Sprintf("waiting for first consumer: pod %s uses the claim; the scheduler has not yet chosen a node for the volume", list(pods)),
			Action:  "wait for the scheduler; if nothing happens, check that kube-scheduler runs"})
	}
	return fs
}

// driverOnNode reports a driver not registered on the node, judged only
// when the node's CSINode is known.
func driverOnNode(in *Input, driver, node string) *Finding {
	for i := range in.CSINodes {
		cn := &in.CSINodes[i]
		if cn.Name != node {
			continue
		}
		for _, d := range cn.Spec.Drivers {
			if d.Name == driver {
				return nil
			}
		}
		return &Finding{Severity: Error, Reason: ReasonDriverNotOnNode,
			Message: fmt.Sprintf("driver %s is not registered on node %s (its CSINode lists no such driver), so no topology is known for the volume", driver, node),
			Action:  "check the driver's node plugin pod on that node (DaemonSet, node-driver-registrar logs)"}
	}
	return nil
}

func dataSourceFindings(in *Input) []Finding {
	ref := in.PVC.Spec.DataSourceRef
	if ref == nil {
		if ds := in.PVC.Spec.DataSource; ds != nil {
			ref = &v1.TypedObjectReference{APIGroup: ds.APIGroup, Kind: ds.Kind, Name: ds.Name}
		}
	}
	if ref == nil {
		return nil
	}
	switch {
	case ref.Kind == "PersistentVolumeClaim" && (ref.APIGroup == nil || *ref.APIGroup == ""):
		return cloneSourceFindings(in, ref.Name)
	case ref.Kind != "VolumeSnapshot":
		return nil
	}
	vs := in.DataSourceSnapshot
	if vs == nil {
		return []Finding{{Severity: Error, Reason: ReasonSourceSnapshotMissing,
			Message: fmt.Sprintf("the claim restores from VolumeSnapshot %s, which does not exist", ref.Name),
			Action:  "create the snapshot, or recreate the claim with another data source"}}
	}
	if vs.Status == nil || vs.Status.ReadyToUse == nil || !*vs.Status.ReadyToUse {
		return []Finding{{Severity: Warning, Reason: ReasonSourceSnapshotPending,
			Message: fmt.Sprintf("the claim restores from VolumeSnapshot %s, which is not ready to use yet", vs.Name),
			Action:  fmt.Sprintf("explain volumesnapshot %s/%s", vs.Namespace, vs.Name)}}
	}
	return nil
}

// cloneSourceFindings explains the source claim of a clone.
func cloneSourceFindings(in *Input, name string) []Finding {
	src := in.DataSourceClaim
	if src == nil {
		return []Finding{{Severity: Error, Reason: ReasonSourcePVCMissing,
			Message: fmt.Sprintf("the claim clones claim %s, which does not exist in namespace %s", name, in.PVC.Namespace),
			Action:  "create the source claim, or recreate this claim with another data source (clones must be in the source's namespace)"}}
	}
	if src.Status.Phase != v1.ClaimBound {
		return []Finding{{Severity: Warning, Reason: ReasonSourcePVCNotBound,
			Message: fmt.Sprintf("the claim clones claim %s, which is %s: there is no volume to clone yet", name, src.Status.Phase),
			Action:  fmt.Sprintf("explain pvc %s/%s", src.Namespace, name)}}
	}
	return nil
}

// provisioningAction suggests what to do about a provisioning error.
func provisioningAction(msg string) string {
	m := strings.ToLower(msg)
	switch {
	case strings.Contains(m, "invalidargument") || strings.Contains(m, "infeasible"):
		return "the driver rejected the request: fix the class parameters or the claim (size, access mode, volume mode); retries are slowed down"
	case strings.Contains(m, "resourceexhausted") || strings.Contains(m, "insufficient") || strings.Contains(m, "quota"):
		return "the backend is out of space or quota: free space, raise the quota or lower the request"
	case strings.Contains(m, "deadlineexceeded") || strings.Contains(m, "timed out") || strings.Contains(m, "deadline exceeded"):
		return "the driver did not answer in time; the provisioner retries. If it repeats, raise --timeout or check the backend's health"
	case strings.Contains(m, "secret"):
		return "a secret named by the class is missing or unreadable: create it or fix the class's csi.storage.k8s.io/*-secret-* parameters"
	}
	return "the provisioner retries with backoff; fix the cause named in the message, and read the driver's logs"
}

func claimClass(pvc *v1.PersistentVolumeClaim) *string {
	if pvc.Spec.StorageClassName != nil {
		return pvc.Spec.StorageClassName
	}
	if c, ok := pvc.Annotations[v1.BetaStorageClassAnnotation]; ok {
		return &c
	}
	return nil
}

func provisionerOf(pvc *v1.PersistentVolumeClaim, class *storagev1.StorageClass) string {
	if p := pvc.Annotations[names.AnnStorageProvisioner]; p != "" {
		return p
	}
	if p := pvc.Annotations[names.AnnBetaStorageProvisioner]; p != "" {
		return p
	}
	if class != nil {
		return class.Provisioner
	}
	return ""
}

func findNode(nodes []v1.Node, name string) *v1.Node {
	for i := range nodes {
		if nodes[i].Name == name {
			return &nodes[i]
		}
	}
	return nil
}

// claimDeletion explains a claim that is being deleted.
func claimDeletion(in *Input) []Finding {
	pvc := in.PVC
	var fs []Finding
	if hasFinalizer(pvc.Finalizers, finalizerPVCProtection) {
		if pods := activePods(in.Pods); len(pods) > 0 {
			fs = append(fs, Finding{Severity: Warning, Reason: ReasonInUseByPods,
				Message: fmt.Sprintf("the claim is being deleted but pod %s still uses it, so %s keeps it", list(pods), finalizerPVCProtection),
				Action:  "delete those pods (or scale their workload to 0); the claim goes once no pod uses it"})
		}
	}
	if hasFinalizer(pvc.Finalizers, names.FinalizerPVCAsSource) {
		fs = append(fs, Finding{Severity: Warning, Reason: ReasonSnapshotSourceInUse,
			Message: "the claim is being deleted but a VolumeSnapshot of it is still being cut, so " + names.FinalizerPVCAsSource + " keeps it",
			Action:  "wait until the snapshots of this claim are ready to use, or delete the stuck ones; explain volumesnapshot <name>"})
	}
	if hasFinalizer(pvc.Finalizers, names.FinalizerCloneSource) {
		fs = append(fs, Finding{Severity: Warning, Reason: ReasonCloneSourceInUse,
			Message: "the claim is being deleted but a claim cloned from it is still being provisioned, so " + names.FinalizerCloneSource + " keeps it",
			Action:  "wait until the clones are bound, or delete the pending clones"})
	}
	if hasFinalizer(pvc.Finalizers, names.FinalizerIntent) {
		f := Finding{Severity: Warning, Reason: ReasonProvisioningCleanup,
			Message: fmt.Sprintf("the claim carries %s (volume %q) from an earlier csi-kit version; a running provisioner moves it to a provisioning record in its own namespace and removes the finalizer", names.FinalizerIntent, pvc.Annotations[names.AnnProvisioningVolumeName]),
			Action:  "make sure the provisioner runs; a ProvisioningRecordIgnored event means a user wrote the finalizer, which the provisioner removes"}
		if e := latestEvent(in.Events, string(KindPVC), pvc.Name, names.ReasonProvisioningFailed); e != nil {
			f.Severity, f.Message = Error, f.Message+"; last failure: "+e.Message
		}
		fs = append(fs, f)
		if in.StorageClass != nil {
			if lf := leaderFinding(in, ReasonNoProvisionerLeader, provisionerLease(provisionerOf(pvc, in.StorageClass)),
				"provisioner of "+provisionerOf(pvc, in.StorageClass), "cleans up this claim"); lf != nil {
				fs = append(fs, *lf)
			}
		}
	}
	if len(fs) == 0 && len(pvc.Finalizers) > 0 {
		fs = append(fs, Finding{Severity: Warning, Reason: ReasonDeletionPending,
			Message: "the claim is being deleted and waits for finalizers: " + strings.Join(pvc.Finalizers, ", "),
			Action:  "find the controller that owns each finalizer and check that it runs; remove a finalizer by hand only when its owner is gone for good"})
	}
	return fs
}

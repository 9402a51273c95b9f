package provisioner

import (
	"errors"
	"fmt"
	"strings"

	"github.com/container-storage-interface/spec/lib/go/csi"
	"google.golang.org/grpc/codes"
	v1 "k8s.io/api/core/v1"
	storagev1 "k8s.io/api/storage/v1"
	"k8s.io/apimachinery/pkg/util/sets"

	"github.com/csi-kit/sidecars/csiconn"
	"github.com/csi-kit/sidecars/internal/params"
)

// volumeName returns the volume and PV name of a claim: prefix-UID, with the
// UID stripped of dashes and cut to uuidLen characters when uuidLen > 0.
func volumeName(prefix, uid string, uuidLen int) (string, error) {
	if prefix == "" || uid == "" {
		return "", fmt.Errorf("cannot name a volume from prefix %q and claim UID %q", prefix, uid)
	}
	if uuidLen > 0 {
		uid = strings.ReplaceAll(uid, "-", "")
		if len(uid) > uuidLen {
			uid = uid[:uuidLen]
		}
	}
	return prefix + "-" + uid, nil
}

// claimProvisioner returns the provisioner a claim asks for.
func claimProvisioner(pvc *v1.PersistentVolumeClaim) string {
	if p := pvc.Annotations[annStorageProvisioner]; p != "" {
		return p
	}
	return pvc.Annotations[annBetaStorageProvisioner]
}

// claimClass returns the StorageClass name of a claim.
func claimClass(pvc *v1.PersistentVolumeClaim) string {
	if c, ok := pvc.Annotations[annBetaStorageClass]; ok {
		return c
	}
	if pvc.Spec.StorageClassName != nil {
		return *pvc.Spec.StorageClassName
	}
	return ""
}

// claimAction is what syncClaim does with a claim.
type claimAction int

const (
	claimIgnore        claimAction = iota // not ours, or nothing to do
	claimProvision                        // create a volume and a PV
	claimWait                             // ours, but waiting (for a node, a populator)
	claimConvertIntent                    // carries the intent finalizer of earlier versions
	claimTake                             // node deployment: offer this node for an Immediate claim
)

// decideClaim picks the action for a claim. hasPV says whether the PV for
// this claim exists.
func decideClaim(pvc *v1.PersistentVolumeClaim, class *storagev1.StorageClass, driver string, hasPV bool) (claimAction, string) {
	if hasFinalizer(pvc.Finalizers, FinalizerIntent) {
		return claimConvertIntent, "claim carries the intent finalizer of an earlier version"
	}
	if pvc.DeletionTimestamp != nil {
		return claimIgnore, "claim is being deleted"
	}
	if pvc.Spec.VolumeName != "" {
		return claimIgnore, "claim is bound"
	}
	// As upstream: a claim naming an in-tree plugin is ours only once
	// kube-controller-manager marked it migrated-to this driver; without
	// the mark the in-tree plugin may still provision it itself.
	if p := claimProvisioner(pvc); p != driver && pvc.Annotations[annMigratedTo] != driver {
		return claimIgnore, fmt.Sprintf("claim is for provisioner %q", p)
	}
	if hasPV {
		return claimIgnore, "PV already exists"
	}
	if class == nil {
		return claimProvision, "" // fails with a clear error in the attempt
	}
	if !servesProvisioner(class.Provisioner, driver) {
		return claimIgnore, fmt.Sprintf("class %s is for provisioner %q", class.Name, class.Provisioner)
	}
	if class.VolumeBindingMode != nil && *class.VolumeBindingMode == storagev1.VolumeBindingWaitForFirstConsumer &&
		pvc.Annotations[annSelectedNode] == "" {
		return claimWait, "waiting for the scheduler to select a node"
	}
	return claimProvision, ""
}

// createState is what a failed CreateVolume means for the claim.
type createState int

const (
	stateFinished   createState = iota // no volume was created: retry with backoff
	stateBackground                    // the volume may exist: retry the same request
	stateReschedule                    // hand the claim back to the scheduler
)

// classifyCreate maps a CreateVolume error to a state: transient codes may
// leave the create running; ResourceExhausted on a selected node with
// topology reschedules; the rest is final.
func classifyCreate(err error, topology, selectedNode bool) createState {
	if csiconn.Classify(csiconn.OpCreateVolume, err) == csiconn.Transient {
		return stateBackground
	}
	if topology && selectedNode && csiconn.Code(err) == codes.ResourceExhausted {
		return stateReschedule
	}
	return stateFinished
}

// fsTypeOf returns the fsType of a class: the deprecated "fstype" key (any
// case) or csi.storage.k8s.io/fstype, else def.
func fsTypeOf(classParams map[string]string, def string) (string, error) {
	var legacy string
	for k, v := range classParams {
		if strings.ToLower(k) == "fstype" {
			legacy = v
		}
	}
	prefixed := classParams[params.FSTypeKey]
	switch {
	case legacy != "" && prefixed != "":
		return "", fmt.Errorf("fstype specified in parameters with both \"fstype\" and %q keys", params.FSTypeKey)
	case prefixed != "":
		return prefixed, nil
	case legacy != "":
		return legacy, nil
	}
	return def, nil
}

// capabilities maps access modes to CSI volume capabilities, one each.
func capabilities(modes []v1.PersistentVolumeAccessMode, block bool, fsType string, mountOptions []string,
	singleNodeMultiWriter bool) ([]*csi.VolumeCapability, error) {
	if len(modes) == 0 {
		return nil, errors.New("claim has no access modes")
	}
	var out []*csi.VolumeCapability
	for _, m := range modes {
		var mode csi.VolumeCapability_AccessMode_Mode
		switch m {
		case v1.ReadWriteOnce:
			mode = csi.VolumeCapability_AccessMode_SINGLE_NODE_WRITER
			if singleNodeMultiWriter {
				mode = csi.VolumeCapability_AccessMode_SINGLE_NODE_MULTI_WRITER
			}
		case v1.ReadWriteOncePod:
			mode = csi.VolumeCapability_AccessMode_SINGLE_NODE_WRITER
			if singleNodeMultiWriter {
				mode = csi.VolumeCapability_AccessMode_SINGLE_NODE_SINGLE_WRITER
			}
		case v1.ReadOnlyMany:
			mode = csi.VolumeCapability_AccessMode_MULTI_NODE_READER_ONLY
		case v1.ReadWriteMany:
			mode = csi.VolumeCapability_AccessMode_MULTI_NODE_MULTI_WRITER
		default:
			return nil, fmt.Errorf("unknown access mode %q", m)
		}
		c := &csi.VolumeCapability{AccessMode: &csi.VolumeCapability_AccessMode{Mode: mode}}
		if block {
			c.AccessType = &csi.VolumeCapability_Block{Block: &csi.VolumeCapability_BlockVolume{}}
		} else {
			c.AccessType = &csi.VolumeCapability_Mount{Mount: &csi.VolumeCapability_MountVolume{
				FsType: fsType, MountFlags: mountOptions}}
		}
		out = append(out, c)
	}
	return out, nil
}

// volumeAction is what syncVolume does with a PV.
type volumeAction int

const (
	volumeIgnore volumeAction = iota
	volumeAddFinalizer
	volumeRemoveFinalizer
	volumeDelete
)

// volumeIsOurs reports whether this driver must handle the PV's deletion:
// provisioned by it (or by an in-tree plugin migrated to it), or migrated
// to it.
func volumeIsOurs(pv *v1.PersistentVolume, driver string) bool {
	if by, ok := pv.Annotations[annProvisionedBy]; ok {
		return servesProvisioner(by, driver) || pv.Annotations[annMigratedTo] == driver
	}
	if pv.Spec.CSI != nil {
		return pv.Spec.CSI.Driver == driver
	}
	return pv.Annotations[annMigratedTo] == driver
}

// decideVolume picks the action for a PV of this driver.
func decideVolume(pv *v1.PersistentVolume, driver string) volumeAction {
	if !volumeIsOurs(pv, driver) {
		return volumeIgnore
	}
	fin := hasFinalizer(pv.Finalizers, FinalizerPV)
	policy := pv.Spec.PersistentVolumeReclaimPolicy
	switch {
	case pv.Spec.CSI == nil && !migratedPV(pv, driver):
		// An in-tree PV the translation library cannot map to this
		// driver: it cannot be deleted here, so it never carries our
		// finalizer (one left by an earlier version goes).
		if fin {
			return volumeRemoveFinalizer
		}
		return volumeIgnore
	case policy != v1.PersistentVolumeReclaimDelete:
		if fin {
			return volumeRemoveFinalizer
		}
		return volumeIgnore
	case pv.DeletionTimestamp != nil && !fin:
		return volumeIgnore
	case pv.Status.Phase == v1.VolumeReleased:
		return volumeDelete
	case !fin && pv.DeletionTimestamp == nil && pv.Status.Phase == v1.VolumeBound:
		return volumeAddFinalizer
	}
	return volumeIgnore
}

func hasFinalizer(list []string, f string) bool {
	return sets.New(list...).Has(f)
}

func withoutFinalizer(list []string, f string) []string {
	var out []string
	for _, s := range list {
		if s != f {
			out = append(out, s)
		}
	}
	return out
}

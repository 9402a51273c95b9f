package provisioner

import (
	"context"
	"fmt"
	"math"

	"github.com/container-storage-interface/spec/lib/go/csi"
	"gopkg.in/inf.v0"
	v1 "k8s.io/api/core/v1"
	storagev1 "k8s.io/api/storage/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/csi-kit/sidecars/internal/params"
)

// attempt is one prepared CreateVolume with what the PV needs afterwards.
type attempt struct {
	req        *csi.CreateVolumeRequest
	pvName     string
	fsType     string
	block      bool
	secretRefs map[string]*v1.SecretReference // by params.Secret.Op
	source     *sourceInfo
	vac        string
	// migrated: the class is an in-tree one, translated to CSI; the PV is
	// written back in its in-tree form.
	migrated bool
}

// stateError carries the createState of a failed preparation.
type stateError struct {
	state createState
	err   error
}

func (e *stateError) Error() string { return e.err.Error() }
func (e *stateError) Unwrap() error { return e.err }

func final(err error) error      { return &stateError{stateFinished, err} }
func reschedule(err error) error { return &stateError{stateReschedule, err} }

// prepare builds the CreateVolume request for a claim. With minimal set
// (cleanup of a claim being deleted) topology and sources are skipped, as
// the request only serves to learn the volume ID of an existing volume.
func (p *Provisioner) prepare(ctx context.Context, pvc *v1.PersistentVolumeClaim, class *storagev1.StorageClass, minimal bool) (*attempt, error) {
	if class == nil {
		return nil, final(fmt.Errorf("storageclass %q not found", claimClass(pvc)))
	}
	name, err := volumeName(p.opts.VolumeNamePrefix, string(pvc.UID), p.opts.VolumeNameUUIDLength)
	if err != nil {
		return nil, final(err)
	}
	a := &attempt{pvName: name, secretRefs: map[string]*v1.SecretReference{}}
	if class, a.migrated, err = translateClass(ctx, class, p.name); err != nil {
		return nil, final(err)
	}
	if pvc.Spec.Selector != nil {
		return nil, final(fmt.Errorf("claim Selector is not supported"))
	}
	a.fsType, err = fsTypeOf(class.Parameters, p.opts.DefaultFSType)
	if err != nil {
		return nil, final(err)
	}
	a.block = pvc.Spec.VolumeMode != nil && *pvc.Spec.VolumeMode == v1.PersistentVolumeBlock
	caps, err := capabilities(pvc.Spec.AccessModes, a.block, a.fsType, class.MountOptions,
		p.caps.HasController(csi.ControllerServiceCapability_RPC_SINGLE_NODE_MULTI_WRITER))
	if err != nil {
		return nil, final(err)
	}
	plain, err := params.Strip(class.Parameters, params.ProvisionerKeys)
	if err != nil {
		return nil, final(err)
	}
	if p.opts.ExtraCreateMetadata {
		plain[keyPVCName] = pvc.Name
		plain[keyPVCNamespace] = pvc.Namespace
		plain[keyPVName] = name
	}
	req := pvc.Spec.Resources.Requests[v1.ResourceStorage]
	if err := fitsBytes(req); err != nil {
		return nil, final(err)
	}
	a.req = &csi.CreateVolumeRequest{
		Name:               name,
		Parameters:         plain,
		VolumeCapabilities: caps,
		CapacityRange:      &csi.CapacityRange{RequiredBytes: req.Value()},
	}
	vars := params.ProvisionVars(name, pvc)
	for _, s := range params.ProvisionerSecrets {
		ref, err := s.Resolve(class.Parameters, vars)
		if err != nil {
			return nil, err
		}
		if ref != nil {
			a.secretRefs[s.Op] = ref
		}
	}
	if ref := a.secretRefs[params.ProvisionerSecret.Op]; ref != nil {
		a.req.Secrets, err = params.FetchSecret(ctx, p.kube.CoreV1(), ref)
		if err != nil {
			return nil, err
		}
	}
	if !p.opts.DisableVolumeAttributesClass && pvc.Spec.VolumeAttributesClassName != nil && *pvc.Spec.VolumeAttributesClassName != "" {
		a.vac = *pvc.Spec.VolumeAttributesClassName
		if !p.caps.HasController(csi.ControllerServiceCapability_RPC_MODIFY_VOLUME) {
			return nil, final(fmt.Errorf("driver %s does not support MODIFY_VOLUME, needed for VolumeAttributesClass %q", p.name, a.vac))
		}
		vac, err := p.kube.StorageV1().VolumeAttributesClasses().Get(ctx, a.vac, metav1.GetOptions{})
		if err != nil {
			return nil, err
		}
		if vac.DriverName != p.name {
			return nil, final(fmt.Errorf("VolumeAttributesClass %q is for driver %q, not %q", a.vac, vac.DriverName, p.name))
		}
		a.req.MutableParameters = vac.Parameters
	}
	if minimal {
		return a, nil
	}
	a.source, err = p.dataSource(ctx, pvc, class)
	if err != nil {
		return nil, err
	}
	if a.source != nil {
		a.req.VolumeContentSource = a.source.content
	}
	if p.topology() {
		req, err := p.topologyRequirement(pvc, class)
		if err != nil {
			return nil, err
		}
		a.req.AccessibilityRequirements = req
	}
	return a, nil
}

// topologyRequirement computes (or recalls) the claim's requirement.
func (p *Provisioner) topologyRequirement(pvc *v1.PersistentVolumeClaim, class *storagev1.StorageClass) (*csi.TopologyRequirement, error) {
	nodeName := pvc.Annotations[annSelectedNode]
	e, ok := p.cachedTopology(string(pvc.UID), nodeName)
	if !ok {
		in := topologyInput{Allowed: class.AllowedTopologies, Strict: p.opts.StrictTopology,
			Immediate: !p.opts.DisableImmediateTopology, ClaimName: pvc.Name}
		if nodeName != "" {
			node, err := p.nodes.Get(nodeName)
			if err != nil {
				if apierrors.IsNotFound(err) {
					return nil, reschedule(fmt.Errorf("selected node %q not found", nodeName))
				}
				return nil, err
			}
			cn, err := p.csiNodes.Get(nodeName)
			if err != nil {
				if apierrors.IsNotFound(err) {
					return nil, reschedule(fmt.Errorf("CSINode %q of the selected node not found", nodeName))
				}
				return nil, err
			}
			keys := csiNodeKeys(cn, p.name)
			if len(keys) == 0 {
				return nil, fmt.Errorf("no topology keys of driver %s on CSINode %s", p.name, nodeName)
			}
			if in.Selected, err = nodeSegment(node, keys); err != nil {
				return nil, err
			}
		}
		if len(class.AllowedTopologies) == 0 && !in.Strict && (nodeName != "" || in.Immediate) {
			agg, err := p.aggregate()
			if err != nil && nodeName == "" {
				return nil, err
			}
			in.Aggregate = agg
		}
		req, pref, err := requirement(in)
		if err != nil {
			return nil, err
		}
		e = topoEntry{node: nodeName, requisite: req, preferred: pref}
		p.storeTopology(string(pvc.UID), e)
	}
	if len(e.requisite) == 0 {
		return nil, nil
	}
	return &csi.TopologyRequirement{Requisite: toCSI(e.requisite), Preferred: toCSI(e.preferred)}, nil
}

// aggregate returns every segment of nodes whose CSINode carries the
// driver's keys (keys from the first CSINode that has any).
func (p *Provisioner) aggregate() ([]term, error) {
	cns, err := p.csiNodes.List(everything())
	if err != nil {
		return nil, err
	}
	var keys []string
	for _, cn := range cns {
		if keys = csiNodeKeys(cn, p.name); len(keys) > 0 {
			break
		}
	}
	if len(keys) == 0 {
		return nil, fmt.Errorf("no CSINode has topology keys of driver %s", p.name)
	}
	nodes, err := p.nodes.List(everything())
	if err != nil {
		return nil, err
	}
	var out []term
	for _, n := range nodes {
		if t, err := nodeSegment(n, keys); err == nil {
			out = append(out, t)
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("no node carries the topology keys %v of driver %s", keys, p.name)
	}
	return dedupe(out), nil
}

// maxBytes is the largest size CSI can carry (int64 bytes).
var maxBytes = inf.NewDec(math.MaxInt64, 0)

// fitsBytes refuses storage requests that do not fit in int64 bytes (the
// API server accepts 10E; converted, it would wrap or read as 0).
func fitsBytes(q resource.Quantity) error {
	if q.AsDec().Cmp(maxBytes) > 0 { // Quantity.Cmp wraps at 8Ei
		return fmt.Errorf("requested storage %s is larger than %d bytes, the most a CSI driver can be asked for; request a smaller size", q.String(), int64(math.MaxInt64))
	}
	if q.Sign() < 0 {
		return fmt.Errorf("requested storage %s is negative", q.String())
	}
	return nil
}

package resizer

import (
	"context"
	"errors"
	"fmt"

	"github.com/container-storage-interface/spec/lib/go/csi"
	"github.com/kubernetes-csi/csi-lib-utils/accessmodes"
	v1 "k8s.io/api/core/v1"
	"k8s.io/klog/v2"

	"github.com/csi-kit/sidecars/csiconn"
	"github.com/csi-kit/sidecars/internal/ctrl"
)

// DriverCapabilities is what the resizer needs to know about a driver.
type DriverCapabilities struct {
	// ControllerExpand: controller EXPAND_VOLUME. Without it, and with
	// NodeExpand, the resizer updates the PV and asks kubelet to expand.
	ControllerExpand bool
	// NodeExpand: node EXPAND_VOLUME.
	NodeExpand bool
	// ExpandOnline and ExpandOffline: the plugin VolumeExpansion capability.
	// Offline without online means "never expand a volume in use".
	ExpandOnline, ExpandOffline bool
	// Modify: controller MODIFY_VOLUME.
	Modify bool
	// SingleNodeMultiWriter: controller SINGLE_NODE_MULTI_WRITER, which
	// changes how access modes map to CSI.
	SingleNodeMultiWriter bool
}

// offlineOnly reports a driver that cannot expand a volume in use.
func (c DriverCapabilities) offlineOnly() bool { return c.ExpandOffline && !c.ExpandOnline }

// ExpandRequest is one ControllerExpandVolume call.
type ExpandRequest struct {
	VolumeID      string
	RequiredBytes int64
	Capability    *csi.VolumeCapability
	Secrets       map[string]string
}

// ModifyRequest is one ControllerModifyVolume call.
type ModifyRequest struct {
	VolumeID   string
	Parameters map[string]string
	Secrets    map[string]string
}

// Driver is all the resizer needs from a CSI driver. NewCSIDriver adapts a
// csiconn.Conn; tests may supply their own.
type Driver interface {
	Name() string
	Capabilities() DriverCapabilities
	// ExpandVolume returns the new capacity in bytes and whether the node
	// must expand the file system too. ctx carries the per-call timeout.
	ExpandVolume(ctx context.Context, req ExpandRequest) (capacity int64, nodeExpansion bool, err error)
	ModifyVolume(ctx context.Context, req ModifyRequest) error
}

// csiDriver implements ctrl.LossWatcher too: Run ends with csiconn's
// ErrConnectionLost when the driver goes away.
type csiDriver struct {
	conn *csiconn.Conn
	caps DriverCapabilities
}

var (
	_ Driver           = (*csiDriver)(nil)
	_ ctrl.LossWatcher = (*csiDriver)(nil)
)

// NewCSIDriver adapts a connected driver. It asks NodeGetCapabilities once
// (on the same socket, as upstream does) to find node-only expansion; the
// other capabilities come from the connection and are not asked again.
func NewCSIDriver(ctx context.Context, conn *csiconn.Conn) (Driver, error) {
	c := conn.Capabilities()
	if !c.ControllerService {
		// Upstream refuses to start here even for node-only drivers; we
		// allow it, the node step needs no controller service.
		klog.FromContext(ctx).Info("CSI driver has no CONTROLLER_SERVICE; only node expansion is possible")
	}
	caps := DriverCapabilities{
		ControllerExpand:      c.HasController(csi.ControllerServiceCapability_RPC_EXPAND_VOLUME),
		Modify:                c.HasController(csi.ControllerServiceCapability_RPC_MODIFY_VOLUME),
		SingleNodeMultiWriter: c.HasController(csi.ControllerServiceCapability_RPC_SINGLE_NODE_MULTI_WRITER),
		ExpandOnline:          c.ExpandOnline,
		ExpandOffline:         c.ExpandOffline,
	}
	callCtx, cancel := conn.CallContext(ctx)
	defer cancel()
	resp, err := conn.Node().NodeGetCapabilities(callCtx, &csi.NodeGetCapabilitiesRequest{})
	if err == nil {
		for _, nc := range resp.GetCapabilities() {
			if nc.GetRpc().GetType() == csi.NodeServiceCapability_RPC_EXPAND_VOLUME {
				caps.NodeExpand = true
			}
		}
	} else if !caps.ControllerExpand {
		klog.FromContext(ctx).V(2).Info("NodeGetCapabilities failed; assuming no node expansion", "err", err)
	}
	return &csiDriver{conn: conn, caps: caps}, nil
}

func (d *csiDriver) Name() string                     { return d.conn.DriverName() }
func (d *csiDriver) Capabilities() DriverCapabilities { return d.caps }
func (d *csiDriver) WatchLoss(ctx context.Context) error {
	return d.conn.WatchLoss(ctx)
}

func (d *csiDriver) ExpandVolume(ctx context.Context, req ExpandRequest) (int64, bool, error) {
	resp, err := d.conn.Controller().ControllerExpandVolume(ctx, &csi.ControllerExpandVolumeRequest{
		VolumeId:         req.VolumeID,
		CapacityRange:    &csi.CapacityRange{RequiredBytes: req.RequiredBytes},
		Secrets:          req.Secrets,
		VolumeCapability: req.Capability,
	})
	if err != nil {
		return 0, false, err
	}
	return resp.GetCapacityBytes(), resp.GetNodeExpansionRequired(), nil
}

func (d *csiDriver) ModifyVolume(ctx context.Context, req ModifyRequest) error {
	_, err := d.conn.Controller().ControllerModifyVolume(ctx, &csi.ControllerModifyVolumeRequest{
		VolumeId:          req.VolumeID,
		Secrets:           req.Secrets,
		MutableParameters: req.Parameters,
	})
	return err
}

// volumeCapability builds the capability sent with ControllerExpandVolume:
// block for Block volumes, else mount with the PV's fsType and mount
// options; the access mode follows the PV's access modes.
func volumeCapability(pv *v1.PersistentVolume, singleNodeMultiWriter bool) (*csi.VolumeCapability, error) {
	mode, err := accessmodes.ToCSIAccessMode(pv.Spec.AccessModes, singleNodeMultiWriter)
	if err != nil {
		return nil, fmt.Errorf("PV %q: %w", pv.Name, err)
	}
	capability := &csi.VolumeCapability{AccessMode: &csi.VolumeCapability_AccessMode{Mode: mode}}
	if pv.Spec.VolumeMode != nil && *pv.Spec.VolumeMode == v1.PersistentVolumeBlock {
		capability.AccessType = &csi.VolumeCapability_Block{Block: &csi.VolumeCapability_BlockVolume{}}
		return capability, nil
	}
	mount := &csi.VolumeCapability_MountVolume{MountFlags: pv.Spec.MountOptions}
	if pv.Spec.CSI != nil {
		mount.FsType = pv.Spec.CSI.FSType
	}
	capability.AccessType = &csi.VolumeCapability_Mount{Mount: mount}
	return capability, nil
}

// errNoHandle is returned for a CSI PV without a volume handle.
var errNoHandle = errors.New("PV has an empty spec.csi.volumeHandle")

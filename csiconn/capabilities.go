package csiconn

import (
	"context"
	"sort"
	"strings"

	"github.com/container-storage-interface/spec/lib/go/csi"
)

// Capabilities is what a driver said it can do.
type Capabilities struct {
	// Plugin capabilities.
	ControllerService bool // CONTROLLER_SERVICE
	Topology          bool // VOLUME_ACCESSIBILITY_CONSTRAINTS
	GroupService      bool // GROUP_CONTROLLER_SERVICE
	ExpandOnline      bool // VolumeExpansion ONLINE
	ExpandOffline     bool // VolumeExpansion OFFLINE

	// Controller holds the controller RPC capabilities, when ControllerService is set.
	Controller map[csi.ControllerServiceCapability_RPC_Type]bool
	// Group holds the group controller capabilities, when GroupService is set.
	Group map[csi.GroupControllerServiceCapability_RPC_Type]bool
}

// HasController reports one controller capability.
func (c Capabilities) HasController(t csi.ControllerServiceCapability_RPC_Type) bool {
	return c.Controller[t]
}

// HasGroup reports one group controller capability.
func (c Capabilities) HasGroup(t csi.GroupControllerServiceCapability_RPC_Type) bool {
	return c.Group[t]
}

// String lists the capabilities for logs.
func (c Capabilities) String() string {
	var out []string
	flag := func(ok bool, name string) {
		if ok {
			out = append(out, name)
		}
	}
	flag(c.ControllerService, "CONTROLLER_SERVICE")
	flag(c.Topology, "VOLUME_ACCESSIBILITY_CONSTRAINTS")
	flag(c.GroupService, "GROUP_CONTROLLER_SERVICE")
	flag(c.ExpandOnline, "EXPAND_ONLINE")
	flag(c.ExpandOffline, "EXPAND_OFFLINE")
	var ctrl []string
	for t, ok := range c.Controller {
		if ok {
			ctrl = append(ctrl, t.String())
		}
	}
	for t, ok := range c.Group {
		if ok {
			ctrl = append(ctrl, t.String())
		}
	}
	sort.Strings(ctrl)
	return strings.Join(append(out, ctrl...), ",")
}

// readCapabilities asks GetPluginCapabilities and, when the services exist,
// ControllerGetCapabilities and GroupControllerGetCapabilities. The raw plugin
// response is read because the expansion mode matters to the resizer.
func readCapabilities(ctx context.Context, c *Conn) (Capabilities, error) {
	caps := Capabilities{
		Controller: map[csi.ControllerServiceCapability_RPC_Type]bool{},
		Group:      map[csi.GroupControllerServiceCapability_RPC_Type]bool{},
	}
	callCtx, cancel := c.CallContext(ctx)
	defer cancel()
	plugin, err := c.Identity().GetPluginCapabilities(callCtx, &csi.GetPluginCapabilitiesRequest{})
	if err != nil {
		return caps, err
	}
	for _, pc := range plugin.GetCapabilities() {
		if svc := pc.GetService(); svc != nil {
			switch svc.GetType() {
			case csi.PluginCapability_Service_CONTROLLER_SERVICE:
				caps.ControllerService = true
			case csi.PluginCapability_Service_VOLUME_ACCESSIBILITY_CONSTRAINTS:
				caps.Topology = true
			case csi.PluginCapability_Service_GROUP_CONTROLLER_SERVICE:
				caps.GroupService = true
			}
		}
		if exp := pc.GetVolumeExpansion(); exp != nil {
			switch exp.GetType() {
			case csi.PluginCapability_VolumeExpansion_ONLINE:
				caps.ExpandOnline = true
			case csi.PluginCapability_VolumeExpansion_OFFLINE:
				caps.ExpandOffline = true
			}
		}
	}
	if caps.ControllerService {
		callCtx, cancel := c.CallContext(ctx)
		defer cancel()
		resp, err := c.Controller().ControllerGetCapabilities(callCtx, &csi.ControllerGetCapabilitiesRequest{})
		if err != nil {
			return caps, err
		}
		for _, cc := range resp.GetCapabilities() {
			if r := cc.GetRpc(); r != nil {
				caps.Controller[r.GetType()] = true
			}
		}
	}
	if caps.GroupService {
		callCtx, cancel := c.CallContext(ctx)
		defer cancel()
		resp, err := c.GroupController().GroupControllerGetCapabilities(callCtx, &csi.GroupControllerGetCapabilitiesRequest{})
		if err != nil {
			return caps, err
		}
		for _, gc := range resp.GetCapabilities() {
			if r := gc.GetRpc(); r != nil {
				caps.Group[r.GetType()] = true
			}
		}
	}
	return caps, nil
}

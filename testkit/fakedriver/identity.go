package fakedriver

import (
	"context"

	"github.com/container-storage-interface/spec/lib/go/csi"
	"google.golang.org/protobuf/types/known/wrapperspb"
)

// Version is the vendor version GetPluginInfo reports.
const Version = "0.1.0-fake"

// identity serves the CSI Identity service.
type identity struct {
	csi.UnimplementedIdentityServer
	d *Driver
}

var _ csi.IdentityServer = identity{}

func (s identity) GetPluginInfo(context.Context, *csi.GetPluginInfoRequest) (*csi.GetPluginInfoResponse, error) {
	return &csi.GetPluginInfoResponse{Name: s.d.opts.Name, VendorVersion: Version}, nil
}

func (s identity) GetPluginCapabilities(context.Context, *csi.GetPluginCapabilitiesRequest) (*csi.GetPluginCapabilitiesResponse, error) {
	c := s.d.opts.Capabilities
	var out []*csi.PluginCapability
	service := func(t csi.PluginCapability_Service_Type) {
		out = append(out, &csi.PluginCapability{Type: &csi.PluginCapability_Service_{
			Service: &csi.PluginCapability_Service{Type: t},
		}})
	}
	expansion := func(t csi.PluginCapability_VolumeExpansion_Type) {
		out = append(out, &csi.PluginCapability{Type: &csi.PluginCapability_VolumeExpansion_{
			VolumeExpansion: &csi.PluginCapability_VolumeExpansion{Type: t},
		}})
	}
	if c.Controller {
		service(csi.PluginCapability_Service_CONTROLLER_SERVICE)
	}
	if c.Topology {
		service(csi.PluginCapability_Service_VOLUME_ACCESSIBILITY_CONSTRAINTS)
	}
	if c.GroupController {
		service(csi.PluginCapability_Service_GROUP_CONTROLLER_SERVICE)
	}
	if c.ExpandOnline {
		expansion(csi.PluginCapability_VolumeExpansion_ONLINE)
	}
	if c.ExpandOffline {
		expansion(csi.PluginCapability_VolumeExpansion_OFFLINE)
	}
	return &csi.GetPluginCapabilitiesResponse{Capabilities: out}, nil
}

// Probe answers ready=false for the first Options.NotReadyProbes calls.
func (s identity) Probe(context.Context, *csi.ProbeRequest) (*csi.ProbeResponse, error) {
	s.d.mu.Lock()
	defer s.d.mu.Unlock()
	s.d.be.probes++
	return &csi.ProbeResponse{Ready: wrapperspb.Bool(s.d.be.probes > s.d.opts.NotReadyProbes)}, nil
}

package fakedriver_test

import (
	"math"
	"testing"

	"github.com/container-storage-interface/spec/lib/go/csi"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/csi-kit/sidecars/testkit/fakedriver"
)

func seg(zone string) map[string]string { return map[string]string{"zone": zone} }

// zoned has pools in zones a (4Gi, the driver's node) and b (2Gi).
var zoned = fakedriver.Options{
	Capabilities: fakedriver.All,
	Topology:     seg("a"),
	Capacity:     4 * gi,
	Nodes:        []fakedriver.Node{{ID: "node-b", Topology: seg("b"), Capacity: 2 * gi}},
}

func TestCreateVolume(t *testing.T) {
	for _, tc := range []struct {
		name     string
		opts     fakedriver.Options
		before   []*csi.CreateVolumeRequest // must succeed; IDs by name go to req
		req      func(ids map[string]string) *csi.CreateVolumeRequest
		wantCode codes.Code
		wantSize int64
		wantZone string
	}{
		{name: "no name", req: fixed(&csi.CreateVolumeRequest{VolumeCapabilities: []*csi.VolumeCapability{rwo}}), wantCode: codes.InvalidArgument},
		{name: "no capabilities", req: fixed(&csi.CreateVolumeRequest{Name: "v"}), wantCode: codes.InvalidArgument},
		{name: "no range: default size", req: fixed(createReq("v", 0)), wantSize: fakedriver.DefaultVolumeSize},
		{name: "rounded to SizeStep", opts: fakedriver.Options{SizeStep: gi}, req: fixed(createReq("v", gi+1)), wantSize: 2 * gi},
		{name: "raised to MinSize", opts: fakedriver.Options{MinSize: 2 * gi}, req: fixed(createReq("v", 1)), wantSize: 2 * gi},
		{name: "limit below MinSize", opts: fakedriver.Options{MinSize: 2 * gi}, req: fixed(withLimit(createReq("v", 1), gi)), wantCode: codes.OutOfRange},
		{name: "same name and size: idempotent", before: reqs(createReq("v", gi)), req: fixed(createReq("v", gi)), wantSize: gi},
		{name: "same name, bigger", before: reqs(createReq("v", gi)), req: fixed(createReq("v", 2*gi)), wantCode: codes.AlreadyExists},
		{name: "same name, other parameters", before: reqs(createReq("v", gi)), req: fixed(withParams(createReq("v", gi), "type", "ssd")), wantCode: codes.AlreadyExists},
		{name: "missing source snapshot", req: fixed(fromSnapshot(createReq("v", gi), "nope")), wantCode: codes.NotFound},
		{name: "missing source volume", req: fixed(fromVolume(createReq("v", gi), "nope")), wantCode: codes.NotFound},
		{
			name: "clone", before: reqs(createReq("src", 2*gi)),
			req:      func(ids map[string]string) *csi.CreateVolumeRequest { return fromVolume(createReq("v", 0), ids["src"]) },
			wantSize: 2 * gi,
		},
		{
			name: "clone smaller than source", before: reqs(createReq("src", 2*gi)),
			req: func(ids map[string]string) *csi.CreateVolumeRequest {
				return fromVolume(createReq("v", gi), ids["src"])
			},
			wantCode: codes.OutOfRange,
		},
		{
			name: "clone without CLONE_VOLUME", opts: fakedriver.Options{Capabilities: fakedriver.Capabilities{Controller: true, CreateDelete: true}},
			before: reqs(createReq("src", gi)),
			req: func(ids map[string]string) *csi.CreateVolumeRequest {
				return fromVolume(createReq("v", gi), ids["src"])
			},
			wantCode: codes.InvalidArgument,
		},
		{name: "pool full", opts: fakedriver.Options{Capacity: 2 * gi}, before: reqs(createReq("a", 2*gi)), req: fixed(createReq("v", 1)), wantCode: codes.ResourceExhausted},
		{name: "mutable parameter fail", req: fixed(withMutable(createReq("v", gi), "fail", "1")), wantCode: codes.InvalidArgument},
		{name: "topology: default segment", opts: zoned, req: fixed(createReq("v", gi)), wantSize: gi, wantZone: "a"},
		{name: "topology: preferred", opts: zoned, req: fixed(inZones(createReq("v", gi), "a", "b")), wantSize: gi, wantZone: "b"},
		{name: "topology: preferred full, requisite next", opts: zoned, req: fixed(inZones(createReq("v", 3*gi), "a", "b")), wantSize: 3 * gi, wantZone: "a"},
		{name: "topology: nowhere fits", opts: zoned, req: fixed(inZones(createReq("v", 5*gi), "a", "b")), wantCode: codes.ResourceExhausted},
		{name: "single-writer mode without the capability", opts: fakedriver.Options{Capabilities: fakedriver.Provisioner},
			req: fixed(&csi.CreateVolumeRequest{Name: "v", VolumeCapabilities: []*csi.VolumeCapability{
				mountCap(csi.VolumeCapability_AccessMode_SINGLE_NODE_SINGLE_WRITER)}}), wantCode: codes.InvalidArgument},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d, c := start(t, tc.opts)
			ids := map[string]string{}
			for _, r := range tc.before {
				ids[r.GetName()] = mustCreate(t, c, r).GetVolumeId()
			}
			rsp, err := c.ctl.CreateVolume(ctx(t), tc.req(ids))
			if code := status.Code(err); code != tc.wantCode {
				t.Fatalf("CreateVolume: code %v (%v), want %v", code, err, tc.wantCode)
			}
			if err != nil {
				if n := len(d.Volumes()); n != len(tc.before) {
					t.Errorf("failed CreateVolume left %d volumes, want %d", n, len(tc.before))
				}
				return
			}
			v := rsp.GetVolume()
			if v.GetCapacityBytes() != tc.wantSize {
				t.Errorf("size = %d, want %d", v.GetCapacityBytes(), tc.wantSize)
			}
			var zone string
			if top := v.GetAccessibleTopology(); len(top) == 1 {
				zone = top[0].GetSegments()["zone"]
			}
			if zone != tc.wantZone {
				t.Errorf("zone = %q, want %q", zone, tc.wantZone)
			}
		})
	}
}

func fixed(r *csi.CreateVolumeRequest) func(map[string]string) *csi.CreateVolumeRequest {
	return func(map[string]string) *csi.CreateVolumeRequest { return r }
}

func reqs(r ...*csi.CreateVolumeRequest) []*csi.CreateVolumeRequest { return r }

func withLimit(r *csi.CreateVolumeRequest, limit int64) *csi.CreateVolumeRequest {
	r.CapacityRange.LimitBytes = limit
	return r
}

func withParams(r *csi.CreateVolumeRequest, k, v string) *csi.CreateVolumeRequest {
	r.Parameters = map[string]string{k: v}
	return r
}

func withMutable(r *csi.CreateVolumeRequest, k, v string) *csi.CreateVolumeRequest {
	r.MutableParameters = map[string]string{k: v}
	return r
}

func fromSnapshot(r *csi.CreateVolumeRequest, id string) *csi.CreateVolumeRequest {
	r.VolumeContentSource = &csi.VolumeContentSource{Type: &csi.VolumeContentSource_Snapshot{
		Snapshot: &csi.VolumeContentSource_SnapshotSource{SnapshotId: id}}}
	return r
}

func fromVolume(r *csi.CreateVolumeRequest, id string) *csi.CreateVolumeRequest {
	r.VolumeContentSource = &csi.VolumeContentSource{Type: &csi.VolumeContentSource_Volume{
		Volume: &csi.VolumeContentSource_VolumeSource{VolumeId: id}}}
	return r
}

// inZones requires any of zones and prefers the last.
func inZones(r *csi.CreateVolumeRequest, zones ...string) *csi.CreateVolumeRequest {
	r.AccessibilityRequirements = &csi.TopologyRequirement{}
	for _, z := range zones {
		r.AccessibilityRequirements.Requisite = append(r.AccessibilityRequirements.Requisite, &csi.Topology{Segments: seg(z)})
	}
	r.AccessibilityRequirements.Preferred = []*csi.Topology{{Segments: seg(zones[len(zones)-1])}}
	return r
}

func TestGetCapacity(t *testing.T) {
	_, c := start(t, zoned)
	mustCreate(t, c, createReq("v", gi)) // lands in zone a
	for _, tc := range []struct {
		name string
		top  *csi.Topology
		want int64
	}{
		{"zone a, 1Gi used", &csi.Topology{Segments: seg("a")}, 3 * gi},
		{"zone b, own capacity", &csi.Topology{Segments: seg("b")}, 2 * gi},
		{"unknown zone: default capacity", &csi.Topology{Segments: seg("c")}, 4 * gi},
		{"no topology: all known pools", nil, 5 * gi},
	} {
		rsp, err := c.ctl.GetCapacity(ctx(t), &csi.GetCapacityRequest{AccessibleTopology: tc.top})
		if err != nil || rsp.GetAvailableCapacity() != tc.want {
			t.Errorf("%s: GetCapacity = %d, %v; want %d", tc.name, rsp.GetAvailableCapacity(), err, tc.want)
		}
	}

	_, c = start(t, fakedriver.Options{MinSize: gi})
	rsp, err := c.ctl.GetCapacity(ctx(t), &csi.GetCapacityRequest{})
	if err != nil || rsp.GetAvailableCapacity() != math.MaxInt64 || rsp.GetMinimumVolumeSize().GetValue() != gi {
		t.Errorf("unlimited GetCapacity = %v, %v; want MaxInt64 and min size 1Gi", rsp, err)
	}
}

func TestDeleteVolume(t *testing.T) {
	d, c := start(t, fakedriver.Options{})
	_, err := c.ctl.DeleteVolume(ctx(t), &csi.DeleteVolumeRequest{})
	wantCode(t, "no ID", err, codes.InvalidArgument)
	_, err = c.ctl.DeleteVolume(ctx(t), &csi.DeleteVolumeRequest{VolumeId: "unknown"})
	wantCode(t, "unknown ID", err, codes.OK)

	v := mustCreate(t, c, createReq("v", gi))
	d.SetVolumeInUse(v.GetVolumeId(), true)
	_, err = c.ctl.DeleteVolume(ctx(t), &csi.DeleteVolumeRequest{VolumeId: v.GetVolumeId()})
	wantCode(t, "in use", err, codes.FailedPrecondition)
	d.SetVolumeInUse(v.GetVolumeId(), false)

	pub := &csi.ControllerPublishVolumeRequest{VolumeId: v.GetVolumeId(), NodeId: d.NodeID(), VolumeCapability: rwo}
	if _, err := c.ctl.ControllerPublishVolume(ctx(t), pub); err != nil {
		t.Fatal(err)
	}
	_, err = c.ctl.DeleteVolume(ctx(t), &csi.DeleteVolumeRequest{VolumeId: v.GetVolumeId()})
	wantCode(t, "published", err, codes.FailedPrecondition)
	if _, err := c.ctl.ControllerUnpublishVolume(ctx(t), &csi.ControllerUnpublishVolumeRequest{VolumeId: v.GetVolumeId(), NodeId: d.NodeID()}); err != nil {
		t.Fatal(err)
	}
	_, err = c.ctl.DeleteVolume(ctx(t), &csi.DeleteVolumeRequest{VolumeId: v.GetVolumeId()})
	wantCode(t, "unpublished", err, codes.OK)
	if vs := d.Volumes(); len(vs) != 0 {
		t.Errorf("volumes after delete: %v", vs)
	}
}

func TestControllerPublish(t *testing.T) {
	d, c := start(t, fakedriver.Options{Nodes: []fakedriver.Node{{ID: "other"}}})
	v := mustCreate(t, c, createReq("v", gi))
	pub := func(node string, ro bool) error {
		_, err := c.ctl.ControllerPublishVolume(ctx(t), &csi.ControllerPublishVolumeRequest{
			VolumeId: v.GetVolumeId(), NodeId: node, VolumeCapability: rwo, Readonly: ro})
		return err
	}
	wantCode(t, "first publish", pub(d.NodeID(), false), codes.OK)
	wantCode(t, "repeat", pub(d.NodeID(), false), codes.OK)
	wantCode(t, "repeat read-only", pub(d.NodeID(), true), codes.AlreadyExists)
	wantCode(t, "second node, single-node mode", pub("other", false), codes.FailedPrecondition)
	wantCode(t, "unknown node", pub("ghost", false), codes.NotFound)
	if got := d.Volumes()[0].PublishedNodes; len(got) != 1 || got[0] != d.NodeID() {
		t.Errorf("PublishedNodes = %v", got)
	}
}

func TestControllerExpandVolume(t *testing.T) {
	for _, tc := range []struct {
		name     string
		opts     fakedriver.Options
		inUse    bool
		id       string // default: the created 2Gi volume
		r        *csi.CapacityRange
		wantCode codes.Code
		wantSize int64
		wantNode bool
	}{
		{name: "grow", r: &csi.CapacityRange{RequiredBytes: 3 * gi}, wantSize: 3 * gi},
		{name: "grow, node step", opts: fakedriver.Options{NodeExpansionRequired: true}, r: &csi.CapacityRange{RequiredBytes: 3 * gi}, wantSize: 3 * gi, wantNode: true},
		{name: "shrink is a no-op", r: &csi.CapacityRange{RequiredBytes: gi}, wantSize: 2 * gi},
		{name: "rounded", opts: fakedriver.Options{SizeStep: gi}, r: &csi.CapacityRange{RequiredBytes: 2*gi + 1}, wantSize: 3 * gi},
		{name: "limit below rounded", opts: fakedriver.Options{SizeStep: gi}, r: &csi.CapacityRange{RequiredBytes: 2*gi + 1, LimitBytes: 2*gi + 2}, wantCode: codes.OutOfRange},
		{name: "unknown volume", id: "nope", r: &csi.CapacityRange{RequiredBytes: 3 * gi}, wantCode: codes.NotFound},
		{name: "no range", wantCode: codes.InvalidArgument},
		{name: "pool full", opts: fakedriver.Options{Capacity: 3 * gi}, r: &csi.CapacityRange{RequiredBytes: 4 * gi}, wantCode: codes.ResourceExhausted},
		{name: "in use, online", inUse: true, r: &csi.CapacityRange{RequiredBytes: 3 * gi}, wantSize: 3 * gi},
		{
			name: "in use, offline only", inUse: true, r: &csi.CapacityRange{RequiredBytes: 3 * gi}, wantCode: codes.FailedPrecondition,
			opts: fakedriver.Options{Capabilities: fakedriver.Capabilities{Controller: true, CreateDelete: true, Expand: true, ExpandOffline: true}},
		},
		{
			name: "not in use, offline only", r: &csi.CapacityRange{RequiredBytes: 3 * gi}, wantSize: 3 * gi,
			opts: fakedriver.Options{Capabilities: fakedriver.Capabilities{Controller: true, CreateDelete: true, Expand: true, ExpandOffline: true}},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d, c := start(t, tc.opts)
			v := mustCreate(t, c, createReq("v", 2*gi))
			d.SetVolumeInUse(v.GetVolumeId(), tc.inUse)
			id := tc.id
			if id == "" {
				id = v.GetVolumeId()
			}
			rsp, err := c.ctl.ControllerExpandVolume(ctx(t), &csi.ControllerExpandVolumeRequest{VolumeId: id, CapacityRange: tc.r})
			if code := status.Code(err); code != tc.wantCode {
				t.Fatalf("ControllerExpandVolume: code %v (%v), want %v", code, err, tc.wantCode)
			}
			if err != nil {
				if got := d.Volumes()[0].CapacityBytes; got != 2*gi {
					t.Errorf("failed expansion changed the size to %d", got)
				}
				return
			}
			if rsp.GetCapacityBytes() != tc.wantSize || rsp.GetNodeExpansionRequired() != tc.wantNode {
				t.Errorf("got %d bytes, node step %v; want %d, %v", rsp.GetCapacityBytes(), rsp.GetNodeExpansionRequired(), tc.wantSize, tc.wantNode)
			}
			if got := d.Volumes()[0].CapacityBytes; got != tc.wantSize {
				t.Errorf("backend size = %d, want %d", got, tc.wantSize)
			}
		})
	}
}

func TestControllerModifyVolume(t *testing.T) {
	d, c := start(t, fakedriver.Options{MutableParameters: []string{"iops", "tier"}})
	v := mustCreate(t, c, withMutable(createReq("v", gi), "iops", "100"))
	modify := func(id string, params map[string]string) error {
		_, err := c.ctl.ControllerModifyVolume(ctx(t), &csi.ControllerModifyVolumeRequest{VolumeId: id, MutableParameters: params})
		return err
	}
	wantCode(t, "no ID", modify("", nil), codes.InvalidArgument)
	wantCode(t, "unknown volume", modify("nope", nil), codes.NotFound)
	wantCode(t, "supported keys", modify(v.GetVolumeId(), map[string]string{"tier": "gold"}), codes.OK)
	wantCode(t, "unknown key", modify(v.GetVolumeId(), map[string]string{"tier": "x", "color": "red"}), codes.InvalidArgument)
	wantCode(t, "key fail", modify(v.GetVolumeId(), map[string]string{"tier": "x", "fail": "yes"}), codes.InvalidArgument)
	got := d.Volumes()[0].MutableParameters
	if len(got) != 2 || got["iops"] != "100" || got["tier"] != "gold" {
		t.Errorf("MutableParameters = %v, want iops=100 tier=gold and nothing from rejected calls", got)
	}
}

func TestListVolumesPaging(t *testing.T) {
	_, c := start(t, fakedriver.Options{})
	for _, n := range []string{"a", "b", "c"} {
		mustCreate(t, c, createReq(n, gi))
	}
	first, err := c.ctl.ListVolumes(ctx(t), &csi.ListVolumesRequest{MaxEntries: 2})
	if err != nil || len(first.GetEntries()) != 2 || first.GetNextToken() == "" {
		t.Fatalf("first page = %v, %v", first, err)
	}
	rest, err := c.ctl.ListVolumes(ctx(t), &csi.ListVolumesRequest{StartingToken: first.GetNextToken()})
	if err != nil || len(rest.GetEntries()) != 1 || rest.GetNextToken() != "" {
		t.Errorf("second page = %v, %v", rest, err)
	}
	_, err = c.ctl.ListVolumes(ctx(t), &csi.ListVolumesRequest{StartingToken: "bogus"})
	wantCode(t, "bad token", err, codes.Aborted)
}

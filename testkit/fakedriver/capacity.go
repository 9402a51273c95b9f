package fakedriver

import (
	"cmp"
	"context"
	"maps"
	"math"
	"slices"

	"github.com/container-storage-interface/spec/lib/go/csi"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/wrapperspb"
)

// Storage pools: one per distinct topology segment, or a single one
// without topology, each with a capacity and the volumes placed in it.

// configuredPools sizes the pool of each known node's segment: the node's
// own Capacity (Options.NodeCapacity for NodeID) if set, else
// Options.Capacity. Without topology there is
// one pool, "".
func configuredPools(o Options) map[string]int64 {
	if !o.Capabilities.Topology {
		return map[string]int64{"": o.Capacity}
	}
	pools := map[string]int64{segmentKey(o.Topology): cmp.Or(o.NodeCapacity, o.Capacity)}
	for _, n := range o.Nodes {
		k := segmentKey(n.Topology)
		if _, ok := pools[k]; !ok || n.Capacity > 0 {
			pools[k] = cmp.Or(n.Capacity, o.Capacity)
		}
	}
	return pools
}

// poolLimit is the capacity of the pool of a segment; 0 means unlimited.
func (d *Driver) poolLimit(pool string) int64 {
	if c, ok := d.pools[pool]; ok {
		return c
	}
	return d.opts.Capacity
}

// placeLocked picks the first candidate segment whose pool has room.
func (d *Driver) placeLocked(candidates []map[string]string, size int64) (map[string]string, error) {
	for _, seg := range candidates {
		pool := segmentKey(seg)
		if limit := d.poolLimit(pool); limit == 0 || d.be.used(pool)+size <= limit {
			return seg, nil
		}
	}
	return nil, status.Errorf(codes.ResourceExhausted, "no pool has %d bytes free in the requested topology", size)
}

// growLocked resizes v to size when the pool has room; smaller sizes are a
// no-op.
func (d *Driver) growLocked(v *volume, size int64) error {
	if size <= v.CapacityBytes {
		return nil
	}
	if limit := d.poolLimit(v.pool); limit > 0 && d.be.used(v.pool)-v.CapacityBytes+size > limit {
		return status.Errorf(codes.ResourceExhausted, "pool %q has no room to grow volume %q to %d bytes", v.pool, v.ID, size)
	}
	d.be.resizeVolume(v, size)
	return nil
}

// GetCapacity reports the free bytes of the pool of the requested
// segment, or of all pools without one; math.MaxInt64 when unlimited.
func (s controller) GetCapacity(_ context.Context, req *csi.GetCapacityRequest) (*csi.GetCapacityResponse, error) {
	o := s.d.opts
	if !o.Capabilities.GetCapacity {
		return nil, unadvertised("GetCapacity", "GET_CAPACITY")
	}
	if len(req.GetVolumeCapabilities()) > 0 {
		if err := checkCapabilities(req.GetVolumeCapabilities(), o.Capabilities.SingleNodeMultiWriter); err != nil {
			return nil, err
		}
	}
	s.d.mu.Lock()
	defer s.d.mu.Unlock()
	pools := []string{""}
	if seg := req.GetAccessibleTopology().GetSegments(); o.Capabilities.Topology && len(seg) > 0 {
		pools = []string{segmentKey(seg)}
	} else if o.Capabilities.Topology {
		pools = s.d.allPoolsLocked()
	}
	var free int64
	for _, p := range pools {
		limit := s.d.poolLimit(p)
		if limit == 0 {
			free = math.MaxInt64
			break
		}
		free += max(0, limit-s.d.be.used(p))
	}
	out := &csi.GetCapacityResponse{AvailableCapacity: free}
	if o.MinSize > 0 {
		out.MinimumVolumeSize = wrapperspb.Int64(o.MinSize)
	}
	return out, nil
}

// allPoolsLocked lists the configured pools and those holding volumes.
func (d *Driver) allPoolsLocked() []string {
	out := slices.Collect(maps.Keys(d.pools))
	for p, used := range d.be.usedBytes {
		if _, ok := d.pools[p]; !ok && used > 0 {
			out = append(out, p)
		}
	}
	return out
}

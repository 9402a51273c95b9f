package fakedriver

import (
	"crypto/rand"
	"encoding/hex"
	"maps"
	"math"
	"slices"
	"sort"
	"strconv"
	"strings"

	"github.com/container-storage-interface/spec/lib/go/csi"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// This file holds the pure decisions of the fake: sizes, topology, paging,
// secrets and parameter checks. Nothing here touches the backend.

// newVolumeSize picks the size of a new volume. The request is raised to
// the source size (a volume or snapshot being copied; 0 for none) and to
// minSize, then rounded up to a multiple of step. Without required_bytes the
// default is the source size, else DefaultVolumeSize, lowered to fit
// limit_bytes.
func newVolumeSize(r *csi.CapacityRange, sourceSize, minSize, step int64) (int64, error) {
	required, limit := r.GetRequiredBytes(), r.GetLimitBytes()
	switch {
	case required < 0 || limit < 0:
		return 0, status.Errorf(codes.InvalidArgument, "negative capacity range %d..%d", required, limit)
	case limit > 0 && required > limit:
		return 0, status.Errorf(codes.InvalidArgument, "required_bytes %d above limit_bytes %d", required, limit)
	case required > 0 && required < sourceSize:
		return 0, status.Errorf(codes.OutOfRange, "required_bytes %d below the content source size %d", required, sourceSize)
	}
	size := required
	if size == 0 {
		size = sourceSize
		if size == 0 {
			size = DefaultVolumeSize
			if limit > 0 && size > limit {
				size = limit
			}
		}
	}
	size, err := roundSize(max(size, minSize), step)
	if err != nil {
		return 0, err
	}
	if limit > 0 && size > limit {
		return 0, status.Errorf(codes.OutOfRange, "limit_bytes %d below the smallest size the backend can create, %d", limit, size)
	}
	return size, nil
}

// expandedSize picks the size after ControllerExpandVolume or
// NodeExpandVolume. A request at or below the current size changes nothing.
func expandedSize(r *csi.CapacityRange, current, minSize, step int64) (int64, error) {
	required, limit := r.GetRequiredBytes(), r.GetLimitBytes()
	switch {
	case r == nil:
		return 0, status.Error(codes.InvalidArgument, "capacity_range is required")
	case required < 0 || limit < 0:
		return 0, status.Errorf(codes.InvalidArgument, "negative capacity range %d..%d", required, limit)
	case limit > 0 && required > limit:
		return 0, status.Errorf(codes.InvalidArgument, "required_bytes %d above limit_bytes %d", required, limit)
	case required <= current:
		return current, nil
	}
	size, err := roundSize(max(required, minSize), step)
	if err != nil {
		return 0, err
	}
	if limit > 0 && size > limit {
		return 0, status.Errorf(codes.OutOfRange, "limit_bytes %d below the rounded size %d", limit, size)
	}
	return size, nil
}

// roundSize rounds size up to a multiple of step (no rounding when step is 0).
func roundSize(size, step int64) (int64, error) {
	if step <= 0 || size%step == 0 {
		return size, nil
	}
	if size > math.MaxInt64-step {
		return 0, status.Errorf(codes.OutOfRange, "size %d too large to round to %d", size, step)
	}
	return (size/step + 1) * step, nil
}

// segmentKey names a topology segment: its sorted key=value pairs.
func segmentKey(seg map[string]string) string {
	keys := slices.Sorted(maps.Keys(seg))
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = k + "=" + seg[k]
	}
	return strings.Join(parts, ",")
}

// withinSegment reports whether a node in segment node can reach a volume
// in segment vol: every key of vol has the same value in node.
func withinSegment(node, vol map[string]string) bool {
	for k, v := range vol {
		if node[k] != v {
			return false
		}
	}
	return true
}

// candidateSegments lists where a volume may go, best first: preferred
// segments, then the other requisite ones, then fallback when the request
// names none.
func candidateSegments(req *csi.TopologyRequirement, fallback map[string]string) []map[string]string {
	var out []map[string]string
	seen := map[string]bool{}
	for _, t := range slices.Concat(req.GetPreferred(), req.GetRequisite()) {
		seg := t.GetSegments()
		if k := segmentKey(seg); len(seg) > 0 && !seen[k] {
			seen[k] = true
			out = append(out, seg)
		}
	}
	if len(out) == 0 {
		out = append(out, fallback)
	}
	return out
}

// pageStart parses a list starting_token: the index of the next entry.
func pageStart(token string, n int) (int, error) {
	if token == "" {
		return 0, nil
	}
	i, err := strconv.Atoi(token)
	if err != nil || i < 0 || i > n {
		return 0, status.Errorf(codes.Aborted, "invalid starting_token %q", token)
	}
	return i, nil
}

// pageEnd returns the end of the page starting at start, and the token of
// the next page ("" on the last one).
func pageEnd(start, n int, maxEntries int32) (int, string, error) {
	if maxEntries < 0 {
		return 0, "", status.Errorf(codes.InvalidArgument, "negative max_entries %d", maxEntries)
	}
	end := n
	if maxEntries > 0 && start+int(maxEntries) < n {
		end = start + int(maxEntries)
		return end, strconv.Itoa(end), nil
	}
	return end, "", nil
}

// checkSecrets compares the secrets of a request with the ones required.
func checkSecrets(method string, want, got map[string]string) error {
	for _, k := range slices.Sorted(maps.Keys(want)) {
		v, ok := got[k]
		switch {
		case !ok:
			return status.Errorf(codes.InvalidArgument, "%s: missing secret %q", method, k)
		case v != want[k]:
			return status.Errorf(codes.Unauthenticated, "%s: wrong value for secret %q", method, k)
		}
	}
	return nil
}

// checkMutable rejects mutable parameters the backend does not support.
// allowed nil accepts any key but "fail".
func checkMutable(allowed []string, params map[string]string) error {
	for _, k := range slices.Sorted(maps.Keys(params)) {
		if k == "fail" || (allowed != nil && !slices.Contains(allowed, k)) {
			return status.Errorf(codes.InvalidArgument, "mutable parameter %q not supported", k)
		}
	}
	return nil
}

// checkCapabilities validates the volume capabilities of a request.
func checkCapabilities(caps []*csi.VolumeCapability, multiWriter bool) error {
	if len(caps) == 0 {
		return status.Error(codes.InvalidArgument, "volume_capabilities are required")
	}
	for _, c := range caps {
		if err := checkCapability(c, multiWriter); err != nil {
			return err
		}
	}
	return nil
}

func checkCapability(c *csi.VolumeCapability, multiWriter bool) error {
	switch {
	case c == nil:
		return status.Error(codes.InvalidArgument, "volume_capability is required")
	case c.GetBlock() == nil && c.GetMount() == nil:
		return status.Error(codes.InvalidArgument, "volume_capability needs an access type, block or mount")
	case c.GetAccessMode() == nil || c.GetAccessMode().GetMode() == csi.VolumeCapability_AccessMode_UNKNOWN:
		return status.Error(codes.InvalidArgument, "volume_capability needs an access mode")
	}
	switch m := c.GetAccessMode().GetMode(); m {
	case csi.VolumeCapability_AccessMode_SINGLE_NODE_SINGLE_WRITER, csi.VolumeCapability_AccessMode_SINGLE_NODE_MULTI_WRITER:
		if !multiWriter {
			return status.Errorf(codes.InvalidArgument, "access mode %v needs SINGLE_NODE_MULTI_WRITER", m)
		}
	}
	return nil
}

// singleNode reports whether an access mode allows only one node.
func singleNode(c *csi.VolumeCapability) bool {
	switch c.GetAccessMode().GetMode() {
	case csi.VolumeCapability_AccessMode_SINGLE_NODE_WRITER,
		csi.VolumeCapability_AccessMode_SINGLE_NODE_READER_ONLY,
		csi.VolumeCapability_AccessMode_SINGLE_NODE_SINGLE_WRITER,
		csi.VolumeCapability_AccessMode_SINGLE_NODE_MULTI_WRITER:
		return true
	}
	return false
}

// sameSource reports whether two content sources name the same object.
func sameSource(a, b *csi.VolumeContentSource) bool {
	return a.GetSnapshot().GetSnapshotId() == b.GetSnapshot().GetSnapshotId() &&
		a.GetVolume().GetVolumeId() == b.GetVolume().GetVolumeId()
}

// sameSet reports whether two ID lists hold the same IDs, in any order.
func sameSet(a, b []string) bool {
	a, b = slices.Clone(a), slices.Clone(b)
	sort.Strings(a)
	sort.Strings(b)
	return slices.Equal(slices.Compact(a), slices.Compact(b))
}

// equalParams compares parameter maps, treating nil and empty alike.
func equalParams(a, b map[string]string) bool { return maps.Equal(a, b) }

func randomHex(n int) (string, error) {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		return "", err
	}
	return hex.EncodeToString(b), nil
}

// flagged is one capability type and whether the driver advertises it.
type flagged[T any] struct {
	on bool
	t  T
}

func on[T any](b bool, t T) flagged[T] { return flagged[T]{b, t} }

// advertised returns the capability types that are on, in order.
func advertised[T any](fs ...flagged[T]) []T {
	var out []T
	for _, f := range fs {
		if f.on {
			out = append(out, f.t)
		}
	}
	return out
}

// required returns InvalidArgument naming the first empty field of the
// name, value pairs.
func required(pairs ...string) error {
	for i := 0; i+1 < len(pairs); i += 2 {
		if pairs[i+1] == "" {
			return status.Error(codes.InvalidArgument, pairs[i]+" is required")
		}
	}
	return nil
}

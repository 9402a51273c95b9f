package fakedriver

import (
	"cmp"
	"maps"
	"slices"
	"time"

	"github.com/container-storage-interface/spec/lib/go/csi"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"
)

// Volume is a volume in the backend, as Volumes reports it. Maps and
// slices are copies: changing them changes nothing in the driver.
type Volume struct {
	ID            string
	Name          string
	CapacityBytes int64
	// NodeCapacityBytes is the size NodeExpandVolume last grew the
	// file system to; 0 before any node expansion.
	NodeCapacityBytes int64
	Parameters        map[string]string
	MutableParameters map[string]string
	// SourceSnapshotID or SourceVolumeID name the content source, if any.
	SourceSnapshotID string
	SourceVolumeID   string
	// Topology is the segment the volume lives in; nil without
	// Capabilities.Topology.
	Topology map[string]string
	// PublishedNodes lists the nodes the volume is ControllerPublished to.
	PublishedNodes []string
	// StagingPaths and TargetPaths are where the Node service staged and
	// published the volume.
	StagingPaths []string
	TargetPaths  []string
	// InUse is the flag set by SetVolumeInUse.
	InUse bool
}

// Snapshot is a snapshot in the backend, as Snapshots reports it.
type Snapshot struct {
	ID              string
	Name            string
	SourceVolumeID  string
	SizeBytes       int64
	Parameters      map[string]string
	GroupSnapshotID string
	CreatedAt       time.Time
	ReadyToUse      bool
}

// GroupSnapshot is a volume group snapshot in the backend.
type GroupSnapshot struct {
	ID              string
	Name            string
	SourceVolumeIDs []string
	SnapshotIDs     []string
	Parameters      map[string]string
	CreatedAt       time.Time
	// ReadyToUse holds when every member snapshot is ready.
	ReadyToUse bool
}

// volume is the backend record behind Volume.
type volume struct {
	Volume
	seq          uint64
	published    map[string]publication // by node ID
	staged       map[string]bool        // staging paths
	targets      map[string]publication // by target path
	pool         string                 // segmentKey of Topology
	volumeSource *csi.VolumeContentSource
}

// publication remembers how a volume was published, to detect
// incompatible repeats.
type publication struct {
	readonly bool
	mode     csi.VolumeCapability_AccessMode_Mode
}

// snapshot is the backend record behind Snapshot.
type snapshot struct {
	Snapshot
	seq           uint64
	notReadyPolls int // answers left that say ready_to_use=false
}

// groupSnapshot is the backend record behind GroupSnapshot; its
// readiness is that of its members.
type groupSnapshot struct {
	GroupSnapshot
	seq uint64
}

// groupReady reports whether every member snapshot is ready.
func (b *backend) groupReady(g *groupSnapshot) bool {
	for _, id := range g.SnapshotIDs {
		if s, ok := b.snapshots[id]; ok && !s.ReadyToUse {
			return false
		}
	}
	return true
}

// backend is the in-memory storage behind the driver. Driver.mu guards it.
// Objects are read through the maps by ID and changed only through the
// methods below, which keep the indexes in step.
type backend struct {
	seq       uint64
	volumes   map[string]*volume // by ID
	snapshots map[string]*snapshot
	groups    map[string]*groupSnapshot
	probes    int // Probe answers since the last Serve

	volumeNames, snapshotNames, groupNames map[string]string // name -> ID
	usedBytes                              map[string]int64  // by pool
}

func newBackend() *backend {
	return &backend{
		volumes:       map[string]*volume{},
		snapshots:     map[string]*snapshot{},
		groups:        map[string]*groupSnapshot{},
		volumeNames:   map[string]string{},
		snapshotNames: map[string]string{},
		groupNames:    map[string]string{},
		usedBytes:     map[string]int64{},
	}
}

func (b *backend) next() uint64 { b.seq++; return b.seq }

func (b *backend) volumeByName(name string) *volume { return b.volumes[b.volumeNames[name]] }

func (b *backend) snapshotByName(name string) *snapshot {
	return b.snapshots[b.snapshotNames[name]]
}

func (b *backend) groupByName(name string) *groupSnapshot { return b.groups[b.groupNames[name]] }

func (b *backend) addVolume(v *volume) {
	b.volumes[v.ID] = v
	b.volumeNames[v.Name] = v.ID
	b.usedBytes[v.pool] += v.CapacityBytes
}

func (b *backend) removeVolume(v *volume) {
	delete(b.volumes, v.ID)
	delete(b.volumeNames, v.Name)
	b.usedBytes[v.pool] -= v.CapacityBytes
}

func (b *backend) resizeVolume(v *volume, size int64) {
	b.usedBytes[v.pool] += size - v.CapacityBytes
	v.CapacityBytes = size
}

func (b *backend) addSnapshot(s *snapshot) {
	b.snapshots[s.ID] = s
	b.snapshotNames[s.Name] = s.ID
}

func (b *backend) removeSnapshot(s *snapshot) {
	delete(b.snapshots, s.ID)
	delete(b.snapshotNames, s.Name)
}

func (b *backend) addGroup(g *groupSnapshot) {
	b.groups[g.ID] = g
	b.groupNames[g.Name] = g.ID
}

func (b *backend) removeGroup(g *groupSnapshot) {
	delete(b.groups, g.ID)
	delete(b.groupNames, g.Name)
}

// used is the number of bytes the volumes of a pool take.
func (b *backend) used(pool string) int64 { return b.usedBytes[pool] }

// attached counts the volumes ControllerPublished to a node.
func (b *backend) attached(node string) int64 {
	var n int64
	for _, v := range b.volumes {
		if _, ok := v.published[node]; ok {
			n++
		}
	}
	return n
}

// sortedVolumes lists volumes in creation order, the order of ListVolumes.
func (b *backend) sortedVolumes() []*volume {
	vs := slices.Collect(maps.Values(b.volumes))
	slices.SortFunc(vs, func(a, b *volume) int { return cmp.Compare(a.seq, b.seq) })
	return vs
}

func (b *backend) sortedSnapshots() []*snapshot {
	ss := slices.Collect(maps.Values(b.snapshots))
	slices.SortFunc(ss, func(a, b *snapshot) int { return cmp.Compare(a.seq, b.seq) })
	return ss
}

// inUse reports whether a volume counts as published: attached, staged,
// mounted or flagged by SetVolumeInUse.
func (v *volume) inUse() bool {
	return v.InUse || len(v.published) > 0 || len(v.staged) > 0 || len(v.targets) > 0
}

// export copies a volume record for Volumes.
func (v *volume) export() Volume {
	out := v.Volume
	out.Parameters = maps.Clone(v.Parameters)
	out.MutableParameters = maps.Clone(v.MutableParameters)
	out.Topology = maps.Clone(v.Topology)
	out.PublishedNodes = slices.Sorted(maps.Keys(v.published))
	out.StagingPaths = slices.Sorted(maps.Keys(v.staged))
	out.TargetPaths = slices.Sorted(maps.Keys(v.targets))
	return out
}

// csi renders a volume for CreateVolume and ListVolumes.
func (v *volume) csi() *csi.Volume {
	out := &csi.Volume{
		VolumeId:      v.ID,
		CapacityBytes: v.CapacityBytes,
		VolumeContext: map[string]string{"fake.csi.k8s.io/name": v.Name},
		ContentSource: proto.CloneOf(v.volumeSource),
	}
	if v.Topology != nil {
		out.AccessibleTopology = []*csi.Topology{{Segments: maps.Clone(v.Topology)}}
	}
	return out
}

// poll answers one question about a snapshot's readiness.
func (s *snapshot) poll() {
	if s.notReadyPolls > 0 {
		s.notReadyPolls--
		return
	}
	s.ReadyToUse = true
}

func (s *snapshot) export() Snapshot {
	out := s.Snapshot
	out.Parameters = maps.Clone(s.Parameters)
	return out
}

func (s *snapshot) csi() *csi.Snapshot {
	return &csi.Snapshot{
		SnapshotId:      s.ID,
		SourceVolumeId:  s.SourceVolumeID,
		SizeBytes:       s.SizeBytes,
		CreationTime:    timestamppb.New(s.CreatedAt),
		ReadyToUse:      s.ReadyToUse,
		GroupSnapshotId: s.GroupSnapshotID,
	}
}

func (g *groupSnapshot) export(ready bool) GroupSnapshot {
	out := g.GroupSnapshot
	out.ReadyToUse = ready
	out.SourceVolumeIDs = slices.Clone(g.SourceVolumeIDs)
	out.SnapshotIDs = slices.Clone(g.SnapshotIDs)
	out.Parameters = maps.Clone(g.Parameters)
	return out
}

// Volumes lists the backend's volumes in creation order.
func (d *Driver) Volumes() []Volume {
	d.mu.Lock()
	defer d.mu.Unlock()
	var out []Volume
	for _, v := range d.be.sortedVolumes() {
		out = append(out, v.export())
	}
	return out
}

// Snapshots lists the backend's snapshots in creation order. Listing is
// not a poll: it does not bring a snapshot closer to ready.
func (d *Driver) Snapshots() []Snapshot {
	d.mu.Lock()
	defer d.mu.Unlock()
	var out []Snapshot
	for _, s := range d.be.sortedSnapshots() {
		out = append(out, s.export())
	}
	return out
}

// GroupSnapshots lists the backend's volume group snapshots in creation
// order.
func (d *Driver) GroupSnapshots() []GroupSnapshot {
	d.mu.Lock()
	defer d.mu.Unlock()
	gs := slices.Collect(maps.Values(d.be.groups))
	slices.SortFunc(gs, func(a, b *groupSnapshot) int { return cmp.Compare(a.seq, b.seq) })
	var out []GroupSnapshot
	for _, g := range gs {
		out = append(out, g.export(d.be.groupReady(g)))
	}
	return out
}

// SetVolumeInUse marks a volume as used by a workload, as if published
// where the driver cannot see it. An in-use volume refuses DeleteVolume
// and, without ExpandOnline, ControllerExpandVolume (FailedPrecondition).
// It reports false when the volume does not exist.
func (d *Driver) SetVolumeInUse(id string, inUse bool) bool {
	d.mu.Lock()
	v, ok := d.be.volumes[id]
	if ok {
		v.InUse = inUse
	}
	d.mu.Unlock()
	if ok {
		_ = d.saveState() // best effort; the next call that saves retries
	}
	return ok
}

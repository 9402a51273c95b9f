package fakedriver

import (
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"time"
)

// DefaultName is the driver name reported by GetPluginInfo when
// Options.Name is empty.
const DefaultName = "fake.csi.k8s.io"

// DefaultNodeID is the node the Node service claims to run on when
// Options.NodeID is empty.
const DefaultNodeID = "fake-node"

// DefaultVolumeSize is the size of a volume created without a capacity
// range, a content source or Options.MinSize.
const DefaultVolumeSize int64 = 1 << 30

// maxSocketPath is the longest path a unix socket address can hold on Linux
// (sun_path is 108 bytes including the terminating NUL).
const maxSocketPath = 107

// Options configures a Driver. A zero field means "use the default".
type Options struct {
	// Name is returned by GetPluginInfo; default DefaultName.
	Name string
	// Endpoint is the path of the unix socket to serve on ("unix://" in
	// front is accepted). Default: csi.sock
	// in a fresh directory under os.TempDir (or /tmp when that path would be
	// too long), created by Serve and removed by Stop.
	Endpoint string

	// Capabilities selects what the driver advertises, and so which RPCs
	// answer instead of returning Unimplemented. Zero means All.
	Capabilities Capabilities

	// NodeID is the ID NodeGetInfo reports; default DefaultNodeID.
	NodeID string
	// Topology is the accessible topology segment of NodeID, reported by
	// NodeGetInfo and given to volumes created without topology
	// requirements. Used only with Capabilities.Topology; default
	// {"topology.<Name>/node": NodeID}.
	Topology map[string]string
	// Nodes are further nodes the backend knows: ControllerPublishVolume
	// accepts them, and their segments are pools of their own.
	Nodes []Node

	// PublishWithinTopology makes ControllerPublishVolume refuse, with
	// FailedPrecondition, a node whose segment does not match the volume's,
	// as a zonal cloud disk cannot attach to a machine in another zone.
	// Used only with Capabilities.Topology; off, any known node may attach
	// any volume.
	PublishWithinTopology bool

	// MaxVolumesPerNode is reported by NodeGetInfo; ControllerPublishVolume
	// to a node that has this many volumes fails with ResourceExhausted.
	// 0 means no limit.
	MaxVolumesPerNode int64

	// Capacity is the size in bytes of each storage pool: one pool per
	// distinct topology segment, or a single pool without topology.
	// CreateVolume and ControllerExpandVolume fail with ResourceExhausted
	// when a pool is full. 0 means unlimited (GetCapacity reports
	// math.MaxInt64). A Node's own Capacity overrides it for its segment.
	Capacity int64

	// NodeCapacity overrides Capacity for the pool of NodeID's own
	// segment, as Node.Capacity does for the other nodes; 0 means Capacity.
	// Used only with Capabilities.Topology.
	NodeCapacity int64

	// MinSize is the smallest volume the backend creates; smaller requests
	// are rounded up. Also reported by GetCapacity as minimum_volume_size.
	MinSize int64
	// SizeStep rounds created and expanded sizes up to a multiple of it.
	SizeStep int64

	// NotReadyProbes is how many Probe calls answer ready=false before the
	// driver reports ready, counted afresh by every Serve and Restart.
	NotReadyProbes int
	// SnapshotNotReadyPolls is how many answers about a new snapshot
	// (CreateSnapshot included, then CreateSnapshot again, ListSnapshots,
	// GetSnapshot and the group equivalents) say ready_to_use=false before
	// it turns ready.
	SnapshotNotReadyPolls int
	// NodeExpansionRequired is returned by ControllerExpandVolume.
	NodeExpansionRequired bool

	// MutableParameters lists the keys ControllerModifyVolume and
	// CreateVolume accept in mutable_parameters; nil accepts any key. The
	// key "fail" is always rejected with InvalidArgument.
	MutableParameters []string
	// RequireSecrets maps a method short name (e.g. "CreateVolume") to the
	// secrets its requests must carry. A missing key fails with
	// InvalidArgument, a wrong value with Unauthenticated.
	RequireSecrets map[string]map[string]string

	// CreateTargetPaths makes NodePublishVolume create its target path (a
	// directory, or a file for block volumes) and NodeUnpublishVolume remove
	// it, as a real driver does; the parent directory must exist. Off, the
	// Node service only keeps books.
	CreateTargetPaths bool

	// RequestHistory bounds how many requests Requests keeps per method;
	// default 100.
	RequestHistory int

	// StateDir, when set, makes the backend durable: the first Serve loads
	// it from StateDir/StateFile (creating the directory and the file when
	// missing), and every call that may change it writes the file again,
	// atomically (write and rename, no fsync: a killed process leaves the
	// old or the new state, a machine crash may lose the last writes),
	// before answering. A call whose write fails answers
	// Internal although it took effect in memory; the next write catches
	// up. The file is refused when it belongs to another driver Name.
	// Empty: the backend lives only in memory.
	StateDir string

	// Observe, when set, is told of every call the driver answers: the
	// method's short name, the error it returned (nil on success) and how
	// long it took, hangs and latency included. It runs on the call's
	// goroutine, so it must be safe for concurrent use and quick.
	Observe func(method string, err error, took time.Duration)

	// Now is the clock stamped on snapshots; default time.Now.
	Now func() time.Time
}

// Node is a node known to the backend besides Options.NodeID.
type Node struct {
	ID string
	// Topology is the node's segment; default {"topology.<Name>/node": ID}.
	Topology map[string]string
	// Capacity overrides Options.Capacity for the pool of this segment.
	Capacity int64
}

// Capabilities selects what the driver advertises. An RPC whose
// capability is not advertised answers Unimplemented.
type Capabilities struct {
	Controller      bool // plugin CONTROLLER_SERVICE; the Controller service is served only with it
	Topology        bool // plugin VOLUME_ACCESSIBILITY_CONSTRAINTS
	GroupController bool // plugin GROUP_CONTROLLER_SERVICE and CREATE_DELETE_GET_VOLUME_GROUP_SNAPSHOT

	CreateDelete     bool // CREATE_DELETE_VOLUME
	PublishUnpublish bool // PUBLISH_UNPUBLISH_VOLUME
	PublishReadonly  bool // PUBLISH_READONLY
	ListVolumes      bool // LIST_VOLUMES
	GetCapacity      bool // GET_CAPACITY
	Snapshots        bool // CREATE_DELETE_SNAPSHOT, also allows snapshot content sources
	ListSnapshots    bool // LIST_SNAPSHOTS
	GetSnapshot      bool // GET_SNAPSHOT
	Clone            bool // CLONE_VOLUME, allows volume content sources
	Expand           bool // controller EXPAND_VOLUME
	ExpandOnline     bool // plugin VolumeExpansion ONLINE
	ExpandOffline    bool // plugin VolumeExpansion OFFLINE: in-use volumes do not expand unless ExpandOnline
	Modify           bool // MODIFY_VOLUME

	SingleNodeMultiWriter bool // controller and node SINGLE_NODE_MULTI_WRITER
	NodeStage             bool // node STAGE_UNSTAGE_VOLUME
	NodeExpand            bool // node EXPAND_VOLUME
	VolumeStats           bool // node GET_VOLUME_STATS
}

// Presets for the common shapes of driver. Copy one and flip fields to
// taste.
var (
	// Provisioner: dynamic provisioning with topology, capacity, clones,
	// snapshots as sources and attach.
	Provisioner = Capabilities{
		Controller: true, Topology: true, CreateDelete: true, PublishUnpublish: true,
		GetCapacity: true, Snapshots: true, Clone: true, NodeStage: true,
	}
	// Resizer: online controller and node expansion plus modification.
	Resizer = Capabilities{
		Controller: true, CreateDelete: true, Expand: true, ExpandOnline: true,
		Modify: true, NodeExpand: true,
	}
	// Snapshotter: snapshots, their listing and group snapshots.
	Snapshotter = Capabilities{
		Controller: true, GroupController: true, CreateDelete: true,
		Snapshots: true, ListSnapshots: true, GetSnapshot: true,
	}
	// NodeOnly: no Controller service; expansion happens on the node.
	NodeOnly = Capabilities{NodeStage: true, NodeExpand: true}
	// All advertises everything the fake implements.
	All = Capabilities{
		Controller: true, Topology: true, GroupController: true,
		CreateDelete: true, PublishUnpublish: true, PublishReadonly: true, ListVolumes: true,
		GetCapacity: true, Snapshots: true, ListSnapshots: true,
		GetSnapshot: true, Clone: true, Expand: true, ExpandOnline: true,
		Modify: true, SingleNodeMultiWriter: true, NodeStage: true,
		NodeExpand: true, VolumeStats: true,
	}
)

// driverName is what csi-sanity and Kubernetes accept as a CSI driver name.
var driverName = regexp.MustCompile(`^[a-zA-Z][A-Za-z0-9-._]{0,61}[a-zA-Z]$`)

// withDefaults returns a copy of o with the gaps filled. It picks a fresh
// socket path but creates nothing.
func (o Options) withDefaults() (Options, error) {
	if o.Name == "" {
		o.Name = DefaultName
	}
	if o.NodeID == "" {
		o.NodeID = DefaultNodeID
	}
	if o.Capabilities == (Capabilities{}) {
		o.Capabilities = All
	}
	if o.Capabilities.Topology {
		if o.Topology == nil {
			o.Topology = map[string]string{topologyKey(o.Name): o.NodeID}
		}
		nodes := make([]Node, len(o.Nodes))
		for i, n := range o.Nodes {
			if n.Topology == nil {
				n.Topology = map[string]string{topologyKey(o.Name): n.ID}
			}
			nodes[i] = n
		}
		o.Nodes = nodes
	}
	if o.RequestHistory == 0 {
		o.RequestHistory = 100
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	// Accept the URL form too, as Endpoint returns it.
	o.Endpoint = strings.TrimPrefix(strings.TrimPrefix(o.Endpoint, "unix://"), "unix:")
	if o.Endpoint == "" {
		p, err := freshSocketPath()
		if err != nil {
			return o, err
		}
		o.Endpoint = p
	}
	return o, nil
}

func topologyKey(name string) string { return "topology." + name + "/node" }

// Validate reports every bad field at once.
func (o Options) Validate() error {
	var errs []error
	if o.Name != "" && !driverName.MatchString(o.Name) {
		errs = append(errs, fmt.Errorf("Name %q: want 2-63 characters, letters at both ends", o.Name))
	}
	if n := len(o.Endpoint); n > maxSocketPath {
		errs = append(errs, fmt.Errorf("Endpoint %q: %d bytes, unix socket paths hold at most %d", o.Endpoint, n, maxSocketPath))
	}
	for _, f := range []struct {
		name  string
		value int64
	}{
		{"MaxVolumesPerNode", o.MaxVolumesPerNode},
		{"Capacity", o.Capacity},
		{"NodeCapacity", o.NodeCapacity},
		{"MinSize", o.MinSize},
		{"SizeStep", o.SizeStep},
		{"NotReadyProbes", int64(o.NotReadyProbes)},
		{"SnapshotNotReadyPolls", int64(o.SnapshotNotReadyPolls)},
		{"RequestHistory", int64(o.RequestHistory)},
	} {
		if f.value < 0 {
			errs = append(errs, fmt.Errorf("%s %d: must not be negative", f.name, f.value))
		}
	}
	seen := map[string]bool{o.NodeID: true}
	for i, n := range o.Nodes {
		switch {
		case n.ID == "":
			errs = append(errs, fmt.Errorf("Nodes[%d]: empty ID", i))
		case seen[n.ID]:
			errs = append(errs, fmt.Errorf("Nodes[%d]: duplicate ID %q", i, n.ID))
		}
		seen[n.ID] = true
		if n.Capacity < 0 {
			errs = append(errs, fmt.Errorf("Nodes[%d] Capacity %d: must not be negative", i, n.Capacity))
		}
	}
	for _, m := range slices.Sorted(maps.Keys(o.RequireSecrets)) {
		if !knownMethods[m] {
			errs = append(errs, fmt.Errorf("RequireSecrets: unknown CSI method %q", m))
		}
	}
	return errors.Join(errs...)
}

// freshSocketPath names csi.sock in a directory that does not exist yet.
func freshSocketPath() (string, error) {
	suffix, err := randomHex(6)
	if err != nil {
		return "", err
	}
	for _, base := range []string{os.TempDir(), "/tmp"} {
		p := filepath.Join(base, "fakecsi-"+suffix, "csi.sock")
		if len(p) <= maxSocketPath {
			return p, nil
		}
	}
	return "", fmt.Errorf("no temporary directory short enough for a unix socket")
}

// mustKnow panics when method is not a CSI method short name: a typo in a
// test would otherwise inject nothing and pass silently.
func mustKnow(method string) {
	if !knownMethods[method] {
		panic(fmt.Sprintf("fakedriver: unknown CSI method %q (want a short name such as %q)", method, "CreateVolume"))
	}
}

package main

import (
	"cmp"
	"errors"
	"flag"
	"fmt"
	"io"
	"maps"
	"os"
	"slices"
	"strings"

	"k8s.io/apimachinery/pkg/api/resource"

	"github.com/csi-kit/sidecars/testkit/fakedriver"
)

// preset is what a --mode simulates.
type preset struct {
	caps                  fakedriver.Capabilities
	topology              string // segment key suffix: "zone", "node" or "" for none
	minSize, step         int64
	capacity              int64 // pool size unless a flag says otherwise; 0 = unlimited
	nodeExpansionRequired bool
	expansion             string // for the summary
}

const (
	gi = int64(1) << 30
	mi = int64(1) << 20
)

// presets: zonal cloud disks, node-local LVM volumes, and an RBD-style
// backend that grows only volumes nobody uses.
var presets = map[string]preset{
	"cloud-disk": {
		caps: fakedriver.Capabilities{
			Controller: true, Topology: true, CreateDelete: true, PublishUnpublish: true,
			ListVolumes: true, GetCapacity: true, Snapshots: true, ListSnapshots: true,
			GetSnapshot: true, Clone: true, Expand: true, ExpandOnline: true,
			NodeStage: true, NodeExpand: true, VolumeStats: true,
		},
		topology: "zone", minSize: 20 * gi, step: gi, expansion: "online",
	},
	"local": {
		caps: fakedriver.Capabilities{
			Controller: true, Topology: true, CreateDelete: true, ListVolumes: true,
			GetCapacity: true, Expand: true, ExpandOnline: true, NodeExpand: true, VolumeStats: true,
		},
		topology: "node", step: 4 * mi, capacity: 100 * gi, expansion: "online",
	},
	"offline": {
		caps: fakedriver.Capabilities{
			Controller: true, CreateDelete: true, PublishUnpublish: true, ListVolumes: true,
			Snapshots: true, ListSnapshots: true, GetSnapshot: true, Clone: true,
			Expand: true, ExpandOffline: true, NodeStage: true, NodeExpand: true, VolumeStats: true,
		},
		step: mi, nodeExpansionRequired: true, expansion: "offline only",
	},
}

// modes lists the --mode values in a stable order.
var modes = slices.Sorted(maps.Keys(presets))

// defaultZone is the zone of --nodeid in cloud-disk mode when --zones is
// empty.
const defaultZone = "zone-a"

// config is the parsed command line.
type config struct {
	mode  string
	opts  fakedriver.Options
	zones map[string]string // node -> zone, from --zones
	level int               // --v
	// showVersion: print the version and exit (--version).
	showVersion bool
}

// parseFlags turns the command line into driver Options. Every problem is
// reported at once, joined into one line.
func parseFlags(args []string, usage io.Writer) (config, error) {
	fs := flag.NewFlagSet("driver", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	endpoint := fs.String("endpoint", "unix:///csi/csi.sock", "unix socket to serve on: unix:///path, unix:/path or a bare path")
	driver := fs.String("driver", "disk.csi.example.com", "driver name reported by GetPluginInfo")
	nodeID := fs.String("nodeid", "", "ID of the node this plugin runs on (default: the host name)")
	level := fs.Int("v", 0, "log verbosity: 2 logs failed calls, 5 every call")
	stateDir := fs.String("state-dir", "", "directory keeping the backend across restarts (empty: memory only)")
	mode := fs.String("mode", "cloud-disk", "what to simulate: "+strings.Join(modes, ", "))
	zones := pairs{what: "zone"}
	fs.Var(&zones, "zones", "node=zone,...: the nodes of the cluster and their zones (zones matter in cloud-disk mode)")
	nodeCap := pairs{what: "quantity"}
	fs.Var(&nodeCap, "node-capacity", "node=quantity,...: volume-group size per node (local mode)")
	var capacity, minSize, step quantity
	fs.Var(&capacity, "capacity", "pool size: per zone (cloud-disk), per node not in --node-capacity (local, default 100Gi), total (offline); 0 = unlimited")
	fs.Var(&minSize, "min-size", "smallest volume (cloud-disk default 20Gi)")
	fs.Var(&step, "size-step", "sizes round up to a multiple of this (default 1Gi, 4Mi, 1Mi by mode)")
	ner := fs.Bool("node-expansion-required", false, "ControllerExpandVolume asks for NodeExpandVolume (default true in offline mode)")
	showVersion := fs.Bool("version", false, "print the version and exit")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			fmt.Fprintln(usage, "usage: driver [flags]")
			fs.SetOutput(usage)
			fs.PrintDefaults()
		}
		return config{}, err
	}
	if *showVersion {
		return config{showVersion: true}, nil
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })

	var errs []error
	if fs.NArg() > 0 {
		errs = append(errs, fmt.Errorf("unexpected argument %q", fs.Arg(0)))
	}
	p, ok := presets[*mode]
	if !ok {
		errs = append(errs, fmt.Errorf("--mode=%q: want one of %s", *mode, strings.Join(modes, ", ")))
	}
	path, err := socketPath(*endpoint)
	if err != nil {
		errs = append(errs, err)
	}
	if *nodeID == "" {
		if h, err := os.Hostname(); err == nil {
			*nodeID = h
		}
	}
	if *nodeID == "" {
		errs = append(errs, errors.New("--nodeid: empty and no host name to default to"))
	}
	if len(nodeCap.m) > 0 && *mode != "local" {
		errs = append(errs, fmt.Errorf("--node-capacity: only for --mode=local, not %s", *mode))
	}
	if len(errs) > 0 {
		return config{}, errors.Join(errs...)
	}

	o := fakedriver.Options{
		Name: *driver, Endpoint: path, NodeID: *nodeID, StateDir: *stateDir,
		Capabilities: p.caps, MinSize: p.minSize, SizeStep: p.step, Capacity: p.capacity,
		NodeExpansionRequired: p.nodeExpansionRequired,
		// The node plugin creates mount points, as a real one does.
		CreateTargetPaths: true,
		// A zonal disk attaches only to machines in its zone.
		PublishWithinTopology: p.topology == "zone",
	}
	if set["capacity"] {
		o.Capacity = capacity.v
	}
	if set["min-size"] {
		o.MinSize = minSize.v
	}
	if set["size-step"] {
		o.SizeStep = step.v
	}
	if set["node-expansion-required"] {
		o.NodeExpansionRequired = *ner
	}
	segment := func(node string) map[string]string {
		switch p.topology {
		case "zone":
			return map[string]string{"topology." + *driver + "/zone": cmp.Or(zones.m[node], defaultZone)}
		case "node":
			return map[string]string{"topology." + *driver + "/node": node}
		}
		return nil
	}
	if p.topology == "zone" && len(zones.m) > 0 && zones.m[*nodeID] == "" {
		return config{}, fmt.Errorf("--zones: no zone for --nodeid=%s", *nodeID)
	}
	o.Topology = segment(*nodeID)
	o.NodeCapacity = nodeCap.q[*nodeID]
	known := slices.Sorted(maps.Keys(zones.m))
	known = slices.Compact(slices.Sorted(slices.Values(append(known, slices.Collect(maps.Keys(nodeCap.q))...))))
	for _, n := range known {
		if n != *nodeID {
			o.Nodes = append(o.Nodes, fakedriver.Node{ID: n, Topology: segment(n), Capacity: nodeCap.q[n]})
		}
	}
	return config{mode: *mode, opts: o, zones: zones.m, level: *level}, nil
}

// socketPath accepts unix:///abs, unix:/abs, unix://rel and bare paths.
func socketPath(endpoint string) (string, error) {
	p := endpoint
	switch {
	case strings.HasPrefix(p, "unix://"):
		p = strings.TrimPrefix(p, "unix://")
	case strings.HasPrefix(p, "unix:"):
		p = strings.TrimPrefix(p, "unix:")
	case strings.Contains(p, "://"):
		return "", fmt.Errorf("--endpoint=%q: only unix sockets are served", endpoint)
	}
	if p == "" {
		return "", fmt.Errorf("--endpoint=%q: no socket path", endpoint)
	}
	return p, nil
}

// pairs is a flag of comma-separated key=value pairs; with what ==
// "quantity" the values are sizes.
type pairs struct {
	what string
	m    map[string]string
	q    map[string]int64
}

func (f *pairs) String() string {
	if f == nil {
		return ""
	}
	var out []string
	for _, k := range slices.Sorted(maps.Keys(f.m)) {
		out = append(out, k+"="+f.m[k])
	}
	return strings.Join(out, ",")
}

func (f *pairs) Set(s string) error {
	f.m, f.q = map[string]string{}, map[string]int64{}
	for item := range strings.SplitSeq(s, ",") {
		if item = strings.TrimSpace(item); item == "" {
			continue
		}
		k, v, ok := strings.Cut(item, "=")
		k, v = strings.TrimSpace(k), strings.TrimSpace(v)
		if !ok || k == "" || v == "" {
			return fmt.Errorf("%q: want node=%s", item, f.what)
		}
		if _, dup := f.m[k]; dup {
			return fmt.Errorf("node %q listed twice", k)
		}
		f.m[k] = v
		if f.what == "quantity" {
			n, err := parseQuantity(v)
			if err != nil {
				return fmt.Errorf("node %q: %w", k, err)
			}
			f.q[k] = n
		}
	}
	return nil
}

// quantity is a size flag: 20Gi, 512Mi, 1000000000.
type quantity struct{ v int64 }

func (q *quantity) String() string {
	if q == nil {
		return "0"
	}
	return resource.NewQuantity(q.v, resource.BinarySI).String()
}

func (q *quantity) Set(s string) error {
	n, err := parseQuantity(s)
	q.v = n
	return err
}

func parseQuantity(s string) (int64, error) {
	r, err := resource.ParseQuantity(s)
	if err != nil {
		return 0, fmt.Errorf("size %q: want a quantity such as 20Gi", s)
	}
	n, ok := r.AsInt64()
	if !ok || n < 0 {
		return 0, fmt.Errorf("size %q: want a whole number of bytes, 0 or more", s)
	}
	return n, nil
}

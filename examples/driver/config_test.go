package main

import (
	"errors"
	"flag"
	"io"
	"reflect"
	"strings"
	"testing"

	"github.com/csi-kit/sidecars/testkit/fakedriver"
)

func TestParseFlags(t *testing.T) {
	zoneKey := "topology.disk.csi.example.com/zone"
	for _, tc := range []struct {
		name  string
		args  []string
		check func(t *testing.T, c config)
	}{
		{"seed defaults", []string{"--endpoint=unix:///csi/csi.sock", "--nodeid=node-a", "--v=5"}, func(t *testing.T, c config) {
			o := c.opts
			if c.mode != "cloud-disk" || o.Name != "disk.csi.example.com" || o.Endpoint != "/csi/csi.sock" || o.NodeID != "node-a" || c.level != 5 {
				t.Errorf("got mode %s name %s endpoint %s node %s v %d", c.mode, o.Name, o.Endpoint, o.NodeID, c.level)
			}
			if o.MinSize != 20*gi || o.SizeStep != gi || o.Capacity != 0 || o.NodeExpansionRequired || o.StateDir != "" {
				t.Errorf("cloud-disk preset: min %d step %d capacity %d ner %v state %q", o.MinSize, o.SizeStep, o.Capacity, o.NodeExpansionRequired, o.StateDir)
			}
			if !reflect.DeepEqual(o.Topology, map[string]string{zoneKey: "zone-a"}) || len(o.Nodes) != 0 {
				t.Errorf("topology %v nodes %v, want zone-a and no other node", o.Topology, o.Nodes)
			}
			if !o.Capabilities.ExpandOnline || !o.Capabilities.Snapshots || !o.Capabilities.Clone || !o.Capabilities.Topology {
				t.Errorf("cloud-disk capabilities %+v", o.Capabilities)
			}
		}},
		{"bare socket path", []string{"--endpoint=/run/x.sock", "--nodeid=n"}, func(t *testing.T, c config) {
			if c.opts.Endpoint != "/run/x.sock" {
				t.Errorf("endpoint %q", c.opts.Endpoint)
			}
		}},
		{"unix: with one slash", []string{"--endpoint=unix:/run/x.sock", "--nodeid=n"}, func(t *testing.T, c config) {
			if c.opts.Endpoint != "/run/x.sock" {
				t.Errorf("endpoint %q", c.opts.Endpoint)
			}
		}},
		{"zones", []string{"--nodeid=node-a", "--zones=node-a=cn-beijing-e, node-b=cn-beijing-f,node-c=cn-beijing-e", "--capacity=500Gi", "--state-dir=/var/lib/d"}, func(t *testing.T, c config) {
			o := c.opts
			want := []fakedriver.Node{
				{ID: "node-b", Topology: map[string]string{zoneKey: "cn-beijing-f"}},
				{ID: "node-c", Topology: map[string]string{zoneKey: "cn-beijing-e"}},
			}
			if !reflect.DeepEqual(o.Nodes, want) || o.Topology[zoneKey] != "cn-beijing-e" {
				t.Errorf("nodes %+v topology %v, want %+v in cn-beijing-e", o.Nodes, o.Topology, want)
			}
			if o.Capacity != 500*gi || o.StateDir != "/var/lib/d" {
				t.Errorf("capacity %d state %q", o.Capacity, o.StateDir)
			}
		}},
		{"local", []string{"--mode=local", "--nodeid=node-a", "--driver=localplugin.csi.alibabacloud.com", "--node-capacity=node-a=1Gi,node-b=10Gi", "--zones=node-a=z1,node-c=z2"}, func(t *testing.T, c config) {
			o := c.opts
			key := "topology.localplugin.csi.alibabacloud.com/node"
			want := []fakedriver.Node{
				{ID: "node-b", Topology: map[string]string{key: "node-b"}, Capacity: 10 * gi},
				{ID: "node-c", Topology: map[string]string{key: "node-c"}},
			}
			if !reflect.DeepEqual(o.Nodes, want) || o.NodeCapacity != gi || o.Capacity != 100*gi || o.Topology[key] != "node-a" {
				t.Errorf("nodes %+v own %d default %d topology %v", o.Nodes, o.NodeCapacity, o.Capacity, o.Topology)
			}
			if o.Capabilities.PublishUnpublish || o.Capabilities.Snapshots || !o.Capabilities.GetCapacity || !o.Capabilities.ExpandOnline || o.MinSize != 0 || o.SizeStep != 4*mi {
				t.Errorf("local preset: caps %+v min %d step %d", o.Capabilities, o.MinSize, o.SizeStep)
			}
		}},
		{"offline", []string{"--mode=offline", "--nodeid=n", "--zones=n=a,m=b"}, func(t *testing.T, c config) {
			o := c.opts
			if o.Capabilities.ExpandOnline || !o.Capabilities.ExpandOffline || !o.NodeExpansionRequired || o.Capabilities.Topology {
				t.Errorf("offline preset: caps %+v ner %v", o.Capabilities, o.NodeExpansionRequired)
			}
			if len(o.Nodes) != 1 || o.Nodes[0].ID != "m" {
				t.Errorf("nodes %+v, want m known", o.Nodes)
			}
		}},
		{"offline without node expansion", []string{"--mode=offline", "--nodeid=n", "--node-expansion-required=false"}, func(t *testing.T, c config) {
			if c.opts.NodeExpansionRequired {
				t.Error("--node-expansion-required=false ignored")
			}
		}},
		{"cloud-disk with node expansion", []string{"--nodeid=n", "--node-expansion-required"}, func(t *testing.T, c config) {
			if !c.opts.NodeExpansionRequired {
				t.Error("--node-expansion-required ignored")
			}
		}},
		{"size overrides", []string{"--nodeid=n", "--min-size=0", "--size-step=512Mi"}, func(t *testing.T, c config) {
			if c.opts.MinSize != 0 || c.opts.SizeStep != 512*mi {
				t.Errorf("min %d step %d", c.opts.MinSize, c.opts.SizeStep)
			}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := parseFlags(tc.args, io.Discard)
			if err != nil {
				t.Fatal(err)
			}
			tc.check(t, c)
			if _, err := fakedriver.New(c.opts); err != nil {
				t.Errorf("options rejected by the driver: %v", err)
			}
		})
	}
}

func TestParseFlagsErrors(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--mode=nfs"}, `--mode="nfs": want one of cloud-disk, local, offline`},
		{[]string{"--bogus"}, "flag provided but not defined: -bogus"},
		{[]string{"--endpoint=tcp://0.0.0.0:1"}, "only unix sockets"},
		{[]string{"--endpoint=unix://"}, "no socket path"},
		{[]string{"--zones=a"}, `"a": want node=zone`},
		{[]string{"--zones=a=x,a=y"}, `node "a" listed twice`},
		{[]string{"--nodeid=n", "--zones=m=x"}, "--zones: no zone for --nodeid=n"},
		{[]string{"--mode=local", "--node-capacity=a=lots"}, `size "lots"`},
		{[]string{"--mode=local", "--node-capacity=a=-1Gi"}, "0 or more"},
		{[]string{"--node-capacity=a=1Gi"}, "only for --mode=local"},
		{[]string{"--capacity=1.5"}, "whole number of bytes"},
		{[]string{"--v=high"}, "invalid value"},
		{[]string{"extra"}, `unexpected argument "extra"`},
	} {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			_, err := parseFlags(append([]string{"--nodeid=n"}, tc.args...), io.Discard)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error = %v, want one containing %q", err, tc.want)
			}
		})
	}
	var usage strings.Builder
	if _, err := parseFlags([]string{"--help"}, &usage); !errors.Is(err, flag.ErrHelp) || !strings.Contains(usage.String(), "-node-capacity") {
		t.Errorf("--help: error %v, usage %q", err, usage.String())
	}
}

// FuzzParseFlags: node lists and sizes never panic, and whatever is
// accepted is a configuration the driver takes.
func FuzzParseFlags(f *testing.F) {
	f.Add("node-a=zone-a,node-b=zone-b", "node-a=1Gi,node-b=10Gi", "100Gi")
	f.Add("a=b,,", "a=0", "0")
	f.Add("=x", "a=1.5", "-1")
	f.Fuzz(func(t *testing.T, zones, nodeCap, capacity string) {
		for _, mode := range modes {
			c, err := parseFlags([]string{"--nodeid=a", "--mode=" + mode, "--zones=" + zones,
				"--node-capacity=" + nodeCap, "--capacity=" + capacity}, io.Discard)
			if err != nil {
				continue
			}
			for _, n := range c.opts.Nodes {
				if n.ID == "" || n.ID == "a" || n.Capacity < 0 {
					t.Fatalf("mode %s: bad node %+v", mode, n)
				}
			}
			if _, err := fakedriver.New(c.opts); err != nil {
				t.Fatalf("mode %s: accepted flags give options the driver rejects: %v", mode, err)
			}
		}
	})
}

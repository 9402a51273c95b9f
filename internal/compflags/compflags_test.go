package compflags

import (
	"context"
	"flag"
	"io"
	"strings"
	"testing"
	"time"

	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/fake"
	"k8s.io/client-go/rest"

	"github.com/csi-kit/sidecars/leaderelection"
	"github.com/csi-kit/sidecars/provisioner"
	"github.com/csi-kit/sidecars/resizer"
)

func TestRegisterFillsOptions(t *testing.T) {
	fs := flag.NewFlagSet("t", flag.ContinueOnError)
	var p Provisioner
	var r Resizer
	timeout := 10 * time.Second
	RegisterProvisioner(fs, &p)
	var le leaderelection.Flags
	RegisterResizer(fs, &r, &timeout, &le)
	if p.Options.Workers != provisioner.DefaultWorkers || p.Options.CloneProtectionWorkers != 1 || !p.ImmediateTopology || p.Capacity.OwnerLevel != 1 || r.Options.Workers != resizer.DefaultWorkers || r.Options.DisableVolumeInUseHandling {
		t.Fatalf("defaults: provisioner %+v, resizer %+v", p, r)
	}
	err := fs.Parse([]string{"--worker-threads=7", "--cloning-protection-threads=3", "--volume-name-uuid-length=8", "--capacity-ownerref-level=-1",
		"--workers=3", "--handle-volume-inuse-error=false", "--csiTimeout=30s", "--leader-election-identity=x"})
	if err != nil {
		t.Fatal(err)
	}
	if p.Options.Workers != 7 || p.Options.VolumeNameUUIDLength != 8 || p.Capacity.OwnerLevel != -1 || p.Finish("").CloneProtectionWorkers != 3 {
		t.Errorf("provisioner: %+v", p)
	}
	if r.Options.Workers != 3 || !r.Options.DisableVolumeInUseHandling || timeout != 30*time.Second || le.Options.Identity != "x" {
		t.Errorf("resizer: %+v, timeout %v", r, timeout)
	}
	SetUsage(fs, "workers", "other")
	if fs.Lookup("workers").Usage != "other" {
		t.Error("SetUsage did not change the usage")
	}
}

func TestCapacityOptionsOwner(t *testing.T) {
	isCtrl := true
	pod := &v1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "p", Namespace: "ns", UID: "pod-uid",
		OwnerReferences: []metav1.OwnerReference{{APIVersion: "apps/v1", Kind: "ReplicaSet", Name: "rs", UID: "rs-uid", Controller: &isCtrl}}}}
	t.Setenv("NAMESPACE", "ns")
	t.Setenv("POD_NAME", "p")
	ctx := context.Background()
	kube := fake.NewClientset(pod)
	for _, tc := range []struct {
		level int
		want  string // owner name, "" for none
	}{{-1, ""}, {0, "p"}, {1, "rs"}} {
		o, err := CapacityOptions(ctx, kube, &rest.Config{Host: "127.0.0.1:1"}, Capacity{OwnerLevel: tc.level, PollInterval: time.Minute}, "test")
		if err != nil {
			t.Fatalf("level %d: %v", tc.level, err)
		}
		if o.Namespace != "ns" || o.PollInterval != time.Minute {
			t.Errorf("level %d: %+v", tc.level, o)
		}
		switch {
		case tc.want == "" && o.Owner != nil:
			t.Errorf("level %d: owner %+v, want none", tc.level, o.Owner)
		case tc.want != "" && (o.Owner == nil || o.Owner.Name != tc.want || o.Owner.Controller == nil || !*o.Owner.Controller):
			t.Errorf("level %d: owner %+v, want controller %s", tc.level, o.Owner, tc.want)
		}
	}
	pod.OwnerReferences = nil
	if _, err := CapacityOptions(ctx, fake.NewClientset(pod), &rest.Config{}, Capacity{OwnerLevel: 1}, "test"); err == nil || !strings.Contains(err.Error(), "no controller") {
		t.Errorf("pod without controller: err = %v", err)
	}
	t.Setenv("NAMESPACE", "")
	if _, err := CapacityOptions(ctx, kube, &rest.Config{}, Capacity{}, "test"); err == nil {
		t.Error("no NAMESPACE: no error")
	}
}

// TestRemovedFlags: RegisterRemovedProvisioner refuses the provisioner
// flags upstream removed, each with its replacement.
func TestRemovedFlags(t *testing.T) {
	for _, tc := range []struct{ arg, want string }{
		{"--provisioner=example.csi.io", "GetPluginInfo"},
		{"--provisioner", "GetPluginInfo"},
		{"--capacity-controller-deployment-mode=central", "use --enable-capacity"},
	} {
		fs := flag.NewFlagSet("t", flag.ContinueOnError)
		fs.SetOutput(io.Discard)
		RegisterRemovedProvisioner(fs)
		if err := fs.Parse([]string{tc.arg}); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: Parse = %v, want an error containing %q", tc.arg, err, tc.want)
		}
	}
}

// TestCapacityFlags: --capacity-threads and --kube-api-capacity-qps/-burst
// default as upstream (1, 1, 5) and reach CapacityOptions: Workers, and a
// Client of their own with that budget and user agent.
func TestCapacityFlags(t *testing.T) {
	fs := flag.NewFlagSet("t", flag.ContinueOnError)
	var p Provisioner
	RegisterProvisioner(fs, &p)
	if c := p.Capacity; c.Workers != 1 || c.QPS != 1 || c.Burst != 5 {
		t.Errorf("defaults: threads %d, qps %v, burst %d; want 1, 1, 5", c.Workers, c.QPS, c.Burst)
	}
	if err := fs.Parse([]string{"--capacity-threads=4", "--kube-api-capacity-qps=2.5", "--kube-api-capacity-burst=9", "--capacity-ownerref-level=-1"}); err != nil {
		t.Fatal(err)
	}
	main := &rest.Config{Host: "127.0.0.1:1", QPS: 5, Burst: 10, UserAgent: "main"}
	cfg := CapacityClientConfig(main, p.Capacity, "prog")
	if cfg.QPS != 2.5 || cfg.Burst != 9 || !strings.HasSuffix(cfg.UserAgent, "/prog-capacity") || cfg.Host != main.Host {
		t.Errorf("capacity client config: qps %v, burst %d, user agent %q, host %q; want 2.5, 9, .../prog-capacity, %s", cfg.QPS, cfg.Burst, cfg.UserAgent, cfg.Host, main.Host)
	}
	if main.QPS != 5 || main.Burst != 10 || main.UserAgent != "main" {
		t.Errorf("the main config changed: %+v", main)
	}
	t.Setenv("NAMESPACE", "ns")
	o, err := CapacityOptions(context.Background(), fake.NewClientset(), main, p.Capacity, "prog")
	if err != nil {
		t.Fatal(err)
	}
	if o.Workers != 4 || o.Client == nil {
		t.Fatalf("CapacityOptions: Workers %d, Client %v; want 4 and a client", o.Workers, o.Client)
	}
	if qps := o.Client.StorageV1().RESTClient().GetRateLimiter().QPS(); qps != 2.5 {
		t.Errorf("capacity client QPS %v, want 2.5", qps)
	}
}

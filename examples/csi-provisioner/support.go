package main

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"

	"github.com/prometheus/client_golang/prometheus"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"
	"k8s.io/component-base/metrics/legacyregistry"

	"github.com/csi-kit/sidecars/internal/cmdutil"
	"github.com/csi-kit/sidecars/provisioner"
)

// gateFlag parses --feature-gates; values parse as Go booleans.
type gateFlag map[string]bool

var knownGates = map[string]bool{"Topology": true, "VolumeAttributesClass": true,
	"CrossNamespaceVolumeDataSource": false, "ReleaseLeaderElectionOnExit": false}

func (g gateFlag) String() string { return "" }

func (g gateFlag) Set(s string) error {
	for _, kv := range strings.Split(s, ",") {
		kv = strings.TrimSpace(kv)
		if kv == "" {
			continue
		}
		k, v, ok := strings.Cut(kv, "=")
		if !ok {
			return fmt.Errorf("feature gate %q: want Name=true|false", kv)
		}
		if k == "HonorPVReclaimPolicy" {
			return fmt.Errorf("feature gate %s was removed: the deletion finalizer is always used", k)
		}
		if _, known := knownGates[k]; !known {
			return fmt.Errorf("unknown feature gate %q", k)
		}
		b, err := strconv.ParseBool(v)
		if err != nil {
			return fmt.Errorf("feature gate %s=%q: %w", k, v, err)
		}
		g[k] = b
	}
	return nil
}

func (g gateFlag) on(name string) bool {
	if v, ok := g[name]; ok {
		return v
	}
	return knownGates[name]
}

// capacityOptions reads NAMESPACE and POD_NAME and finds the owner at
// --capacity-ownerref-level by following controller references.
func (f *flags) capacityOptions(ctx context.Context, env *cmdutil.Env) (*provisioner.CapacityOptions, error) {
	ns, pod := os.Getenv("NAMESPACE"), os.Getenv("POD_NAME")
	if ns == "" {
		return nil, fmt.Errorf("--enable-capacity needs env NAMESPACE")
	}
	o := &provisioner.CapacityOptions{Namespace: ns, PollInterval: f.capacityPoll, ForImmediateBinding: f.capacityImmediate}
	if f.ownerLevel < 0 {
		return o, nil
	}
	if pod == "" {
		return nil, fmt.Errorf("--enable-capacity with --capacity-ownerref-level=%d needs env POD_NAME", f.ownerLevel)
	}
	p, err := env.Kube.CoreV1().Pods(ns).Get(ctx, pod, metav1.GetOptions{})
	if err != nil {
		return nil, fmt.Errorf("finding the capacity owner: %w", err)
	}
	ref := metav1.OwnerReference{APIVersion: "v1", Kind: "Pod", Name: p.Name, UID: p.UID}
	owners := p.OwnerReferences
	dyn, err := dynamic.NewForConfig(env.Config)
	if err != nil {
		return nil, err
	}
	for level := 0; level < f.ownerLevel; level++ {
		var ctrl *metav1.OwnerReference
		for i := range owners {
			if owners[i].Controller != nil && *owners[i].Controller {
				ctrl = &owners[i]
			}
		}
		if ctrl == nil {
			return nil, fmt.Errorf("capacity owner: %s %s has no controller at level %d", ref.Kind, ref.Name, level+1)
		}
		ref = metav1.OwnerReference{APIVersion: ctrl.APIVersion, Kind: ctrl.Kind, Name: ctrl.Name, UID: ctrl.UID}
		if level+1 < f.ownerLevel {
			gv, err := schema.ParseGroupVersion(ctrl.APIVersion)
			if err != nil {
				return nil, err
			}
			res := gv.WithResource(strings.ToLower(ctrl.Kind) + "s")
			obj, err := dyn.Resource(res).Namespace(ns).Get(ctx, ctrl.Name, metav1.GetOptions{})
			if err != nil {
				return nil, fmt.Errorf("capacity owner: %w", err)
			}
			owners = obj.GetOwnerReferences()
		}
	}
	ref.Controller = new(bool)
	*ref.Controller = true
	o.Owner = &ref
	return o, nil
}

// legacyRegisterer puts the provisioner's metrics in the registry the
// HTTP endpoint serves.
type legacyRegisterer struct{}

func (legacyRegisterer) Register(c prometheus.Collector) error {
	legacyregistry.RawMustRegister(c)
	return nil
}
func (legacyRegisterer) MustRegister(cs ...prometheus.Collector) {
	legacyregistry.RawMustRegister(cs...)
}
func (legacyRegisterer) Unregister(prometheus.Collector) bool { return false }

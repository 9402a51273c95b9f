package compflags

import (
	"context"
	"fmt"
	"os"
	"strings"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/csi-kit/sidecars/internal/kube"
	"github.com/csi-kit/sidecars/provisioner"
)

// CapacityClientConfig is the config of the client of the
// CSIStorageCapacity objects: a copy of cfg with the budget of
// --kube-api-capacity-qps and -burst, protobuf, and the user agent
// "<program>-capacity".
func CapacityClientConfig(cfg *rest.Config, c Capacity, program string) *rest.Config {
	return rest.AddUserAgent(kube.Protobuf(kube.WithBudget(cfg, float32(c.QPS), c.Burst)), program+"-capacity")
}

// CapacityOptions turns the capacity flags of program into the
// provisioner's CapacityOptions, with a client of their own on
// CapacityClientConfig. It reads env NAMESPACE and POD_NAME and finds the
// owner of the CSIStorageCapacity objects at c.OwnerLevel by following
// controller references up from this pod; client reads the pod and a
// dynamic client on cfg reads the controllers above it.
func CapacityOptions(ctx context.Context, client kubernetes.Interface, cfg *rest.Config, c Capacity, program string) (*provisioner.CapacityOptions, error) {
	ns, pod := os.Getenv("NAMESPACE"), os.Getenv("POD_NAME")
	if ns == "" {
		return nil, fmt.Errorf("--enable-capacity needs env NAMESPACE")
	}
	capClient, err := kubernetes.NewForConfig(CapacityClientConfig(cfg, c, program))
	if err != nil {
		return nil, fmt.Errorf("building the capacity client: %w", err)
	}
	o := &provisioner.CapacityOptions{Namespace: ns, PollInterval: c.PollInterval, ForImmediateBinding: c.ForImmediate,
		Workers: c.Workers, Client: capClient}
	if c.OwnerLevel < 0 {
		return o, nil
	}
	if pod == "" {
		return nil, fmt.Errorf("--enable-capacity with --capacity-ownerref-level=%d needs env POD_NAME", c.OwnerLevel)
	}
	p, err := client.CoreV1().Pods(ns).Get(ctx, pod, metav1.GetOptions{})
	if err != nil {
		return nil, fmt.Errorf("capacity owner: reading pod %s: %w", pod, err)
	}
	owner := metav1.OwnerReference{APIVersion: "v1", Kind: "Pod", Name: p.Name, UID: p.UID}
	refs := p.OwnerReferences
	dyn, err := dynamic.NewForConfig(cfg)
	if err != nil {
		return nil, err
	}
	for level := 1; level <= c.OwnerLevel; level++ {
		ctrl := metav1.GetControllerOfNoCopy(&metav1.ObjectMeta{OwnerReferences: refs})
		if ctrl == nil {
			return nil, fmt.Errorf("capacity owner: %s %s has no controller (level %d)", owner.Kind, owner.Name, level)
		}
		owner = metav1.OwnerReference{APIVersion: ctrl.APIVersion, Kind: ctrl.Kind, Name: ctrl.Name, UID: ctrl.UID}
		if level == c.OwnerLevel {
			break
		}
		gv, err := schema.ParseGroupVersion(ctrl.APIVersion)
		if err != nil {
			return nil, err
		}
		obj, err := dyn.Resource(gv.WithResource(strings.ToLower(ctrl.Kind)+"s")).Namespace(ns).Get(ctx, ctrl.Name, metav1.GetOptions{})
		if err != nil {
			return nil, fmt.Errorf("capacity owner: %w", err)
		}
		refs = obj.GetOwnerReferences()
	}
	isController := true
	owner.Controller = &isController
	o.Owner = &owner
	return o, nil
}

// Package kube holds the Kubernetes plumbing every controller shares:
// client construction with explicit budgets, an event recorder with its own
// budget, and the informer transform that keeps cached objects small.
package kube

import (
	"context"
	"fmt"

	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/kubernetes/scheme"
	typedcorev1 "k8s.io/client-go/kubernetes/typed/core/v1"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/clientcmd"
	"k8s.io/client-go/tools/record"
	"k8s.io/klog/v2"
	"k8s.io/utils/clock"
)

// Default client budget of our binaries. The upstream sidecars default to
// QPS 5 / burst 10, which caps them at a few operations per second; a
// current apiserver protects itself with API Priority and Fairness, so ours
// default higher. --kube-api-qps/--kube-api-burst still override.
const (
	DefaultQPS   = 200
	DefaultBurst = 400
)

// RestConfig loads a kubeconfig file (or the in-cluster config when path is
// empty) and applies the client budget; qps < 0 removes client-side limits.
func RestConfig(kubeconfig, master string, qps float32, burst int) (*rest.Config, error) {
	var cfg *rest.Config
	var err error
	if kubeconfig != "" || master != "" {
		cfg, err = clientcmd.BuildConfigFromFlags(master, kubeconfig)
	} else {
		cfg, err = rest.InClusterConfig()
	}
	if err != nil {
		return nil, fmt.Errorf("building Kubernetes client config: %w (pass --kubeconfig, or run in a pod with a service account)", err)
	}
	return WithBudget(cfg, qps, burst), nil
}

// WithBudget returns a copy of cfg with the given QPS and burst; qps < 0
// removes the client-side limiter altogether.
func WithBudget(cfg *rest.Config, qps float32, burst int) *rest.Config {
	c := rest.CopyConfig(cfg)
	c.RateLimiter = nil
	if qps < 0 {
		c.QPS, c.Burst = -1, 0
		return c
	}
	c.QPS, c.Burst = qps, burst
	return c
}

// Protobuf returns a copy of cfg that talks protobuf, which the apiserver
// encodes and decodes several times faster than JSON, for built-in types.
// Only for clientsets of built-in types: custom resources (the snapshot
// API) are served as JSON only.
func Protobuf(cfg *rest.Config) *rest.Config {
	c := rest.CopyConfig(cfg)
	c.ContentType = "application/vnd.kubernetes.protobuf"
	c.AcceptContentTypes = "application/vnd.kubernetes.protobuf,application/json"
	return c
}

// Budget of the clientset that writes events (see NewEventClient): its
// own, apart from the controller's, so that event writes never wait behind
// the controller's requests nor delay them. Events are written by the
// broadcaster's goroutine, never by the operation that emits them.
const (
	EventQPS   = 50
	EventBurst = 100
)

// NewEventClient returns a clientset for event writes only: a copy of cfg
// with the budget EventQPS / EventBurst, protobuf, and the user agent
// "<userAgent>-events".
func NewEventClient(cfg *rest.Config, userAgent string) (kubernetes.Interface, error) {
	c := rest.AddUserAgent(Protobuf(WithBudget(cfg, EventQPS, EventBurst)), userAgent+"-events")
	cs, err := kubernetes.NewForConfig(c)
	if err != nil {
		return nil, fmt.Errorf("building the events client: %w", err)
	}
	return cs, nil
}

// NewRecorder returns an event recorder for component that writes through
// its own clientset (NewEventClient), so events never consume the
// controller's budget and the controller never starves events. The
// returned stop function shuts it down.
func NewRecorder(cfg *rest.Config, component string) (record.EventRecorder, func(), error) {
	cs, err := NewEventClient(cfg, component)
	if err != nil {
		return nil, nil, err
	}
	return RecorderFor(cs, component)
}

// RecorderFor returns an event recorder writing through client. A Warning
// repeated for the same object with the same message is sent at most once
// per WarningWindow; so is a repeated Normal event (Provisioning, Resizing).
func RecorderFor(client kubernetes.Interface, component string) (record.EventRecorder, func(), error) {
	b := record.NewBroadcasterWithCorrelatorOptions(record.CorrelatorOptions{
		// Events of one object are aggregated as usual, but the client-side
		// spam filter is wider than the default so that failure events of
		// many objects are not dropped silently.
		QPS:       50,
		BurstSize: 200,
	})
	b.StartRecordingToSink(&typedcorev1.EventSinkImpl{Interface: client.CoreV1().Events("")})
	rec := b.NewRecorder(scheme.Scheme, v1.EventSource{Component: component})
	return Deduplicated(rec, clock.RealClock{}), b.Shutdown, nil
}

// StripForCache drops the fields no controller here reads from objects
// before they enter an informer cache: managedFields, the
// last-applied-configuration annotation, and a Node's spec and status. It
// is a cache.TransformFunc.
func StripForCache(obj any) (any, error) {
	if n, ok := obj.(*v1.Node); ok {
		// Labels are all any controller here reads of a Node; its status
		// (images, conditions) is most of its size.
		n.Spec, n.Status = v1.NodeSpec{}, v1.NodeStatus{}
	}
	if acc, err := meta.Accessor(obj); err == nil {
		acc.SetManagedFields(nil)
		if ann := acc.GetAnnotations(); ann != nil {
			if _, ok := ann[v1.LastAppliedConfigAnnotation]; ok {
				delete(ann, v1.LastAppliedConfigAnnotation)
				acc.SetAnnotations(ann)
			}
		}
	}
	return obj, nil
}

// LogCacheSync logs while waiting for caches, so a stuck start is visible.
func LogCacheSync(ctx context.Context, what string) {
	klog.FromContext(ctx).V(2).Info("Waiting for informer caches to sync", "informers", what)
}

// Unwrap returns the object inside an informer's delete tombstone
// (cache.DeletedFinalStateUnknown), or obj itself.
func Unwrap(obj any) any {
	if t, ok := obj.(cache.DeletedFinalStateUnknown); ok {
		return t.Obj
	}
	return obj
}

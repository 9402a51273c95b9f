package provisioner

import (
	"errors"
	"fmt"
	"time"

	snapclient "github.com/kubernetes-csi/external-snapshotter/client/v8/clientset/versioned"
	"github.com/prometheus/client_golang/prometheus"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/record"
	"k8s.io/utils/clock"

	"github.com/csi-kit/sidecars/internal/kube"
	"github.com/csi-kit/sidecars/sharedcache"
)

// Defaults of Options. They equal the upstream flags' defaults.
const (
	DefaultVolumeNamePrefix     = "pvc"
	DefaultTimeout              = 10 * time.Second
	DefaultWorkers              = 100
	DefaultRetryIntervalStart   = time.Second
	DefaultRetryIntervalMax     = 5 * time.Minute
	DefaultCapacityPollInterval = time.Minute
	DefaultResyncPeriod         = 15 * time.Minute
)

// defaultIntentDelay is the default Options.IntentDelay.
const defaultIntentDelay = time.Second

// Options configures a Provisioner. A zero field means "use the default".
type Options struct {
	// VolumeNamePrefix is the start of every volume and PV name; default "pvc".
	VolumeNamePrefix string
	// VolumeNameUUIDLength cuts the PVC UID (dashes removed) to this many
	// characters; 0 or negative keeps the whole UID with dashes.
	VolumeNameUUIDLength int
	// Timeout bounds every CSI call; default 10s.
	Timeout time.Duration
	// Workers is the number of claims and of volumes handled in parallel;
	// default 100.
	Workers int
	// CloneProtectionWorkers is the number of deleted clone-source claims
	// handled in parallel: each loses the clone-protection finalizer once
	// no Pending claim clones from it (upstream
	// --cloning-protection-threads); default 1.
	CloneProtectionWorkers int
	// RetryIntervalStart and RetryIntervalMax bound the per-item exponential
	// backoff; defaults 1s and 5m.
	RetryIntervalStart, RetryIntervalMax time.Duration
	// ResyncPeriod re-examines every cached claim and volume this often;
	// 0 means DefaultResyncPeriod (15m), negative never.
	ResyncPeriod time.Duration

	// DefaultFSType is the fsType when the class names none.
	DefaultFSType string
	// ExtraCreateMetadata adds the PVC name and namespace and the PV name to
	// CreateVolume parameters.
	ExtraCreateMetadata bool
	// ControllerPublishReadOnly marks PVs whose only access mode is
	// ReadOnlyMany read-only.
	ControllerPublishReadOnly bool
	// AllowVolumeModeConversion turns off the guard against restoring a
	// snapshot into a PVC of another volume mode (upstream
	// --prevent-volume-mode-conversion=false).
	AllowVolumeModeConversion bool

	// CrossNamespaceDataSources lets a claim's dataSourceRef name a
	// PersistentVolumeClaim or VolumeSnapshot of another namespace, used
	// only when a ReferenceGrant (gateway.networking.k8s.io/v1beta1) in
	// that namespace allows claims of the claim's namespace to use it
	// (upstream feature gate CrossNamespaceVolumeDataSource, alpha, off by
	// default). It needs the kube-apiserver feature gate
	// CrossNamespaceVolumeDataSource (without it the API server drops such
	// references), the ReferenceGrant CRD, and DynamicClient; the
	// provisioner then lists referencegrants. Off, such claims are refused
	// with a Warning event.
	CrossNamespaceDataSources bool
	// DynamicClient reads ReferenceGrants; required with
	// CrossNamespaceDataSources, unused otherwise.
	DynamicClient dynamic.Interface

	// DisableTopology ignores the driver's accessibility constraints (feature
	// gate Topology=false).
	DisableTopology bool
	// StrictTopology sends only the selected node's segment.
	StrictTopology bool
	// DisableImmediateTopology sends no topology for Immediate claims
	// without allowedTopologies (upstream --immediate-topology=false).
	DisableImmediateTopology bool
	// DisableVolumeAttributesClass ignores spec.volumeAttributesClassName
	// (feature gate VolumeAttributesClass=false). Run also turns the
	// support off when the API server does not serve storage.k8s.io/v1
	// VolumeAttributesClasses.
	DisableVolumeAttributesClass bool

	// IntentDelay is how long a CreateVolume may run before its
	// provisioning record (a Secret in RecordNamespace, see the package
	// doc) is written, while the call goes on; a call that fails without a
	// final answer gets the record before it is retried. Default 1s: a
	// driver that answers at once costs no write, a slow or hanging one is
	// recorded long before its call times out. Negative writes the record
	// before every first call (two more writes per volume, no window at
	// all). Must be below Timeout.
	IntentDelay time.Duration
	// DisableIntent writes no provisioning records. It gives up the no-leak
	// guarantee: a restart, a leader change or a PVC deleted during a
	// create that timed out may leave a volume behind.
	DisableIntent bool
	// RecordNamespace holds the provisioning records: the provisioner's
	// own namespace, where tenants cannot write. Default: env
	// POD_NAMESPACE, else the service account's namespace, else "default".
	RecordNamespace string
	// SnapshotSweepInterval is how often the source-protection finalizer is
	// removed from VolumeSnapshots no restore needs any more (upstream
	// --snapshot-orphan-sweep-interval); default 5m, negative disables.
	SnapshotSweepInterval time.Duration
	// InfeasibleRetryDelay is how long a claim whose CreateVolume the
	// driver refused with InvalidArgument waits before its next attempt,
	// unless its StorageClass is replaced meanwhile; default 5m (fixed
	// upstream).
	InfeasibleRetryDelay time.Duration
	// DisableNormalEvents stops the Normal "Provisioning" (per attempt)
	// and "ProvisioningSucceeded" events, which are emitted by default as
	// upstream always does. Set, only Warning events are written: a
	// successful provision then costs no event write, but kubectl describe
	// shows nothing of a success.
	DisableNormalEvents bool

	// Capacity enables CSIStorageCapacity publishing (upstream
	// --enable-capacity).
	Capacity *CapacityOptions

	// NodeDeployment, when set, runs this provisioner for one node's claims
	// (upstream --node-deployment); see NodeDeployment.
	NodeDeployment *NodeDeployment

	// SnapshotClient reaches the VolumeSnapshot API; nil, or an API server
	// that does not serve it, makes restores from VolumeSnapshots fail
	// with an event (nothing else waits for the API).
	SnapshotClient snapclient.Interface
	// Cache, when set, holds the informers this provisioner shares with
	// other controllers of the process (see package sharedcache); nil: Run
	// keeps its own. With a SnapshotClient, a Cache must have been created
	// with a snapshot client too. CSIStorageCapacity objects are always
	// watched apart.
	Cache *sharedcache.Cache
	// Recorder receives the provisioner's events; nil: Run builds one over
	// the Kubernetes client for its own time.
	Recorder record.EventRecorder

	// Registerer receives the provisioner's metrics; nil registers nothing.
	Registerer prometheus.Registerer
	// Clock is the provisioner's time source; nil means the real clock.
	Clock clock.WithTicker
}

// CapacityOptions configures CSIStorageCapacity publishing.
type CapacityOptions struct {
	// Namespace holds the objects (upstream env NAMESPACE). Required.
	Namespace string
	// Owner, when set, becomes the controller owner of every object, so they
	// go away with the deployment.
	Owner *metav1.OwnerReference
	// PollInterval re-reads every capacity; default 1m.
	PollInterval time.Duration
	// ForImmediateBinding also publishes for Immediate classes.
	ForImmediateBinding bool
	// Client, when set, reads and writes the CSIStorageCapacity objects,
	// so that they spend a request budget of their own instead of the
	// claims' (upstream: a client with --kube-api-capacity-qps and
	// --kube-api-capacity-burst); nil uses the provisioner's client.
	Client kubernetes.Interface
	// Workers is how many (segment, class) pairs of one refresh pass are
	// handled at once, each a GetCapacity call and at most one write
	// (upstream --capacity-threads); default 1. Passes never overlap.
	Workers int
}

func (o Options) withDefaults() Options {
	if o.VolumeNamePrefix == "" {
		o.VolumeNamePrefix = DefaultVolumeNamePrefix
	}
	if o.Timeout == 0 {
		o.Timeout = DefaultTimeout
	}
	if o.Workers == 0 {
		o.Workers = DefaultWorkers
	}
	if o.CloneProtectionWorkers == 0 {
		o.CloneProtectionWorkers = DefaultCloneProtectionWorkers
	}
	if o.RetryIntervalStart == 0 {
		o.RetryIntervalStart = DefaultRetryIntervalStart
	}
	if o.RetryIntervalMax == 0 {
		o.RetryIntervalMax = DefaultRetryIntervalMax
	}
	if o.ResyncPeriod == 0 {
		o.ResyncPeriod = DefaultResyncPeriod
	}
	if o.IntentDelay == 0 {
		o.IntentDelay = min(defaultIntentDelay, o.Timeout/2)
	}
	if o.Clock == nil {
		o.Clock = clock.RealClock{}
	}
	if o.RecordNamespace == "" {
		o.RecordNamespace = kube.OwnNamespace()
	}
	if o.InfeasibleRetryDelay == 0 {
		o.InfeasibleRetryDelay = defaultInfeasibleRetryDelay
	}
	if o.SnapshotSweepInterval == 0 {
		o.SnapshotSweepInterval = DefaultSnapshotSweepInterval
	}
	if o.NodeDeployment != nil {
		nd := *o.NodeDeployment
		if nd.BaseDelay == 0 {
			nd.BaseDelay = DefaultNodeBaseDelay
		}
		if nd.MaxDelay == 0 {
			nd.MaxDelay = DefaultNodeMaxDelay
		}
		o.NodeDeployment = &nd
	}
	if o.Capacity != nil {
		c := *o.Capacity
		if c.PollInterval == 0 {
			c.PollInterval = DefaultCapacityPollInterval
		}
		if c.Workers == 0 {
			c.Workers = 1
		}
		o.Capacity = &c
	}
	return o
}

// Validate reports every bad field at once.
func (o Options) Validate() error {
	var errs []error
	if o.InfeasibleRetryDelay < 0 {
		errs = append(errs, fmt.Errorf("InfeasibleRetryDelay %v: must not be negative", o.InfeasibleRetryDelay))
	}
	if o.VolumeNameUUIDLength > 32 {
		errs = append(errs, fmt.Errorf("VolumeNameUUIDLength %d: must be at most 32", o.VolumeNameUUIDLength))
	}
	if o.Timeout < 0 {
		errs = append(errs, fmt.Errorf("Timeout %v: must be positive", o.Timeout))
	}
	if o.Workers < 0 {
		errs = append(errs, fmt.Errorf("Workers %d: must be positive", o.Workers))
	}
	if o.CloneProtectionWorkers < 0 {
		errs = append(errs, fmt.Errorf("CloneProtectionWorkers %d: must be positive", o.CloneProtectionWorkers))
	}
	if o.IntentDelay > 0 && o.Timeout > 0 && o.IntentDelay >= o.Timeout {
		errs = append(errs, fmt.Errorf("IntentDelay %v: must be below Timeout %v, or a create that times out would have no intent record", o.IntentDelay, o.Timeout))
	}
	if o.RetryIntervalStart < 0 || o.RetryIntervalMax < o.RetryIntervalStart {
		errs = append(errs, fmt.Errorf("RetryIntervalStart %v / RetryIntervalMax %v: need 0 < start <= max", o.RetryIntervalStart, o.RetryIntervalMax))
	}
	if o.Cache != nil && o.SnapshotClient != nil && o.Cache.Snapshot == nil {
		errs = append(errs, errors.New("Cache: has no snapshot informers while SnapshotClient is set; create the Cache with the snapshot client"))
	}
	if o.CrossNamespaceDataSources && o.DynamicClient == nil {
		errs = append(errs, errors.New("DynamicClient: required with CrossNamespaceDataSources, to read ReferenceGrants"))
	}
	if nd := o.NodeDeployment; nd != nil {
		if nd.NodeName == "" {
			errs = append(errs, errors.New("NodeDeployment.NodeName: required (upstream: env NODE_NAME)"))
		}
		if nd.BaseDelay < 0 || nd.MaxDelay < nd.BaseDelay {
			errs = append(errs, fmt.Errorf("NodeDeployment.BaseDelay %v / MaxDelay %v: need 0 <= base <= max", nd.BaseDelay, nd.MaxDelay))
		}
	}
	if c := o.Capacity; c != nil {
		if c.Namespace == "" {
			errs = append(errs, errors.New("Capacity.Namespace: required"))
		}
		if c.PollInterval < 0 {
			errs = append(errs, fmt.Errorf("Capacity.PollInterval %v: must be positive", c.PollInterval))
		}
		if c.Workers < 0 {
			errs = append(errs, fmt.Errorf("Capacity.Workers %d: must be positive", c.Workers))
		}
	}
	return errors.Join(errs...)
}

package resizer

import (
	"cmp"
	"errors"
	"fmt"
	"time"

	"k8s.io/client-go/tools/record"
	"k8s.io/utils/clock"

	"github.com/csi-kit/sidecars/sharedcache"
)

// Defaults for Options.
const (
	DefaultWorkers            = 10
	DefaultTimeout            = 10 * time.Second
	DefaultRetryIntervalStart = time.Second
	DefaultRetryIntervalMax   = 5 * time.Minute
	DefaultResyncPeriod       = 10 * time.Minute
)

// Options configures a Resizer. A zero field means "use the default".
type Options struct {
	// Workers is how many PVCs are handled in parallel; default 10. Resize
	// and modify of one PVC share a worker, so they never race.
	Workers int
	// Timeout bounds each ControllerExpandVolume and ControllerModifyVolume
	// call; default 10s. A call that times out is retried with backoff.
	Timeout time.Duration
	// RetryIntervalStart and RetryIntervalMax bound the per-PVC exponential
	// backoff; defaults 1s and 5m. RetryIntervalMax is also how long an
	// infeasible size waits before it is tried again unchanged.
	RetryIntervalStart, RetryIntervalMax time.Duration
	// ResyncPeriod of the informers; 0 means the default, 10m; negative
	// means never.
	ResyncPeriod time.Duration
	// Cache, when set, holds the PVC, PV and VolumeAttributesClass
	// informers this resizer shares with other controllers of the process
	// (see package sharedcache). Nil: Run uses a private one and shuts it
	// down when it returns. Pods are never cached: they are listed and
	// watched, reduced to what the in-use check needs.
	Cache *sharedcache.Cache

	// DisableVolumeInUseHandling stops tracking which pods use which PVCs
	// (upstream's --handle-volume-inuse-error=false). By default, for
	// drivers that cannot expand a volume in use, offline-only drivers are
	// never called for a PVC in use, and drivers that declare neither
	// ONLINE nor OFFLINE are held back after answering FailedPrecondition
	// while a pod uses the PVC; a held PVC is retried as soon as its last
	// pod goes. Drivers that declare ONLINE need no tracking and get no pod
	// watch either way.
	DisableVolumeInUseHandling bool
	// DisableModify turns the VolumeAttributesClass controller off even if
	// the driver has MODIFY_VOLUME. Run also turns it off when the
	// apiserver does not serve storage.k8s.io/v1 VolumeAttributesClass.
	DisableModify bool
	// ExtraModifyMetadata adds csi.storage.k8s.io/pvc/name, pvc/namespace
	// and pv/name to the parameters of ControllerModifyVolume.
	ExtraModifyMetadata bool
	// DisableMarkInProgress skips the write that marks the PVC before each
	// ControllerExpandVolume. By default, as upstream does, the PVC first
	// records allocatedResources = the size asked for and
	// allocatedResourceStatuses[storage] = ControllerResizeInProgress (with
	// the Resizing condition and event), then the driver is called, then the
	// PV and the PVC are updated. That mark is what keeps a resizer taking
	// over after a leader change, or a user lowering the request, from
	// recording less than the driver may already have allocated. With
	// DisableMarkInProgress the PVC is written once, after the driver
	// answered: one PVC write and one event fewer per resize, but a call
	// abandoned by a lost leader is invisible to its successor, which may
	// then follow a lowered request and record allocatedResources below the
	// volume's real size. Failures are recorded either way.
	DisableMarkInProgress bool
	// MarkInProgressBeforeCall is deprecated: marking before the call is
	// now the default, and this field has no effect. Use
	// DisableMarkInProgress to opt out.
	MarkInProgressBeforeCall bool
	// DisablePreResizeAnnotation stops the resizer from writing the PV
	// annotation volume.alpha.kubernetes.io/pre-resize-capacity (upstream's
	// AnnotateFsResize gate off).
	DisablePreResizeAnnotation bool

	// DisableNormalEvents stops the Normal events of progress and success,
	// which are emitted by default as upstream always does: Resizing and
	// VolumeResizeSuccessful, VolumeModify and VolumeModifySuccessful.
	// Set, a resize or modify that succeeds costs no event write, but
	// kubectl describe shows nothing of it. FileSystemResizeRequired (the
	// node still has work to do), VolumeModifyCanceled and every Warning
	// are emitted either way.
	DisableNormalEvents bool

	// Recorder receives events. Nil: Run builds one over the clientset
	// given to New, with source "external-resizer <driver>", for the time
	// of Run; its writes then share that clientset's QPS and burst. Give
	// it a clientset of its own (the binaries build one from a copy of the
	// rest config with its own budget), so events never wait behind
	// resizes.
	Recorder record.EventRecorder
	// Clock is used for condition times, backoff and the pod relist
	// backoff; nil means the real clock.
	Clock clock.WithTicker
}

func (o Options) withDefaults() Options {
	o.Workers = cmp.Or(o.Workers, DefaultWorkers)
	o.Timeout = cmp.Or(o.Timeout, DefaultTimeout)
	o.RetryIntervalStart = cmp.Or(o.RetryIntervalStart, DefaultRetryIntervalStart)
	o.RetryIntervalMax = cmp.Or(o.RetryIntervalMax, DefaultRetryIntervalMax)
	o.ResyncPeriod = cmp.Or(o.ResyncPeriod, DefaultResyncPeriod)
	if o.ResyncPeriod < 0 {
		o.ResyncPeriod = 0
	}
	if o.Clock == nil {
		o.Clock = clock.RealClock{}
	}
	return o
}

// Validate reports every invalid field at once.
func (o Options) Validate() error {
	var errs []error
	if o.Workers < 0 {
		errs = append(errs, fmt.Errorf("Workers %d: must be positive", o.Workers))
	}
	if o.Timeout < 0 {
		errs = append(errs, fmt.Errorf("Timeout %v: must be positive", o.Timeout))
	}
	if o.RetryIntervalStart < 0 {
		errs = append(errs, fmt.Errorf("RetryIntervalStart %v: must be positive", o.RetryIntervalStart))
	}
	if o.RetryIntervalMax < 0 {
		errs = append(errs, fmt.Errorf("RetryIntervalMax %v: must be positive", o.RetryIntervalMax))
	}
	if o.RetryIntervalStart > 0 && o.RetryIntervalMax > 0 && o.RetryIntervalMax < o.RetryIntervalStart {
		errs = append(errs, fmt.Errorf("RetryIntervalMax %v: must not be below RetryIntervalStart %v", o.RetryIntervalMax, o.RetryIntervalStart))
	}
	if o.MarkInProgressBeforeCall && o.DisableMarkInProgress {
		errs = append(errs, errors.New("MarkInProgressBeforeCall (deprecated) and DisableMarkInProgress contradict each other"))
	}
	return errors.Join(errs...)
}

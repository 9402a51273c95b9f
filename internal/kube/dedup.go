package kube

import (
	"fmt"
	"sync"
	"time"

	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/tools/record"
	"k8s.io/utils/clock"
)

// WarningWindow is how long a repeated event (same object, type, reason
// and message) is held back after it was sent. Retries of a failing object
// would otherwise send a Warning, and a Normal "Provisioning" or
// "Resizing", per retry; at scale (hundreds of failing objects retrying at
// once) that fills the recorder's queue of 1,000 and client-go drops
// events, the first warnings of new objects among them.
const WarningWindow = 30 * time.Second

// dedup is an EventRecorder that sends a repeated event at most once per
// WarningWindow. Changed messages pass at once.
type dedup struct {
	record.EventRecorder
	clock clock.PassiveClock
	mu    sync.Mutex
	sent  map[dedupKey]time.Time
}

type dedupKey struct {
	uid, reason, message string
}

// Deduplicated wraps rec so that repeated events are held back for
// WarningWindow.
func Deduplicated(rec record.EventRecorder, clk clock.PassiveClock) record.EventRecorder {
	return &dedup{EventRecorder: rec, clock: clk, sent: map[dedupKey]time.Time{}}
}

func (d *dedup) Event(obj runtime.Object, eventType, reason, message string) {
	if !d.fresh(obj, eventType+" "+reason, message) {
		return
	}
	d.EventRecorder.Event(obj, eventType, reason, message)
}

func (d *dedup) Eventf(obj runtime.Object, eventType, reason, format string, args ...any) {
	d.Event(obj, eventType, reason, fmt.Sprintf(format, args...))
}

// fresh records an event and reports whether it may be sent.
func (d *dedup) fresh(obj runtime.Object, reason, message string) bool {
	acc, err := meta.Accessor(obj)
	if err != nil {
		return true
	}
	k := dedupKey{string(acc.GetUID()) + "/" + acc.GetNamespace() + "/" + acc.GetName(), reason, message}
	now := d.clock.Now()
	d.mu.Lock()
	defer d.mu.Unlock()
	if at, ok := d.sent[k]; ok && now.Sub(at) < WarningWindow {
		return false
	}
	if len(d.sent) >= 4096 {
		for k, at := range d.sent {
			if now.Sub(at) >= WarningWindow {
				delete(d.sent, k)
			}
		}
	}
	d.sent[k] = now
	return true
}

package ctrl

import (
	"sync"

	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/tools/record"
)

// forwardingRecorder sends events to the recorder Run set, and drops them
// when there is none (before Run, after it returned).
type forwardingRecorder struct {
	mu  sync.RWMutex
	rec record.EventRecorder
}

var _ record.EventRecorder = (*forwardingRecorder)(nil)

func (f *forwardingRecorder) set(rec record.EventRecorder) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.rec = rec
}

func (f *forwardingRecorder) get() record.EventRecorder {
	f.mu.RLock()
	defer f.mu.RUnlock()
	return f.rec
}

func (f *forwardingRecorder) Event(obj runtime.Object, eventtype, reason, message string) {
	if r := f.get(); r != nil {
		r.Event(obj, eventtype, reason, message)
	}
}

func (f *forwardingRecorder) Eventf(obj runtime.Object, eventtype, reason, messageFmt string, args ...any) {
	if r := f.get(); r != nil {
		r.Eventf(obj, eventtype, reason, messageFmt, args...)
	}
}

func (f *forwardingRecorder) AnnotatedEventf(obj runtime.Object, annotations map[string]string, eventtype, reason, messageFmt string, args ...any) {
	if r := f.get(); r != nil {
		r.AnnotatedEventf(obj, annotations, eventtype, reason, messageFmt, args...)
	}
}

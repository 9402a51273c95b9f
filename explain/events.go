package explain

import (
	"fmt"
	"time"

	v1 "k8s.io/api/core/v1"
)

// latestEvent returns the newest event with one of the reasons about an
// object of the kind and name, or nil.
func latestEvent(events []v1.Event, kind, name string, reasons ...string) *v1.Event {
	var best *v1.Event
	var bestAt time.Time
	for i := range events {
		e := &events[i]
		if e.InvolvedObject.Kind != kind || e.InvolvedObject.Name != name || !contains(reasons, e.Reason) {
			continue
		}
		if at := eventTime(e); best == nil || at.After(bestAt) {
			best, bestAt = e, at
		}
	}
	return best
}

// eventTime is the last time the event was seen.
func eventTime(e *v1.Event) time.Time {
	switch {
	case e.Series != nil && !e.Series.LastObservedTime.IsZero():
		return e.Series.LastObservedTime.Time
	case !e.LastTimestamp.IsZero():
		return e.LastTimestamp.Time
	case !e.EventTime.IsZero():
		return e.EventTime.Time
	}
	return e.CreationTimestamp.Time
}

func countNote(e *v1.Event) string {
	if e.Count > 1 {
		return fmt.Sprintf(" (seen %d times)", e.Count)
	}
	return ""
}

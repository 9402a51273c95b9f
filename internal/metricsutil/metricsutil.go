// Package metricsutil is the metrics plumbing the controllers share:
// registration that returns an error instead of panicking, and label
// values bounded against user input.
package metricsutil

import (
	"errors"
	"fmt"
	"sync"

	"github.com/prometheus/client_golang/prometheus"
)

// Register registers c on reg and returns the collector to use. When reg
// already holds an equal collector (same descriptors: a controller built
// twice in one process, for example after a lost lease), that one is
// returned, so both share one series instead of the second panicking.
// Any other conflict (same name, different labels or help) is an error.
// A nil reg registers nothing and returns c.
func Register[C prometheus.Collector](reg prometheus.Registerer, c C) (C, error) {
	if reg == nil {
		return c, nil
	}
	err := reg.Register(c)
	if err == nil {
		return c, nil
	}
	var are prometheus.AlreadyRegisteredError
	if errors.As(err, &are) {
		if existing, ok := are.ExistingCollector.(C); ok {
			return existing, nil
		}
		return c, fmt.Errorf("metric already registered as a %T, not a %T: %w", are.ExistingCollector, c, err)
	}
	return c, err
}

// Other replaces label values past a Bounded label's limit.
const Other = "other"

// Bounded admits the first Max distinct values of a label and reports
// every later one as Other: a tenant creating objects with made-up names
// must not grow a metric without bound. The zero value admits nothing.
// It is safe for concurrent use.
type Bounded struct {
	Max int

	mu   sync.Mutex
	seen map[string]struct{}
}

// NewBounded returns a Bounded admitting max values.
func NewBounded(max int) *Bounded { return &Bounded{Max: max} }

// Value returns v if it was admitted, or can still be, and Other if not.
func (b *Bounded) Value(v string) string {
	b.mu.Lock()
	defer b.mu.Unlock()
	if _, ok := b.seen[v]; ok {
		return v
	}
	if len(b.seen) >= b.Max {
		return Other
	}
	if b.seen == nil {
		b.seen = map[string]struct{}{}
	}
	b.seen[v] = struct{}{}
	return v
}

package compflags

import (
	"fmt"
	"sort"
	"strconv"
	"strings"
)

// Gates is a --feature-gates value: comma-separated Name=bool pairs over a
// fixed set of gates, values parsed as Go booleans. Unknown gates are an
// error.
type Gates struct {
	// Known maps each gate to its default.
	Known map[string]bool
	// Removed maps gates that are refused to the reason given.
	Removed map[string]string
	// ListKnown names the known gates in the unknown-gate error.
	ListKnown bool

	set map[string]bool
}

// Names returns the known gates, sorted.
func (g *Gates) Names() []string {
	n := make([]string, 0, len(g.Known))
	for k := range g.Known {
		n = append(n, k)
	}
	sort.Strings(n)
	return n
}

// String shows no default in the help.
func (g *Gates) String() string { return "" }

// Set parses one --feature-gates value; later values override earlier.
func (g *Gates) Set(s string) error {
	for _, kv := range strings.Split(s, ",") {
		kv = strings.TrimSpace(kv)
		if kv == "" {
			continue
		}
		k, v, ok := strings.Cut(kv, "=")
		if !ok {
			return fmt.Errorf("feature gate %q: want Name=true|false", kv)
		}
		if why, removed := g.Removed[k]; removed {
			return fmt.Errorf("feature gate %s was removed: %s", k, why)
		}
		if _, known := g.Known[k]; !known {
			if g.ListKnown {
				return fmt.Errorf("unknown feature gate %q (known: %s)", k, strings.Join(g.Names(), ", "))
			}
			return fmt.Errorf("unknown feature gate %q", k)
		}
		b, err := strconv.ParseBool(v)
		if err != nil {
			return fmt.Errorf("feature gate %s=%q: %w", k, v, err)
		}
		if g.set == nil {
			g.set = map[string]bool{}
		}
		g.set[k] = b
	}
	return nil
}

// On tells whether the gate is enabled: as set, else its default.
func (g *Gates) On(name string) bool {
	if v, ok := g.set[name]; ok {
		return v
	}
	return g.Known[name]
}

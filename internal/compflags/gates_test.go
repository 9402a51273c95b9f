package compflags

import (
	"strings"
	"testing"
)

func TestGates(t *testing.T) {
	newGates := func(list bool) *Gates {
		return &Gates{Known: map[string]bool{"A": true, "B": false}, Removed: map[string]string{"Old": "always on"}, ListKnown: list}
	}
	for _, tc := range []struct {
		in, wantErr string
	}{
		{"A=false, B=True", ""}, {"", ""}, {"A", "want Name=true|false"}, {"A=maybe", `A="maybe"`},
		{"C=true", `unknown feature gate "C"`}, {"Old=true", "Old was removed: always on"},
	} {
		err := newGates(false).Set(tc.in)
		if (err == nil) != (tc.wantErr == "") || (err != nil && !strings.Contains(err.Error(), tc.wantErr)) {
			t.Errorf("Set(%q) = %v, want error %q", tc.in, err, tc.wantErr)
		}
	}
	if err := newGates(true).Set("C=true"); err == nil || !strings.HasSuffix(err.Error(), "(known: A, B)") {
		t.Errorf("unknown gate with ListKnown: %v", err)
	}
	g := newGates(false)
	if !g.On("A") || g.On("B") {
		t.Error("defaults not applied")
	}
	if err := g.Set("A=false,B=true"); err != nil {
		t.Fatal(err)
	}
	if g.On("A") || !g.On("B") || g.On("C") {
		t.Errorf("after Set: A=%t B=%t C=%t", g.On("A"), g.On("B"), g.On("C"))
	}
}

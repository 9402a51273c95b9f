package main

import (
	"flag"
	"io"
	"testing"
	"time"

	"github.com/csi-kit/sidecars/internal/compflags"
	"github.com/csi-kit/sidecars/leaderelection"
)

// --mark-in-progress-before-call defaults to true; =false fills
// resizer.Options.DisableMarkInProgress.
func TestMarkInProgressFlag(t *testing.T) {
	for _, tc := range []struct {
		args        []string
		wantDisable bool
	}{
		{nil, false},
		{[]string{"--mark-in-progress-before-call"}, false},
		{[]string{"--mark-in-progress-before-call=true"}, false},
		{[]string{"--mark-in-progress-before-call=false"}, true},
	} {
		fs := flag.NewFlagSet("csi-resizer", flag.ContinueOnError)
		fs.SetOutput(io.Discard)
		var rf compflags.Resizer
		var timeout time.Duration
		compflags.RegisterResizer(fs, &rf, &timeout, &leaderelection.Flags{})
		if err := fs.Parse(tc.args); err != nil {
			t.Fatalf("%v: %v", tc.args, err)
		}
		if rf.Options.DisableMarkInProgress != tc.wantDisable {
			t.Errorf("%v: DisableMarkInProgress = %v, want %v", tc.args, rf.Options.DisableMarkInProgress, tc.wantDisable)
		}
		if d := fs.Lookup("mark-in-progress-before-call").DefValue; d != "true" {
			t.Errorf("default %q, want true", d)
		}
	}
}

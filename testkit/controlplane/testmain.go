package controlplane

import (
	"context"
	"fmt"
	"os"
	"testing"
)

// RunTests is the body of a package's TestMain: unless the tests run with
// -short, it starts one control plane with opts and stores it in *cp (which
// stays nil in -short mode), then runs m and stops the control plane. It
// returns m's exit code, or 1 when the control plane does not start; the
// caller may add its own checks (goleak) before os.Exit. Call flag.Parse
// first.
func RunTests(m *testing.M, opts Options, cp **ControlPlane) int {
	if testing.Short() {
		return m.Run()
	}
	c, err := Start(context.Background(), opts)
	if err != nil {
		fmt.Fprintf(os.Stderr, "starting control plane: %v\n", err)
		return 1
	}
	*cp = c
	defer func() {
		if err := c.Stop(); err != nil {
			fmt.Fprintf(os.Stderr, "stopping control plane: %v\n", err)
		}
	}()
	return m.Run()
}

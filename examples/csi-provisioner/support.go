package main

import "github.com/csi-kit/sidecars/internal/compflags"

// newGates returns the --feature-gates of csi-provisioner.
func newGates() *compflags.Gates { return compflags.ProvisionerGates() }

package main

import "github.com/csi-kit/sidecars/internal/compflags"

// newGates returns the --feature-gates of csi-provisioner.
func newGates() *compflags.Gates {
	return &compflags.Gates{
		Known: map[string]bool{"Topology": true, "VolumeAttributesClass": true,
			"CrossNamespaceVolumeDataSource": false, "ReleaseLeaderElectionOnExit": false},
		Removed: map[string]string{"HonorPVReclaimPolicy": "the deletion finalizer is always used"},
	}
}

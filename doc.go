// Package sidecars is the root of csi-kit/sidecars: the Kubernetes CSI
// sidecars (provisioner, resizer, snapshotter) as an embeddable Go library.
//
// Import the package for the job:
//
//   - resizer: expands PVCs of one CSI driver (ControllerExpandVolume, node
//     expansion hand-off, recovery from failed expansion, VolumeAttributesClass
//     modification).
//   - provisioner: creates and deletes volumes for PVCs, with topology,
//     data sources, secrets and storage capacity tracking.
//   - snapshotter: the VolumeSnapshot controller and the CSI snapshot sidecar;
//     snapshotter/conversion: the VolumeGroupSnapshotContent conversion webhook.
//   - leaderelection: run any of them only while holding a Lease.
//   - csiconn: the CSI connection, capabilities, timeouts, error classes and
//     metrics shared by all of them.
//   - testkit/controlplane and testkit/fakedriver: a real local control plane
//     and an in-process CSI driver, for your own tests.
//
// Each controller is configured by an Options struct with documented
// defaults, built with New and run with Run(ctx), which returns an error
// instead of exiting the process.
package sidecars

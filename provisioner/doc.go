// Package provisioner creates and deletes the volumes of one CSI driver for
// PersistentVolumeClaims, like the upstream external-provisioner sidecar,
// as a library: Options → New → Run(ctx) error.
//
// # What it does
//
//   - Claims whose storage-provisioner annotation names the driver (and
//     whose class is the driver's) get a CreateVolume named
//     "<VolumeNamePrefix>-<claim UID>" and a PV pre-bound to the claim; the
//     kube-controller-manager's PV binder completes the binding.
//   - WaitForFirstConsumer claims wait for the scheduler's selected-node
//     annotation; topology requirements come from CSINode keys, Node labels
//     and the class's allowedTopologies. ResourceExhausted on a selected node
//     removes the annotation so the scheduler picks another node.
//   - Data sources: VolumeSnapshot (restore) and PersistentVolumeClaim
//     (clone), each with a protection finalizer on the source while it is
//     used; other kinds are left to populators.
//   - PVs with reclaim policy Delete carry the deletion finalizer; once
//     Released the volume is deleted (DeleteVolume), then the PV.
//   - With Options.Capacity, CSIStorageCapacity objects per topology segment
//     and class are kept current for the scheduler.
//
// # Guarantees
//
//   - No leaked volumes (unless Options.NoIntent): a CreateVolume that has
//     not returned after Options.IntentDelay, or that failed without a
//     final answer, gets the annotation AnnProvisioningVolumeName and the
//     finalizer FinalizerIntent on its claim, in one patch. A claim deleted
//     before its PV exists keeps that finalizer until the same CreateVolume
//     (idempotent by name) has returned the volume ID and DeleteVolume
//     succeeded, or the driver has said the create fails. This holds
//     across timeouts, restarts and leader changes, since the record lives
//     in the API server. The one window left open by default: the process
//     dies within IntentDelay of sending a create the backend completes and
//     the claim is deleted before a provisioner runs again; a negative
//     IntentDelay closes it at one PVC write per volume.
//   - Retries send the same request: the name is deterministic and the
//     topology requirement of a claim is kept between attempts.
//   - Run never exits the process. It returns when ctx ends, or with an error
//     wrapping csiconn.ErrConnectionLost when the driver goes away.
//
// # Caveats
//
//   - An intent finalizer stays on a bound claim until the claim is deleted
//     (removing it earlier would cost one more write per volume). If the
//     provisioner is uninstalled, deleted claims of the driver wait for the
//     finalizer to be removed by hand.
//   - If the class of a claim with an intent record is deleted before the
//     claim, cleanup cannot rebuild the request; it retries with a Warning
//     event until the class is back or the finalizer is removed by hand.
//   - Cross-namespace data sources and migration of in-tree volumes are not
//     implemented.
//
// # Node deployment
//
// With Options.NodeDeployment the provisioner serves one node (drivers of
// node-local storage run it beside the driver on every node): its topology
// comes from NodeGetInfo once, Nodes and CSINodes are not watched, claims
// selected for other nodes are ignored, PVs are deleted only by the node
// their affinity names, and Immediate claims without a selected node are
// offered by every node whose topology the class allows and whose
// GetCapacity fits, after a random delay; the first node to set the
// selected-node annotation (guarded by resourceVersion) provisions.
package provisioner

// Package provisioner creates and deletes the volumes of one CSI driver for
// PersistentVolumeClaims, like the upstream external-provisioner sidecar,
// as a library: Options → New → Run(ctx) error.
//
// # API
//
// The API is New, Provisioner.Run, Options (with CapacityOptions and
// NodeDeployment), Options.Validate, the Driver interface, the Default*
// constants (flag defaults for binaries), and the names the provisioner
// writes on API objects: the Ann*, Finalizer* and Reason* constants and
// LabelRecord. Everything else is unexported.
//
// Run builds its runtime (internal/ctrl): it takes its informers from
// Options.Cache or a private cache, registers its handlers and queues, and
// removes the handlers when it returns; a Provisioner that never runs
// leaves nothing on a shared cache. Events go to Options.Recorder, or to a
// recorder Run builds over the client (events are on by default).
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
//     and class are kept current for the scheduler, CapacityOptions.Workers
//     GetCapacity calls at a time, through CapacityOptions.Client when set;
//     a node deployment publishes its own node's segment only.
//
// # Guarantees
//
//   - A claim only ever reaches the backend volume named after its own UID:
//     every CreateVolume, lookup and DeleteVolume uses
//     "<VolumeNamePrefix>-<claim UID>" (see VolumeNameUUIDLength) or a
//     volume ID the driver returned for that name. Nothing a user writes on
//     a claim (annotations, finalizers, spec.volumeName) names a volume;
//     the intent annotation and finalizer of earlier versions are honoured
//     only when they name the claim's own volume, and otherwise reported
//     with a ProvisioningRecordIgnored Warning and removed.
//   - No leaked volumes (unless Options.DisableIntent), through provisioning
//     records: Secrets labelled LabelRecord in Options.RecordNamespace (the
//     provisioner's namespace, where tenants cannot write). A record holds
//     the claim's UID, the exact CreateVolumeRequest sent (without
//     secrets), a copy of its provisioner secret and, once known, the
//     volume ID. It is written when a CreateVolume runs longer than
//     Options.IntentDelay, fails without a final answer or is cut short by
//     a stop, and whenever a volume ID exists but its PV could not be
//     written (API error, webhook denial, stop). It goes once the PV
//     exists. Once its claim is gone, the record worker deletes the volume
//     (by ID, or through the identical CreateVolume, idempotent by name),
//     retrying with backoff for as long as needed, with a
//     ProvisioningCleanupFailed Warning on the record and the metric
//     csi_kit_provisioner_record_cleanup_failures_total on each failure.
//     Only an answer that proves absence ends a cleanup without a delete:
//     a final answer to the identical request other than ALREADY_EXISTS
//     (a compliant plugin answers OK for an existing volume of the name
//     whose capacity, capabilities, parameters and topology match).
//   - No claim and no namespace ever waits for the provisioner: records are
//     not on the claim, and the cleanup needs neither the claim, its class,
//     its data source nor its secret (it carries a copy).
//   - Retries send the same request: the name is deterministic, the
//     topology requirement of a claim is kept between attempts, and once a
//     record exists every attempt sends the recorded request.
//   - A PV's volume is deleted once per deletion: a sync from a stale cache
//     after the delete does not call DeleteVolume again.
//   - Sizes beyond int64 bytes (10E) are refused with a Warning, never
//     sent wrapped or as zero.
//   - Run never exits the process. It returns when ctx ends, or with an error
//     wrapping csiconn.ErrConnectionLost when the driver goes away.
//
// # Remaining windows
//
// With the default IntentDelay (1s) a volume can still be left behind in
// exactly two cases, both needing a crash (not a stop: a cancelled Run
// writes its records before it returns):
//
//  1. the process dies within IntentDelay of sending a CreateVolume that
//     the backend completes, and the claim is deleted before a
//     provisioner runs again;
//  2. the process dies after a CreateVolume returned but before the PV or
//     a record was written, and the claim is deleted before a provisioner
//     runs again.
//
// A negative IntentDelay closes both, at two more API writes per volume
// (the record before the call, its deletion after the PV). Writes that the
// API server refuses are retried from memory, so a refusal alone loses
// nothing while the process runs. TestRecordWriteFailsBeforeCreate,
// TestPVWriteFailsAfterFastCreate and TestFaultTimeoutThenDelete cover the
// closed windows; the faults package's cancellation cases cover stops.
//
// # Caveats
//
//   - Records need get, list, create, update and delete on Secrets in
//     RecordNamespace (examples/deploy grants them). Without them, as with
//     manifests written for other provisioners, Run logs that records are
//     off and provisions without them (the guarantee against leaks then
//     does not hold; the one against reaching other claims' volumes does).
//   - A record copies the provisioner secret of its request into
//     RecordNamespace until the cleanup is done; give that namespace the
//     protection the secret needs.
//   - Cross-namespace data sources (a dataSourceRef naming another
//     namespace) are refused unless Options.CrossNamespaceDataSources is
//     set; then each needs a ReferenceGrant in the source's namespace,
//     checked with a live List on every attempt (RBAC: get, list and watch
//     on referencegrants.gateway.networking.k8s.io). Secret templates
//     still resolve against the claim; the protection finalizer goes on
//     the source in its own namespace.
//   - In-tree volumes migrated to this driver (k8s.io/csi-translation-lib
//     maps, e.g., kubernetes.io/aws-ebs to ebs.csi.aws.com) are served:
//     claims naming the in-tree plugin or migrated to this driver are
//     provisioned from the translated class, their PV is written in the
//     in-tree form (annotated pv.kubernetes.io/migrated-to), and such PVs
//     are deleted through their translated volume handle.
//   - VolumeSnapshots restored from carry the source-protection finalizer
//     while a restore needs them; a sweep every SnapshotSweepInterval
//     removes it from snapshots no unbound claim and no record needs.
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

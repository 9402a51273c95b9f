// Package resizer drives the PersistentVolumeClaims of one CSI driver to the
// size their users request, and applies VolumeAttributesClass changes.
//
// # Basics
//
//	drv, err := resizer.NewCSIDriver(ctx, conn) // conn from csiconn.Connect
//	r, err := resizer.New(resizer.Options{}, kubeClient, drv)
//	err = r.Run(ctx) // blocks until ctx ends or the driver connection is lost
//
// Every decision the controller takes is a pure function in decide.go and
// decide_modify.go ([Decide], [TargetSize], [DecideModify]) and every status
// change a pure function in status.go ([MarkExpanded], [MarkFailed], ...),
// so driver authors can unit-test their resize logic without a cluster.
//
// # API
//
// What a user calls, and nothing else, is exported:
//
//   - Running: [Options], [New], [Resizer] (Run, Started), the Default*
//     constants, and the driver seam: [Driver], [NewCSIDriver],
//     [DriverCapabilities], [ExpandRequest], [ModifyRequest].
//   - Decisions: [Decide] ([Input], [Decision], [Action]), [TargetSize],
//     [Responsible], [NeedsResize], [SizesOf] ([Sizes]), [DecideModify]
//     ([ModifyInput], [ModifyDecision], [ModifyAction]).
//   - Status changes: [MarkInProgress], [MarkExpanded], [MarkFailed],
//     [MarkBlocked], [MarkDoneAt], [ResizedPV], [MarkModified],
//     [MarkModifyFailed], [MarkModifyPending], [MarkModifyCanceled].
//   - Names others match on: [EventResizeFailed],
//     [EventFileSystemResizeRequired], [InUseMessage], and the annotation
//     constants (Ann*, ModifyVolumeAnnSecret*).
//
// The controller runs on the module's one controller runtime: one queue
// whose workers handle resize and then modify of a PVC, handlers
// registered in Run and removed when it returns, a private cache unless
// Options.Cache is given, and the objects this process wrote remembered
// until the informer catches up (the written copy wins while its resource
// version is the greater number; otherwise the cache wins).
//
// # Guarantees
//
//   - One work queue serialises resize and modify of a PVC: they never race
//     on its status.
//   - Before each ControllerExpandVolume the PVC records the size asked for
//     (allocatedResources, ControllerResizeInProgress), as upstream does, so
//     a resizer taking over after a leader change never records less than
//     the driver may already have allocated, even if the user lowered the
//     request meanwhile. A successful resize then costs five API writes:
//     that PVC status patch, one PV patch, one PVC status patch
//     (allocatedResources, allocatedResourceStatuses, conditions, capacity
//     and the node-expansion annotation together) and two events.
//     Options.DisableMarkInProgress saves the first patch and one event, at
//     the price of that protection.
//   - Sizes above math.MaxInt64 bytes (a request of 10E passes API
//     validation) are refused with a Warning event; the driver is never
//     asked for a wrapped size.
//   - Infeasible requests (InvalidArgument, OutOfRange, NotFound) are marked
//     ControllerResizeInfeasible and retried only after
//     Options.RetryIntervalMax or when the user changes the request.
//   - For drivers that expand only OFFLINE, a PVC used by a pod is not
//     expanded; it is requeued as soon as the last pod using it is gone.
//     No expansion is decided before every pod has been listed once. Pods
//     are not cached: of each pod only the claims it uses are kept. When
//     the API server keeps answering 410 Gone to the pod list or watch,
//     relists back off on Options.Clock from 1s to 30s.
//   - Run returns an error wrapping csiconn.ErrConnectionLost when the
//     driver goes away; it never exits the process.
//
// # Caveats
//
//   - In-tree PVs migrated to this driver are resized once
//     kube-controller-manager hands their claim over (annotation
//     volume.kubernetes.io/storage-resizer naming this driver): the PV is
//     translated with k8s.io/csi-translation-lib for the call, and only
//     its capacity is written back. Their modification is not supported.
//   - Final-error memory (which pins the target size after a transient
//     error) lives in the process; a restart forgets it, as upstream does.
package resizer

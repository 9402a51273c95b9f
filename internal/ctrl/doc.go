// Package ctrl is the one controller runtime of this module. Every
// controller (resizer, provisioner, snapshot controller, snapshot sidecar,
// group snapshots) is "which informers, which reconcile function"; the
// runtime owns the rest:
//
//   - the shared-or-private informer cache (Config.Cache, or a private one
//     built from the clients and shut down when Run returns);
//   - event handler registration, in Run only, removed when Run returns
//     (a shared informer outlives one controller);
//   - queues and their workers: a Reconciler returns Result{RequeueAfter}
//     to come back later without counting a failure, or an error to come
//     back with exponential backoff; both use the injected clock;
//   - the run-once guard (Once) and the Started signal;
//   - the event recorder: the caller's, or one built from the client for
//     the time of Run;
//   - driver-loss watching: a driver with WatchLoss(ctx) error ends Run
//     with that error;
//   - a store of this process's fresh writes (Fresh) and per-key locks
//     (KeyLocks).
//
// Nothing starts before Run; a Runtime runs once.
package ctrl

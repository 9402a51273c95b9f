// Package leaderelection runs work only while this process holds a
// coordination.k8s.io/v1 Lease.
//
// # Guarantees
//
//   - Defaults equal the upstream CSI sidecars': lease 15s, renew deadline
//     10s, retry period 5s, and the same lock names (see LockName) and Lease
//     fields, so old and new replicas of one driver's sidecar elect one
//     leader during an upgrade.
//   - The identity is unique per process (hostname plus a random suffix): two
//     replicas on one node with host networking never both lead.
//   - The work stops before a standby may start. The work context ends at
//     the latest renew deadline after the start of the leader's last
//     successful renewal, before anything else is tried (a release, or more
//     renewals). A standby takes over only a lease duration after it saw
//     that renewal, and Validate requires the lease duration to exceed the
//     renew deadline by at least 1s: the time the work has to stop. This
//     holds when the API server answers with errors and when requests hang.
//   - A standby takes over when the term it observed ends: it watches the
//     Lease and arms a timer for the end of the holder's term, instead of
//     waiting for its next poll. At the defaults a crashed leader is
//     replaced 10-15s after it died (lease duration after its last renewal).
//   - Run returns; it never exits the process. A lost lease cancels the work
//     context, waits for the work to return, and Run returns an error
//     wrapping ErrLeaseLost. Cancelling ctx stops the work, keeps renewing
//     until it has returned, then releases the Lease (unless KeepOnCancel),
//     so a standby takes over within milliseconds.
//   - The health check (HealthCheck, served at /healthz/leader-election)
//     fails when this replica leads but has not renewed for lease duration +
//     HealthTimeout, so a liveness probe restarts a wedged leader.
//
// # Caveats
//
// As with all Lease-based election there is no fencing: a leader paused
// (stopped, or starved of CPU) for longer than the margin between lease
// duration and renew deadline may overlap a new leader until it runs again.
// Work that ignores its context keeps running after the term ends; the
// guarantee is that its context ends in time. Give the elector its own
// client (NewClient) so that controller traffic throttled by a low QPS never
// delays renewals; a client with a client-wide Timeout also cuts the
// standby's Lease watch at every timeout (it reconnects at once).
package leaderelection

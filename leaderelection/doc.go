// Package leaderelection runs work only while this process holds a
// coordination.k8s.io/v1 Lease.
//
// # Guarantees
//
//   - Defaults equal the upstream CSI sidecars': lease 15s, renew deadline
//     10s, retry period 5s, and the same lock names (see LockName), so old and
//     new replicas of one driver's sidecar elect one leader during an upgrade.
//   - The identity is unique per process (hostname plus a random suffix): two
//     replicas on one node with host networking never both lead.
//   - Run returns; it never exits the process. A lost lease cancels the work
//     context, waits for the work to return, and Run returns an error
//     wrapping ErrLeaseLost. Cancelling ctx stops the work first, then
//     releases the Lease, so a standby takes over within about a retry period.
//   - The health check (HealthCheck, served at /healthz/leader-election)
//     fails when this replica leads but has not renewed for lease duration +
//     HealthTimeout, so a liveness probe restarts a wedged leader.
//
// # Caveats
//
// As with all Lease-based election there is no fencing: a leader paused
// longer than the lease duration may overlap a new leader until it notices.
// Give the elector its own client (NewClient) so that controller traffic
// throttled by a low QPS never delays renewals.
package leaderelection

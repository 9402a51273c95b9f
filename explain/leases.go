package explain

import (
	"fmt"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"

	"github.com/csi-kit/sidecars/leaderelection"
)

// Lease names of the controllers that act on an object of a driver.
func provisionerLease(driver string) string {
	return leaderelection.LockName(leaderelection.ComponentProvisioner, driver)
}
func resizerLease(driver string) string {
	return leaderelection.LockName(leaderelection.ComponentResizer, driver)
}
func snapshotterLease(driver string) string {
	return leaderelection.LockName(leaderelection.ComponentSnapshotter, driver)
}
func snapshotControllerLease() string {
	return leaderelection.LockName(leaderelection.ComponentSnapshotCtl, "")
}

// LeaseNames lists the Lease names Diagnose looks at for a driver: the
// provisioner's, the resizer's, the snapshotter sidecar's and the snapshot
// controller's.
func LeaseNames(driver string) []string {
	names := []string{snapshotControllerLease()}
	if driver != "" {
		names = append(names, provisionerLease(driver), resizerLease(driver), snapshotterLease(driver))
	}
	return names
}

type leaseState int

const (
	leaseAbsent  leaseState = iota // no Lease of that name anywhere
	leaseVacant                    // Lease without holder
	leaseExpired                   // holder stopped renewing
	leaseHeld                      // a live holder
)

// leaseStatus judges the Leases named name; one live holder in any
// namespace is enough. The text describes the best one found.
func leaseStatus(leases []coordinationv1.Lease, name string, now time.Time) (leaseState, string) {
	best, text := leaseAbsent, fmt.Sprintf("no Lease %q exists in any namespace", name)
	for i := range leases {
		l := &leases[i]
		if l.Name != name {
			continue
		}
		st, t := judgeLease(l, now)
		if st > best {
			best, text = st, t
		}
	}
	return best, text
}

func judgeLease(l *coordinationv1.Lease, now time.Time) (leaseState, string) {
	where := l.Namespace + "/" + l.Name
	holder := ""
	if l.Spec.HolderIdentity != nil {
		holder = *l.Spec.HolderIdentity
	}
	if holder == "" {
		return leaseVacant, fmt.Sprintf("Lease %s has no holder", where)
	}
	if l.Spec.RenewTime == nil || l.Spec.LeaseDurationSeconds == nil {
		return leaseHeld, fmt.Sprintf("Lease %s is held by %s", where, holder)
	}
	expiry := l.Spec.RenewTime.Add(time.Duration(*l.Spec.LeaseDurationSeconds) * time.Second)
	if now.After(expiry) {
		return leaseExpired, fmt.Sprintf("Lease %s is held by %s, who last renewed it %s ago (lease %ds)",
			where, holder, now.Sub(l.Spec.RenewTime.Time).Round(time.Second), *l.Spec.LeaseDurationSeconds)
	}
	return leaseHeld, fmt.Sprintf("Lease %s is held by %s", where, holder)
}

// leaderFinding returns a finding when no live leader holds the lease of
// the controller who ("provisioner of driver x", without article); nil
// when one does.
func leaderFinding(in *Input, reason, lease, who, work string) *Finding {
	st, text := leaseStatus(in.Leases, lease, in.now())
	switch st {
	case leaseHeld:
		return nil
	case leaseAbsent:
		return &Finding{Severity: Warning, Reason: reason,
			Message: fmt.Sprintf("no %s seems to run: %s, so nothing %s (unless it runs without leader election)", who, text, work),
			Action:  fmt.Sprintf("check that the %s is deployed and its pods are running; read their logs", who)}
	default:
		return &Finding{Severity: Error, Reason: reason,
			Message: fmt.Sprintf("no %s is running: no live lease holder for %q (%s), so nothing %s", who, lease, text, work),
			Action:  fmt.Sprintf("check the pods of the %s (crash loops, lost API access, lost CSI socket) and their logs", who)}
	}
}

func (in *Input) now() time.Time {
	if in.Now.IsZero() {
		return time.Now()
	}
	return in.Now
}

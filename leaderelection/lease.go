package leaderelection

import (
	"context"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/watch"
)

// leases is the part of the Lease API the election uses; the typed client's
// LeaseInterface satisfies it, and unit tests use an in-memory one.
type leases interface {
	Get(ctx context.Context, name string, opts metav1.GetOptions) (*coordinationv1.Lease, error)
	Create(ctx context.Context, lease *coordinationv1.Lease, opts metav1.CreateOptions) (*coordinationv1.Lease, error)
	Update(ctx context.Context, lease *coordinationv1.Lease, opts metav1.UpdateOptions) (*coordinationv1.Lease, error)
	Watch(ctx context.Context, opts metav1.ListOptions) (watch.Interface, error)
}

// The Lease fields are those every client-go elector reads and writes, so
// replicas of this package and of the upstream sidecars share one Lease.

func holderOf(l *coordinationv1.Lease) string {
	if l == nil || l.Spec.HolderIdentity == nil {
		return ""
	}
	return *l.Spec.HolderIdentity
}

// termOf is how long a holder's term lasts after a renewal, as the holder
// wrote it; fallback when the field is missing.
func termOf(l *coordinationv1.Lease, fallback time.Duration) time.Duration {
	if l == nil || l.Spec.LeaseDurationSeconds == nil {
		return fallback
	}
	return time.Duration(*l.Spec.LeaseDurationSeconds) * time.Second
}

// take returns a copy of l (nil: a new Lease) held by identity, renewed at
// now; a change of holder sets the acquire time and counts a transition.
func take(l *coordinationv1.Lease, o Options, now time.Time) *coordinationv1.Lease {
	var next *coordinationv1.Lease
	if l == nil {
		next = &coordinationv1.Lease{ObjectMeta: metav1.ObjectMeta{Name: o.LockName, Namespace: o.Namespace}}
	} else {
		next = l.DeepCopy()
	}
	for k, v := range o.Labels {
		if next.Labels == nil {
			next.Labels = map[string]string{}
		}
		next.Labels[k] = v
	}
	t := metav1.NewMicroTime(now)
	seconds := int32(o.LeaseDuration / time.Second)
	if holderOf(l) != o.Identity {
		transitions := int32(0)
		if l != nil && l.Spec.LeaseTransitions != nil {
			transitions = *l.Spec.LeaseTransitions + 1
		}
		next.Spec.AcquireTime = &t
		next.Spec.LeaseTransitions = &transitions
	}
	id := o.Identity
	next.Spec.HolderIdentity = &id
	next.Spec.LeaseDurationSeconds = &seconds
	next.Spec.RenewTime = &t
	return next
}

// released returns a copy of l with no holder and a one-second term, so
// that even a client that ignores the empty holder waits only a second.
func released(l *coordinationv1.Lease, now time.Time) *coordinationv1.Lease {
	next := l.DeepCopy()
	empty, one := "", int32(1)
	t := metav1.NewMicroTime(now)
	next.Spec.HolderIdentity = &empty
	next.Spec.LeaseDurationSeconds = &one
	next.Spec.AcquireTime = &t
	next.Spec.RenewTime = &t
	return next
}

// tryTake acquires or renews the Lease for this candidate if it is free,
// expired by this candidate's observation, or already its own; with
// renewing set, only if it is its own. It returns false without an error
// when it may not take the Lease. Every write is conditional on the
// resourceVersion just read.
func (c *campaign) tryTake(ctx context.Context, now time.Time, renewing bool) (bool, error) {
	o := c.opts
	l, err := c.leases.Get(ctx, o.LockName, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		if renewing {
			return false, nil // deleted under its holder
		}
		created, err := c.leases.Create(ctx, take(nil, o, now), metav1.CreateOptions{})
		if err != nil {
			return false, err
		}
		c.observe(created)
		return true, nil
	}
	if err != nil {
		return false, err
	}
	c.observe(l)
	h := holderOf(l)
	if renewing && h != o.Identity {
		return false, nil
	}
	if h != "" && h != o.Identity && c.untilExpiry() > 0 {
		return false, nil
	}
	updated, err := c.leases.Update(ctx, take(l, o, now), metav1.UpdateOptions{})
	if err != nil {
		return false, err
	}
	c.observe(updated)
	return true, nil
}

// release empties the holder if this candidate still holds the Lease;
// true if it did.
func (c *campaign) release(ctx context.Context) (bool, error) {
	for {
		l, err := c.leases.Get(ctx, c.opts.LockName, metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			return false, nil
		}
		if err != nil {
			return false, err
		}
		if holderOf(l) != c.opts.Identity {
			return false, nil
		}
		updated, err := c.leases.Update(ctx, released(l, c.clock.Now()), metav1.UpdateOptions{})
		if apierrors.IsConflict(err) {
			continue // a renewal raced the release; read again
		}
		if err != nil {
			return false, err
		}
		c.observe(updated)
		return true, nil
	}
}

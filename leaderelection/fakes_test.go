package leaderelection

import (
	"context"
	"fmt"
	"runtime"
	"strconv"
	"sync"
	"testing"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/watch"
	clocktesting "k8s.io/utils/clock/testing"
)

// store is an in-memory Lease API for one Lease: writes are conditional on
// the resourceVersion, watches see every write, and each candidate's
// requests can be made to hang until their context ends (a partition that
// does not fail fast). It keeps an ordered log of what happened, stamped
// with the fake clock.
type store struct {
	clock *clocktesting.FakeClock

	mu       sync.Mutex
	lease    *coordinationv1.Lease
	rv       int
	hung     map[string]bool
	watchers map[*fakeWatch]bool
	log      []entry
}

type entry struct {
	at   time.Time
	who  string
	what string
}

func newStore(clk *clocktesting.FakeClock) *store {
	return &store{clock: clk, hung: map[string]bool{}, watchers: map[*fakeWatch]bool{}}
}

// note appends to the log.
func (s *store) note(who, what string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.log = append(s.log, entry{at: s.clock.Now(), who: who, what: what})
}

func (s *store) entries() []entry {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]entry(nil), s.log...)
}

func (s *store) hang(who string, on bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.hung[who] = on
}

func (s *store) current() *coordinationv1.Lease {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.lease.DeepCopy()
}

// put writes l as the Lease, unconditionally, as another writer would.
func (s *store) put(who string, l *coordinationv1.Lease) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.writeLocked(who, "put", l)
}

func (s *store) writeLocked(who, op string, l *coordinationv1.Lease) *coordinationv1.Lease {
	s.rv++
	l = l.DeepCopy()
	l.ResourceVersion = strconv.Itoa(s.rv)
	s.lease = l
	s.log = append(s.log, entry{at: s.clock.Now(), who: who, what: op + " holder=" + holderOf(l)})
	for w := range s.watchers {
		select {
		case w.ch <- watch.Event{Type: watch.Modified, Object: l.DeepCopy()}:
		default: // a watcher that does not keep up misses events, like a slow real one
		}
	}
	return l.DeepCopy()
}

var leaseResource = schema.GroupResource{Group: "coordination.k8s.io", Resource: "leases"}

// client is one candidate's view of the store.
type client struct {
	s   *store
	who string
}

func (c client) enter(ctx context.Context, op string) error {
	c.s.mu.Lock()
	c.s.log = append(c.s.log, entry{at: c.s.clock.Now(), who: c.who, what: op})
	hung := c.s.hung[c.who]
	c.s.mu.Unlock()
	if hung {
		<-ctx.Done()
		return ctx.Err()
	}
	return ctx.Err()
}

func (c client) Get(ctx context.Context, name string, _ metav1.GetOptions) (*coordinationv1.Lease, error) {
	if err := c.enter(ctx, "get"); err != nil {
		return nil, err
	}
	c.s.mu.Lock()
	defer c.s.mu.Unlock()
	if c.s.lease == nil {
		return nil, apierrors.NewNotFound(leaseResource, name)
	}
	return c.s.lease.DeepCopy(), nil
}

func (c client) Create(ctx context.Context, l *coordinationv1.Lease, _ metav1.CreateOptions) (*coordinationv1.Lease, error) {
	if err := c.enter(ctx, "create"); err != nil {
		return nil, err
	}
	c.s.mu.Lock()
	defer c.s.mu.Unlock()
	if c.s.lease != nil {
		return nil, apierrors.NewAlreadyExists(leaseResource, l.Name)
	}
	return c.s.writeLocked(c.who, "created", l), nil
}

func (c client) Update(ctx context.Context, l *coordinationv1.Lease, _ metav1.UpdateOptions) (*coordinationv1.Lease, error) {
	if err := c.enter(ctx, "update"); err != nil {
		return nil, err
	}
	c.s.mu.Lock()
	defer c.s.mu.Unlock()
	if c.s.lease == nil {
		return nil, apierrors.NewNotFound(leaseResource, l.Name)
	}
	if l.ResourceVersion != c.s.lease.ResourceVersion {
		return nil, apierrors.NewConflict(leaseResource, l.Name, fmt.Errorf("resourceVersion %s, stored %s", l.ResourceVersion, c.s.lease.ResourceVersion))
	}
	return c.s.writeLocked(c.who, "updated", l), nil
}

func (c client) Watch(ctx context.Context, _ metav1.ListOptions) (watch.Interface, error) {
	c.s.mu.Lock()
	defer c.s.mu.Unlock()
	if c.s.hung[c.who] {
		return nil, fmt.Errorf("partitioned")
	}
	w := &fakeWatch{s: c.s, ch: make(chan watch.Event, 100)}
	if c.s.lease != nil {
		w.ch <- watch.Event{Type: watch.Added, Object: c.s.lease.DeepCopy()}
	}
	c.s.watchers[w] = true
	return w, nil
}

type fakeWatch struct {
	s  *store
	ch chan watch.Event
}

func (w *fakeWatch) ResultChan() <-chan watch.Event { return w.ch }

// Stop stops delivery; the channel is left open (the consumer selects on
// its context as well).
func (w *fakeWatch) Stop() {
	w.s.mu.Lock()
	defer w.s.mu.Unlock()
	delete(w.s.watchers, w)
}

// settle yields until the fake clock's waiters stop changing, so that the
// goroutines under test have reacted to the last step before the next.
func settle(clk *clocktesting.FakeClock) {
	last, same := -1, 0
	for same < 1000 {
		if n := clk.Waiters(); n == last {
			same++
		} else {
			last, same = n, 0
		}
		runtime.Gosched()
	}
}

// stepUntil steps the fake clock by step until cond holds; it fails the
// test after limit of fake time.
func stepUntil(t *testing.T, clk *clocktesting.FakeClock, step, limit time.Duration, what string, cond func() bool) {
	t.Helper()
	for passed := time.Duration(0); ; passed += step {
		settle(clk)
		if cond() {
			return
		}
		if passed > limit {
			t.Fatalf("%s: not after %v of fake time", what, limit)
		}
		clk.Step(step)
	}
}

package provisioner

import (
	"sync"
	"time"

	storagev1 "k8s.io/api/storage/v1"
	"k8s.io/apimachinery/pkg/types"
)

// defaultInfeasibleRetryDelay is the default Options.InfeasibleRetryDelay:
// a request the driver called invalid will not become valid by retrying it
// on the normal backoff.
const defaultInfeasibleRetryDelay = 5 * time.Minute

// slowSet holds the claims waiting out Options.InfeasibleRetryDelay, keyed
// by claim UID, with the class they were refused under.
type slowSet struct {
	mu sync.Mutex
	m  map[types.UID]slowEntry
}

type slowEntry struct {
	key       string // namespace/name, to requeue on a class change
	className string
	classUID  types.UID // "" when the class did not exist
	until     time.Time
}

// classUID identifies the class an attempt was made with: its parameters
// are immutable, so a different request needs a class deleted and created
// again, with a new UID.
func classUID(c *storagev1.StorageClass) types.UID {
	if c == nil {
		return ""
	}
	return c.UID
}

func (s *slowSet) add(uid types.UID, key, className string, class *storagev1.StorageClass, until time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.m == nil {
		s.m = map[types.UID]slowEntry{}
	}
	s.m[uid] = slowEntry{key: key, className: className, classUID: classUID(class), until: until}
}

// wait is how long the claim must still wait at now; zero when it is not
// in the set, its time is up or its class is no longer the one refused.
func (s *slowSet) wait(uid types.UID, class *storagev1.StorageClass, now time.Time) time.Duration {
	s.mu.Lock()
	defer s.mu.Unlock()
	e, ok := s.m[uid]
	if !ok {
		return 0
	}
	if !now.Before(e.until) || e.classUID != classUID(class) {
		delete(s.m, uid)
		return 0
	}
	return e.until.Sub(now)
}

func (s *slowSet) remove(uid types.UID) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.m, uid)
}

// changed returns the keys of the waiting claims of class name whose class
// is no longer the one they were refused under, and forgets them.
func (s *slowSet) changed(name string, class *storagev1.StorageClass) []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var keys []string
	for uid, e := range s.m {
		if e.className == name && e.classUID != classUID(class) {
			keys = append(keys, e.key)
			delete(s.m, uid)
		}
	}
	return keys
}

package ctrl

import (
	"testing"

	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func pvc(rv string) *v1.PersistentVolumeClaim {
	return &v1.PersistentVolumeClaim{ObjectMeta: metav1.ObjectMeta{Name: "c", ResourceVersion: rv}}
}

func TestFreshRule(t *testing.T) {
	for _, tc := range []struct {
		name           string
		mine, cached   string
		wantRV         string
		wantRemembered bool
	}{
		{"our write is newer than the cache", "12", "10", "12", true},
		{"the cache caught up", "12", "12", "12", false},
		{"the cache is newer", "12", "15", "15", false},
		{"unparsable: the cache wins", "x", "10", "10", false},
		{"unparsable cache: the cache wins", "12", "y", "y", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := NewFresh[*v1.PersistentVolumeClaim]()
			f.Remember("ns/c", pvc(tc.mine))
			got := f.Latest("ns/c", pvc(tc.cached))
			if got.ResourceVersion != tc.wantRV {
				t.Errorf("Latest = version %s, want %s", got.ResourceVersion, tc.wantRV)
			}
			if _, ok := f.Get("ns/c"); ok != tc.wantRemembered {
				t.Errorf("still remembered = %v, want %v", ok, tc.wantRemembered)
			}
		})
	}
	f := NewFresh[*v1.PersistentVolumeClaim]()
	if got := f.Latest("ns/c", pvc("3")); got.ResourceVersion != "3" {
		t.Errorf("nothing remembered: Latest = %s, want the cached 3", got.ResourceVersion)
	}
	f.Remember("ns/c", pvc("4"))
	f.Forget("ns/c")
	if f.Len() != 0 {
		t.Errorf("Forget left %d objects", f.Len())
	}
}

func TestKeyLocksSerialiseOneKey(t *testing.T) {
	var l KeyLocks
	unlock := l.Lock("ns/a")
	got := make(chan struct{})
	go func() { u := l.Lock("ns/a"); close(got); u() }()
	select {
	case <-got:
		t.Fatal("a second Lock of the same key did not wait")
	default:
	}
	unlock()
	<-got
}

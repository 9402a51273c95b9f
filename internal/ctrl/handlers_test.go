package ctrl

import (
	"errors"
	"testing"
	"time"

	v1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/tools/cache"
)

func TestTypedHandlers(t *testing.T) {
	var changed, gone []string
	h := Typed(func(c *v1.PersistentVolumeClaim) { changed = append(changed, c.Name) },
		func(o, n *v1.PersistentVolumeClaim) bool { return o.ResourceVersion != n.ResourceVersion },
		func(c *v1.PersistentVolumeClaim) { gone = append(gone, c.Name) })
	a, b := claim("a"), claim("a")
	b.ResourceVersion = "2"
	h.OnAdd(a, false)
	h.OnAdd(&v1.PersistentVolume{}, false) // another type: skipped
	h.OnUpdate(a, a)                       // not relevant
	h.OnUpdate(a, b)
	h.OnDelete(cache.DeletedFinalStateUnknown{Key: "ns/a", Obj: b})
	if len(changed) != 2 || len(gone) != 1 {
		t.Fatalf("changed %v, gone %v; want 2 changes (add, relevant update) and 1 deletion through the tombstone", changed, gone)
	}
}

func TestUpdatesHandlersSkipAdds(t *testing.T) {
	var changed, gone []string
	h := Updates(func(c *v1.PersistentVolumeClaim) { changed = append(changed, c.Name) },
		func(c *v1.PersistentVolumeClaim) { gone = append(gone, c.Name) })
	a := claim("a")
	h.OnAdd(a, true)
	h.OnUpdate(a, a)
	h.OnDelete(cache.DeletedFinalStateUnknown{Key: "ns/a", Obj: a})
	if len(changed) != 1 || len(gone) != 1 {
		t.Fatalf("changed %v, gone %v; want only the update and the deletion", changed, gone)
	}
}

func TestFreshCurrent(t *testing.T) {
	f := NewFresh[*v1.PersistentVolumeClaim]()
	f.Remember("ns/c", pvc("12"))
	notFound := apierrors.IsNotFound
	got, found, err := f.Current("ns/c", func(string) (*v1.PersistentVolumeClaim, error) { return pvc("10"), nil }, notFound)
	if err != nil || !found || got.ResourceVersion != "12" {
		t.Fatalf("Current = %v %v %v; want our newer write", got, found, err)
	}
	_, found, err = f.Current("ns/c", func(string) (*v1.PersistentVolumeClaim, error) {
		return nil, apierrors.NewNotFound(schema.GroupResource{Resource: "persistentvolumeclaims"}, "c")
	}, notFound)
	if err != nil || found || f.Len() != 0 {
		t.Fatalf("gone object: found %v, err %v, %d remembered; want not found and forgotten", found, err, f.Len())
	}
	boom := errors.New("cache broken")
	if _, _, err := f.Current("ns/c", func(string) (*v1.PersistentVolumeClaim, error) { return nil, boom }, notFound); !errors.Is(err, boom) {
		t.Fatalf("Current err = %v, want the lister's", err)
	}
}

func TestPollsDoubleUpToMaxAndReset(t *testing.T) {
	p := Polls{Start: time.Second, Max: 5 * time.Second}
	var got []time.Duration
	for range 5 {
		got = append(got, p.Next("a"))
	}
	want := []time.Duration{time.Second, 2 * time.Second, 4 * time.Second, 5 * time.Second, 5 * time.Second}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("delays %v, want %v", got, want)
		}
	}
	if d := p.Next("b"); d != time.Second {
		t.Fatalf("another key starts at %v, want 1s", d)
	}
	p.Reset("a")
	if d := p.Next("a"); d != time.Second {
		t.Fatalf("after Reset: %v, want 1s", d)
	}
}

package snapshotter

import (
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/csi-kit/sidecars/internal/ctrl"
)

// TestFresh covers upstream's TestControllerCache with the store both
// controllers keep their writes in (ctrl.Fresh): a newer copy wins,
// "10" is newer than "2", and an unparsable version lets the cache win.
func TestFresh(t *testing.T) {
	obj := func(rv string) *metav1.ObjectMeta { return &metav1.ObjectMeta{Name: "x", ResourceVersion: rv} }
	for _, tc := range []struct {
		name, mine, cached, want string
	}{
		{"mine newer", "10", "2", "10"},
		{"cache caught up", "5", "5", "5"},
		{"cache newer", "5", "7", "7"},
		{"unparsable", "abc", "3", "3"},
	} {
		f := ctrl.NewFresh[*metav1.ObjectMeta]()
		f.Remember("k", obj(tc.mine))
		if got := f.Latest("k", obj(tc.cached)).ResourceVersion; got != tc.want {
			t.Errorf("%s: latest = %s, want %s", tc.name, got, tc.want)
		}
	}
	f := ctrl.NewFresh[*metav1.ObjectMeta]()
	f.Remember("k", obj("3"))
	f.Latest("k", obj("4"))
	if _, ok := f.Get("k"); ok {
		t.Error("entry kept after the cache caught up")
	}
}

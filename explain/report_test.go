package explain

import (
	"testing"

	v1 "k8s.io/api/core/v1"
	"k8s.io/utils/ptr"
)

// The state line names the claim's class; an explicitly empty class reads
// as such, not as a dangling "class ,".
func TestStateOfClaimClass(t *testing.T) {
	for _, tc := range []struct {
		name string
		pvc  *v1.PersistentVolumeClaim
		want string
	}{
		{"named class", claim("data", "1Gi"), "Pending, class fast, request 1Gi"},
		{"no class field", claim("data", "1Gi", func(p *v1.PersistentVolumeClaim) { p.Spec.StorageClassName = nil }),
			"Pending, request 1Gi"},
		{"explicitly empty", claim("data", "1Gi", func(p *v1.PersistentVolumeClaim) { p.Spec.StorageClassName = ptr.To("") }),
			`Pending, class "" (static binding only), request 1Gi`},
		{"empty beta annotation", claim("data", "1Gi", func(p *v1.PersistentVolumeClaim) {
			p.Spec.StorageClassName = nil
			p.Annotations[v1.BetaStorageClassAnnotation] = ""
		}), `Pending, class "" (static binding only), request 1Gi`},
		{"bound, empty class", claim("data", "1Gi", bound("1Gi"), func(p *v1.PersistentVolumeClaim) { p.Spec.StorageClassName = ptr.To("") }),
			`Bound, class "" (static binding only), capacity 1Gi`},
	} {
		in := claimInput(tc.pvc)
		if got := stateOf(&in); got != tc.want {
			t.Errorf("%s: state %q, want %q", tc.name, got, tc.want)
		}
	}
}

package kube

import "testing"

func TestFinalizersPatch(t *testing.T) {
	for _, tc := range []struct {
		rv   string
		fins []string
		want string
	}{
		{"7", []string{"a", "b"}, `{"metadata":{"finalizers":["a","b"],"resourceVersion":"7"}}`},
		{"7", nil, `{"metadata":{"finalizers":null,"resourceVersion":"7"}}`},
		{"7", []string{}, `{"metadata":{"finalizers":null,"resourceVersion":"7"}}`},
	} {
		if got := FinalizersPatch(tc.rv, tc.fins); string(got) != tc.want {
			t.Errorf("FinalizersPatch(%q, %q) = %s, want %s", tc.rv, tc.fins, got, tc.want)
		}
	}
}

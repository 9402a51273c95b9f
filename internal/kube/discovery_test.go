package kube

import (
	"errors"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	fakediscovery "k8s.io/client-go/discovery/fake"
	clienttesting "k8s.io/client-go/testing"
)

func TestServes(t *testing.T) {
	withVAC := []*metav1.APIResourceList{{GroupVersion: "storage.k8s.io/v1", APIResources: []metav1.APIResource{
		{Name: "storageclasses"}, {Name: "volumeattributesclasses"}}}}
	withoutVAC := []*metav1.APIResourceList{{GroupVersion: "storage.k8s.io/v1", APIResources: []metav1.APIResource{
		{Name: "storageclasses"}}}}
	for _, tc := range []struct {
		name      string
		resources []*metav1.APIResourceList
		fail      bool
		serves    bool // Serves
		served    bool // VolumeAttributesClassServed
		wantErr   bool
	}{
		{"served", withVAC, false, true, true, false},
		{"resource missing", withoutVAC, false, false, false, false},
		{"group version missing", nil, false, false, false, false},
		{"discovery fails", withVAC, true, false, true, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			disc := &fakediscovery.FakeDiscovery{Fake: &clienttesting.Fake{Resources: tc.resources}}
			if tc.fail {
				disc.AddReactor("get", "resource", func(clienttesting.Action) (bool, runtime.Object, error) {
					return true, nil, errors.New("connection refused")
				})
			}
			got, err := Serves(disc, VolumeAttributesClassGroupVersion, VolumeAttributesClassResource)
			if got != tc.serves || (err != nil) != tc.wantErr {
				t.Errorf("Serves = %v, %v; want %v, error %v", got, err, tc.serves, tc.wantErr)
			}
			got, err = VolumeAttributesClassServed(disc)
			if got != tc.served || (err != nil) != tc.wantErr {
				t.Errorf("VolumeAttributesClassServed = %v, %v; want %v, error %v", got, err, tc.served, tc.wantErr)
			}
		})
	}
}

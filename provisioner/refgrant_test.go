package provisioner

import (
	"strings"
	"testing"

	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/utils/ptr"
)

func TestReferenceGrantAllows(t *testing.T) {
	pvcFromB := grantFrom{Group: "", Kind: "PersistentVolumeClaim", Namespace: "b"}
	clone := sourceRef{kind: "PersistentVolumeClaim", namespace: "a", name: "src"}
	snap := sourceRef{group: snapshotAPIGroup, kind: "VolumeSnapshot", namespace: "a", name: "snap"}
	toPVC := grantTo{Kind: "PersistentVolumeClaim"}
	toSnap := grantTo{Group: snapshotAPIGroup, Kind: "VolumeSnapshot"}
	for _, tc := range []struct {
		name string
		from []grantFrom
		to   []grantTo
		src  sourceRef
		want bool
	}{
		{"clone, any name", []grantFrom{pvcFromB}, []grantTo{toPVC}, clone, true},
		{"clone, named", []grantFrom{pvcFromB}, []grantTo{{Kind: "PersistentVolumeClaim", Name: ptr.To("src")}}, clone, true},
		{"clone, empty name is any", []grantFrom{pvcFromB}, []grantTo{{Kind: "PersistentVolumeClaim", Name: ptr.To("")}}, clone, true},
		{"clone, other name", []grantFrom{pvcFromB}, []grantTo{{Kind: "PersistentVolumeClaim", Name: ptr.To("other")}}, clone, false},
		{"snapshot", []grantFrom{pvcFromB}, []grantTo{toSnap}, snap, true},
		{"snapshot, named", []grantFrom{pvcFromB}, []grantTo{{Group: snapshotAPIGroup, Kind: "VolumeSnapshot", Name: ptr.To("snap")}}, snap, true},
		{"snapshot grant does not allow clones", []grantFrom{pvcFromB}, []grantTo{toSnap}, clone, false},
		{"clone grant does not allow snapshots", []grantFrom{pvcFromB}, []grantTo{toPVC}, snap, false},
		{"snapshot, wrong group", []grantFrom{pvcFromB}, []grantTo{{Group: "example.com", Kind: "VolumeSnapshot"}}, snap, false},
		{"wrong from namespace", []grantFrom{{Kind: "PersistentVolumeClaim", Namespace: "c"}}, []grantTo{toPVC}, clone, false},
		{"wrong from kind", []grantFrom{{Kind: "Pod", Namespace: "b"}}, []grantTo{toPVC}, clone, false},
		{"wrong from group", []grantFrom{{Group: "apps", Kind: "PersistentVolumeClaim", Namespace: "b"}}, []grantTo{toPVC}, clone, false},
		{"one of several entries", []grantFrom{{Kind: "Pod", Namespace: "b"}, pvcFromB}, []grantTo{toSnap, toPVC}, clone, true},
		{"empty from and to", nil, nil, clone, false},
		{"no to", []grantFrom{pvcFromB}, nil, clone, false},
	} {
		var g referenceGrant
		g.Spec.From, g.Spec.To = tc.from, tc.to
		if got := grantAllows(&g, "b", tc.src); got != tc.want {
			t.Errorf("%s: grantAllows(from %+v, to %+v, %s) = %v, want %v", tc.name, tc.from, tc.to, tc.src, got, tc.want)
		}
	}
}

// TestReferenceGrantDecoding reads a grant as the API serves it.
func TestReferenceGrantDecoding(t *testing.T) {
	obj := map[string]any{
		"apiVersion": "gateway.networking.k8s.io/v1beta1", "kind": "ReferenceGrant",
		"metadata": map[string]any{"name": "g", "namespace": "a"},
		"spec": map[string]any{
			"from": []any{map[string]any{"group": "", "kind": "PersistentVolumeClaim", "namespace": "b"}},
			"to":   []any{map[string]any{"group": "", "kind": "PersistentVolumeClaim", "name": "src"}},
		},
	}
	var g referenceGrant
	if err := runtime.DefaultUnstructuredConverter.FromUnstructured(obj, &g); err != nil {
		t.Fatal(err)
	}
	if !grantAllows(&g, "b", sourceRef{kind: "PersistentVolumeClaim", namespace: "a", name: "src"}) {
		t.Errorf("decoded grant %+v does not allow b's claims to clone a/src", g.Spec)
	}
	if grantAllows(&g, "b", sourceRef{kind: "PersistentVolumeClaim", namespace: "a", name: "other"}) {
		t.Errorf("decoded grant %+v allows b's claims to clone a/other", g.Spec)
	}
}

// TestSourceMatchesAcrossNamespaces: the clone and snapshot source
// protections see claims of other namespaces whose dataSourceRef names the
// source, and only those.
func TestSourceMatchesAcrossNamespaces(t *testing.T) {
	claim := func(ns string, ds *v1.TypedLocalObjectReference, ref *v1.TypedObjectReference) *v1.PersistentVolumeClaim {
		return &v1.PersistentVolumeClaim{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "c"},
			Spec: v1.PersistentVolumeClaimSpec{DataSource: ds, DataSourceRef: ref}}
	}
	pvcRef := func(ns *string) *v1.TypedObjectReference {
		return &v1.TypedObjectReference{Kind: "PersistentVolumeClaim", Name: "src", Namespace: ns}
	}
	snapRef := func(ns *string) *v1.TypedObjectReference {
		return &v1.TypedObjectReference{APIGroup: ptr.To(snapshotAPIGroup), Kind: "VolumeSnapshot", Name: "src", Namespace: ns}
	}
	for _, tc := range []struct {
		name           string
		pvc            *v1.PersistentVolumeClaim
		clone, restore bool // of a/src
	}{
		{"same namespace dataSource", claim("a", &v1.TypedLocalObjectReference{Kind: "PersistentVolumeClaim", Name: "src"}, nil), true, false},
		{"dataSource in another namespace", claim("b", &v1.TypedLocalObjectReference{Kind: "PersistentVolumeClaim", Name: "src"}, nil), false, false},
		{"dataSourceRef without namespace", claim("a", nil, pvcRef(nil)), true, false},
		{"dataSourceRef with its own namespace", claim("a", nil, pvcRef(ptr.To("a"))), true, false},
		{"dataSourceRef from b to a", claim("b", nil, pvcRef(ptr.To("a"))), true, false},
		{"dataSourceRef from b, no namespace", claim("b", nil, pvcRef(nil)), false, false},
		{"dataSourceRef from a to c", claim("a", nil, pvcRef(ptr.To("c"))), false, false},
		{"snapshot ref from b to a", claim("b", nil, snapRef(ptr.To("a"))), false, true},
		{"snapshot ref from b, no namespace", claim("b", nil, snapRef(nil)), false, false},
		{"snapshot dataSource", claim("a", &v1.TypedLocalObjectReference{APIGroup: ptr.To(snapshotAPIGroup), Kind: "VolumeSnapshot", Name: "src"}, nil), false, true},
	} {
		if got := clonesFrom(tc.pvc, "a", "src"); got != tc.clone {
			t.Errorf("%s: clonesFrom(a/src) = %v, want %v", tc.name, got, tc.clone)
		}
		if got := restoresFrom(tc.pvc, "a", "src"); got != tc.restore {
			t.Errorf("%s: restoresFrom(a/src) = %v, want %v", tc.name, got, tc.restore)
		}
	}
}

func TestCrossNamespaceOptionsNeedDynamicClient(t *testing.T) {
	err := Options{CrossNamespaceDataSources: true}.withDefaults().Validate()
	if err == nil || !strings.Contains(err.Error(), "DynamicClient") {
		t.Errorf("Validate without DynamicClient: %v, want an error naming DynamicClient", err)
	}
	if err := (Options{}).withDefaults().Validate(); err != nil {
		t.Errorf("Validate with the gate off and no DynamicClient: %v", err)
	}
}

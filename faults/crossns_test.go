package faults

import (
	"context"
	"fmt"
	"os"
	"slices"
	"testing"
	"time"

	"github.com/container-storage-interface/spec/lib/go/csi"
	crdv1 "github.com/kubernetes-csi/external-snapshotter/client/v8/apis/volumesnapshot/v1"
	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"

	"github.com/csi-kit/sidecars/provisioner"
	"github.com/csi-kit/sidecars/testkit/controlplane"
	"github.com/csi-kit/sidecars/testkit/eventually"
)

var referenceGrants = schema.GroupVersionResource{Group: "gateway.networking.k8s.io", Version: "v1beta1", Resource: "referencegrants"}

// TestHostileCrossNamespaceReferenceGrant: on a control plane whose
// kube-apiserver keeps a dataSourceRef's namespace (feature gate
// CrossNamespaceVolumeDataSource) and serves ReferenceGrants (the CRD of
// the provisioner's testdata), the attacker's claims name A's snapshot and
// A's claim by dataSourceRef. A has granted its data to a third namespace
// only, and the attacker has granted itself everything in its own
// namespace. Neither with the provisioner's gate off nor with it on does
// any attacker claim get A's data; each gets a Warning.
func TestHostileCrossNamespaceReferenceGrant(t *testing.T) {
	if cp == nil {
		t.Skip("fault suite: needs the control plane (not in -short mode)")
	}
	c := controlplane.StartT(t, controlplane.Options{
		ControllerManager: true, SnapshotCRDs: true, Progress: os.Stderr,
		CRDDirs:            []string{"../provisioner/testdata/referencegrant"},
		ExtraAPIServerArgs: []string{"--feature-gates=CrossNamespaceVolumeDataSource=true"},
	})
	dyn := dynamic.NewForConfigOrDie(c.Config())
	caps := snapshotCaps()
	caps.Clone = true
	for _, gate := range []bool{false, true} {
		t.Run(fmt.Sprintf("ProvisionerGate=%v", gate), func(t *testing.T) {
			opts := provisioner.Options{CrossNamespaceDataSources: gate}
			if gate {
				opts.DynamicClient = dyn
			}
			h := newHostileOn(t, c, opts, caps)
			grant := func(ns, name, fromNS string, to []any) {
				t.Helper()
				g := &unstructured.Unstructured{Object: map[string]any{
					"apiVersion": "gateway.networking.k8s.io/v1beta1", "kind": "ReferenceGrant",
					"metadata": map[string]any{"name": name, "namespace": ns},
					"spec": map[string]any{
						"from": []any{map[string]any{"group": "", "kind": "PersistentVolumeClaim", "namespace": fromNS}},
						"to":   to,
					},
				}}
				if _, err := dyn.Resource(referenceGrants).Namespace(ns).Create(h.ctx, g, metav1.CreateOptions{}); err != nil {
					t.Fatal(err)
				}
			}
			everything := []any{
				map[string]any{"group": "", "kind": "PersistentVolumeClaim"},
				map[string]any{"group": crdv1.GroupName, "kind": "VolumeSnapshot"},
			}
			grant(h.ns, "to-partner", h.ns+"-partner", everything) // A's, for another namespace
			grant(h.atk.ns, "self-service", h.atk.ns, everything)  // the attacker's own, useless
			group := crdv1.GroupName
			refs := map[string]*v1.TypedObjectReference{
				"snap-by-ref":  {APIGroup: &group, Kind: "VolumeSnapshot", Name: h.snap.Name, Namespace: &h.ns},
				"clone-by-ref": {Kind: "PersistentVolumeClaim", Name: h.claim.Name, Namespace: &h.ns},
			}
			for name, ref := range refs {
				pvc := h.attackerClaim(name)
				pvc.Spec.DataSourceRef = ref
				h.createClaim(pvc)
				got, err := h.kube.CoreV1().PersistentVolumeClaims(h.atk.ns).Get(h.ctx, name, metav1.GetOptions{})
				if err != nil {
					t.Fatal(err)
				}
				if got.Spec.DataSourceRef == nil || got.Spec.DataSourceRef.Namespace == nil || *got.Spec.DataSourceRef.Namespace != h.ns {
					t.Fatalf("claim %s stored with dataSourceRef %+v: the API server's gate is off, the attack tests nothing", name, got.Spec.DataSourceRef)
				}
			}
			for name := range refs {
				h.warned(name, true)
			}
			h.survives()
			for name := range refs {
				got, err := h.kube.CoreV1().PersistentVolumeClaims(h.atk.ns).Get(h.ctx, name, metav1.GetOptions{})
				if err == nil && (got.Status.Phase == v1.ClaimBound || got.Spec.VolumeName != "") {
					t.Errorf("attacker's claim %s is bound (to %q) from another namespace's data", name, got.Spec.VolumeName)
				}
			}
			// Nothing of A's carries a finalizer put there for the attacker.
			src, err := h.kube.CoreV1().PersistentVolumeClaims(h.ns).Get(h.ctx, h.claim.Name, metav1.GetOptions{})
			if err == nil && slices.Contains(src.Finalizers, provisioner.FinalizerCloneSource) {
				t.Errorf("victim's claim got %s for the attacker's clone", provisioner.FinalizerCloneSource)
			}
			snap, err := h.snaps.SnapshotV1().VolumeSnapshots(h.ns).Get(h.ctx, h.snap.Name, metav1.GetOptions{})
			if err == nil && slices.Contains(snap.Finalizers, provisioner.FinalizerSnapshotSource) {
				t.Errorf("victim's snapshot got %s for the attacker's restore", provisioner.FinalizerSnapshotSource)
			}
			if gate {
				// Control: the grant A gives the attacker's namespace lets
				// the same clone through, so the refusals above came from
				// the missing grant.
				grant(h.ns, "to-attacker", h.atk.ns, []any{map[string]any{"group": "", "kind": "PersistentVolumeClaim", "name": h.claim.Name}})
				eventually.Require(t, 60*time.Second, "the granted clone bound", func(ctx context.Context) error {
					got, err := h.kube.CoreV1().PersistentVolumeClaims(h.atk.ns).Get(ctx, "clone-by-ref", metav1.GetOptions{})
					if err == nil && got.Status.Phase != v1.ClaimBound {
						err = fmt.Errorf("phase %s", got.Status.Phase)
					}
					return err
				})
				var granted bool
				for _, r := range h.drv.Requests("CreateVolume") {
					granted = granted || r.(*csi.CreateVolumeRequest).GetVolumeContentSource().GetVolume().GetVolumeId() == h.volumeID
				}
				if !granted {
					t.Errorf("the granted clone did not get A's volume %s", h.volumeID)
				}
				// That CreateVolume had A's data by A's leave: forget it, so
				// that finish checks only what follows.
				h.drv.ResetCalls()
			}
			h.finish()
		})
	}
}

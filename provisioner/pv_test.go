package provisioner

import (
	"strings"
	"testing"

	"github.com/container-storage-interface/spec/lib/go/csi"
	v1 "k8s.io/api/core/v1"
	storagev1 "k8s.io/api/storage/v1"

	"github.com/csi-kit/sidecars/csiconn"
	"github.com/csi-kit/sidecars/internal/params"
)

func TestBuildPV(t *testing.T) {
	p := &Provisioner{opts: Options{ControllerPublishReadOnly: true}.withDefaults(), name: drv, identity: "id",
		caps: csiconn.Capabilities{Topology: true}}
	retain := v1.PersistentVolumeReclaimRetain
	block := v1.PersistentVolumeBlock
	for _, tc := range []struct {
		name  string
		pvc   *v1.PersistentVolumeClaim
		class *storagev1.StorageClass
		a     *attempt
		vol   *csi.Volume
		check func(t *testing.T, pv *v1.PersistentVolume)
	}{
		{"plain delete policy", pvcWith(nil), immediate(), &attempt{pvName: "pvc-1", fsType: "ext4", secretRefs: map[string]*v1.SecretReference{},
			req: &csi.CreateVolumeRequest{CapacityRange: &csi.CapacityRange{RequiredBytes: 1 << 30}}},
			&csi.Volume{VolumeId: "v1", VolumeContext: map[string]string{"k": "v"}},
			func(t *testing.T, pv *v1.PersistentVolume) {
				if !hasFinalizer(pv.Finalizers, FinalizerPV) || pv.Spec.PersistentVolumeReclaimPolicy != v1.PersistentVolumeReclaimDelete {
					t.Errorf("finalizers %v policy %v", pv.Finalizers, pv.Spec.PersistentVolumeReclaimPolicy)
				}
				q := pv.Spec.Capacity[v1.ResourceStorage]
				if q.Value() != 1<<30 {
					t.Errorf("capacity %v: zero reply must mean the requested size", q.String())
				}
				if pv.Spec.CSI.VolumeAttributes["k"] != "v" || pv.Spec.CSI.VolumeAttributes[provisionerIDKey] != "id" || pv.Spec.CSI.FSType != "ext4" {
					t.Errorf("csi source %+v", pv.Spec.CSI)
				}
				if v, ok := pv.Annotations[annDeletionSecretName]; !ok || v != "" {
					t.Errorf("deletion secret annotation must be present and empty: %v", pv.Annotations)
				}
				if pv.Spec.NodeAffinity != nil || pv.Spec.CSI.ReadOnly {
					t.Errorf("affinity %v readOnly %v", pv.Spec.NodeAffinity, pv.Spec.CSI.ReadOnly)
				}
				if pv.Spec.ClaimRef.UID != "uid-1" || pv.Spec.StorageClassName != "sc" || pv.Annotations[annProvisionedBy] != drv {
					t.Errorf("claimRef %v class %q", pv.Spec.ClaimRef, pv.Spec.StorageClassName)
				}
			}},
		{"retain, block, ROX, secrets, topology", pvcWith(func(c *v1.PersistentVolumeClaim) {
			c.Spec.VolumeMode = &block
			c.Spec.AccessModes = []v1.PersistentVolumeAccessMode{v1.ReadOnlyMany}
		}), func() *storagev1.StorageClass {
			c := immediate()
			c.ReclaimPolicy = &retain
			c.MountOptions = []string{"ro"}
			return c
		}(), &attempt{pvName: "pvc-1", fsType: "ext4", block: true, secretRefs: map[string]*v1.SecretReference{
			params.ProvisionerSecret.Op: {Name: "p", Namespace: "n"}, params.NodeStageSecret.Op: {Name: "s", Namespace: "n"},
			params.ControllerModifySecret.Op: {Name: "m", Namespace: "n"}},
			req: &csi.CreateVolumeRequest{CapacityRange: &csi.CapacityRange{RequiredBytes: 1}}},
			&csi.Volume{VolumeId: "v1", CapacityBytes: 5 << 30, AccessibleTopology: []*csi.Topology{{Segments: map[string]string{"z": "a"}}}},
			func(t *testing.T, pv *v1.PersistentVolume) {
				if len(pv.Finalizers) != 0 || pv.Spec.PersistentVolumeReclaimPolicy != retain {
					t.Errorf("finalizers %v policy %v", pv.Finalizers, pv.Spec.PersistentVolumeReclaimPolicy)
				}
				if pv.Spec.CSI.FSType != "" || !pv.Spec.CSI.ReadOnly || len(pv.Spec.MountOptions) != 1 {
					t.Errorf("block PV: fsType %q readOnly %v mountOptions %v", pv.Spec.CSI.FSType, pv.Spec.CSI.ReadOnly, pv.Spec.MountOptions)
				}
				if pv.Annotations[annDeletionSecretName] != "p" || pv.Annotations[annModifySecretName] != "m" || pv.Spec.CSI.NodeStageSecretRef.Name != "s" {
					t.Errorf("secrets: annotations %v stage %v", pv.Annotations, pv.Spec.CSI.NodeStageSecretRef)
				}
				if pv.Spec.NodeAffinity == nil {
					t.Errorf("no node affinity from accessible topology")
				}
			}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			pv, err := p.buildPV(tc.pvc, tc.class, tc.a, tc.vol)
			if err != nil {
				t.Fatal(err)
			}
			tc.check(t, pv)
		})
	}
}

func TestCheckResponse(t *testing.T) {
	p := &Provisioner{}
	a := &attempt{req: &csi.CreateVolumeRequest{CapacityRange: &csi.CapacityRange{RequiredBytes: 100}}}
	for _, tc := range []struct {
		name string
		a    *attempt
		vol  *csi.Volume
		ok   bool
	}{
		{"ok", a, &csi.Volume{VolumeId: "v", CapacityBytes: 100}, true},
		{"zero capacity accepted", a, &csi.Volume{VolumeId: "v"}, true},
		{"too small", a, &csi.Volume{VolumeId: "v", CapacityBytes: 99}, false},
		{"no id", a, &csi.Volume{}, false},
		{"source missing in reply", &attempt{req: &csi.CreateVolumeRequest{CapacityRange: &csi.CapacityRange{},
			VolumeContentSource: &csi.VolumeContentSource{}}}, &csi.Volume{VolumeId: "v"}, false},
	} {
		if err := p.checkResponse(tc.a, tc.vol); (err == nil) != tc.ok {
			t.Errorf("%s: err %v", tc.name, err)
		}
	}
}

func TestOptionsValidate(t *testing.T) {
	if err := (Options{}).withDefaults().Validate(); err != nil {
		t.Errorf("defaults invalid: %v", err)
	}
	err := Options{VolumeNameUUIDLength: 33, Workers: -1, Capacity: &CapacityOptions{}}.withDefaults().Validate()
	for _, want := range []string{"VolumeNameUUIDLength", "Workers", "Capacity.Namespace"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Validate = %v, want mention of %s", err, want)
		}
	}
}

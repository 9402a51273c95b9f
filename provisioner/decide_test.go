package provisioner

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/container-storage-interface/spec/lib/go/csi"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	v1 "k8s.io/api/core/v1"
	storagev1 "k8s.io/api/storage/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

const drv = "test.csi.k8s.io"

func TestVolumeName(t *testing.T) {
	uid := "3f1e2d4c-aaaa-bbbb-cccc-0123456789ab"
	for _, tc := range []struct {
		prefix string
		n      int
		want   string
	}{
		{"pvc", -1, "pvc-" + uid},
		{"pvc", 0, "pvc-" + uid},
		{"local", -1, "local-" + uid},
		{"pvc", 8, "pvc-3f1e2d4c"},
		{"pvc", 10, "pvc-3f1e2d4caa"},
		{"pvc", 32, "pvc-3f1e2d4caaaabbbbcccc0123456789ab"},
	} {
		got, err := volumeName(tc.prefix, uid, tc.n)
		if err != nil || got != tc.want {
			t.Errorf("volumeName(%q, %d) = %q, %v; want %q", tc.prefix, tc.n, got, err, tc.want)
		}
	}
	if _, err := volumeName("", uid, 0); err == nil {
		t.Error("empty prefix accepted")
	}
	if _, err := volumeName("pvc", "", 0); err == nil {
		t.Error("empty UID accepted")
	}
}

func wffc() *storagev1.StorageClass {
	m := storagev1.VolumeBindingWaitForFirstConsumer
	return &storagev1.StorageClass{ObjectMeta: metav1.ObjectMeta{Name: "sc"}, Provisioner: drv, VolumeBindingMode: &m}
}

func immediate() *storagev1.StorageClass {
	return &storagev1.StorageClass{ObjectMeta: metav1.ObjectMeta{Name: "sc"}, Provisioner: drv}
}

func pvcWith(mut func(*v1.PersistentVolumeClaim)) *v1.PersistentVolumeClaim {
	sc := "sc"
	c := &v1.PersistentVolumeClaim{
		ObjectMeta: metav1.ObjectMeta{Name: "c", Namespace: "ns", UID: "uid-1",
			Annotations: map[string]string{annStorageProvisioner: drv}},
		Spec: v1.PersistentVolumeClaimSpec{StorageClassName: &sc, AccessModes: []v1.PersistentVolumeAccessMode{v1.ReadWriteOnce}},
	}
	if mut != nil {
		mut(c)
	}
	return c
}

func TestDecideClaim(t *testing.T) {
	now := metav1.Now()
	for _, tc := range []struct {
		name  string
		pvc   *v1.PersistentVolumeClaim
		class *storagev1.StorageClass
		hasPV bool
		want  claimAction
	}{
		{"provision immediate", pvcWith(nil), immediate(), false, claimProvision},
		{"beta annotation", pvcWith(func(c *v1.PersistentVolumeClaim) {
			c.Annotations = map[string]string{annBetaStorageProvisioner: drv}
		}), immediate(), false, claimProvision},
		{"migrated-to", pvcWith(func(c *v1.PersistentVolumeClaim) {
			c.Annotations = map[string]string{annStorageProvisioner: "kubernetes.io/gce-pd", annMigratedTo: drv}
		}), immediate(), false, claimProvision},
		{"other provisioner", pvcWith(func(c *v1.PersistentVolumeClaim) { c.Annotations[annStorageProvisioner] = "other" }), immediate(), false, claimIgnore},
		{"no annotation", pvcWith(func(c *v1.PersistentVolumeClaim) { c.Annotations = nil }), immediate(), false, claimIgnore},
		{"bound", pvcWith(func(c *v1.PersistentVolumeClaim) { c.Spec.VolumeName = "pv" }), immediate(), false, claimIgnore},
		{"PV exists", pvcWith(nil), immediate(), true, claimIgnore},
		{"class of other driver", pvcWith(nil), &storagev1.StorageClass{ObjectMeta: metav1.ObjectMeta{Name: "sc"}, Provisioner: "x"}, false, claimIgnore},
		{"missing class fails in attempt", pvcWith(nil), nil, false, claimProvision},
		{"wffc without node", pvcWith(nil), wffc(), false, claimWait},
		{"wffc with node", pvcWith(func(c *v1.PersistentVolumeClaim) { c.Annotations[annSelectedNode] = "n1" }), wffc(), false, claimProvision},
		{"deleted without intent", pvcWith(func(c *v1.PersistentVolumeClaim) { c.DeletionTimestamp = &now }), immediate(), false, claimIgnore},
		{"deleted with intent, no PV", pvcWith(func(c *v1.PersistentVolumeClaim) {
			c.DeletionTimestamp = &now
			c.Finalizers = []string{FinalizerIntent}
		}), immediate(), false, claimConvertIntent},
		{"deleted with intent, class gone", pvcWith(func(c *v1.PersistentVolumeClaim) {
			c.DeletionTimestamp = &now
			c.Finalizers = []string{FinalizerIntent}
		}), nil, false, claimConvertIntent},
		{"deleted with intent and PV", pvcWith(func(c *v1.PersistentVolumeClaim) {
			c.DeletionTimestamp = &now
			c.Finalizers = []string{FinalizerIntent}
		}), immediate(), true, claimConvertIntent},
		{"deleted bound with intent", pvcWith(func(c *v1.PersistentVolumeClaim) {
			c.DeletionTimestamp = &now
			c.Finalizers = []string{FinalizerIntent}
			c.Spec.VolumeName = "pv"
		}), immediate(), false, claimConvertIntent},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got, why := decideClaim(tc.pvc, tc.class, drv, tc.hasPV); got != tc.want {
				t.Errorf("decideClaim = %v (%s), want %v", got, why, tc.want)
			}
		})
	}
}

// TestProvisionErrorHandling mirrors upstream's table: every code, with and
// without topology and a selected node.
func TestProvisionErrorHandling(t *testing.T) {
	background := map[codes.Code]bool{codes.Canceled: true, codes.DeadlineExceeded: true, codes.Unavailable: true, codes.Aborted: true}
	all := []codes.Code{codes.Canceled, codes.Unknown, codes.InvalidArgument, codes.DeadlineExceeded, codes.NotFound,
		codes.AlreadyExists, codes.PermissionDenied, codes.ResourceExhausted, codes.FailedPrecondition, codes.Aborted,
		codes.OutOfRange, codes.Unimplemented, codes.Internal, codes.Unavailable, codes.DataLoss, codes.Unauthenticated}
	for _, topo := range []bool{false, true} {
		for _, node := range []bool{false, true} {
			for _, c := range all {
				t.Run(fmt.Sprintf("topology=%v node=%v %s", topo, node, c), func(t *testing.T) {
					want := stateFinished
					switch {
					case background[c]:
						want = stateBackground
					case c == codes.ResourceExhausted && topo && node:
						want = stateReschedule
					}
					if got := classifyCreate(status.Error(c, "x"), topo, node); got != want {
						t.Errorf("classifyCreate = %v, want %v", got, want)
					}
				})
			}
		}
	}
	if got := classifyCreate(errors.New("not grpc"), true, true); got != stateBackground {
		t.Errorf("non-gRPC error: %v, want background", got)
	}
}

func TestFSType(t *testing.T) {
	for _, tc := range []struct {
		params  map[string]string
		def     string
		want    string
		wantErr bool
	}{
		{nil, "", "", false},
		{nil, "ext4", "ext4", false},
		{map[string]string{"fstype": "xfs"}, "ext4", "xfs", false},
		{map[string]string{"FSType": "xfs"}, "", "xfs", false},
		{map[string]string{"csi.storage.k8s.io/fstype": "btrfs"}, "ext4", "btrfs", false},
		{map[string]string{"fstype": "xfs", "csi.storage.k8s.io/fstype": "ext4"}, "", "", true},
	} {
		got, err := fsTypeOf(tc.params, tc.def)
		if (err != nil) != tc.wantErr || got != tc.want {
			t.Errorf("fsTypeOf(%v, %q) = %q, %v; want %q (err %v)", tc.params, tc.def, got, err, tc.want, tc.wantErr)
		}
	}
}

func TestCapabilities(t *testing.T) {
	M := csi.VolumeCapability_AccessMode_Mode(0)
	_ = M
	for _, tc := range []struct {
		name  string
		modes []v1.PersistentVolumeAccessMode
		snmw  bool
		want  []csi.VolumeCapability_AccessMode_Mode
	}{
		{"RWO", []v1.PersistentVolumeAccessMode{v1.ReadWriteOnce}, false, []csi.VolumeCapability_AccessMode_Mode{csi.VolumeCapability_AccessMode_SINGLE_NODE_WRITER}},
		{"RWO multi", []v1.PersistentVolumeAccessMode{v1.ReadWriteOnce}, true, []csi.VolumeCapability_AccessMode_Mode{csi.VolumeCapability_AccessMode_SINGLE_NODE_MULTI_WRITER}},
		{"RWOP", []v1.PersistentVolumeAccessMode{v1.ReadWriteOncePod}, false, []csi.VolumeCapability_AccessMode_Mode{csi.VolumeCapability_AccessMode_SINGLE_NODE_WRITER}},
		{"RWOP multi", []v1.PersistentVolumeAccessMode{v1.ReadWriteOncePod}, true, []csi.VolumeCapability_AccessMode_Mode{csi.VolumeCapability_AccessMode_SINGLE_NODE_SINGLE_WRITER}},
		{"ROX+RWX", []v1.PersistentVolumeAccessMode{v1.ReadOnlyMany, v1.ReadWriteMany}, false, []csi.VolumeCapability_AccessMode_Mode{
			csi.VolumeCapability_AccessMode_MULTI_NODE_READER_ONLY, csi.VolumeCapability_AccessMode_MULTI_NODE_MULTI_WRITER}},
	} {
		for _, block := range []bool{false, true} {
			caps, err := capabilities(tc.modes, block, "ext4", []string{"ro"}, tc.snmw)
			if err != nil || len(caps) != len(tc.want) {
				t.Fatalf("%s: capabilities = %v, %v", tc.name, caps, err)
			}
			for i, c := range caps {
				if c.AccessMode.Mode != tc.want[i] {
					t.Errorf("%s: mode[%d] = %v, want %v", tc.name, i, c.AccessMode.Mode, tc.want[i])
				}
				if block != (c.GetBlock() != nil) {
					t.Errorf("%s block=%v: access type %v", tc.name, block, c.AccessType)
				}
				if !block && (c.GetMount().FsType != "ext4" || c.GetMount().MountFlags[0] != "ro") {
					t.Errorf("%s: mount = %v", tc.name, c.GetMount())
				}
			}
		}
	}
	if _, err := capabilities(nil, false, "", nil, false); err == nil {
		t.Error("no access modes accepted")
	}
	if _, err := capabilities([]v1.PersistentVolumeAccessMode{"Bogus"}, false, "", nil, false); err == nil || !strings.Contains(err.Error(), "Bogus") {
		t.Errorf("unknown mode: %v", err)
	}
}

func TestDecideVolume(t *testing.T) {
	now := metav1.Now()
	pv := func(mut func(*v1.PersistentVolume)) *v1.PersistentVolume {
		p := &v1.PersistentVolume{
			ObjectMeta: metav1.ObjectMeta{Name: "pv", Annotations: map[string]string{annProvisionedBy: drv}},
			Spec: v1.PersistentVolumeSpec{PersistentVolumeReclaimPolicy: v1.PersistentVolumeReclaimDelete,
				PersistentVolumeSource: v1.PersistentVolumeSource{CSI: &v1.CSIPersistentVolumeSource{Driver: drv, VolumeHandle: "h"}}},
			Status: v1.PersistentVolumeStatus{Phase: v1.VolumeBound},
		}
		mut(p)
		return p
	}
	for _, tc := range []struct {
		name string
		pv   *v1.PersistentVolume
		want volumeAction
	}{
		{"bound without finalizer", pv(func(*v1.PersistentVolume) {}), volumeAddFinalizer},
		{"static CSI PV gets finalizer", pv(func(p *v1.PersistentVolume) { p.Annotations = nil }), volumeAddFinalizer},
		{"bound with finalizer", pv(func(p *v1.PersistentVolume) { p.Finalizers = []string{FinalizerPV} }), volumeIgnore},
		{"released delete", pv(func(p *v1.PersistentVolume) { p.Status.Phase = v1.VolumeReleased; p.Finalizers = []string{FinalizerPV} }), volumeDelete},
		{"released terminating with finalizer", pv(func(p *v1.PersistentVolume) {
			p.Status.Phase = v1.VolumeReleased
			p.Finalizers = []string{FinalizerPV}
			p.DeletionTimestamp = &now
		}), volumeDelete},
		{"terminating without finalizer", pv(func(p *v1.PersistentVolume) { p.Status.Phase = v1.VolumeReleased; p.DeletionTimestamp = &now }), volumeIgnore},
		{"migrated in-tree PV gets no finalizer", pv(func(p *v1.PersistentVolume) {
			p.Annotations = map[string]string{annProvisionedBy: "kubernetes.io/aws-ebs", annMigratedTo: drv}
			p.Spec.CSI = nil
		}), volumeIgnore},
		{"migrated in-tree PV loses an old finalizer", pv(func(p *v1.PersistentVolume) {
			p.Annotations = map[string]string{annProvisionedBy: "kubernetes.io/aws-ebs", annMigratedTo: drv}
			p.Spec.CSI = nil
			p.Finalizers = []string{FinalizerPV}
			p.Status.Phase = v1.VolumeReleased
		}), volumeRemoveFinalizer},
		{"retain drops finalizer", pv(func(p *v1.PersistentVolume) {
			p.Spec.PersistentVolumeReclaimPolicy = v1.PersistentVolumeReclaimRetain
			p.Finalizers = []string{FinalizerPV}
		}), volumeRemoveFinalizer},
		{"retain released", pv(func(p *v1.PersistentVolume) {
			p.Spec.PersistentVolumeReclaimPolicy = v1.PersistentVolumeReclaimRetain
			p.Status.Phase = v1.VolumeReleased
		}), volumeIgnore},
		{"other provisioner", pv(func(p *v1.PersistentVolume) { p.Annotations[annProvisionedBy] = "x" }), volumeIgnore},
		{"other driver, no annotation", pv(func(p *v1.PersistentVolume) { p.Annotations = nil; p.Spec.CSI.Driver = "x" }), volumeIgnore},
		{"available", pv(func(p *v1.PersistentVolume) { p.Status.Phase = v1.VolumeAvailable }), volumeIgnore},
		{"failed: shouldn't delete", pv(func(p *v1.PersistentVolume) { p.Status.Phase = v1.VolumeFailed; p.Finalizers = []string{FinalizerPV} }), volumeIgnore},
		{"migrated to", pv(func(p *v1.PersistentVolume) {
			p.Annotations = map[string]string{annProvisionedBy: "kubernetes.io/gce-pd", annMigratedTo: drv}
			p.Status.Phase = v1.VolumeReleased
		}), volumeDelete},
		{"statically provisioned in-tree volume", pv(func(p *v1.PersistentVolume) {
			p.Annotations = nil
			p.Spec.CSI = nil
			p.Status.Phase = v1.VolumeReleased
		}), volumeIgnore},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := decideVolume(tc.pv, drv); got != tc.want {
				t.Errorf("decideVolume = %v, want %v", got, tc.want)
			}
		})
	}
}

func TestFitsBytes(t *testing.T) {
	for _, tc := range []struct {
		q  string
		ok bool
	}{
		{"1Gi", true}, {"8Ei", true} /* the parser caps it at MaxInt64 */, {"10E", false}, {"9223372036854775807", true}, {"9223372036854775808", false}, {"7Ei", true},
	} {
		if err := fitsBytes(resource.MustParse(tc.q)); (err == nil) != tc.ok {
			t.Errorf("fitsBytes(%s) = %v, want ok=%v", tc.q, err, tc.ok)
		}
	}
}

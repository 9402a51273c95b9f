package resizer

import (
	"strings"
	"testing"

	"github.com/container-storage-interface/spec/lib/go/csi"
	v1 "k8s.io/api/core/v1"
)

// TestVolumeCapability follows upstream's TestGetVolumeCapabilities.
func TestVolumeCapability(t *testing.T) {
	block := v1.PersistentVolumeBlock
	rwo, rox, rwx, rwop := v1.ReadWriteOnce, v1.ReadOnlyMany, v1.ReadWriteMany, v1.ReadWriteOncePod
	for _, tc := range []struct {
		name   string
		modes  []v1.PersistentVolumeAccessMode
		block  bool
		fsType string
		opts   []string
		snmw   bool
		want   csi.VolumeCapability_AccessMode_Mode
		err    bool
	}{
		{name: "RWX", modes: []v1.PersistentVolumeAccessMode{rwx}, want: csi.VolumeCapability_AccessMode_MULTI_NODE_MULTI_WRITER},
		{name: "Block RWX", modes: []v1.PersistentVolumeAccessMode{rwx}, block: true, want: csi.VolumeCapability_AccessMode_MULTI_NODE_MULTI_WRITER},
		{name: "RWX + specified fsType", modes: []v1.PersistentVolumeAccessMode{rwx}, fsType: "ext4", want: csi.VolumeCapability_AccessMode_MULTI_NODE_MULTI_WRITER},
		{name: "RWO", modes: []v1.PersistentVolumeAccessMode{rwo}, want: csi.VolumeCapability_AccessMode_SINGLE_NODE_WRITER},
		{name: "Block RWO", modes: []v1.PersistentVolumeAccessMode{rwo}, block: true, want: csi.VolumeCapability_AccessMode_SINGLE_NODE_WRITER},
		{name: "ROX", modes: []v1.PersistentVolumeAccessMode{rox}, want: csi.VolumeCapability_AccessMode_MULTI_NODE_READER_ONLY},
		{name: "RWX + anytyhing", modes: []v1.PersistentVolumeAccessMode{rwx, rox, rwo}, want: csi.VolumeCapability_AccessMode_MULTI_NODE_MULTI_WRITER},
		{name: "mount options", modes: []v1.PersistentVolumeAccessMode{rwo}, opts: []string{"noatime"}, want: csi.VolumeCapability_AccessMode_SINGLE_NODE_WRITER},
		{name: "ROX+RWO", modes: []v1.PersistentVolumeAccessMode{rox, rwo}, err: true},
		{name: "nothing", err: true},
		{name: "RWX with SINGLE_NODE_MULTI_WRITER capable driver", modes: []v1.PersistentVolumeAccessMode{rwx}, snmw: true, want: csi.VolumeCapability_AccessMode_MULTI_NODE_MULTI_WRITER},
		{name: "ROX with SINGLE_NODE_MULTI_WRITER capable driver", modes: []v1.PersistentVolumeAccessMode{rox}, snmw: true, want: csi.VolumeCapability_AccessMode_MULTI_NODE_READER_ONLY},
		{name: "RWO with SINGLE_NODE_MULTI_WRITER capable driver", modes: []v1.PersistentVolumeAccessMode{rwo}, snmw: true, want: csi.VolumeCapability_AccessMode_SINGLE_NODE_MULTI_WRITER},
		{name: "RWOP with SINGLE_NODE_MULTI_WRITER capable driver", modes: []v1.PersistentVolumeAccessMode{rwop}, snmw: true, want: csi.VolumeCapability_AccessMode_SINGLE_NODE_SINGLE_WRITER},
		{name: "ROX+RWO with SINGLE_NODE_MULTI_WRITER capable driver", modes: []v1.PersistentVolumeAccessMode{rox, rwo}, snmw: true, err: true},
		{name: "ROX+RWOP with SINGLE_NODE_MULTI_WRITER capable driver", modes: []v1.PersistentVolumeAccessMode{rox, rwop}, snmw: true, err: true},
		{name: "RWO+RWOP with SINGLE_NODE_MULTI_WRITER capable driver", modes: []v1.PersistentVolumeAccessMode{rwo, rwop}, snmw: true, err: true},
		{name: "nothing with SINGLE_NODE_MULTI_WRITER capable driver", snmw: true, err: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			pv := withPV(volume("1Gi"), func(pv *v1.PersistentVolume) {
				pv.Spec.AccessModes = tc.modes
				pv.Spec.CSI.FSType = tc.fsType
				pv.Spec.MountOptions = tc.opts
				if tc.block {
					pv.Spec.VolumeMode = &block
				}
			})
			got, err := volumeCapability(pv, tc.snmw)
			if tc.err {
				if err == nil {
					t.Fatalf("want an error, got %v", got)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got.GetAccessMode().GetMode() != tc.want {
				t.Errorf("mode = %v, want %v", got.GetAccessMode().GetMode(), tc.want)
			}
			if tc.block != (got.GetBlock() != nil) {
				t.Errorf("block = %v, want %v", got.GetBlock() != nil, tc.block)
			}
			if !tc.block && (got.GetMount().GetFsType() != tc.fsType || strings.Join(got.GetMount().GetMountFlags(), ",") != strings.Join(tc.opts, ",")) {
				t.Errorf("mount = %v", got.GetMount())
			}
		})
	}
}

package resizer

import (
	"context"
	"testing"

	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func TestTranslateMigrated(t *testing.T) {
	const ebs = "ebs.csi.aws.com"
	pv := func() *v1.PersistentVolume {
		return &v1.PersistentVolume{ObjectMeta: metav1.ObjectMeta{Name: "pv"},
			Spec: v1.PersistentVolumeSpec{PersistentVolumeSource: v1.PersistentVolumeSource{
				AWSElasticBlockStore: &v1.AWSElasticBlockStoreVolumeSource{VolumeID: "aws://z1/vol-1", FSType: "ext4"}}}}
	}
	claim := func(resizer string) *v1.PersistentVolumeClaim {
		return &v1.PersistentVolumeClaim{ObjectMeta: metav1.ObjectMeta{Annotations: map[string]string{AnnStorageResizer: resizer}}}
	}
	ctx := context.Background()
	got, ok, err := translateMigrated(ctx, claim(ebs), pv(), ebs)
	if err != nil || !ok || got.Spec.CSI == nil || got.Spec.CSI.VolumeHandle != "vol-1" || got.Spec.CSI.FSType != "ext4" || got.Spec.AWSElasticBlockStore != nil {
		t.Fatalf("translateMigrated = %+v, %v, %v; want CSI source with handle vol-1", got.Spec.PersistentVolumeSource, ok, err)
	}
	if ok, why := Responsible(&v1.PersistentVolumeClaim{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", UID: "u"},
		Spec: v1.PersistentVolumeClaimSpec{VolumeName: "pv"}, Status: v1.PersistentVolumeClaimStatus{Phase: v1.ClaimBound}},
		withClaimRef(got), ebs); !ok {
		t.Errorf("translated PV not the resizer's: %s", why)
	}
	for _, tc := range []struct {
		name   string
		pvc    *v1.PersistentVolumeClaim
		driver string
	}{
		{"claim not handed to the driver", claim("kubernetes.io/aws-ebs"), ebs},
		{"no annotation", &v1.PersistentVolumeClaim{}, ebs},
		{"another driver", claim("pd.csi.storage.gke.io"), "pd.csi.storage.gke.io"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			in := pv()
			got, ok, err := translateMigrated(ctx, tc.pvc, in, tc.driver)
			if ok || err != nil || got != in {
				t.Errorf("translateMigrated = %v, %v; want the PV unchanged", ok, err)
			}
		})
	}
}

func withClaimRef(pv *v1.PersistentVolume) *v1.PersistentVolume {
	pv.Spec.ClaimRef = &v1.ObjectReference{Namespace: "ns", UID: "u"}
	return pv
}

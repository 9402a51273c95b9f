package conversion

import (
	"context"
	"encoding/base64"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	vgsv1 "github.com/kubernetes-csi/external-snapshotter/client/v8/apis/volumegroupsnapshot/v1"
	vgsv1beta1 "github.com/kubernetes-csi/external-snapshotter/client/v8/apis/volumegroupsnapshot/v1beta1"
	vgsv1beta2 "github.com/kubernetes-csi/external-snapshotter/client/v8/apis/volumegroupsnapshot/v1beta2"
	snapv1 "github.com/kubernetes-csi/external-snapshotter/client/v8/apis/volumesnapshot/v1"
	snapclient "github.com/kubernetes-csi/external-snapshotter/client/v8/clientset/versioned"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/klog/v2/ktesting"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/yaml"

	"github.com/csi-kit/sidecars/testkit/controlplane"
)

const vgscCRDFile = "groupsnapshot.storage.k8s.io_volumegroupsnapshotcontents.yaml"

// installWebhookCRD installs a copy of the shipped VolumeGroupSnapshotContent
// CRD whose conversion goes to url, trusting caPEM.
func installWebhookCRD(t *testing.T, ctx context.Context, cp *controlplane.ControlPlane, url string, caPEM []byte) {
	t.Helper()
	src, err := controlplane.SnapshotCRDDir()
	if err != nil {
		t.Fatal(err)
	}
	raw, err := os.ReadFile(filepath.Join(src, vgscCRDFile))
	if err != nil {
		t.Fatal(err)
	}
	var crd map[string]any
	if err := yaml.Unmarshal(raw, &crd); err != nil {
		t.Fatal(err)
	}
	crd["spec"].(map[string]any)["conversion"] = map[string]any{
		"strategy": "Webhook",
		"webhook": map[string]any{
			"conversionReviewVersions": []any{"v1"},
			"clientConfig": map[string]any{
				"url":      url,
				"caBundle": base64.StdEncoding.EncodeToString(caPEM),
			},
		},
	}
	out, err := yaml.Marshal(crd)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, vgscCRDFile), out, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := controlplane.InstallCRDs(ctx, cp.Config(), dir); err != nil {
		t.Fatal(err)
	}
}

// TestAPIServerConverts runs the webhook in-process for a control plane of
// its own whose VolumeGroupSnapshotContent CRD converts through it, then
// writes and reads contents in every served version.
func TestAPIServerConverts(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a control plane")
	}
	_, ctx := ktesting.NewTestContext(t)
	ca := newTestCA(t)
	certFile, keyFile := ca.writeServing(t, t.TempDir(), 1)
	base := startServer(t, certFile, keyFile)
	cp := controlplane.StartT(t, controlplane.Options{})
	installWebhookCRD(t, ctx, cp, base+PathConvert, ca.pem)
	snap := snapclient.NewForConfigOrDie(cp.Config())

	// Created and given a status in v1beta2, the storage version; read in
	// v1beta1 (converted by the webhook) and v1.
	created := time.Unix(1700000000, 0).UTC()
	infos := []vgsv1beta2.VolumeSnapshotInfo{
		{VolumeHandle: "vol-a", SnapshotHandle: "snap-a", CreationTime: ptr.To[int64](1700000000123456789), ReadyToUse: ptr.To(true), RestoreSize: ptr.To[int64](1 << 30)},
		{VolumeHandle: "vol-b", SnapshotHandle: "snap-b", ReadyToUse: ptr.To(false)},
	}
	content := &vgsv1beta2.VolumeGroupSnapshotContent{
		ObjectMeta: metav1.ObjectMeta{Name: "content-new", Labels: map[string]string{"team": "storage"}},
		Spec: vgsv1beta2.VolumeGroupSnapshotContentSpec{
			VolumeGroupSnapshotRef: corev1.ObjectReference{Name: "vgs", Namespace: "default"},
			DeletionPolicy:         snapv1.VolumeSnapshotContentDelete,
			Driver:                 "conversion.csi.test",
			Source:                 vgsv1beta2.VolumeGroupSnapshotContentSource{VolumeHandles: []string{"vol-a", "vol-b"}},
		},
	}
	v2 := snap.GroupsnapshotV1beta2().VolumeGroupSnapshotContents()
	got, err := v2.Create(ctx, content, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("creating in v1beta2: %v", err)
	}
	got.Status = &vgsv1beta2.VolumeGroupSnapshotContentStatus{
		VolumeGroupSnapshotHandle: ptr.To("group-1"),
		CreationTime:              &metav1.Time{Time: created},
		ReadyToUse:                ptr.To(true),
		VolumeSnapshotInfoList:    infos,
	}
	if _, err := v2.UpdateStatus(ctx, got, metav1.UpdateOptions{}); err != nil {
		t.Fatalf("status in v1beta2: %v", err)
	}

	v1b1 := snap.GroupsnapshotV1beta1().VolumeGroupSnapshotContents()
	old, err := v1b1.Get(ctx, "content-new", metav1.GetOptions{})
	if err != nil {
		t.Fatalf("reading in v1beta1: %v", err)
	}
	wantPairs := []vgsv1beta1.VolumeSnapshotHandlePair{{VolumeHandle: "vol-a", SnapshotHandle: "snap-a"}, {VolumeHandle: "vol-b", SnapshotHandle: "snap-b"}}
	if old.Status == nil || !equality.Semantic.DeepEqual(old.Status.VolumeSnapshotHandlePairList, wantPairs) {
		t.Fatalf("v1beta1 status = %+v, want pairs %+v", old.Status, wantPairs)
	}
	if old.Status.VolumeGroupSnapshotHandle == nil || *old.Status.VolumeGroupSnapshotHandle != "group-1" || !old.Status.CreationTime.Time.Equal(created) {
		t.Errorf("v1beta1 status lost fields: %+v", old.Status)
	}
	if a := old.Annotations[AnnotationVolumeSnapshotInfoList]; !strings.Contains(a, "1700000000123456789") {
		t.Errorf("v1beta1 annotation %s = %q, want the info list", AnnotationVolumeSnapshotInfoList, a)
	}
	if old.Spec.Driver != "conversion.csi.test" || old.Labels["team"] != "storage" {
		t.Errorf("v1beta1 object lost spec or labels: %+v", old)
	}

	// An old client writes the object back with a change of its own: the
	// fields v1beta1 lacks survive, and no annotation shows in v1.
	old.Labels["touched"] = "by-v1beta1"
	if _, err := v1b1.Update(ctx, old, metav1.UpdateOptions{}); err != nil {
		t.Fatalf("updating in v1beta1: %v", err)
	}
	now, err := snap.GroupsnapshotV1().VolumeGroupSnapshotContents().Get(ctx, "content-new", metav1.GetOptions{})
	if err != nil {
		t.Fatalf("reading in v1: %v", err)
	}
	wantV1 := []vgsv1.VolumeSnapshotInfo{
		{VolumeHandle: "vol-a", SnapshotHandle: "snap-a", CreationTime: ptr.To[int64](1700000000123456789), ReadyToUse: ptr.To(true), RestoreSize: ptr.To[int64](1 << 30)},
		{VolumeHandle: "vol-b", SnapshotHandle: "snap-b", ReadyToUse: ptr.To(false)},
	}
	if now.Status == nil || !equality.Semantic.DeepEqual(now.Status.VolumeSnapshotInfoList, wantV1) {
		t.Errorf("v1 status after a v1beta1 write = %+v, want %+v", now.Status, wantV1)
	}
	if _, ok := now.Annotations[AnnotationVolumeSnapshotInfoList]; ok || now.Labels["touched"] != "by-v1beta1" {
		t.Errorf("v1 metadata = %+v, want the v1beta1 label and no %s", now.ObjectMeta, AnnotationVolumeSnapshotInfoList)
	}

	// Created and given a status in v1beta1: the handle pairs show in v1beta2.
	oldContent := &vgsv1beta1.VolumeGroupSnapshotContent{
		ObjectMeta: metav1.ObjectMeta{Name: "content-old"},
		Spec: vgsv1beta1.VolumeGroupSnapshotContentSpec{
			VolumeGroupSnapshotRef: corev1.ObjectReference{Name: "vgs-old", Namespace: "default"},
			DeletionPolicy:         snapv1.VolumeSnapshotContentRetain,
			Driver:                 "conversion.csi.test",
			Source:                 vgsv1beta1.VolumeGroupSnapshotContentSource{VolumeHandles: []string{"vol-c"}},
		},
	}
	o, err := v1b1.Create(ctx, oldContent, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("creating in v1beta1: %v", err)
	}
	o.Status = &vgsv1beta1.VolumeGroupSnapshotContentStatus{VolumeSnapshotHandlePairList: []vgsv1beta1.VolumeSnapshotHandlePair{{VolumeHandle: "vol-c", SnapshotHandle: "snap-c"}}}
	if _, err := v1b1.UpdateStatus(ctx, o, metav1.UpdateOptions{}); err != nil {
		t.Fatalf("status in v1beta1: %v", err)
	}
	n, err := v2.Get(ctx, "content-old", metav1.GetOptions{})
	if err != nil {
		t.Fatalf("reading in v1beta2: %v", err)
	}
	if want := []vgsv1beta2.VolumeSnapshotInfo{{VolumeHandle: "vol-c", SnapshotHandle: "snap-c"}}; n.Status == nil || !equality.Semantic.DeepEqual(n.Status.VolumeSnapshotInfoList, want) {
		t.Errorf("v1beta2 status = %+v, want %+v", n.Status, want)
	}
	if n.Spec.DeletionPolicy != snapv1.VolumeSnapshotContentRetain || len(n.Annotations) != 0 {
		t.Errorf("v1beta2 object = %+v, want policy Retain and no annotations", n.ObjectMeta)
	}

	// A list in v1beta1 converts every item.
	list, err := v1b1.List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatalf("listing in v1beta1: %v", err)
	}
	if len(list.Items) != 2 {
		t.Errorf("listed %d contents in v1beta1, want 2", len(list.Items))
	}

	// A conversion failure reaches the client with the webhook's message.
	old, err = v1b1.Get(ctx, "content-new", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	old.Annotations[AnnotationVolumeSnapshotInfoList] = "{broken"
	_, err = v1b1.Update(ctx, old, metav1.UpdateOptions{})
	if err == nil || !strings.Contains(err.Error(), "not a JSON list") {
		t.Errorf("update with a broken annotation: err = %v, want the webhook's message", err)
	}
}

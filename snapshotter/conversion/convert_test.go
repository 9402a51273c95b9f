package conversion

import (
	"errors"
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/api/equality"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/yaml"
)

// obj parses a YAML object in apiVersion, of kind Kind unless body starts
// with another.
func obj(t *testing.T, apiVersion, body string) *unstructured.Unstructured {
	t.Helper()
	// Through JSON, so that integers stay int64 as when the API server
	// sends an object; YAML would make them float64.
	if !strings.HasPrefix(body, "kind:") {
		body = "kind: " + Kind + "\n" + body
	}
	j, err := yaml.YAMLToJSON([]byte("apiVersion: " + apiVersion + "\n" + body))
	if err != nil {
		t.Fatalf("bad fixture: %v", err)
	}
	out := &unstructured.Unstructured{}
	if err := out.UnmarshalJSON(j); err != nil {
		t.Fatalf("bad fixture: %v", err)
	}
	return out
}

const spec = `metadata:
  name: vgsc-1
  uid: 0d5c7d41-3a7e-4b4c-9d8e-1c2b3a4d5e6f
  labels: {team: storage}
  annotations: {keep: "me"}
spec:
  driver: hostpath.csi.k8s.io
  deletionPolicy: Delete
  source: {volumeHandles: [vol-a, vol-b]}
  volumeGroupSnapshotRef: {name: vgs-1, namespace: ns, uid: 11111111-2222-3333-4444-555555555555}
`

// infoList is the list as JSON in the annotation: keys sorted, integers.
const infoList = `[{"creationTime":1700000000123456789,"readyToUse":true,"restoreSize":1073741824,"snapshotHandle":"snap-a","volumeHandle":"vol-a"},{"readyToUse":false,"snapshotHandle":"snap-b","volumeHandle":"vol-b"}]`

const newStatus = `status:
  readyToUse: true
  volumeGroupSnapshotHandle: group-1
  creationTime: "2023-11-14T22:13:20Z"
  volumeSnapshotInfoList:
  - {volumeHandle: vol-a, snapshotHandle: snap-a, creationTime: 1700000000123456789, readyToUse: true, restoreSize: 1073741824}
  - {volumeHandle: vol-b, snapshotHandle: snap-b, readyToUse: false}
`

const oldStatus = `status:
  readyToUse: true
  volumeGroupSnapshotHandle: group-1
  creationTime: "2023-11-14T22:13:20Z"
  volumeSnapshotHandlePairList:
  - {volumeHandle: vol-a, snapshotHandle: snap-a}
  - {volumeHandle: vol-b, snapshotHandle: snap-b}
`

// oldMeta is spec with the annotation of newStatus added.
var oldMeta = strings.Replace(spec, `annotations: {keep: "me"}`,
	`annotations: {keep: "me", "`+AnnotationVolumeSnapshotInfoList+`": '`+infoList+`'}`, 1)

func TestConvert(t *testing.T) {
	for _, tc := range []struct {
		name     string
		from, to string
		in, want string
	}{
		{"v1beta2 to v1beta1 keeps the list in the annotation", V1beta2, V1beta1, spec + newStatus, oldMeta + oldStatus},
		{"v1 to v1beta1 likewise", V1, V1beta1, spec + newStatus, oldMeta + oldStatus},
		{"v1beta1 with annotation to v1beta2", V1beta1, V1beta2, oldMeta + oldStatus, spec + newStatus},
		{"v1beta1 with annotation to v1", V1beta1, V1, oldMeta + oldStatus, spec + newStatus},
		{"v1beta1 without annotation to v1beta2: handles only", V1beta1, V1beta2, spec + oldStatus, spec + `status:
  readyToUse: true
  volumeGroupSnapshotHandle: group-1
  creationTime: "2023-11-14T22:13:20Z"
  volumeSnapshotInfoList:
  - {volumeHandle: vol-a, snapshotHandle: snap-a}
  - {volumeHandle: vol-b, snapshotHandle: snap-b}
`},
		{"v1beta1 pairs edited by an old client win over the annotation", V1beta1, V1beta2, oldMeta + `status:
  volumeSnapshotHandlePairList:
  - {volumeHandle: vol-b, snapshotHandle: snap-b}
  - {volumeHandle: vol-c, snapshotHandle: snap-c}
`, spec + `status:
  volumeSnapshotInfoList:
  - {volumeHandle: vol-b, snapshotHandle: snap-b, readyToUse: false}
  - {volumeHandle: vol-c, snapshotHandle: snap-c}
`},
		{"v1beta1 pairs cleared by an old client", V1beta1, V1beta2, oldMeta + "status: {readyToUse: true}\n", spec + "status: {readyToUse: true}\n"},
		{"v1beta2 without status to v1beta1", V1beta2, V1beta1, spec, spec},
		{"v1beta2 stale annotation dropped in v1beta1", V1beta2, V1beta1, oldMeta + "status: {readyToUse: false}\n", spec + "status: {readyToUse: false}\n"},
		{"v1beta1 without status to v1beta2", V1beta1, V1beta2, spec, spec},
		{"v1 to v1beta2 changes only apiVersion", V1, V1beta2, spec + newStatus, spec + newStatus},
		{"v1beta2 to v1", V1beta2, V1, spec + newStatus, spec + newStatus},
		{"same version is a copy", V1beta1, V1beta1, oldMeta + oldStatus, oldMeta + oldStatus},
		{"empty list", V1beta2, V1beta1, spec + "status: {volumeSnapshotInfoList: []}\n",
			strings.Replace(spec, `annotations: {keep: "me"}`, `annotations: {keep: "me", "`+AnnotationVolumeSnapshotInfoList+`": '[]'}`, 1) + "status: {volumeSnapshotHandlePairList: []}\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			in := obj(t, tc.from, tc.in)
			before := in.DeepCopy()
			got, err := Convert(in, tc.to)
			if err != nil {
				t.Fatalf("Convert: %v", err)
			}
			want := obj(t, tc.to, tc.want)
			if !equality.Semantic.DeepEqual(got.Object, want.Object) {
				t.Errorf("Convert(%s → %s)\n got: %s\nwant: %s", tc.from, tc.to, dump(t, got), dump(t, want))
			}
			if !equality.Semantic.DeepEqual(in.Object, before.Object) {
				t.Errorf("Convert modified its input: %s", dump(t, in))
			}
		})
	}
}

func TestConvertRoundTrip(t *testing.T) {
	for _, tc := range []struct {
		name string
		path []string // versions visited, first is the object's
		in   string
	}{
		{"v1beta2 through v1beta1", []string{V1beta2, V1beta1, V1beta2}, spec + newStatus},
		{"v1 through v1beta1 and v1beta2", []string{V1, V1beta1, V1beta2, V1}, spec + newStatus},
		{"v1beta2 without status", []string{V1beta2, V1beta1, V1beta2}, spec},
		{"v1beta1 with annotation through v1beta2", []string{V1beta1, V1beta2, V1beta1}, oldMeta + oldStatus},
		{"twice through v1beta1", []string{V1beta2, V1beta1, V1, V1beta1, V1beta2}, spec + newStatus},
		{"repeated and partial handles keep their order", []string{V1beta2, V1beta1, V1beta2}, spec + `status:
  volumeSnapshotInfoList:
  - {volumeHandle: vol-a, snapshotHandle: snap-a, readyToUse: false}
  - {volumeHandle: vol-a, snapshotHandle: snap-a, readyToUse: true, restoreSize: 5}
  - {volumeHandle: vol-b, readyToUse: false}
  - {snapshotHandle: snap-c, creationTime: 7}
`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			orig := obj(t, tc.path[0], tc.in)
			cur := orig
			for _, v := range tc.path[1:] {
				next, err := Convert(cur, v)
				if err != nil {
					t.Fatalf("Convert to %s: %v", v, err)
				}
				cur = next
			}
			if !equality.Semantic.DeepEqual(cur.Object, orig.Object) {
				t.Errorf("round trip %v lost data\n got: %s\nwant: %s", tc.path, dump(t, cur), dump(t, orig))
			}
		})
	}
}

// An old object without the annotation gains it on the way back, describing
// the same handles.
func TestConvertOldRoundTripAddsAnnotation(t *testing.T) {
	orig := obj(t, V1beta1, spec+oldStatus)
	mid, err := Convert(orig, V1beta2)
	if err != nil {
		t.Fatal(err)
	}
	back, err := Convert(mid, V1beta1)
	if err != nil {
		t.Fatal(err)
	}
	if !equality.Semantic.DeepEqual(back.Object["status"], orig.Object["status"]) {
		t.Errorf("status changed: got %v, want %v", back.Object["status"], orig.Object["status"])
	}
	const want = `[{"snapshotHandle":"snap-a","volumeHandle":"vol-a"},{"snapshotHandle":"snap-b","volumeHandle":"vol-b"}]`
	if got := back.GetAnnotations()[AnnotationVolumeSnapshotInfoList]; got != want {
		t.Errorf("annotation = %s, want %s", got, want)
	}
}

func TestConvertErrors(t *testing.T) {
	for _, tc := range []struct {
		name     string
		from, to string
		in       string
		want     []string // substrings of the error
		unknown  bool     // errors.Is errUnknownVersion
	}{
		{"unknown target version", V1beta2, Group + "/v1alpha1", spec, []string{`"groupsnapshot.storage.k8s.io/v1alpha1"`, "unsupported version", "v1beta1"}, true},
		{"unknown source version", Group + "/v2", V1, spec, []string{`"groupsnapshot.storage.k8s.io/v2"`, "unsupported version"}, true},
		{"other group", "snapshot.storage.k8s.io/v1", V1, spec, []string{`"snapshot.storage.k8s.io/v1"`}, true},
		{"other kind", V1beta2, V1beta1, "kind: VolumeGroupSnapshot\n" + spec, []string{`kind "VolumeGroupSnapshot"`, "strategy None"}, false},
		{"annotation not JSON", V1beta1, V1beta2, strings.Replace(oldMeta, infoList, "[{", 1) + oldStatus,
			[]string{"vgsc-1", AnnotationVolumeSnapshotInfoList, "not a JSON list", "remove it"}, false},
		{"annotation entry not an object", V1beta1, V1beta2, strings.Replace(oldMeta, infoList, `["x"]`, 1) + oldStatus,
			[]string{"entry 0", "want an object"}, false},
		{"info list entry not an object", V1beta2, V1beta1, spec + "status: {volumeSnapshotInfoList: [x]}\n",
			[]string{"status.volumeSnapshotInfoList[0]", "want an object"}, false},
		{"pair list not a list", V1beta1, V1beta2, spec + "status: {volumeSnapshotHandlePairList: x}\n",
			[]string{"status.volumeSnapshotHandlePairList"}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Convert(obj(t, tc.from, tc.in), tc.to)
			if err == nil {
				t.Fatal("Convert succeeded, want an error")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not mention %q", err, w)
				}
			}
			if got := errors.Is(err, errUnknownVersion); got != tc.unknown {
				t.Errorf("errors.Is(err, errUnknownVersion) = %v, want %v (err: %v)", got, tc.unknown, err)
			}
		})
	}
}

func dump(t *testing.T, u *unstructured.Unstructured) string {
	t.Helper()
	b, err := yaml.Marshal(u.Object)
	if err != nil {
		t.Fatal(err)
	}
	return "\n" + string(b)
}

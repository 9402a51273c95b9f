package conversion

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/api/equality"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/klog/v2/ktesting"
)

// reviewBody is a v1 ConversionReview of objs to apiVersion.
func reviewBody(t *testing.T, apiVersion string, objs ...*unstructured.Unstructured) string {
	t.Helper()
	req := &conversionRequest{UID: "req-1", DesiredAPIVersion: apiVersion, Objects: []runtime.RawExtension{}}
	for _, o := range objs {
		b, err := o.MarshalJSON()
		if err != nil {
			t.Fatal(err)
		}
		req.Objects = append(req.Objects, runtime.RawExtension{Raw: b})
	}
	b, err := json.Marshal(conversionReview{TypeMeta: metav1.TypeMeta{APIVersion: reviewAPIVersion, Kind: "ConversionReview"}, Request: req})
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// post sends body to Handler and returns the status and the response body.
func post(t *testing.T, method, contentType, body string) (int, string) {
	t.Helper()
	_, ctx := ktesting.NewTestContext(t)
	r := httptest.NewRequestWithContext(ctx, method, PathConvert, strings.NewReader(body))
	if contentType != "" {
		r.Header.Set("Content-Type", contentType)
	}
	w := httptest.NewRecorder()
	Handler().ServeHTTP(w, r)
	return w.Code, w.Body.String()
}

func decodeReview(t *testing.T, body string) *conversionResponse {
	t.Helper()
	var out conversionReview
	if err := json.Unmarshal([]byte(body), &out); err != nil {
		t.Fatalf("response is not a ConversionReview: %v\n%s", err, body)
	}
	if out.APIVersion != reviewAPIVersion || out.Kind != "ConversionReview" {
		t.Errorf("response is %s %s, want %s ConversionReview", out.APIVersion, out.Kind, reviewAPIVersion)
	}
	if out.Request != nil {
		t.Errorf("response repeats the request")
	}
	if out.Response == nil {
		t.Fatalf("response has no response: %s", body)
	}
	if out.Response.UID != "req-1" {
		t.Errorf("response uid = %q, want req-1", out.Response.UID)
	}
	return out.Response
}

func TestHandlerConverts(t *testing.T) {
	a := obj(t, V1beta2, spec+newStatus)
	b := obj(t, V1, strings.Replace(spec, "vgsc-1", "vgsc-2", 1))
	code, body := post(t, http.MethodPost, "application/json", reviewBody(t, V1beta1, a, b))
	if code != http.StatusOK {
		t.Fatalf("status %d: %s", code, body)
	}
	resp := decodeReview(t, body)
	if resp.Result.Status != metav1.StatusSuccess {
		t.Fatalf("result = %+v, want Success", resp.Result)
	}
	if len(resp.ConvertedObjects) != 2 {
		t.Fatalf("%d converted objects, want 2", len(resp.ConvertedObjects))
	}
	for i, in := range []*unstructured.Unstructured{a, b} {
		want, err := Convert(in, V1beta1)
		if err != nil {
			t.Fatal(err)
		}
		var got unstructured.Unstructured
		if err := got.UnmarshalJSON(resp.ConvertedObjects[i].Raw); err != nil {
			t.Fatalf("object %d: %v", i, err)
		}
		if got.GetName() != want.GetName() || got.GetAPIVersion() != V1beta1 {
			t.Errorf("object %d is %s %s, want %s %s (order must be kept)", i, got.GetAPIVersion(), got.GetName(), V1beta1, want.GetName())
		}
		if !equality.Semantic.DeepEqual(got.Object, want.Object) {
			t.Errorf("object %d = %s, want %s", i, dump(t, &got), dump(t, want))
		}
	}
}

// A review the webhook understands but cannot convert is answered with a
// failure naming the cause, and no objects: the API server needs all.
func TestHandlerConversionFailure(t *testing.T) {
	good := obj(t, V1beta2, spec)
	bad := obj(t, V1beta1, strings.Replace(oldMeta, infoList, "{", 1)+oldStatus)
	for _, tc := range []struct {
		name, to string
		objs     []*unstructured.Unstructured
		want     string
	}{
		{"unknown version", Group + "/v1alpha1", []*unstructured.Unstructured{good}, "unsupported version"},
		{"one bad object", V1beta2, []*unstructured.Unstructured{good, bad}, "not a JSON list"},
		{"other kind", V1beta1, []*unstructured.Unstructured{obj(t, V1, "kind: VolumeGroupSnapshotClass\nmetadata: {name: c}\n")}, "converts only VolumeGroupSnapshotContent"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, body := post(t, http.MethodPost, "application/json", reviewBody(t, tc.to, tc.objs...))
			if code != http.StatusOK {
				t.Fatalf("status %d, want 200 with a failed result: %s", code, body)
			}
			resp := decodeReview(t, body)
			if resp.Result.Status != metav1.StatusFailure || !strings.Contains(resp.Result.Message, tc.want) {
				t.Errorf("result = %+v, want Failure mentioning %q", resp.Result, tc.want)
			}
			if len(resp.ConvertedObjects) != 0 {
				t.Errorf("%d objects returned with a failure", len(resp.ConvertedObjects))
			}
		})
	}
}

func TestHandlerRejectsMalformedRequests(t *testing.T) {
	valid := `{"apiVersion":"apiextensions.k8s.io/v1","kind":"ConversionReview","request":{"uid":"u","desiredAPIVersion":"` + V1 + `","objects":[]}}`
	for _, tc := range []struct {
		name, method, contentType, body string
		code                            int
		want                            string
	}{
		{"not JSON", "POST", "application/json", "{", http.StatusBadRequest, "not a JSON ConversionReview"},
		{"empty body", "POST", "application/json", "", http.StatusBadRequest, "not a JSON ConversionReview"},
		{"v1beta1 review", "POST", "application/json", strings.Replace(valid, "apiextensions.k8s.io/v1", "apiextensions.k8s.io/v1beta1", 1), http.StatusBadRequest, "conversionReviewVersions"},
		{"other kind", "POST", "application/json", strings.Replace(valid, `"ConversionReview"`, `"AdmissionReview"`, 1), http.StatusBadRequest, `kind "AdmissionReview"`},
		{"no request", "POST", "application/json", `{"apiVersion":"apiextensions.k8s.io/v1","kind":"ConversionReview"}`, http.StatusBadRequest, "no request"},
		{"no uid", "POST", "application/json", strings.Replace(valid, `"uid":"u",`, "", 1), http.StatusBadRequest, "no uid"},
		{"objects not a list", "POST", "application/json", strings.Replace(valid, `"objects":[]`, `"objects":5`, 1), http.StatusBadRequest, "not a JSON ConversionReview"},
		{"GET", "GET", "", "", http.StatusMethodNotAllowed, "POST"},
		{"YAML", "POST", "application/yaml", valid, http.StatusUnsupportedMediaType, "application/json"},
		{"valid, charset parameter", "POST", "application/json; charset=utf-8", valid, http.StatusOK, `"status":"Success"`},
		{"valid, no content type", "POST", "", valid, http.StatusOK, `"status":"Success"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, body := post(t, tc.method, tc.contentType, tc.body)
			if code != tc.code || !strings.Contains(body, tc.want) {
				t.Errorf("got %d %q, want %d mentioning %q", code, body, tc.code, tc.want)
			}
		})
	}
}

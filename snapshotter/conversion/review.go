package conversion

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/klog/v2"
)

// reviewAPIVersion is the only ConversionReview version served; CRDs must
// list it in spec.conversion.webhook.conversionReviewVersions.
const reviewAPIVersion = "apiextensions.k8s.io/v1"

// maxReviewBytes bounds a request body. The API server sends one review per
// read or write, with every object of a list read in it.
const maxReviewBytes = 64 << 20

// conversionReview is the wire form of apiextensions.k8s.io/v1
// ConversionReview, with only the fields this webhook reads or writes.
type conversionReview struct {
	metav1.TypeMeta `json:",inline"`
	Request         *conversionRequest  `json:"request,omitempty"`
	Response        *conversionResponse `json:"response,omitempty"`
}

type conversionRequest struct {
	UID               types.UID              `json:"uid"`
	DesiredAPIVersion string                 `json:"desiredAPIVersion"`
	Objects           []runtime.RawExtension `json:"objects"`
}

type conversionResponse struct {
	UID              types.UID              `json:"uid"`
	ConvertedObjects []runtime.RawExtension `json:"convertedObjects"`
	Result           metav1.Status          `json:"result"`
}

// badRequestError is a review the webhook cannot answer at all; it becomes
// HTTP 400 with the message as body.
type badRequestError struct{ msg string }

func (e *badRequestError) Error() string { return e.msg }

func badRequest(format string, args ...any) error {
	return &badRequestError{msg: fmt.Sprintf(format, args...)}
}

// review answers one ConversionReview body. A body that is not a v1
// ConversionReview with a request is a *badRequestError. A review whose
// objects cannot be converted is answered, with a failure result naming
// the object; the API server then fails the client's request with it.
func review(body []byte) (*conversionReview, error) {
	var in conversionReview
	if err := json.Unmarshal(body, &in); err != nil {
		return nil, badRequest("request body is not a JSON ConversionReview: %v", err)
	}
	if in.APIVersion != reviewAPIVersion || in.Kind != "ConversionReview" {
		return nil, badRequest("request body is apiVersion %q kind %q; want %s ConversionReview (set the CRD's conversionReviewVersions to [v1])", in.APIVersion, in.Kind, reviewAPIVersion)
	}
	if in.Request == nil {
		return nil, badRequest("ConversionReview has no request")
	}
	if in.Request.UID == "" {
		return nil, badRequest("ConversionReview request has no uid")
	}
	resp := &conversionResponse{UID: in.Request.UID}
	converted, err := convertAll(in.Request.Objects, in.Request.DesiredAPIVersion)
	if err != nil {
		resp.Result = metav1.Status{Status: metav1.StatusFailure, Message: err.Error()}
	} else {
		resp.ConvertedObjects = converted
		resp.Result = metav1.Status{Status: metav1.StatusSuccess}
	}
	return &conversionReview{TypeMeta: in.TypeMeta, Response: resp}, nil
}

// convertAll converts every object or none.
func convertAll(objs []runtime.RawExtension, apiVersion string) ([]runtime.RawExtension, error) {
	out := make([]runtime.RawExtension, 0, len(objs))
	for i, raw := range objs {
		var obj unstructured.Unstructured
		if err := obj.UnmarshalJSON(raw.Raw); err != nil {
			return nil, fmt.Errorf("object %d of the review is not a Kubernetes object: %v", i, err)
		}
		conv, err := Convert(&obj, apiVersion)
		if err != nil {
			return nil, err
		}
		b, err := conv.MarshalJSON()
		if err != nil {
			return nil, fmt.Errorf("encoding converted object %q: %v", obj.GetName(), err)
		}
		out = append(out, runtime.RawExtension{Raw: b})
	}
	return out, nil
}

// Handler serves ConversionReviews (POST, application/json) for the API
// server: mount it at the path the CRDs' spec.conversion.webhook names,
// such as /convert, on an HTTPS server. A body that is no ConversionReview
// gets HTTP 400 with a message; conversion failures are answered in the
// review, as the API server expects.
func Handler() http.Handler {
	return http.HandlerFunc(serveReview)
}

func serveReview(w http.ResponseWriter, r *http.Request) {
	logger := klog.FromContext(r.Context())
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		http.Error(w, "send ConversionReviews with POST", http.StatusMethodNotAllowed)
		return
	}
	if ct := r.Header.Get("Content-Type"); ct != "" {
		if mt, _, err := mime.ParseMediaType(ct); err != nil || mt != "application/json" {
			http.Error(w, fmt.Sprintf("Content-Type %q: only application/json is accepted", ct), http.StatusUnsupportedMediaType)
			return
		}
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxReviewBytes))
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			http.Error(w, fmt.Sprintf("request body exceeds %d bytes", tooBig.Limit), http.StatusRequestEntityTooLarge)
			return
		}
		http.Error(w, fmt.Sprintf("reading request body: %v", err), http.StatusBadRequest)
		return
	}
	out, err := review(body)
	if err != nil {
		logger.Info("Rejected a malformed conversion request", "remote", r.RemoteAddr, "err", err)
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	if out.Response.Result.Status != metav1.StatusSuccess {
		logger.Error(nil, "Conversion failed", "uid", out.Response.UID, "reason", out.Response.Result.Message)
	} else {
		logger.V(4).Info("Converted", "uid", out.Response.UID, "objects", len(out.Response.ConvertedObjects))
	}
	b, err := json.Marshal(out)
	if err != nil {
		http.Error(w, fmt.Sprintf("encoding the response: %v", err), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write(b)
}

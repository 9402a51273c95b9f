package snapshotter

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	crdv1 "github.com/kubernetes-csi/external-snapshotter/client/v8/apis/volumesnapshot/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/yaml"
)

// CRDHint tells where the CRDs come from.
const CRDHint = "apply the YAML files in config/crd of the module github.com/kubernetes-csi/external-snapshotter/client/v8 (kubectl apply -f <dir>, or snapshotter.InstallCRDs)"

// ErrCRDsMissing is wrapped by CheckCRDs when a needed resource is not served.
var ErrCRDsMissing = errors.New("VolumeSnapshot v1 CRD not installed")

// CheckCRDs verifies that snapshot.storage.k8s.io/v1 serves
// volumesnapshots, volumesnapshotcontents and volumesnapshotclasses,
// retrying until wait has passed (CRDs applied together with the
// controller may take a moment to appear).
func CheckCRDs(ctx context.Context, disco discovery.DiscoveryInterface, timeout time.Duration) error {
	need := []string{"volumesnapshots", "volumesnapshotcontents", "volumesnapshotclasses"}
	var missing []string
	var lastErr error
	check := func(ctx context.Context) (bool, error) {
		list, err := disco.ServerResourcesForGroupVersion(crdv1.SchemeGroupVersion.String())
		if err != nil && !apierrors.IsNotFound(err) {
			lastErr = err
			return false, nil
		}
		lastErr = nil
		missing = missing[:0]
		for _, r := range need {
			if list == nil || !slices.ContainsFunc(list.APIResources, func(a metav1.APIResource) bool { return a.Name == r }) {
				missing = append(missing, r)
			}
		}
		return len(missing) == 0, nil
	}
	err := wait.PollUntilContextTimeout(ctx, 200*time.Millisecond, max(timeout, time.Millisecond), true, check)
	if err == nil {
		return nil
	}
	if ctx.Err() != nil {
		return ctx.Err()
	}
	if lastErr != nil {
		return fmt.Errorf("checking for the VolumeSnapshot CRDs: %w", lastErr)
	}
	return fmt.Errorf("%w: %s/%s does not serve %s: %s", ErrCRDsMissing, crdv1.GroupName, "v1", strings.Join(missing, ", "), CRDHint)
}

var crdGVR = schema.GroupVersionResource{Group: "apiextensions.k8s.io", Version: "v1", Resource: "customresourcedefinitions"}

// InstallCRDs server-side applies every CustomResourceDefinition in the
// *.yaml files of dir (kustomization.yaml skipped) and waits up to a
// minute for each to be Established.
func InstallCRDs(ctx context.Context, cfg *rest.Config, dir string) error {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return fmt.Errorf("reading CRD directory: %w", err)
	}
	dyn, err := dynamic.NewForConfig(cfg)
	if err != nil {
		return err
	}
	client := dyn.Resource(crdGVR)
	var names []string
	for _, e := range entries {
		if e.IsDir() || !strings.HasSuffix(e.Name(), ".yaml") || e.Name() == "kustomization.yaml" {
			continue
		}
		data, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			return err
		}
		for _, doc := range bytes.Split(data, []byte("\n---")) {
			obj := &unstructured.Unstructured{}
			if err := yaml.Unmarshal(doc, &obj.Object); err != nil {
				return fmt.Errorf("%s: %w", e.Name(), err)
			}
			if obj.GetKind() != "CustomResourceDefinition" {
				continue
			}
			if _, err := client.Apply(ctx, obj.GetName(), obj, metav1.ApplyOptions{FieldManager: "csi-kit-snapshotter", Force: true}); err != nil {
				return fmt.Errorf("applying CRD %s from %s: %w", obj.GetName(), e.Name(), err)
			}
			names = append(names, obj.GetName())
		}
	}
	if len(names) == 0 {
		return fmt.Errorf("no CustomResourceDefinition in %s", dir)
	}
	for _, name := range names {
		err := wait.PollUntilContextTimeout(ctx, 100*time.Millisecond, time.Minute, true, func(ctx context.Context) (bool, error) {
			obj, err := client.Get(ctx, name, metav1.GetOptions{})
			if err != nil {
				return false, nil
			}
			conds, _, _ := unstructured.NestedSlice(obj.Object, "status", "conditions")
			for _, c := range conds {
				if m, _ := c.(map[string]any); m["type"] == "Established" && m["status"] == "True" {
					return true, nil
				}
			}
			return false, nil
		})
		if err != nil {
			return fmt.Errorf("CRD %s not Established: %w", name, err)
		}
	}
	return nil
}

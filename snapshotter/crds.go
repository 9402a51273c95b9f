package snapshotter

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	crdv1 "github.com/kubernetes-csi/external-snapshotter/client/v8/apis/volumesnapshot/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/rest"

	"github.com/csi-kit/sidecars/internal/crds"
)

// crdHint tells where the CRDs come from.
const crdHint = "apply the YAML files in config/crd of the module github.com/kubernetes-csi/external-snapshotter/client/v8 (kubectl apply -f <dir>, or snapshotter.InstallCRDs)"

// ErrCRDsMissing is wrapped by Run when a needed resource is not served.
var ErrCRDsMissing = errors.New("VolumeSnapshot v1 CRD not installed")

// checkCRDs verifies that snapshot.storage.k8s.io/v1 serves
// volumesnapshots, volumesnapshotcontents and volumesnapshotclasses,
// retrying until wait has passed (CRDs applied together with the
// controller may take a moment to appear).
func checkCRDs(ctx context.Context, disco discovery.DiscoveryInterface, timeout time.Duration) error {
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
	return fmt.Errorf("%w: %s/%s does not serve %s: %s", ErrCRDsMissing, crdv1.GroupName, "v1", strings.Join(missing, ", "), crdHint)
}

// InstallCRDs server-side applies every CustomResourceDefinition in the
// *.yaml and *.yml files of dir (kustomization.yaml and other kinds
// skipped) and waits up to a minute for them to be Established and served.
func InstallCRDs(ctx context.Context, cfg *rest.Config, dir string) error {
	return crds.Install(ctx, cfg, crds.Options{FieldManager: "csi-kit-snapshotter", IgnoreOtherKinds: true}, dir)
}

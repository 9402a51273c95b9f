package controlplane

import (
	"context"
	"fmt"

	"k8s.io/client-go/rest"

	"github.com/csi-kit/sidecars/internal/crds"
)

// InstallCRDs applies every CustomResourceDefinition in the *.yaml and *.yml
// files of dirs (server-side apply, so re-installing is fine) and waits up
// to a minute until each is Established and listed by discovery. Files may
// hold several documents; kustomization.yaml is skipped and any other kind
// of object is an error. Subdirectories are not read.
func InstallCRDs(ctx context.Context, cfg *rest.Config, dirs ...string) error {
	if err := crds.Install(ctx, cfg, crds.Options{FieldManager: "csikit-controlplane"}, dirs...); err != nil {
		return fmt.Errorf("controlplane: %w", err)
	}
	return nil
}

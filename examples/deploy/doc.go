// Package deploy holds example manifests for the example binaries: least
// privilege RBAC per component (rbac-*.yaml) and Deployments with the
// sidecar containers. Its tests check that the YAML is well formed and
// that each component, run as its ServiceAccount against a control plane
// enforcing RBAC, completes an operation without a forbidden error.
package deploy

import "embed"

// Manifests are the YAML files of this directory.
//
//go:embed *.yaml
var Manifests embed.FS

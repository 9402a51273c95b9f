// Package deploy holds the example manifests of the example binaries as a
// kustomize base (kustomization.yaml: the separate sidecars and the
// snapshot controller with least-privilege RBAC per component), the
// all-in-one alternative (all-in-one/), and an opt-in component and
// overlay granting cluster-wide read of Secrets (components/secrets,
// overlays/secrets). Render builds them with the kustomize API; its tests
// check the rendered objects and run each component, as its
// ServiceAccount with exactly the rendered rules, against a control plane
// enforcing RBAC.
package deploy

import "embed"

// Manifests are the YAML files and kustomizations of this directory.
//
//go:embed *.yaml base all-in-one overlays components
var Manifests embed.FS

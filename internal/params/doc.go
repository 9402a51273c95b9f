// Package params holds the handling of the "csi.storage.k8s.io/" prefixed
// parameters shared by the provisioner and the snapshotter:
//
//   - Strip removes the reserved keys a sidecar understands and rejects any
//     other key under the prefix, so a typo in a class fails loudly instead of
//     reaching the driver.
//   - Secret describes one secret reference (a name key and a namespace key,
//     plus the legacy unprefixed spellings); Secret.Resolve reads the pair from
//     class parameters and expands its templates.
//   - ResolveTemplate expands "${token}" / "$token" placeholders strictly:
//     unknown tokens and malformed placeholders are errors.
//   - FetchSecret reads the data of a referenced Secret.
//
// Guarantees: every returned error names the parameter key involved. A
// resolved namespace is a DNS-1123 label and a resolved name a DNS-1123
// subdomain. Nothing here talks to the API server except FetchSecret.
//
// Not handled here: where a sidecar stores references afterwards (PV fields,
// annotations) and the adding of the extra-create-metadata keys (their
// names are PVCNameKey, PVCNamespaceKey and PVNameKey), which callers do
// after Strip.
package params

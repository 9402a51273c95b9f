package params

import (
	"fmt"
	"sort"
	"strings"
)

// Prefix is the reserved namespace of class parameters read by the sidecars.
const Prefix = "csi.storage.k8s.io/"

// FSTypeKey is the provisioner's reserved file-system-type parameter.
const FSTypeKey = Prefix + "fstype"

// Default secret keys: the provisioner falls back to them for any operation
// whose own pair is absent.
const (
	DefaultSecretNameKey      = Prefix + "secret-name"
	DefaultSecretNamespaceKey = Prefix + "secret-namespace"
)

// Identity keys a sidecar adds to the parameters it sends to the driver
// (--extra-create-metadata, --extra-modify-metadata), after Strip.
const (
	PVCNameKey      = Prefix + "pvc/name"
	PVCNamespaceKey = Prefix + "pvc/namespace"
	PVNameKey       = Prefix + "pv/name"
)

// Keys is a set of reserved parameter keys.
type Keys map[string]struct{}

// NewKeys returns the set of the given keys.
func NewKeys(keys ...string) Keys {
	k := make(Keys, len(keys))
	for _, key := range keys {
		k[key] = struct{}{}
	}
	return k
}

// Has reports whether key is in the set.
func (k Keys) Has(key string) bool {
	_, ok := k[key]
	return ok
}

// ProvisionerKeys are the prefixed keys the provisioner understands in a
// StorageClass: fstype, the seven operation secret pairs and the default pair.
var ProvisionerKeys = func() Keys {
	k := NewKeys(FSTypeKey, DefaultSecretNameKey, DefaultSecretNamespaceKey)
	for _, s := range ProvisionerSecrets {
		k[s.NameKey] = struct{}{}
		k[s.NamespaceKey] = struct{}{}
	}
	return k
}()

// SnapshotterKeys are the prefixed keys the snapshotter understands in a
// VolumeSnapshotClass or VolumeGroupSnapshotClass.
var SnapshotterKeys = func() Keys {
	k := NewKeys()
	for _, s := range []Secret{SnapshotterSecret, SnapshotterListSecret, GroupSnapshotterSecret, GroupSnapshotterGetSecret} {
		k[s.NameKey] = struct{}{}
		k[s.NamespaceKey] = struct{}{}
	}
	return k
}()

// Strip returns a copy of params without the keys in known. Any other key
// starting with Prefix is an error naming that key (the first one in sorted
// order, so the message is stable). Keys outside the prefix, including the
// legacy unprefixed secret keys, are kept and reach the driver. A nil or
// empty input gives an empty, non-nil map.
func Strip(params map[string]string, known Keys) (map[string]string, error) {
	out := make(map[string]string, len(params))
	var unknown []string
	for k, v := range params {
		if !strings.HasPrefix(k, Prefix) {
			out[k] = v
			continue
		}
		if known.Has(k) {
			continue
		}
		unknown = append(unknown, k)
	}
	if len(unknown) > 0 {
		sort.Strings(unknown)
		return nil, fmt.Errorf("found unknown parameter key %q with reserved namespace %s", unknown[0], Prefix)
	}
	return out, nil
}

package params

import (
	"context"
	"fmt"

	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/validation"
	corev1 "k8s.io/client-go/kubernetes/typed/core/v1"
)

// Secret describes where a class names one secret.
type Secret struct {
	// Op names the operation in messages, e.g. "provisioner".
	Op string
	// NameKey and NamespaceKey are the prefixed parameter keys.
	NameKey, NamespaceKey string
	// LegacyNameKey and LegacyNamespaceKey are the deprecated unprefixed
	// spellings; empty when there are none.
	LegacyNameKey, LegacyNamespaceKey string
	// Fallback means the default pair (DefaultSecretNameKey and
	// DefaultSecretNamespaceKey) applies when neither key of this pair is set.
	Fallback bool
}

func opSecret(op, legacy string, fallback bool) Secret {
	s := Secret{
		Op:           op,
		NameKey:      Prefix + op + "-secret-name",
		NamespaceKey: Prefix + op + "-secret-namespace",
		Fallback:     fallback,
	}
	if legacy != "" {
		s.LegacyNameKey = "csi" + legacy + "SecretName"
		s.LegacyNamespaceKey = "csi" + legacy + "SecretNamespace"
	}
	return s
}

// The StorageClass secrets.
var (
	ProvisionerSecret       = opSecret("provisioner", "Provisioner", true)
	ControllerPublishSecret = opSecret("controller-publish", "ControllerPublish", true)
	NodeStageSecret         = opSecret("node-stage", "NodeStage", true)
	NodePublishSecret       = opSecret("node-publish", "NodePublish", true)
	ControllerExpandSecret  = opSecret("controller-expand", "", true)
	NodeExpandSecret        = opSecret("node-expand", "", true)
	ControllerModifySecret  = opSecret("controller-modify", "", true)
)

// ProvisionerSecrets lists the StorageClass secrets.
var ProvisionerSecrets = []Secret{
	ProvisionerSecret, ControllerPublishSecret, NodeStageSecret, NodePublishSecret,
	ControllerExpandSecret, NodeExpandSecret, ControllerModifySecret,
}

// The VolumeSnapshotClass and VolumeGroupSnapshotClass secrets.
var (
	SnapshotterSecret         = opSecret("snapshotter", "", false)
	SnapshotterListSecret     = opSecret("snapshotter-list", "", false)
	GroupSnapshotterSecret    = opSecret("group-snapshotter", "", false)
	GroupSnapshotterGetSecret = opSecret("group-snapshotter-get", "", false)
)

// templates returns the name and namespace templates of s in params, with
// the key each came from. Both empty means "not configured".
func (s Secret) templates(params map[string]string) (name, nameKey, ns, nsKey string, err error) {
	nName, nNS := 0, 0
	pick := func(key string, val, from *string, n *int) {
		if key == "" {
			return
		}
		if v, ok := params[key]; ok {
			*val, *from = v, key
			*n++
		}
	}
	pick(s.LegacyNameKey, &name, &nameKey, &nName)
	pick(s.NameKey, &name, &nameKey, &nName)
	pick(s.LegacyNamespaceKey, &ns, &nsKey, &nNS)
	pick(s.NamespaceKey, &ns, &nsKey, &nNS)
	if nName == 0 && nNS == 0 && s.Fallback {
		pick(DefaultSecretNameKey, &name, &nameKey, &nName)
		pick(DefaultSecretNamespaceKey, &ns, &nsKey, &nNS)
	}
	switch {
	case nName > 1:
		return "", "", "", "", fmt.Errorf("%s secret name given twice, as %q and %q: use only %q", s.Op, s.LegacyNameKey, s.NameKey, s.NameKey)
	case nNS > 1:
		return "", "", "", "", fmt.Errorf("%s secret namespace given twice, as %q and %q: use only %q", s.Op, s.LegacyNamespaceKey, s.NamespaceKey, s.NamespaceKey)
	case nName != nNS:
		if nName == 0 {
			return "", "", "", "", fmt.Errorf("%s secret: %q is set but its name parameter %q is missing; both must be given", s.Op, nsKey, s.NameKey)
		}
		return "", "", "", "", fmt.Errorf("%s secret: %q is set but its namespace parameter %q is missing; both must be given", s.Op, nameKey, s.NamespaceKey)
	case nName == 1 && name == "":
		return "", "", "", "", fmt.Errorf("%s secret: parameter %q is empty", s.Op, nameKey)
	case nNS == 1 && ns == "":
		return "", "", "", "", fmt.Errorf("%s secret: parameter %q is empty", s.Op, nsKey)
	}
	return name, nameKey, ns, nsKey, nil
}

// Configured reports whether params name this secret at all (possibly
// malformed).
func (s Secret) Configured(params map[string]string) bool {
	for _, k := range []string{s.NameKey, s.NamespaceKey, s.LegacyNameKey, s.LegacyNamespaceKey} {
		if _, ok := params[k]; ok && k != "" {
			return true
		}
	}
	if s.Fallback {
		_, a := params[DefaultSecretNameKey]
		_, b := params[DefaultSecretNamespaceKey]
		return a || b
	}
	return false
}

// Resolve reads the secret pair from class params and expands its templates
// with vars. It returns nil, nil when the class does not name this secret.
// Errors name the parameter key at fault.
func (s Secret) Resolve(params map[string]string, vars Vars) (*v1.SecretReference, error) {
	nameT, nameKey, nsT, nsKey, err := s.templates(params)
	if err != nil {
		return nil, err
	}
	if nameT == "" && nsT == "" {
		return nil, nil
	}
	ns, err := ResolveTemplate(nsT, vars.Namespace)
	if err != nil {
		return nil, fmt.Errorf("parameter %q: %w", nsKey, err)
	}
	if errs := validation.IsDNS1123Label(ns); len(errs) > 0 {
		return nil, fmt.Errorf("parameter %q: %s is not a valid namespace name: %s", nsKey, describe(nsT, ns), errs[0])
	}
	name, err := ResolveTemplate(nameT, vars.name())
	if err != nil {
		return nil, fmt.Errorf("parameter %q: %w", nameKey, err)
	}
	if errs := validation.IsDNS1123Subdomain(name); len(errs) > 0 {
		return nil, fmt.Errorf("parameter %q: %s is not a valid secret name: %s", nameKey, describe(nameT, name), errs[0])
	}
	return &v1.SecretReference{Name: name, Namespace: ns}, nil
}

func describe(tmpl, out string) string {
	if tmpl == out {
		return fmt.Sprintf("%q", out)
	}
	return fmt.Sprintf("%q (from template %q)", out, tmpl)
}

// FetchSecret returns the data of the referenced secret as strings. A nil ref
// gives nil, nil.
func FetchSecret(ctx context.Context, client corev1.SecretsGetter, ref *v1.SecretReference) (map[string]string, error) {
	if ref == nil {
		return nil, nil
	}
	sec, err := client.Secrets(ref.Namespace).Get(ctx, ref.Name, metav1.GetOptions{})
	if err != nil {
		return nil, fmt.Errorf("error getting secret %s in namespace %s: %w", ref.Name, ref.Namespace, err)
	}
	out := make(map[string]string, len(sec.Data)+len(sec.StringData))
	for k, v := range sec.Data {
		out[k] = string(v)
	}
	return out, nil
}

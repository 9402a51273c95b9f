package params

import (
	"fmt"
	"sort"
	"strings"

	v1 "k8s.io/api/core/v1"
)

// Template tokens.
const (
	TokenPVName                    = "pv.name"
	TokenPVCName                   = "pvc.name"
	TokenPVCNamespace              = "pvc.namespace"
	TokenVolumeSnapshotContentName = "volumesnapshotcontent.name"
	TokenVolumeSnapshotName        = "volumesnapshot.name"
	TokenVolumeSnapshotNamespace   = "volumesnapshot.namespace"
	TokenGroupSnapshotContentName  = "volumegroupsnapshotcontent.name"
	TokenGroupSnapshotName         = "volumegroupsnapshot.name"
	TokenGroupSnapshotNamespace    = "volumegroupsnapshot.namespace"
	tokenPVCAnnotationPrefix       = "pvc.annotations['"
	tokenPVCAnnotationSuffix       = "']"
)

// Vars are the values templates may use. Namespace tokens are allowed in
// both templates; Name tokens only in the name template.
type Vars struct {
	Namespace map[string]string
	Name      map[string]string
}

func (v Vars) name() map[string]string {
	out := make(map[string]string, len(v.Namespace)+len(v.Name))
	for k, s := range v.Namespace {
		out[k] = s
	}
	for k, s := range v.Name {
		out[k] = s
	}
	return out
}

// ProvisionVars are the provisioner's tokens: pv.name and pvc.namespace for
// namespaces; also pvc.name and pvc.annotations['KEY'] for names. A nil pvc
// leaves the PVC tokens undefined (as at deletion without a claim).
func ProvisionVars(pvName string, pvc *v1.PersistentVolumeClaim) Vars {
	v := Vars{Namespace: map[string]string{TokenPVName: pvName}, Name: map[string]string{}}
	if pvc != nil {
		v.Namespace[TokenPVCNamespace] = pvc.Namespace
		v.Name[TokenPVCName] = pvc.Name
		for k, s := range pvc.Annotations {
			v.Name[tokenPVCAnnotationPrefix+k+tokenPVCAnnotationSuffix] = s
		}
	}
	return v
}

// SnapshotVars are the snapshotter's tokens: volumesnapshotcontent.name and
// volumesnapshot.namespace for namespaces; also volumesnapshot.name for
// names. Empty snapshot values leave those tokens undefined.
func SnapshotVars(contentName, snapshotName, snapshotNamespace string) Vars {
	v := Vars{Namespace: map[string]string{TokenVolumeSnapshotContentName: contentName}, Name: map[string]string{}}
	if snapshotNamespace != "" {
		v.Namespace[TokenVolumeSnapshotNamespace] = snapshotNamespace
	}
	if snapshotName != "" {
		v.Name[TokenVolumeSnapshotName] = snapshotName
	}
	return v
}

// GroupSnapshotVars are SnapshotVars for volume group snapshots.
func GroupSnapshotVars(contentName, groupName, groupNamespace string) Vars {
	v := Vars{Namespace: map[string]string{TokenGroupSnapshotContentName: contentName}, Name: map[string]string{}}
	if groupNamespace != "" {
		v.Namespace[TokenGroupSnapshotNamespace] = groupNamespace
	}
	if groupName != "" {
		v.Name[TokenGroupSnapshotName] = groupName
	}
	return v
}

// ResolveTemplate expands "${token}" and "$token" (token of letters, digits
// and '_') with vars. A token missing from vars, an unclosed "${", an empty
// "${}" or a '$' not starting a token is an error; the output never contains
// an unexpanded placeholder. Values are inserted verbatim.
func ResolveTemplate(tmpl string, vars map[string]string) (string, error) {
	if !strings.Contains(tmpl, "$") {
		return tmpl, nil
	}
	var b strings.Builder
	var unknown []string
	for i := 0; i < len(tmpl); {
		c := tmpl[i]
		if c != '$' {
			b.WriteByte(c)
			i++
			continue
		}
		var token string
		switch {
		case i+1 < len(tmpl) && tmpl[i+1] == '{':
			end := strings.IndexByte(tmpl[i+2:], '}')
			if end < 0 {
				return "", fmt.Errorf("template %q: unclosed \"${\" at offset %d", tmpl, i)
			}
			token = tmpl[i+2 : i+2+end]
			if token == "" {
				return "", fmt.Errorf("template %q: empty \"${}\" at offset %d", tmpl, i)
			}
			i += 3 + end
		default:
			j := i + 1
			for j < len(tmpl) && isNameByte(tmpl[j]) {
				j++
			}
			if j == i+1 {
				return "", fmt.Errorf("template %q: '$' at offset %d does not start a token (write ${token})", tmpl, i)
			}
			token = tmpl[i+1 : j]
			i = j
		}
		v, ok := vars[token]
		if !ok {
			unknown = append(unknown, token)
			continue
		}
		b.WriteString(v)
	}
	if len(unknown) > 0 {
		return "", fmt.Errorf("template %q: unknown token(s) %q; allowed: %s", tmpl, unknown, allowed(vars))
	}
	return b.String(), nil
}

func isNameByte(c byte) bool {
	return c == '_' || '0' <= c && c <= '9' || 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z'
}

// allowed lists the token names for error messages, annotation tokens folded.
func allowed(vars map[string]string) string {
	seen := map[string]bool{}
	var names []string
	for k := range vars {
		if strings.HasPrefix(k, tokenPVCAnnotationPrefix) {
			k = tokenPVCAnnotationPrefix + "<key>" + tokenPVCAnnotationSuffix
		}
		if !seen[k] {
			seen[k] = true
			names = append(names, "${"+k+"}")
		}
	}
	if len(names) == 0 {
		return "none"
	}
	sort.Strings(names)
	return strings.Join(names, ", ")
}

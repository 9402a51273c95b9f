package params

import (
	"context"
	"strings"
	"testing"

	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/client-go/kubernetes/fake"
)

func TestStrip(t *testing.T) {
	for _, tc := range []struct {
		name    string
		in      map[string]string
		known   Keys
		want    map[string]string
		wantErr string
	}{
		{"nil", nil, ProvisionerKeys, map[string]string{}, ""},
		{"plain kept", map[string]string{"type": "ssd"}, ProvisionerKeys, map[string]string{"type": "ssd"}, ""},
		{"reserved stripped", map[string]string{
			FSTypeKey: "ext4", ProvisionerSecret.NameKey: "s", ProvisionerSecret.NamespaceKey: "n",
			DefaultSecretNameKey: "a", DefaultSecretNamespaceKey: "b", NodeExpandSecret.NameKey: "x",
			ControllerModifySecret.NamespaceKey: "y", "zone": "z"},
			ProvisionerKeys, map[string]string{"zone": "z"}, ""},
		{"legacy kept", map[string]string{"csiProvisionerSecretName": "s", "fstype": "xfs"}, ProvisionerKeys,
			map[string]string{"csiProvisionerSecretName": "s", "fstype": "xfs"}, ""},
		{"unknown prefixed", map[string]string{Prefix + "foo": "1", Prefix + "bar": "2"}, ProvisionerKeys, nil,
			`"csi.storage.k8s.io/bar"`},
		{"snapshot key in storage class", map[string]string{SnapshotterSecret.NameKey: "x"}, ProvisionerKeys, nil,
			"snapshotter-secret-name"},
		{"snapshotter keys", map[string]string{SnapshotterSecret.NameKey: "x", SnapshotterListSecret.NamespaceKey: "y",
			GroupSnapshotterSecret.NameKey: "g", GroupSnapshotterGetSecret.NamespaceKey: "h", "p": "q"},
			SnapshotterKeys, map[string]string{"p": "q"}, ""},
		{"fstype unknown to snapshotter", map[string]string{FSTypeKey: "ext4"}, SnapshotterKeys, nil, "fstype"},
		{"extra metadata key is not reserved", map[string]string{Prefix + "pvc/name": "x"}, ProvisionerKeys, nil, "pvc/name"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := Strip(tc.in, tc.known)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("Strip err = %v, want containing %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("Strip: %v", err)
			}
			if len(got) != len(tc.want) {
				t.Fatalf("Strip = %v, want %v", got, tc.want)
			}
			for k, v := range tc.want {
				if got[k] != v {
					t.Fatalf("Strip = %v, want %v", got, tc.want)
				}
			}
		})
	}
}

func TestStripDoesNotMutate(t *testing.T) {
	in := map[string]string{FSTypeKey: "ext4", "a": "b"}
	if _, err := Strip(in, ProvisionerKeys); err != nil {
		t.Fatal(err)
	}
	if len(in) != 2 {
		t.Fatalf("input changed: %v", in)
	}
}

func claim() *v1.PersistentVolumeClaim {
	return &v1.PersistentVolumeClaim{ObjectMeta: metav1.ObjectMeta{
		Name: "data-0", Namespace: "team-a",
		Annotations: map[string]string{"owner": "alice", "bad": "Not_DNS"},
	}}
}

func TestResolveProvisionerSecrets(t *testing.T) {
	p := ProvisionerSecret
	for _, tc := range []struct {
		name    string
		secret  Secret
		params  map[string]string
		pvc     *v1.PersistentVolumeClaim
		want    *v1.SecretReference
		wantErr string
	}{
		{"none", p, map[string]string{"a": "b"}, claim(), nil, ""},
		{"plain", p, map[string]string{p.NameKey: "s", p.NamespaceKey: "ns"}, claim(), &v1.SecretReference{Name: "s", Namespace: "ns"}, ""},
		{"legacy", p, map[string]string{"csiProvisionerSecretName": "s", "csiProvisionerSecretNamespace": "ns"}, claim(),
			&v1.SecretReference{Name: "s", Namespace: "ns"}, ""},
		{"legacy name new namespace", p, map[string]string{"csiProvisionerSecretName": "s", p.NamespaceKey: "ns"}, claim(),
			&v1.SecretReference{Name: "s", Namespace: "ns"}, ""},
		{"name twice", p, map[string]string{"csiProvisionerSecretName": "s", p.NameKey: "t", p.NamespaceKey: "ns"}, claim(), nil,
			"given twice"},
		{"namespace twice", p, map[string]string{"csiProvisionerSecretNamespace": "s", p.NameKey: "t", p.NamespaceKey: "ns"}, claim(), nil,
			"given twice"},
		{"name only", p, map[string]string{p.NameKey: "s"}, claim(), nil, `namespace parameter "csi.storage.k8s.io/provisioner-secret-namespace" is missing`},
		{"namespace only", p, map[string]string{p.NamespaceKey: "s"}, claim(), nil, `name parameter "csi.storage.k8s.io/provisioner-secret-name" is missing`},
		{"empty name", p, map[string]string{p.NameKey: "", p.NamespaceKey: "ns"}, claim(), nil, "is empty"},
		{"empty namespace", p, map[string]string{p.NameKey: "x", p.NamespaceKey: ""}, claim(), nil, "is empty"},
		{"templates", p, map[string]string{p.NameKey: "${pvc.name}-${pvc.annotations['owner']}-${pv.name}", p.NamespaceKey: "${pvc.namespace}"},
			claim(), &v1.SecretReference{Name: "data-0-alice-pvc-1", Namespace: "team-a"}, ""},
		{"short form", p, map[string]string{p.NameKey: "x", p.NamespaceKey: "$pv"}, claim(), nil, `unknown token(s) ["pv"]`},
		{"pvc name not allowed in namespace", p, map[string]string{p.NameKey: "x", p.NamespaceKey: "${pvc.name}"}, claim(), nil,
			`parameter "csi.storage.k8s.io/provisioner-secret-namespace"`},
		{"annotation not allowed in namespace", p, map[string]string{p.NameKey: "x", p.NamespaceKey: "${pvc.annotations['owner']}"}, claim(), nil,
			"unknown token"},
		{"missing annotation", p, map[string]string{p.NameKey: "${pvc.annotations['nope']}", p.NamespaceKey: "ns"}, claim(), nil,
			`parameter "csi.storage.k8s.io/provisioner-secret-name"`},
		{"invalid resolved name", p, map[string]string{p.NameKey: "${pvc.annotations['bad']}", p.NamespaceKey: "ns"}, claim(), nil,
			"not a valid secret name"},
		{"invalid literal namespace", p, map[string]string{p.NameKey: "x", p.NamespaceKey: "a.b"}, claim(), nil, "not a valid namespace name"},
		{"no pvc at delete", p, map[string]string{p.NameKey: "x", p.NamespaceKey: "${pvc.namespace}"}, nil, nil, "unknown token"},
		{"pv name without pvc", p, map[string]string{p.NameKey: "${pv.name}", p.NamespaceKey: "ns"}, nil,
			&v1.SecretReference{Name: "pvc-1", Namespace: "ns"}, ""},
		{"default fallback", ControllerPublishSecret, map[string]string{DefaultSecretNameKey: "d", DefaultSecretNamespaceKey: "dn"}, claim(),
			&v1.SecretReference{Name: "d", Namespace: "dn"}, ""},
		{"own pair beats default", NodeStageSecret, map[string]string{DefaultSecretNameKey: "d", DefaultSecretNamespaceKey: "dn",
			NodeStageSecret.NameKey: "o", NodeStageSecret.NamespaceKey: "on"}, claim(), &v1.SecretReference{Name: "o", Namespace: "on"}, ""},
		{"legacy node publish", NodePublishSecret, map[string]string{"csiNodePublishSecretName": "o", "csiNodePublishSecretNamespace": "on"},
			claim(), &v1.SecretReference{Name: "o", Namespace: "on"}, ""},
		{"no fallback for snapshotter", SnapshotterSecret, map[string]string{DefaultSecretNameKey: "d", DefaultSecretNamespaceKey: "dn"}, claim(), nil, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := tc.secret.Resolve(tc.params, ProvisionVars("pvc-1", tc.pvc))
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("Resolve err = %v, want containing %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("Resolve: %v", err)
			}
			if (got == nil) != (tc.want == nil) || got != nil && *got != *tc.want {
				t.Fatalf("Resolve = %v, want %v", got, tc.want)
			}
		})
	}
}

func TestResolveSnapshotterSecrets(t *testing.T) {
	s := SnapshotterSecret
	vars := SnapshotVars("snapcontent-1", "snap", "ns1")
	for _, tc := range []struct {
		name    string
		params  map[string]string
		vars    Vars
		want    *v1.SecretReference
		wantErr string
	}{
		{"templates", map[string]string{s.NameKey: "${volumesnapshot.name}-${volumesnapshotcontent.name}", s.NamespaceKey: "${volumesnapshot.namespace}"},
			vars, &v1.SecretReference{Name: "snap-snapcontent-1", Namespace: "ns1"}, ""},
		{"content name as namespace", map[string]string{s.NameKey: "x", s.NamespaceKey: "${volumesnapshotcontent.name}"},
			vars, &v1.SecretReference{Name: "x", Namespace: "snapcontent-1"}, ""},
		{"snapshot name not in namespace", map[string]string{s.NameKey: "x", s.NamespaceKey: "${volumesnapshot.name}"}, vars, nil, "unknown token"},
		{"pvc token unknown", map[string]string{s.NameKey: "${pvc.name}", s.NamespaceKey: "n"}, vars, nil, "unknown token"},
		{"list secret content only", map[string]string{SnapshotterListSecret.NameKey: "${volumesnapshot.name}", SnapshotterListSecret.NamespaceKey: "n"},
			SnapshotVars("c", "", ""), nil, "unknown token"},
		{"group", map[string]string{GroupSnapshotterSecret.NameKey: "${volumegroupsnapshot.name}", GroupSnapshotterSecret.NamespaceKey: "${volumegroupsnapshot.namespace}"},
			GroupSnapshotVars("gc", "g", "gns"), &v1.SecretReference{Name: "g", Namespace: "gns"}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			sec := s
			for _, c := range []Secret{SnapshotterListSecret, GroupSnapshotterSecret} {
				if c.Configured(tc.params) {
					sec = c
				}
			}
			got, err := sec.Resolve(tc.params, tc.vars)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("Resolve err = %v, want containing %q", err, tc.wantErr)
				}
				return
			}
			if err != nil || got == nil || *got != *tc.want {
				t.Fatalf("Resolve = %v, %v, want %v", got, err, tc.want)
			}
		})
	}
}

func TestResolveTemplate(t *testing.T) {
	vars := map[string]string{"a": "1", "b.c": "2", "x_y": "3"}
	for _, tc := range []struct {
		in, want, wantErr string
	}{
		{"plain", "plain", ""},
		{"", "", ""},
		{"${a}-${b.c}", "1-2", ""},
		{"$a-$x_y", "1-3", ""},
		{"$x_y.z", "3.z", ""},
		{"${nope}", "", "unknown token"},
		{"${a", "", "unclosed"},
		{"${}", "", "empty"},
		{"a$", "", "does not start a token"},
		{"$-", "", "does not start a token"},
		{"$$", "", "does not start a token"},
		{"${a}${a}", "11", ""},
	} {
		got, err := ResolveTemplate(tc.in, vars)
		if tc.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("ResolveTemplate(%q) err = %v, want containing %q", tc.in, err, tc.wantErr)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("ResolveTemplate(%q) = %q, %v; want %q", tc.in, got, err, tc.want)
		}
	}
}

func TestFetchSecret(t *testing.T) {
	client := fake.NewClientset(&v1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "s", Namespace: "n"}, Data: map[string][]byte{"k": []byte("v")}})
	got, err := FetchSecret(context.Background(), client.CoreV1(), &v1.SecretReference{Name: "s", Namespace: "n"})
	if err != nil || got["k"] != "v" {
		t.Fatalf("FetchSecret = %v, %v", got, err)
	}
	if _, err := FetchSecret(context.Background(), client.CoreV1(), &v1.SecretReference{Name: "missing", Namespace: "n"}); err == nil ||
		!strings.Contains(err.Error(), "missing") {
		t.Fatalf("FetchSecret missing: err = %v", err)
	}
	if got, err := FetchSecret(context.Background(), client.CoreV1(), nil); got != nil || err != nil {
		t.Fatalf("FetchSecret(nil) = %v, %v", got, err)
	}
}

func FuzzResolveTemplate(f *testing.F) {
	for _, s := range []string{"${pvc.namespace}-${pvc.name}", "$pv", "${pvc.annotations['k']}", "${", "$", "a$b", "${}", "x"} {
		f.Add(s)
	}
	vars := ProvisionVars("pvc-1", &v1.PersistentVolumeClaim{ObjectMeta: metav1.ObjectMeta{
		Name: "a", Namespace: "b", Annotations: map[string]string{"k": "v"}}})
	f.Fuzz(func(t *testing.T, tmpl string) {
		out, err := ResolveTemplate(tmpl, vars.name())
		if err == nil && strings.Contains(out, "$") && !strings.Contains(tmpl, "$$") {
			t.Fatalf("ResolveTemplate(%q) = %q: placeholder left", tmpl, out)
		}
		if err == nil && !strings.Contains(tmpl, "$") && out != tmpl {
			t.Fatalf("ResolveTemplate(%q) = %q: changed literal", tmpl, out)
		}
		sec := ProvisionerSecret
		ref, err := sec.Resolve(map[string]string{sec.NameKey: tmpl, sec.NamespaceKey: tmpl}, vars)
		if err == nil {
			if len(validation.IsDNS1123Label(ref.Namespace)) > 0 || len(validation.IsDNS1123Subdomain(ref.Name)) > 0 {
				t.Fatalf("Resolve(%q) = %+v: not DNS names", tmpl, ref)
			}
		} else if !strings.Contains(err.Error(), Prefix) {
			t.Fatalf("Resolve(%q) error %q does not name the parameter", tmpl, err)
		}
	})
}

package crds

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestDecodeCRDFile(t *testing.T) {
	const crd = "apiVersion: apiextensions.k8s.io/v1\nkind: CustomResourceDefinition\nmetadata:\n  name: %s\n"
	for _, tc := range []struct {
		name    string
		content string
		want    []string // CRD names
		wantErr string
	}{
		{"one", strings.ReplaceAll(crd, "%s", "a.x.io"), []string{"a.x.io"}, ""},
		{"leading separator and comments", "# c\n---\n" + strings.ReplaceAll(crd, "%s", "a.x.io") + "---\n# only a comment\n",
			[]string{"a.x.io"}, ""},
		{"two", strings.ReplaceAll(crd, "%s", "a.x.io") + "--- \n" + strings.ReplaceAll(crd, "%s", "b.x.io"),
			[]string{"a.x.io", "b.x.io"}, ""},
		{"not a CRD", "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: c\n", nil, "not a CustomResourceDefinition"},
		{"no name", "apiVersion: apiextensions.k8s.io/v1\nkind: CustomResourceDefinition\n", nil, "without a name"},
		{"bad yaml", "a: [\n", nil, "document 1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			file := filepath.Join(t.TempDir(), "crd.yaml")
			if err := os.WriteFile(file, []byte(tc.content), 0o600); err != nil {
				t.Fatal(err)
			}
			objs, err := decodeCRDFile(file, false)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want one containing %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, o := range objs {
				got = append(got, o.GetName())
			}
			if strings.Join(got, ",") != strings.Join(tc.want, ",") {
				t.Errorf("CRDs = %v, want %v", got, tc.want)
			}
		})
	}
}

func TestReadCRDsSkipsKustomization(t *testing.T) {
	dir := t.TempDir()
	files := map[string]string{
		"kustomization.yaml": "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\n",
		"a.yaml":             "apiVersion: apiextensions.k8s.io/v1\nkind: CustomResourceDefinition\nmetadata:\n  name: a.x.io\n",
		"notes.txt":          "not yaml",
	}
	for name, content := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	crds, err := readCRDs([]string{dir}, false)
	if err != nil {
		t.Fatal(err)
	}
	if len(crds) != 1 || crds[0].obj.GetName() != "a.x.io" {
		t.Errorf("read %d CRDs (%v), want only a.x.io", len(crds), crds)
	}
}

package controlplane

import (
	"os"
	"path/filepath"
	"regexp"
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
			objs, err := decodeCRDFile(file)
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
	crds, err := readCRDs([]string{dir})
	if err != nil {
		t.Fatal(err)
	}
	if len(crds) != 1 || crds[0].obj.GetName() != "a.x.io" {
		t.Errorf("read %d CRDs (%v), want only a.x.io", len(crds), crds)
	}
}

func TestValidate(t *testing.T) {
	err := Options{StartTimeout: -1, CRDDirs: []string{"ok", ""}}.Validate()
	if err == nil {
		t.Fatal("Validate accepted bad options")
	}
	for _, want := range []string{"StartTimeout", "CRDDirs[1]"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not name %s", err, want)
		}
	}
	if err := (Options{}).Validate(); err != nil {
		t.Errorf("zero Options: %v", err)
	}
}

// The Go constants name the cache directory; build.sh must build the same
// versions when run by hand.
func TestBuildScriptVersionsMatch(t *testing.T) {
	for name, want := range map[string]string{"K8S_VERSION": KubernetesVersion, "ETCD_VERSION": EtcdVersion} {
		re := regexp.MustCompile(name + `="\$\{` + name + `:-([^}]+)\}"`)
		m := re.FindSubmatch(buildScript)
		if m == nil || string(m[1]) != want {
			t.Errorf("build.sh default %s = %q, want %s", name, m, want)
		}
	}
}

func TestSummarize(t *testing.T) {
	body := "[+]ping ok\n[-]poststarthook/rbac/bootstrap-roles failed: reason withheld\n[+]log ok\nreadyz check failed\n"
	if got, want := summarize(body), "[-]poststarthook/rbac/bootstrap-roles failed: reason withheld"; got != want {
		t.Errorf("summarize = %q, want %q", got, want)
	}
}

func TestTailWriter(t *testing.T) {
	w := &tailWriter{max: 5}
	w.Write([]byte("abc"))
	w.Write([]byte("defg"))
	if got := w.String(); got != "cdefg" {
		t.Errorf("tail = %q, want cdefg", got)
	}
}

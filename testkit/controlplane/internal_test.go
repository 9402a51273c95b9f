package controlplane

import (
	"regexp"
	"strings"
	"testing"
)

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

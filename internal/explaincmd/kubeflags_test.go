package explaincmd

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
)

// twoClusters writes a kubeconfig with clusters a and b, users ua and ub
// (tokens ta and tb), and contexts one (a, ua, namespace apps), two (b, ub,
// namespace ops) and bare (a, ua, no namespace); one is current.
func twoClusters(t *testing.T) string {
	t.Helper()
	kc := clientcmdapi.NewConfig()
	kc.Clusters["a"] = &clientcmdapi.Cluster{Server: "https://a.example:6443"}
	kc.Clusters["b"] = &clientcmdapi.Cluster{Server: "https://b.example:6443"}
	kc.AuthInfos["ua"] = &clientcmdapi.AuthInfo{Token: "ta"}
	kc.AuthInfos["ub"] = &clientcmdapi.AuthInfo{Token: "tb"}
	kc.Contexts["one"] = &clientcmdapi.Context{Cluster: "a", AuthInfo: "ua", Namespace: "apps"}
	kc.Contexts["two"] = &clientcmdapi.Context{Cluster: "b", AuthInfo: "ub", Namespace: "ops"}
	kc.Contexts["bare"] = &clientcmdapi.Context{Cluster: "a", AuthInfo: "ua"}
	kc.CurrentContext = "one"
	path := filepath.Join(t.TempDir(), "kubeconfig")
	if err := clientcmd.WriteToFile(*kc, path); err != nil {
		t.Fatal(err)
	}
	return path
}

// Every kubeconfig flag reaches the client config or the namespace.
func TestKubeFlags(t *testing.T) {
	path := twoClusters(t)
	// A KUBECONFIG that --kubeconfig must win over.
	t.Setenv("KUBECONFIG", kubeconfig(t, "https://env.example:6443"))
	type want struct {
		host, token, ns string
		check           func(*rest.Config) bool
	}
	a, b := "https://a.example:6443", "https://b.example:6443"
	// clientcmd checks that the file opens; the client would parse it later.
	ca := filepath.Join(t.TempDir(), "ca.crt")
	if err := os.WriteFile(ca, []byte("not parsed here"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		args []string
		want want
	}{
		{nil, want{a, "ta", "apps", nil}},
		{[]string{"--context", "two"}, want{b, "tb", "ops", nil}},
		{[]string{"--context", "bare"}, want{a, "ta", "default", nil}},
		{[]string{"--cluster", "b"}, want{b, "ta", "apps", nil}},
		{[]string{"--user", "ub"}, want{a, "tb", "apps", nil}},
		{[]string{"-n", "x"}, want{a, "ta", "x", nil}},
		{[]string{"--context", "two", "--namespace", "y"}, want{b, "tb", "y", nil}},
		{[]string{"--server", "https://s.example:1"}, want{"https://s.example:1", "ta", "apps", nil}},
		{[]string{"-s", "https://s.example:2"}, want{"https://s.example:2", "ta", "apps", nil}},
		{[]string{"--master", "https://m.example:3"}, want{"https://m.example:3", "ta", "apps", nil}},
		{[]string{"--token", "t2"}, want{a, "t2", "apps", nil}},
		{[]string{"--as", "alice", "--as-group", "g1", "--as-group", "g2"}, want{a, "ta", "apps", func(c *rest.Config) bool {
			return c.Impersonate.UserName == "alice" && slices.Equal(c.Impersonate.Groups, []string{"g1", "g2"})
		}}},
		{[]string{"--certificate-authority", ca}, want{a, "ta", "apps", func(c *rest.Config) bool {
			return c.TLSClientConfig.CAFile == ca && !c.TLSClientConfig.Insecure
		}}},
		{[]string{"--insecure-skip-tls-verify"}, want{a, "ta", "apps", func(c *rest.Config) bool { return c.TLSClientConfig.Insecure }}},
		{[]string{"--request-timeout", "7s"}, want{a, "ta", "apps", func(c *rest.Config) bool { return c.Timeout == 7*time.Second }}},
	} {
		args := append([]string{"pvc", "data", "--kubeconfig", path}, tc.args...)
		o, err := parse("x explain", args)
		if err != nil {
			t.Errorf("%q: %v", tc.args, err)
			continue
		}
		cfg, ns, err := o.restConfig()
		if err != nil {
			t.Errorf("%q: %v", tc.args, err)
			continue
		}
		if cfg.Host != tc.want.host || cfg.BearerToken != tc.want.token || ns != tc.want.ns {
			t.Errorf("%q: host %q, token %q, namespace %q; want %q, %q, %q", tc.args, cfg.Host, cfg.BearerToken, ns, tc.want.host, tc.want.token, tc.want.ns)
		}
		if tc.want.check != nil && !tc.want.check(cfg) {
			t.Errorf("%q: the flag did not reach the client config: %+v", tc.args, cfg)
		}
		if cfg.QPS != qps || cfg.Burst != burst {
			t.Errorf("%q: QPS %v burst %d, want %v %d", tc.args, cfg.QPS, cfg.Burst, float32(qps), burst)
		}
	}

	// Without --kubeconfig, KUBECONFIG is read.
	o, err := parse("x explain", []string{"pvc", "data"})
	if err != nil {
		t.Fatal(err)
	}
	cfg, ns, err := o.restConfig()
	if err != nil || cfg.Host != "https://env.example:6443" || ns != "apps" {
		t.Errorf("from KUBECONFIG: cfg %+v, namespace %q, err %v; want host https://env.example:6443, namespace apps", cfg, ns, err)
	}

	// A bad flag value is an error that says what to do.
	o, err = parse("x explain", []string{"pvc", "data", "--kubeconfig", path, "--request-timeout", "soon"})
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := o.restConfig(); err == nil || !strings.Contains(err.Error(), "kubectl config get-contexts") {
		t.Errorf("--request-timeout soon: err %v, want an error with advice", err)
	}
}

// The usage lists exactly the flags that are wired, --master aside.
func TestUsageListsKubeFlags(t *testing.T) {
	o, err := parse("x explain", []string{"--help"})
	if err == nil {
		t.Fatal("--help: no error")
	}
	u := o.usage()
	for _, f := range []string{"--kubeconfig", "--context", "--cluster", "--user", "-n, --namespace", "-s, --server", "--certificate-authority",
		"--insecure-skip-tls-verify", "--token", "--as ", "--as-group", "--request-timeout"} {
		if !strings.Contains(u, f) {
			t.Errorf("usage lacks %q", f)
		}
	}
	for _, f := range []string{"--cache-dir", "--client-certificate", "--username", "--password"} {
		if strings.Contains(u, f) {
			t.Errorf("usage lists %q, which is not wired", f)
		}
	}
}

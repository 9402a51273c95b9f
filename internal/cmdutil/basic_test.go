package cmdutil

import (
	"flag"
	"testing"
)

// TestBasicFlags checks that a Basic binary has the logging flags, --version
// and --automaxprocs exactly as every other binary has them, and none of the
// client, election or CSI flags.
func TestBasicFlags(t *testing.T) {
	basic := flag.NewFlagSet("basic", flag.ContinueOnError)
	RegisterBasic(basic, &Basic{})
	common := flag.NewFlagSet("common", flag.ContinueOnError)
	Register(common, &Common{}, Defaults{NoCSI: true})

	basic.VisitAll(func(f *flag.Flag) {
		c := common.Lookup(f.Name)
		if c == nil {
			t.Errorf("--%s: not a flag of the other binaries", f.Name)
			return
		}
		if c.Usage != f.Usage || c.DefValue != f.DefValue {
			t.Errorf("--%s: usage %q default %q, other binaries %q %q", f.Name, f.Usage, f.DefValue, c.Usage, c.DefValue)
		}
	})
	for _, name := range []string{"v", "vmodule", "logging-format", "log-flush-frequency", "log-text-split-stream", "version", "automaxprocs"} {
		if basic.Lookup(name) == nil {
			t.Errorf("--%s missing", name)
		}
	}
	for _, name := range []string{"kubeconfig", "leader-election", "http-endpoint", "csi-address", "kube-api-qps"} {
		if basic.Lookup(name) != nil {
			t.Errorf("--%s registered, but a Basic binary has no use for it", name)
		}
	}
}

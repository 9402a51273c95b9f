package leaderelection

import (
	"bytes"
	"flag"
	"strings"
	"testing"
	"time"
)

func TestLockName(t *testing.T) {
	for _, tc := range []struct{ component, driver, want string }{
		{ComponentProvisioner, "ebs.csi.aws.com", "ebs-csi-aws-com"},
		{ComponentResizer, "diskplugin.csi.alibabacloud.com", "external-resizer-diskplugin-csi-alibabacloud-com"},
		{ComponentSnapshotter, "hostpath.csi.k8s.io", "external-snapshotter-leader-hostpath-csi-k8s-io"},
		{ComponentSnapshotCtl, "ignored", "snapshot-controller-leader"},
		{ComponentProvisioner, "weird/driver_", "weird-driver-X"},
	} {
		if got := LockName(tc.component, tc.driver); got != tc.want {
			t.Errorf("LockName(%q, %q) = %q, want %q", tc.component, tc.driver, got, tc.want)
		}
	}
}

func TestUniqueIdentity(t *testing.T) {
	a, b := UniqueIdentity(), UniqueIdentity()
	if a == b {
		t.Fatalf("two identities are equal: %q", a)
	}
	if !strings.Contains(a, "_") {
		t.Errorf("identity %q has no host_uuid shape", a)
	}
}

func TestValidate(t *testing.T) {
	for _, tc := range []struct {
		name    string
		opts    Options
		wantErr []string
	}{
		{"defaults", Options{LockName: "x"}, nil},
		{"no lock", Options{}, []string{"LockName is empty"}},
		{"lease not above renew", Options{LockName: "x", LeaseDuration: 10 * time.Second}, []string{"lease duration 10s must exceed renew deadline 10s by at least 1s"}},
		{"lease less than 1s above renew", Options{LockName: "x", LeaseDuration: 11 * time.Second, RenewDeadline: 10500 * time.Millisecond},
			[]string{"lease duration 11s must exceed renew deadline 10.5s by at least 1s"}},
		{"lease exactly 1s above renew", Options{LockName: "x", LeaseDuration: 11 * time.Second}, nil},
		{"negative release timeout", Options{LockName: "x", ReleaseTimeout: -time.Second}, []string{"release timeout -1s must not be negative"}},
		{"renew vs retry", Options{LockName: "x", RetryPeriod: 10 * time.Second}, []string{"renew deadline 10s must be greater than 1.2 × retry period 10s"}},
		{"negative", Options{LockName: "x", LeaseDuration: -time.Second}, []string{"lease duration -1s must be positive"}},
		{"sub-second lease", Options{LockName: "x", LeaseDuration: 15500 * time.Millisecond}, []string{"whole seconds"}},
		{"every problem at once", Options{RetryPeriod: 9 * time.Second, LeaseDuration: 5 * time.Second},
			[]string{"LockName is empty", "must exceed renew deadline", "1.2 × retry period"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.opts.WithDefaults().Validate()
			if len(tc.wantErr) == 0 {
				if err != nil {
					t.Fatalf("Validate() = %v, want nil", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("Validate() = nil, want errors %q", tc.wantErr)
			}
			for _, w := range tc.wantErr {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("Validate() = %q, want it to contain %q", err, w)
				}
			}
		})
	}
}

func TestNewRejectsBadOptions(t *testing.T) {
	if _, err := New(Options{LockName: "x"}, nil); err == nil || !strings.Contains(err.Error(), "client is nil") {
		t.Errorf("New(nil client) = %v", err)
	}
}

func parseFlags(t *testing.T, args ...string) (*Flags, string, error) {
	t.Helper()
	fs := flag.NewFlagSet("test", flag.ContinueOnError)
	fs.SetOutput(&bytes.Buffer{})
	f := &Flags{}
	RegisterFlags(fs, f)
	var warn bytes.Buffer
	f.warn = &warn
	err := fs.Parse(args)
	if err == nil {
		err = f.Check()
	}
	return f, warn.String(), err
}

func TestFlags(t *testing.T) {
	for _, tc := range []struct {
		name      string
		args      []string
		enabled   bool
		wantWarn  string
		wantErr   string
		wantLease time.Duration
	}{
		{name: "defaults", args: nil, wantLease: DefaultLeaseDuration},
		{name: "current spelling", args: []string{"--leader-election"}, enabled: true, wantLease: DefaultLeaseDuration},
		{name: "seed 001 old spellings", args: []string{"--enable-leader-election=true", "--leader-election-type=leases"},
			enabled: true, wantWarn: "--enable-leader-election is deprecated", wantLease: DefaultLeaseDuration},
		{name: "old type value", args: []string{"--leader-election-type=endpoints"}, wantErr: `lock type "endpoints" is not supported`},
		{name: "durations", args: []string{"--leader-election", "--leader-election-lease-duration=30s", "--leader-election-renew-deadline=20s", "--leader-election-retry-period=10s"},
			enabled: true, wantLease: 30 * time.Second},
		{name: "bad durations", args: []string{"--leader-election", "--leader-election-retry-period=10s"}, wantErr: "1.2 × retry period"},
		{name: "bad durations ignored when disabled", args: []string{"--leader-election-retry-period=10s"}, wantLease: DefaultLeaseDuration},
		{name: "labels", args: []string{"--leader-election-labels=a:b,c:d"}, wantLease: DefaultLeaseDuration},
		{name: "bad labels", args: []string{"--leader-election-labels=nocolon"}, wantErr: "not key:value"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f, warn, err := parseFlags(t, tc.args...)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if f.Enabled != tc.enabled {
				t.Errorf("Enabled = %v, want %v", f.Enabled, tc.enabled)
			}
			if !strings.Contains(warn, tc.wantWarn) {
				t.Errorf("warnings %q, want %q", warn, tc.wantWarn)
			}
			if f.Options.LeaseDuration != tc.wantLease {
				t.Errorf("lease = %v, want %v", f.Options.LeaseDuration, tc.wantLease)
			}
		})
	}
}

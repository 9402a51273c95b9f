package compflags

import (
	"flag"
	"strings"
	"testing"
)

func TestGroupFeatureGateFlag(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want bool // DisableVolumeGroupSnapshots
	}{
		{nil, false},
		{[]string{"--feature-gates=CSIVolumeGroupSnapshot=false"}, true},
		{[]string{"--feature-gates=CSIVolumeGroupSnapshot=true"}, false},
		{[]string{"--feature-gates=ReleaseLeaderElectionOnExit=true"}, false},
	} {
		fs := flag.NewFlagSet("snapshot-controller", flag.ContinueOnError)
		var f SnapshotController
		RegisterSnapshotController(fs, &f)
		if err := fs.Parse(tc.args); err != nil {
			t.Fatal(err)
		}
		if err := f.Check(); err != nil {
			t.Fatal(err)
		}
		if f.Options.DisableVolumeGroupSnapshots != tc.want {
			t.Errorf("%v: DisableVolumeGroupSnapshots = %v, want %v", tc.args, f.Options.DisableVolumeGroupSnapshots, tc.want)
		}
	}
}

func TestGroupSidecarFlags(t *testing.T) {
	for _, tc := range []struct {
		name     string
		args     []string
		prefix   string
		length   int
		disabled bool
		wantErr  string
	}{
		{"defaults: groups on", nil, "groupsnapshot", -1, false, ""},
		{"prefix and length", []string{"--groupsnapshot-name-prefix=grp", "--groupsnapshot-name-uuid-length=8"}, "grp", 8, false, ""},
		{"gate off", []string{"--feature-gates=CSIVolumeGroupSnapshot=false"}, "groupsnapshot", -1, true, ""},
		{"gate on", []string{"--feature-gates=CSIVolumeGroupSnapshot=true"}, "groupsnapshot", -1, false, ""},
		{"empty prefix", []string{"--groupsnapshot-name-prefix="}, "", -1, false, "--groupsnapshot-name-prefix must not be empty"},
		{"length too long", []string{"--groupsnapshot-name-uuid-length=33"}, "groupsnapshot", 33, false, "GroupSnapshotNameUUIDLength 33"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fs := flag.NewFlagSet("csi-snapshotter", flag.ContinueOnError)
			var f SnapshotSidecar
			RegisterSnapshotSidecar(fs, &f)
			if err := fs.Parse(tc.args); err != nil {
				t.Fatal(err)
			}
			err := f.Check(false)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("Check = %v, want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			o := f.Options
			if o.GroupSnapshotNamePrefix != tc.prefix || o.GroupSnapshotNameUUIDLength != tc.length || o.DisableVolumeGroupSnapshots != tc.disabled {
				t.Errorf("options: prefix %q, length %d, disabled %v; want %q, %d, %v",
					o.GroupSnapshotNamePrefix, o.GroupSnapshotNameUUIDLength, o.DisableVolumeGroupSnapshots, tc.prefix, tc.length, tc.disabled)
			}
		})
	}
}

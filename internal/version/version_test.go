package version

import (
	"runtime/debug"
	"testing"
)

func TestResolve(t *testing.T) {
	const rev = "55c11a0f02eeaee4fbe0f4b33609a789357e46c4"
	checkout := func(modified string) *debug.BuildInfo {
		return &debug.BuildInfo{GoVersion: "go1.26.8", Main: debug.Module{Version: "v0.0.0-20261205050521-55c11a0f02ee+dirty"},
			Settings: []debug.BuildSetting{{Key: "vcs", Value: "git"}, {Key: "vcs.revision", Value: rev}, {Key: "vcs.modified", Value: modified}}}
	}
	for _, tc := range []struct {
		name                string
		ldVersion, ldCommit string
		bi                  *debug.BuildInfo
		want                Info
	}{
		{"linker flags win", "v0.1.0", rev, checkout("true"), Info{"v0.1.0", rev, "go1.26.8"}},
		{"linker version, commit from checkout", "v0.1.0", "", checkout("false"), Info{"v0.1.0", rev, "go1.26.8"}},
		{"checkout with local changes", "", "", checkout("true"),
			Info{"v0.0.0-20261205050521-55c11a0f02ee+dirty", rev + "-dirty", "go1.26.8"}},
		{"go install at a commit", "", "", &debug.BuildInfo{GoVersion: "go1.26.8", Main: debug.Module{Version: "v0.0.0-20261205050521-55c11a0f02ee"}},
			Info{"v0.0.0-20261205050521-55c11a0f02ee", "55c11a0f02ee", "go1.26.8"}},
		{"go install at a tag", "", "", &debug.BuildInfo{GoVersion: "go1.26.8", Main: debug.Module{Version: "v0.2.0"}},
			Info{"v0.2.0", UnknownCommit, "go1.26.8"}},
		{"nothing known", "", "", &debug.BuildInfo{GoVersion: "go1.26.8", Main: debug.Module{Version: "(devel)"}},
			Info{UnknownVersion, UnknownCommit, "go1.26.8"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := resolve(tc.ldVersion, tc.ldCommit, tc.bi); got != tc.want {
				t.Errorf("resolve = %+v, want %+v", got, tc.want)
			}
		})
	}
}

func TestResolveWithoutBuildInfo(t *testing.T) {
	got := resolve("", "", nil)
	if got.Version != UnknownVersion || got.Commit != UnknownCommit || got.Go == "" {
		t.Errorf("resolve(nil) = %+v, want %q, %q and the running Go version", got, UnknownVersion, UnknownCommit)
	}
}

func TestString(t *testing.T) {
	got := Info{"v0.1.0", "abc", "go1.26.8"}.String()
	if want := "v0.1.0 (commit abc, go1.26.8)"; got != want {
		t.Errorf("String = %q, want %q", got, want)
	}
}

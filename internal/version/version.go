// Package version says which build of csi-kit/sidecars is running: the
// module version, the git commit and the Go version.
//
// Release builds (make build, make images) set the version and commit at
// link time:
//
//	go build -ldflags "-X github.com/csi-kit/sidecars/internal/version.version=v0.1.0 \
//	    -X github.com/csi-kit/sidecars/internal/version.commit=$(git rev-parse HEAD)" ./examples/csi-resizer
//
// Without them the Go build information fills in what it can: a binary
// installed with `go install ...@<commit>` carries a pseudo-version that
// names the commit, and one built inside a git checkout carries the
// checked-out revision. What is still unknown reads "devel" (version) and
// "unknown" (commit).
package version

import (
	"fmt"
	"runtime"
	"runtime/debug"
	"strings"

	"golang.org/x/mod/module"
)

// Set with -ldflags -X; empty means "ask the build information".
var (
	version string
	commit  string
)

// Fallbacks for what neither the linker flags nor the build information say.
const (
	UnknownVersion = "devel"
	UnknownCommit  = "unknown"
)

// Info describes one build.
type Info struct {
	// Version is the module version, e.g. "v0.1.0", a pseudo-version, or
	// "devel".
	Version string
	// Commit is the full git commit, with "-dirty" when the checkout had
	// local changes and the build information says so; "unknown" if not
	// known, or the 12-character prefix a pseudo-version holds.
	Commit string
	// Go is the Go release that built the binary, e.g. "go1.26.8".
	Go string
}

// Get returns the running binary's build.
func Get() Info {
	bi, _ := debug.ReadBuildInfo()
	return resolve(version, commit, bi)
}

// String is "<version> (commit <commit>, <go>)".
func (i Info) String() string {
	return fmt.Sprintf("%s (commit %s, %s)", i.Version, i.Commit, i.Go)
}

// Line is what every binary's --version prints: "<program> <Info>".
func Line(program string) string {
	return program + " " + Get().String()
}

// resolve prefers the linker values, then the build information.
func resolve(ldVersion, ldCommit string, bi *debug.BuildInfo) Info {
	info := Info{Version: ldVersion, Commit: ldCommit, Go: runtime.Version()}
	if bi == nil {
		bi = &debug.BuildInfo{}
	}
	if bi.GoVersion != "" {
		info.Go = bi.GoVersion
	}
	mainVersion := bi.Main.Version
	if mainVersion == "(devel)" {
		mainVersion = ""
	}
	if info.Version == "" {
		info.Version = mainVersion
	}
	if info.Commit == "" {
		info.Commit = vcsCommit(bi.Settings)
	}
	if info.Commit == "" && module.IsPseudoVersion(strings.TrimSuffix(mainVersion, "+dirty")) {
		if rev, err := module.PseudoVersionRev(strings.TrimSuffix(mainVersion, "+dirty")); err == nil {
			info.Commit = rev
		}
	}
	if info.Version == "" {
		info.Version = UnknownVersion
	}
	if info.Commit == "" {
		info.Commit = UnknownCommit
	}
	return info
}

// vcsCommit is the revision stamped by a build inside a git checkout.
func vcsCommit(settings []debug.BuildSetting) string {
	var rev string
	var dirty bool
	for _, s := range settings {
		switch s.Key {
		case "vcs.revision":
			rev = s.Value
		case "vcs.modified":
			dirty = s.Value == "true"
		}
	}
	if rev != "" && dirty {
		rev += "-dirty"
	}
	return rev
}

// Package version tells which build of the project's programs is running:
// the module version and VCS revision, from the Go build information or,
// where that lacks them (a build with -buildvcs=false, a source tarball),
// from values the build passes with the linker:
//
//	go build -ldflags "-X github.com/dsrlb/dsrlb/internal/version.version=1.2.3 \
//	    -X github.com/dsrlb/dsrlb/internal/version.revision=0123456789ab" ./examples/dsrlb
//
// scripts/package.sh does this for the Debian package.
package version

import (
	"fmt"
	"runtime"
	"runtime/debug"
)

// Set with -ldflags -X; empty means "take it from the build information".
var (
	version  string
	revision string
)

// Unknown is the version of a build that recorded none (go run, go build
// with -buildvcs=false and no -X).
const Unknown = "(devel)"

// Info is the version of the running binary.
type Info struct {
	// Version is the module version ("v1.2.3", a pseudo-version, or a
	// packaging version such as "0.1.0+git20261204") or Unknown.
	Version string
	// Revision is the VCS revision, at most 12 hex digits, with
	// "+modified" when the work tree had uncommitted changes; empty when
	// the build recorded none.
	Revision string
	// Go is the Go release the binary was built with.
	Go string
}

// Get returns the running binary's version.
func Get() Info {
	return fromBuild(debug.ReadBuildInfo, version, revision)
}

// fromBuild merges the build information with the linker-set values, which
// win when set.
func fromBuild(read func() (*debug.BuildInfo, bool), linkVersion, linkRevision string) Info {
	in := Info{Version: Unknown, Go: runtime.Version()}
	if info, ok := read(); ok && info != nil {
		if v := info.Main.Version; v != "" {
			in.Version = v
		}
		if info.GoVersion != "" {
			in.Go = info.GoVersion
		}
		modified := false
		for _, s := range info.Settings {
			switch s.Key {
			case "vcs.revision":
				in.Revision = s.Value
			case "vcs.modified":
				modified = s.Value == "true"
			}
		}
		if len(in.Revision) > 12 {
			in.Revision = in.Revision[:12]
		}
		if in.Revision != "" && modified {
			in.Revision += "+modified"
		}
	}
	if linkVersion != "" {
		in.Version = linkVersion
	}
	if linkRevision != "" {
		in.Revision = linkRevision
	}
	return in
}

// String is the line the programs print for -version, such as
// "v1.2.3 (revision 0123456789ab, go1.26.8)".
func (i Info) String() string {
	rev := i.Revision
	if rev == "" {
		rev = "unknown"
	}
	return fmt.Sprintf("%s (revision %s, %s)", i.Version, rev, i.Go)
}

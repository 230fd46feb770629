package version

import (
	"os"
	"os/exec"
	"path/filepath"
	"runtime/debug"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestFromBuild(t *testing.T) {
	full := &debug.BuildInfo{GoVersion: "go1.99.1", Main: debug.Module{Version: "v1.2.3"}, Settings: []debug.BuildSetting{
		{Key: "vcs.revision", Value: "0123456789abcdef0123"},
		{Key: "vcs.modified", Value: "false"},
	}}
	dirty := &debug.BuildInfo{GoVersion: "go1.99.1", Main: debug.Module{Version: "(devel)"}, Settings: []debug.BuildSetting{
		{Key: "vcs.revision", Value: "fedcba9876543210"},
		{Key: "vcs.modified", Value: "true"},
	}}
	bare := &debug.BuildInfo{GoVersion: "go1.99.1"}
	tests := []struct {
		name         string
		info         *debug.BuildInfo
		ok           bool
		lv, lr       string
		wantV, wantR string
	}{
		{"build info with vcs", full, true, "", "", "v1.2.3", "0123456789ab"},
		{"modified tree", dirty, true, "", "", "(devel)", "fedcba987654+modified"},
		{"no vcs stamp", bare, true, "", "", Unknown, ""},
		{"no build info", nil, false, "", "", Unknown, ""},
		{"linker values win", full, true, "0.3.0", "abcabcabcabc", "0.3.0", "abcabcabcabc"},
		{"linker version only", bare, true, "0.3.0", "", "0.3.0", ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := fromBuild(func() (*debug.BuildInfo, bool) { return tc.info, tc.ok }, tc.lv, tc.lr)
			assert.Equal(t, tc.wantV, got.Version)
			assert.Equal(t, tc.wantR, got.Revision)
			if tc.ok {
				assert.Equal(t, "go1.99.1", got.Go)
			}
		})
	}
}

func TestString(t *testing.T) {
	assert.Equal(t, "v1.2.3 (revision 0123456789ab, go1.2)", Info{Version: "v1.2.3", Revision: "0123456789ab", Go: "go1.2"}.String())
	assert.Equal(t, "(devel) (revision unknown, go1.2)", Info{Version: Unknown, Go: "go1.2"}.String())
}

// TestLinkerFlags builds a program that prints Get() with -ldflags -X, the
// way scripts/package.sh does, and checks the values arrive.
func TestLinkerFlags(t *testing.T) {
	if testing.Short() {
		t.Skip("builds a program")
	}
	dir := t.TempDir()
	main := filepath.Join(dir, "main.go")
	require.NoError(t, os.WriteFile(main, []byte(`package main

import (
	"fmt"

	"github.com/dsrlb/dsrlb/internal/version"
)

func main() { fmt.Println(version.Get()) }
`), 0o644))
	// The program must be inside the module to import an internal package.
	src, err := os.MkdirTemp(".", "linkertest")
	require.NoError(t, err)
	t.Cleanup(func() { _ = os.RemoveAll(src) })
	data, err := os.ReadFile(main)
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(filepath.Join(src, "main.go"), data, 0o644))
	bin := filepath.Join(dir, "prog")
	const pkg = "github.com/dsrlb/dsrlb/internal/version"
	out, err := exec.Command("go", "build", "-buildvcs=false", "-o", bin,
		"-ldflags", "-X "+pkg+".version=9.8.7 -X "+pkg+".revision=feedfacecafe", "./"+src).CombinedOutput()
	require.NoError(t, err, "%s", out)
	out, err = exec.Command(bin).CombinedOutput()
	require.NoError(t, err, "%s", out)
	assert.True(t, strings.HasPrefix(string(out), "9.8.7 (revision feedfacecafe, go"), "got %q", out)
}

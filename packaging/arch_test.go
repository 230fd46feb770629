package packaging

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// A package for another architecture: the binaries are built for it, the
// package says so, and the packaging tool itself still runs on this host.
func TestPackageOtherArch(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the package")
	}
	for _, tool := range []string{"dpkg-deb", "bash", "go"} {
		if _, err := exec.LookPath(tool); err != nil {
			if os.Getenv("CI") == "true" {
				t.Fatalf("%s is not installed", tool)
			}
			t.Skipf("%s is not installed", tool)
		}
	}
	dir := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "bash", "../scripts/package.sh", dir)
	cmd.Env = append(os.Environ(), "GOARCH=arm64", "VERSION=0.0.0+archtest")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	require.NoError(t, err, "package.sh: %s", stderr.String())
	deb := strings.TrimSpace(string(out))
	assert.Equal(t, filepath.Join(dir, "dsrlb_0.0.0+archtest_arm64.deb"), deb)
	fields, err := exec.Command("dpkg-deb", "-f", deb, "Architecture", "Version", "Package").Output()
	require.NoError(t, err)
	assert.Equal(t, "Architecture: arm64\nVersion: 0.0.0+archtest\nPackage: dsrlb\n", string(fields))

	// The daemon inside is an arm64 ELF: e_machine 183 (EM_AARCH64).
	ex := filepath.Join(dir, "x")
	require.NoError(t, exec.Command("dpkg-deb", "-x", deb, ex).Run())
	bin, err := os.ReadFile(filepath.Join(ex, "usr/sbin/dsrlb"))
	require.NoError(t, err)
	require.Greater(t, len(bin), 20)
	assert.Equal(t, []byte("\x7fELF"), bin[:4])
	assert.Equal(t, uint16(183), uint16(bin[18])|uint16(bin[19])<<8, "e_machine")
}

package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dsrlb/dsrlb/internal/netlab"
	"github.com/dsrlb/dsrlb/internal/xdp"
)

// TestIntegrationXDPCleanup runs `dsrlb xdp-cleanup` on pins a program
// left: they are removed, and a second run finds none.
func TestIntegrationXDPCleanup(t *testing.T) {
	netlab.RequirePrivileged(t)
	pins := netlab.MountBPFFS(t)
	p, err := xdp.Load(&xdp.Config{MaxFlows: 1024, PinPath: filepath.Join(pins, "eth0")})
	require.NoError(t, err)
	require.NoError(t, p.Close())
	_, err = os.Stat(filepath.Join(pins, "eth0", "flows"))
	require.NoError(t, err, "the program pinned its flow table")

	path := filepath.Join(t.TempDir(), "dsrlb.yaml")
	require.NoError(t, os.WriteFile(path, []byte(strings.Replace(goodConfig, "workers: 2\n", "workers: 2\nxdp_pin: "+pins+"\n", 1)), 0o644))
	var out, errs bytes.Buffer
	require.Equal(t, 0, realMain([]string{"xdp-cleanup", "-config", path}, &out, &errs), errs.String())
	assert.Contains(t, out.String(), "pins removed")
	_, err = os.Stat(filepath.Join(pins, "eth0"))
	assert.ErrorIs(t, err, os.ErrNotExist)
	out.Reset()
	require.Equal(t, 0, realMain([]string{"xdp-cleanup", "-config", path}, &out, &errs), errs.String())
	assert.Contains(t, out.String(), "no pins")
}

//go:build linux && (386 || amd64 || arm || arm64 || loong64 || mips64le || mipsle || ppc64le || riscv64)

package xdp

import (
	"testing"

	"github.com/cilium/ebpf"

	"github.com/stretchr/testify/require"

	"github.com/dsrlb/dsrlb/internal/netlab"
)

// loadT loads the program for a test (skipping, or failing under CI,
// without the privileges to load BPF) and closes it when the test ends.
func loadT(t testing.TB, cfg *Config) *Program {
	t.Helper()
	netlab.RequirePrivileged(t)
	p, err := Load(cfg)
	require.NoError(t, err)
	t.Cleanup(func() { p.Close() })
	return p
}

// runOpts runs a program on a copy of frame and keeps its output.
func runOpts(frame []byte) *ebpf.RunOptions {
	return &ebpf.RunOptions{Data: frame, DataOut: make([]byte, len(frame)+256)}
}

package main

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestXDPPinConfig(t *testing.T) {
	for _, tc := range []struct {
		name, value string
		ok          bool
		path        string // "" with ok: no pinning (or the default, checked apart)
	}{
		{name: "off", value: "off", ok: true},
		{name: "a directory", value: "/run/bpf/lb", ok: true, path: "/run/bpf/lb/eth0"},
		{name: "relative", value: "bpf/lb"},
		{name: "word", value: "yes"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := strings.Replace(goodConfig, "workers: 2\n", "workers: 2\nxdp_pin: "+tc.value+"\n", 1)
			l, err := ParseConfig("pin.yaml", []byte(cfg))
			if !tc.ok {
				require.Error(t, err)
				assert.Contains(t, err.Error(), "pin.yaml:4: xdp_pin:")
				return
			}
			require.NoError(t, err)
			path, why := xdpPinPath(l.File)
			assert.Equal(t, tc.path, path)
			if path == "" {
				assert.Contains(t, why, "xdp_pin is off")
			}
		})
	}
	l, err := ParseConfig("pin.yaml", []byte(goodConfig))
	require.NoError(t, err)
	path, why := xdpPinPath(l.File)
	if ok, _ := isBPFFS(defaultBPFFS); ok {
		assert.Equal(t, filepath.Join(defaultBPFFS, "dsrlb", "eth0"), path)
	} else {
		assert.Empty(t, path)
		assert.Contains(t, why, "is not a mounted BPF filesystem", "the log says why there is no pinning")
	}
}

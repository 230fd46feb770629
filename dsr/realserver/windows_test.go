package realserver

import (
	"flag"
	"net/netip"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

var update = flag.Bool("update", false, "rewrite the golden files of the Windows script")

func TestWindowsScriptGolden(t *testing.T) {
	for _, tc := range []struct {
		name  string
		cfg   WindowsConfig
		check bool
	}{
		{"windows-dual", WindowsConfig{VIPs: []netip.Addr{netip.MustParseAddr("192.0.2.100"), netip.MustParseAddr("2001:db8::100")}}, false},
		{"windows-ipv4-named", WindowsConfig{VIPs: []netip.Addr{netip.MustParseAddr("192.0.2.100")}, Adapter: "LAN 2", Loopback: "vip-lo", Mode: ModeL2}, false},
		{"windows-check", WindowsConfig{VIPs: []netip.Addr{netip.MustParseAddr("192.0.2.100"), netip.MustParseAddr("2001:db8::100")}}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := WindowsScript(&tc.cfg, tc.check)
			require.NoError(t, err)
			path := filepath.Join("testdata", tc.name+".golden")
			if *update {
				require.NoError(t, os.MkdirAll("testdata", 0o755))
				require.NoError(t, os.WriteFile(path, []byte(got), 0o644))
			}
			want, err := os.ReadFile(path)
			require.NoError(t, err, "run with -update to create it")
			assert.Equal(t, string(want), got)
		})
	}
}

func TestWindowsScriptRefuses(t *testing.T) {
	vip := []netip.Addr{netip.MustParseAddr("192.0.2.100")}
	for _, m := range []Mode{ModeIPIP, ModeGUE} {
		_, err := WindowsScript(&WindowsConfig{VIPs: vip, Mode: m}, false)
		require.ErrorIs(t, err, ErrWindowsL3)
		assert.Contains(t, err.Error(), "L2 DSR only")
	}
	_, err := WindowsScript(&WindowsConfig{}, false)
	assert.ErrorIs(t, err, ErrInvalidConfig)
	_, err = WindowsScript(&WindowsConfig{VIPs: vip, Adapter: "x'; Remove-Item"}, false)
	assert.ErrorIs(t, err, ErrInvalidConfig)
	_, err = WindowsScript(&WindowsConfig{VIPs: []netip.Addr{netip.MustParseAddr("127.0.0.1")}}, false)
	assert.ErrorIs(t, err, ErrInvalidConfig)
}

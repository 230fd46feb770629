package main

import (
	"errors"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dsrlb/dsrlb/bgp"
)

const bgpConfig = goodConfig + `bgp:
  router_id: 192.0.2.10
  local_as: 65001
  vips: [192.0.2.100]
  peers:
    - address: 192.0.2.1
      as: 65000
      hold_time: 6s
      graceful_restart: true
      restart_time: 60s
      bfd: true
    - address: 192.0.2.2
      as: 65000
      port: 1179
`

func TestParseBGPSection(t *testing.T) {
	l, err := ParseConfig("bgp.yaml", []byte(bgpConfig))
	require.NoError(t, err)
	require.NotNil(t, l.BGP)
	assert.Equal(t, netip.MustParseAddr("192.0.2.10"), l.BGP.RouterID)
	assert.Equal(t, uint32(65001), l.BGP.LocalAS)
	require.Len(t, l.BGP.Peers, 2)
	p := l.BGP.Peers[0]
	assert.Equal(t, netip.MustParseAddr("192.0.2.1"), p.Addr)
	assert.Equal(t, 6*time.Second, p.HoldTime)
	require.NotNil(t, p.GracefulRestart)
	assert.Equal(t, 60*time.Second, p.GracefulRestart.RestartTime)
	assert.NotNil(t, p.BFD)
	assert.Nil(t, l.BGP.Peers[1].GracefulRestart)
	assert.Nil(t, l.BGP.Peers[1].BFD)
	assert.Equal(t, uint16(1179), l.BGP.Peers[1].Port)
	assert.Equal(t, map[netip.Addr]bool{netip.MustParseAddr("192.0.2.100"): true}, l.BGPVIPs)

	l, err = ParseConfig("good.yaml", []byte(goodConfig))
	require.NoError(t, err)
	assert.Nil(t, l.BGP, "no bgp section: no speaker")
}

func TestBadBGPSectionNamesLineAndField(t *testing.T) {
	cases := []struct {
		name, replace, with string
		field, want         string
	}{
		{"router id", "  router_id: 192.0.2.10", "  router_id: 2001:db8::10", "bgp.router_id", "want an IPv4 address"},
		{"router id missing", "  router_id: 192.0.2.10", "  router_id: \"\"", "bgp.router_id", "required"},
		{"local as", "  local_as: 65001", "  local_as: 0", "bgp.local_as", "required"},
		{"peer address", "    - address: 192.0.2.2", "    - address: router", "bgp.peers[1].address", `"router" is not an IP address`},
		{"peer as", "      as: 65000\n      port: 1179", "      as: 0\n      port: 1179", "bgp.peers[1].as", "required"},
		{"hold time", "      hold_time: 6s", "      hold_time: 1s", "bgp.peers[0].hold_time", "want 3s"},
		{"restart time without graceful restart", "      graceful_restart: true\n", "", "bgp.peers[0].restart_time", "graceful_restart is false"},
		{"restart time range", "      restart_time: 60s", "      restart_time: 2h", "bgp.peers[0].restart_time", "want 0s to 4095s"},
		{"vip not of a service", "  vips: [192.0.2.100]", "  vips: [192.0.2.200]", "bgp.vips[0]", "not the VIP of any service"},
		{"unknown key", "      bfd: true", "      bdf: true", "bgp.peers[0].bdf", "did you mean bfd?"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			require.Contains(t, bgpConfig, c.replace)
			text := strings.Replace(bgpConfig, c.replace, c.with, 1)
			_, err := ParseConfig("bgp.yaml", []byte(text))
			require.Error(t, err)
			var ce *ConfigError
			require.True(t, errors.As(err, &ce), "%T: %v", err, err)
			assert.Equal(t, c.field, ce.Field)
			assert.Contains(t, err.Error(), c.want)
			// The line is the field's own line in the file.
			lines := strings.Split(text, "\n")
			require.Greater(t, ce.Line, 0)
			require.LessOrEqual(t, ce.Line, len(lines))
			last := c.field[strings.LastIndex(c.field, ".")+1:]
			if i := strings.Index(last, "["); i >= 0 {
				last = last[:i]
			}
			assert.Contains(t, lines[ce.Line-1], last+":", "line %d: %q", ce.Line, lines[ce.Line-1])
		})
	}
	_, err := ParseConfig("bgp.yaml", []byte(strings.Replace(bgpConfig, "  local_as: 65001", "  local_as: 0", 1)))
	assert.ErrorIs(t, err, bgp.ErrConfig, "the library's sentinel stays in the chain")
}

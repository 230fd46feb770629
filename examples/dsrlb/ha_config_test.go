package main

import (
	"errors"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

const haService = `services:
  - vip: 192.0.2.100
    protocol: tcp
    port: 80
  - vip: 2001:db8::100
    protocol: tcp
  - vip: 192.0.2.100
    protocol: udp
    port: 53
`

func TestParseHA(t *testing.T) {
	l, err := ParseConfig("ha.yaml", []byte("interface: eth0\nha:\n  vrid: 51\n  priority: 150\n  advert_interval: 100ms\n  preempt_delay: 2s\n"+haService))
	require.NoError(t, err)
	vc := l.VRRPConfig()
	require.NotNil(t, vc)
	assert.Equal(t, uint8(51), vc.VRID)
	assert.Equal(t, uint8(150), vc.Priority)
	assert.Equal(t, 100*time.Millisecond, vc.Interval)
	assert.False(t, vc.NoPreempt, "preempt is the default")
	assert.Equal(t, 2*time.Second, vc.PreemptDelay)
	assert.Equal(t, []netip.Addr{netip.MustParseAddr("192.0.2.100")}, vc.VIPs, "IPv4 VIPs only, once each")

	l, err = ParseConfig("ha.yaml", []byte("interface: eth0\nha:\n  vrid: 1\n  preempt: false\n"+haService))
	require.NoError(t, err)
	assert.True(t, l.VRRPConfig().NoPreempt)

	l, err = ParseConfig("noha.yaml", []byte("interface: eth0\n"+haService))
	require.NoError(t, err)
	assert.Nil(t, l.VRRPConfig(), "no ha section: always owner")
}

func TestParseHAErrors(t *testing.T) {
	cases := []struct {
		name, ha, services string
		line               int
		field, msg         string
	}{
		{"no vrid", "ha:\n  priority: 100\n", haService, 2, "ha.vrid", "required"},
		{"vrid too large", "ha:\n  vrid: 256\n", haService, 3, "ha.vrid", "out of range"},
		{"owner priority", "ha:\n  vrid: 5\n  priority: 255\n", haService, 4, "ha.priority", "255"},
		{"interval not centiseconds", "ha:\n  vrid: 5\n  advert_interval: 15ms\n", haService, 4, "ha.advert_interval", "multiple of 10ms"},
		{"interval without unit", "ha:\n  vrid: 5\n  advert_interval: 1\n", haService, 4, "ha.advert_interval", "no unit"},
		{"preempt not a bool", "ha:\n  vrid: 5\n  preempt: maybe\n", haService, 4, "ha.preempt", "true or false"},
		{"delay without preempt", "ha:\n  vrid: 5\n  preempt: false\n  preempt_delay: 1s\n", haService, 5, "ha.preempt_delay", "no effect"},
		{"arp disabled", "arp:\n  disabled: true\nha:\n  vrid: 5\n", haService, 4, "ha", "ARP"},
		{"only IPv6 VIPs", "ha:\n  vrid: 5\n", "services:\n  - vip: 2001:db8::1\n    protocol: tcp\n", 2, "ha", "IPv4"},
		{"unknown field", "ha:\n  vrid: 5\n  priorty: 10\n", haService, 4, "ha.priorty", ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := ParseConfig("ha.yaml", []byte("interface: eth0\n"+c.ha+c.services))
			require.Error(t, err)
			var ce *ConfigError
			require.True(t, errors.As(err, &ce), "%T %v", err, err)
			assert.Equal(t, c.line, ce.Line, "%v", err)
			assert.Equal(t, c.field, ce.Field, "%v", err)
			assert.True(t, strings.Contains(err.Error(), c.msg), "%v", err)
			assert.Contains(t, err.Error(), "ha.yaml:")
		})
	}
}

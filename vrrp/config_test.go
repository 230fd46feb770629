package vrrp

import (
	"net/netip"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestConfigValidation(t *testing.T) {
	ok := func() *Config {
		return &Config{Interface: "eth0", VRID: 5, VIPs: []netip.Addr{vip1}}
	}
	cases := []struct {
		name  string
		mod   func(c *Config)
		field string
		want  error
	}{
		{"no interface", func(c *Config) { c.Interface = "" }, "Interface", ErrInvalidConfig},
		{"no VRID", func(c *Config) { c.VRID = 0 }, "VRID", ErrInvalidConfig},
		{"owner priority", func(c *Config) { c.Priority = 255 }, "Priority", ErrInvalidConfig},
		{"interval not centiseconds", func(c *Config) { c.Interval = 15 * time.Millisecond }, "Interval", ErrInvalidConfig},
		{"interval too long", func(c *Config) { c.Interval = time.Minute }, "Interval", ErrInvalidConfig},
		{"negative interval", func(c *Config) { c.Interval = -time.Second }, "Interval", ErrInvalidConfig},
		{"negative preempt delay", func(c *Config) { c.PreemptDelay = -1 }, "PreemptDelay", ErrInvalidConfig},
		{"no VIPs", func(c *Config) { c.VIPs = nil }, "VIPs", ErrInvalidConfig},
		{"IPv6 VIP", func(c *Config) { c.VIPs = append(c.VIPs, netip.MustParseAddr("2001:db8::1")) }, "VIPs", ErrIPv6},
		{"multicast VIP", func(c *Config) { c.VIPs = []netip.Addr{Group4} }, "VIPs", ErrInvalidConfig},
		{"duplicate VIP", func(c *Config) { c.VIPs = []netip.Addr{vip1, vip1} }, "VIPs", ErrInvalidConfig},
		{"IPv6 Addr", func(c *Config) { c.Addr = netip.MustParseAddr("2001:db8::1") }, "Addr", ErrInvalidConfig},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			cfg := ok()
			c.mod(cfg)
			_, err := cfg.settings()
			require.ErrorIs(t, err, c.want)
			require.ErrorIs(t, err, ErrInvalidConfig)
			assert.Contains(t, err.Error(), c.field)
		})
	}
	_, err := (*Config)(nil).settings()
	require.ErrorIs(t, err, ErrInvalidConfig)

	s, err := ok().settings()
	require.NoError(t, err)
	assert.Equal(t, uint8(DefaultPriority), s.prio)
	assert.Equal(t, DefaultInterval, s.interval)
	assert.True(t, s.preempt, "preemption is the default")
	assert.NotNil(t, s.log)
}

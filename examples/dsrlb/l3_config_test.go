package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"net/netip"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dsrlb/dsrlb/dsr"
)

const l3Config = `interface: eth0
services:
  - vip: 192.0.2.100
    protocol: tcp
    port: 80
    mode: gue
    gue_port: 7000
    gateway: 203.0.113.1
    source: 203.0.113.2
    backends:
      - addr: 198.51.100.21
      - addr: 198.51.100.22
        mode: ipip
  - vip: 2001:db8::100
    protocol: tcp
    port: 80
    mode: ipip
    backends:
      - addr: 2001:db8:5::21
`

func TestParseL3Config(t *testing.T) {
	l, err := ParseConfig("l3.yaml", []byte(l3Config))
	require.NoError(t, err)
	require.Len(t, l.Services, 2)
	s := l.Services[0]
	assert.Equal(t, dsr.ModeGUE, s.Mode)
	assert.EqualValues(t, 7000, s.GUEPort)
	assert.Equal(t, netip.MustParseAddr("203.0.113.1"), s.Gateway)
	assert.Equal(t, netip.MustParseAddr("203.0.113.2"), s.TunnelSource)
	assert.Equal(t, dsr.ModeDefault, s.Backends[0].Mode)
	assert.Equal(t, dsr.ModeIPIP, s.Backends[1].Mode)
	// No source: left for the daemon to fill from the interface.
	assert.Equal(t, dsr.ModeIPIP, l.Services[1].Mode)
	assert.False(t, l.Services[1].TunnelSource.IsValid())
	assert.True(t, needsSource(&l.Services[1]))
}

func TestL3ConfigErrors(t *testing.T) {
	for _, tc := range []struct {
		name, replace, with, field, want string
	}{
		{"bad mode", "mode: gue", "mode: vxlan", "services[0].mode", `"vxlan": want l2, ipip or gue`},
		{"bad backend mode", "        mode: ipip", "        mode: tunnel", "services[0].backends[1].mode", "want l2, ipip or gue"},
		{"bad gateway", "gateway: 203.0.113.1", "gateway: router", "services[0].gateway", "not an IP address"},
		{"bad source", "source: 203.0.113.2", "source: me", "services[0].source", "not an IP address"},
		{"source of the other family", "source: 203.0.113.2", "source: 2001:db8::2", "services[0].source", "VIP's family"},
		{"mixed families", "      - addr: 198.51.100.22", "      - addr: 2001:db8::22", "services[0].backends[1].addr", "IPv4 in IPv6"},
		{"bad gue port", "gue_port: 7000", "gue_port: 70000", "services[0].gue_port", "0 to 65535"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			data := replaceOnce(t, l3Config, tc.replace, tc.with)
			_, err := ParseConfig("l3.yaml", []byte(data))
			require.Error(t, err)
			var ce *ConfigError
			require.True(t, errors.As(err, &ce), "%T %v", err, err)
			assert.Equal(t, tc.field, ce.Field)
			assert.Contains(t, err.Error(), tc.want)
			assert.Contains(t, err.Error(), "l3.yaml:")
		})
	}
}

func TestInterfaceSource(t *testing.T) {
	_, err := interfaceSource("lo", netip.MustParseAddr("192.0.2.100"))
	assert.ErrorContains(t, err, "set source", "lo has no global address")
	_, err = interfaceSource("no-such-if0", netip.MustParseAddr("192.0.2.100"))
	assert.Error(t, err)
}

func replaceOnce(t *testing.T, s, old, new string) string {
	t.Helper()
	i := indexOnce(t, s, old)
	return s[:i] + new + s[i+len(old):]
}

func indexOnce(t *testing.T, s, sub string) int {
	t.Helper()
	first, n := -1, 0
	for i := 0; i+len(sub) <= len(s); i++ {
		if s[i:i+len(sub)] == sub {
			if first < 0 {
				first = i
			}
			n++
		}
	}
	require.Equal(t, 1, n, "%q must occur once", sub)
	return first
}

func TestExplainJSONL3(t *testing.T) {
	l, err := ParseConfig("l3.yaml", []byte(l3Config))
	require.NoError(t, err)
	b, err := dsr.New(nil)
	require.NoError(t, err)
	svc := l.Services[0]
	svc.Backends = svc.Backends[:1]
	svc.Backends[0].MAC = []byte{2, 0, 0, 0, 0, 1}
	require.NoError(t, b.AddService(svc))
	e, err := b.ExplainFlow(dsr.Tuple{Src: netip.MustParseAddrPort("198.51.100.7:4000"), Dst: netip.MustParseAddrPort("192.0.2.100:80"), Protocol: dsr.TCP})
	require.NoError(t, err)
	var buf bytes.Buffer
	writeExplanation(&buf, &e, true)
	var j map[string]any
	require.NoError(t, json.Unmarshal(buf.Bytes(), &j))
	assert.Equal(t, "gue", j["mode"])
	assert.Equal(t, "203.0.113.2", j["tunnel_source"])
	assert.Equal(t, "198.51.100.21", j["tunnel_dest"])
	assert.Equal(t, "203.0.113.1", j["next_hop"])
	assert.EqualValues(t, 7000, j["gue_port"])
}

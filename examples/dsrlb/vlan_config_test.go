package main

import (
	"bytes"
	"errors"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dsrlb/dsrlb/dsr"
)

const vlanConfig = `interface: trunk0
health:
  vlan_sources:
    - vlan: 10
      addrs: [198.51.100.250]
    - vlan: 20
      addrs: [203.0.113.250, "2001:db8:20::250"]
services:
  - vip: 192.0.2.100
    protocol: tcp
    port: 80
    vlan: 10
    checks:
      - type: dsr
    backends:
      - addr: 198.51.100.21
  - name: web-20
    vip: 192.0.2.100
    protocol: tcp
    port: 80
    vlan: 20
    backends:
      - addr: 198.51.100.21
`

func TestParseVLANConfig(t *testing.T) {
	l, err := ParseConfig("vlan.yaml", []byte(vlanConfig))
	require.NoError(t, err)
	require.Len(t, l.Services, 2)
	assert.Equal(t, uint16(10), l.Services[0].VLAN)
	assert.Equal(t, uint16(20), l.Services[1].VLAN)
	assert.Equal(t, "192.0.2.100:80/tcp@vlan10", l.Names[l.Services[0].Key()], "an unnamed service's name carries its VLAN")
	assert.Equal(t, "web-20", l.Names[l.Services[1].Key()])
	assert.Equal(t, map[uint16][]netip.Addr{
		10: {netip.MustParseAddr("198.51.100.250")},
		20: {netip.MustParseAddr("203.0.113.250"), netip.MustParseAddr("2001:db8:20::250")},
	}, l.VLANSources)
}

func TestParseVLANConfigErrors(t *testing.T) {
	tests := []struct {
		name, yaml, field string
		line              int
		contains          string
	}{
		{"reserved VLAN", `interface: eth0
services:
  - vip: 192.0.2.100
    protocol: tcp
    vlan: 4095
`, "services[0].vlan", 5, "out of range"},
		{"same VLAN twice", `interface: eth0
services:
  - vip: 192.0.2.100
    protocol: tcp
    vlan: 10
  - vip: 192.0.2.100
    protocol: tcp
    vlan: 10
`, "services[1]", 6, "overlaps"},
		{"host-stack check on a VLAN", `interface: eth0
services:
  - vip: 192.0.2.100
    protocol: tcp
    port: 80
    vlan: 10
    checks:
      - type: tcp
    backends:
      - addr: 198.51.100.21
`, "services[0].checks[0]", 8, "VLAN 10"},
		{"dsr check without a VLAN source", `interface: eth0
health:
  vlan_sources:
    - vlan: 20
      addrs: [198.51.100.250]
services:
  - vip: 192.0.2.100
    protocol: tcp
    port: 80
    vlan: 10
    checks:
      - type: dsr
`, "services[0].checks[0]", 12, "health.vlan_sources"},
		{"dsr check without a source of the VIP's family", `interface: eth0
health:
  vlan_sources:
    - vlan: 10
      addrs: [198.51.100.250]
services:
  - vip: 2001:db8::100
    protocol: tcp
    port: 80
    vlan: 10
    checks:
      - type: dsr
`, "services[0].checks[0]", 12, "IPv6"},
		{"bad VLAN source", `interface: eth0
health:
  vlan_sources:
    - vlan: 10
      addrs: [198.51.100.250, not-an-address]
`, "health.vlan_sources[0].addrs[1]", 5, "not a unicast IP address"},
		{"two VLAN sources of one family", `interface: eth0
health:
  vlan_sources:
    - vlan: 10
      addrs: [198.51.100.250, 198.51.100.251]
`, "health.vlan_sources[0].addrs[1]", 5, "second address"},
		{"VLAN with ha", `interface: eth0
ha:
  vrid: 51
services:
  - vip: 192.0.2.100
    protocol: tcp
  - vip: 192.0.2.100
    protocol: tcp
    vlan: 10
`, "services[1].vlan", 9, "ha"},
		{"VLAN source VLAN out of range", `interface: eth0
health:
  vlan_sources:
    - vlan: 4095
      addrs: [198.51.100.250]
`, "health.vlan_sources[0].vlan", 4, "out of range"},
	}
	for _, tt := range tests {
		_, err := ParseConfig("bad.yaml", []byte(tt.yaml))
		require.Error(t, err, tt.name)
		var ce *ConfigError
		require.True(t, errors.As(err, &ce), "%s: %v", tt.name, err)
		assert.Equal(t, tt.field, ce.Field, tt.name)
		assert.Equal(t, tt.line, ce.Line, "%s: %v", tt.name, err)
		assert.ErrorContains(t, err, tt.contains, tt.name)
	}
}

func TestParseTupleVLAN(t *testing.T) {
	tu, err := parseTuple("198.51.100.7:40000", "192.0.2.100:80/tcp@vlan20")
	require.NoError(t, err)
	assert.Equal(t, uint16(20), tu.VLAN)
	assert.Equal(t, dsr.TCP, tu.Protocol)
	tu, err = parseTuple("198.51.100.7:40000", "192.0.2.100:80/udp")
	require.NoError(t, err)
	assert.Zero(t, tu.VLAN)
	for _, bad := range []string{"192.0.2.100:80/tcp@vlan0", "192.0.2.100:80/tcp@vlan4095", "192.0.2.100:80/tcp@vlanx", "192.0.2.100:80/tcp@vlan"} {
		_, err := parseTuple("198.51.100.7:40000", bad)
		assert.ErrorContains(t, err, "VLAN", bad)
	}
}

// dsrlb explain names the VLAN's service, and a flow on a VLAN without one
// is dropped.
func TestExplainVLAN(t *testing.T) {
	path := filepath.Join(t.TempDir(), "dsrlb.yaml")
	require.NoError(t, os.WriteFile(path, []byte(vlanConfig), 0o600))
	for _, tt := range []struct {
		dst, want string
		code      int
	}{
		{"192.0.2.100:80/tcp@vlan10", `"service": "192.0.2.100:80/tcp@vlan10"`, 0},
		{"192.0.2.100:80/tcp@vlan20", `"service": "192.0.2.100:80/tcp@vlan20"`, 0},
		{"192.0.2.100:80/tcp@vlan30", `"drop": "no_service"`, 1},
		{"192.0.2.100:80/tcp", `"drop": "no_service"`, 1},
	} {
		var out, errb bytes.Buffer
		code := runExplain([]string{"-config", path, "-json", "198.51.100.7:40000", tt.dst}, &out, &errb)
		assert.Equal(t, tt.code, code, "%s: %s", tt.dst, errb.String())
		assert.Contains(t, out.String(), tt.want, tt.dst)
	}
}

// The same VIP:port on two VLANs is two services with series of their own,
// under the same label names as every other service.
func TestMetricsVLANServices(t *testing.T) {
	d := newTestDaemon(t, vlanConfig)
	body := scrape(t, d)
	assert.Contains(t, body, `dsrlb_service_packets_total{service="192.0.2.100:80/tcp@vlan10"} 0`)
	assert.Contains(t, body, `dsrlb_service_packets_total{service="web-20"} 0`)
	assert.Contains(t, body, `dsrlb_backend_flows_total{backend="198.51.100.21",service="192.0.2.100:80/tcp@vlan10"} 0`)
	assert.Contains(t, body, `dsrlb_backend_flows_total{backend="198.51.100.21",service="web-20"} 0`)
}

func TestEventDetailVLAN(t *testing.T) {
	mac := net.HardwareAddr{2, 0, 0, 0, 0, 0x99}
	vip := netip.MustParseAddr("192.0.2.100")
	r := eventFromDSR(dsr.Event{Kind: dsr.EventVIPConflict, VIP: vip, VLAN: 20, MAC: mac})
	assert.Equal(t, "claimed by 02:00:00:00:00:99 on VLAN 20", r.Detail)
	r = eventFromDSR(dsr.Event{Kind: dsr.EventMACResolved, Backend: vip, VLAN: 10, MAC: mac})
	assert.Equal(t, "MAC 02:00:00:00:00:99 on VLAN 10", r.Detail)
	r = eventFromDSR(dsr.Event{Kind: dsr.EventMACResolved, Backend: vip, MAC: mac})
	assert.NotContains(t, r.Detail, "VLAN", "untagged events say nothing of VLANs")
}

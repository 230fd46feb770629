package main

import (
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dsrlb/dsrlb/dsr"
)

const goodConfig = `interface: eth0
listen: 127.0.0.1:0
workers: 2
fragments: hash
drain_timeout: 5s
flow_table:
  max_flows: 100000
  tcp_timeout: 10m
services:
  - name: web
    vip: 192.0.2.100
    protocol: tcp
    port: 80
    scheduler: mh
    backends:
      - addr: 192.0.2.20
        mac: 02:00:00:00:00:20
      - addr: 192.0.2.21
        mac: 02:00:00:00:00:21
        weight: 3
        state: draining
  - vip: 2001:db8::100
    protocol: tcp+udp
    backends: []
`

func TestParseGoodConfig(t *testing.T) {
	l, err := ParseConfig("good.yaml", []byte(goodConfig))
	require.NoError(t, err)
	assert.Equal(t, "eth0", l.File.Interface)
	assert.Equal(t, 100000, l.Balancer.MaxFlows)
	assert.Equal(t, 10*time.Minute, l.Balancer.TCPTimeout)
	assert.Equal(t, dsr.FragmentsHash, l.Balancer.Fragments)
	require.Len(t, l.Services, 2)
	web := l.Services[0]
	assert.Equal(t, dsr.TCP, web.Protocol)
	assert.Equal(t, uint16(80), web.Port)
	require.Len(t, web.Backends, 2)
	assert.Equal(t, uint32(3), web.Backends[1].Weight)
	assert.Equal(t, dsr.BackendDraining, web.Backends[1].State)
	assert.Equal(t, "web", l.Names[web.Key()])
	assert.Equal(t, dsr.TCPAndUDP, l.Services[1].Protocol)
	assert.Equal(t, "[2001:db8::100]:*/tcp+udp", l.Names[l.Services[1].Key()], "unnamed services are named by their key")
}

func TestBadConfigNamesFileLineField(t *testing.T) {
	cases := []struct {
		name, replace, with, want string
	}{
		{"unknown field", "workers: 2", "wokers: 2", "bad.yaml: yaml: unmarshal errors:\n  line 3: field wokers not found"},
		{"bad vip", "vip: 192.0.2.100", "vip: 192.0.2.300", "bad.yaml:11: services[0].vip:"},
		{"bad mac", "mac: 02:00:00:00:00:21", "mac: nope", "bad.yaml:19: services[0].backends[1].mac:"},
		{"multicast mac", "mac: 02:00:00:00:00:21", "mac: 01:00:5e:00:00:01", "bad.yaml:19: services[0].backends[1].mac:"},
		{"bad protocol", "protocol: tcp\n", "protocol: sctp\n", "bad.yaml:12: services[0].protocol:"},
		{"bad state", "state: draining", "state: sleeping", "bad.yaml:21: services[0].backends[1].state:"},
		{"unknown scheduler", "scheduler: mh", "scheduler: nope", "bad.yaml:14: services[0].scheduler:"},
		{"duplicate backend", "addr: 192.0.2.21", "addr: 192.0.2.20", "bad.yaml:18: services[0].backends[1].addr:"},
		{"bad duration", "drain_timeout: 5s", "drain_timeout: soon", `line 5: "soon" is not a duration`},
		{"no interface", "interface: eth0", "interface: ''", "bad.yaml:1: interface: required"},
		{"bad fragments", "fragments: hash", "fragments: maybe", "bad.yaml:4: fragments:"},
		{"bad listen", "listen: 127.0.0.1:0", "listen: nowhere", "bad.yaml:2: listen:"},
		{"weight too big", "weight: 3", "weight: 70000", "bad.yaml:20: services[0].backends[1].weight:"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			require.Contains(t, goodConfig, tc.replace)
			_, err := ParseConfig("bad.yaml", []byte(strings.Replace(goodConfig, tc.replace, tc.with, 1)))
			require.Error(t, err)
			assert.Contains(t, err.Error(), tc.want)
		})
	}
	_, err := ParseConfig("empty.yaml", nil)
	assert.ErrorContains(t, err, "empty.yaml: empty configuration")
}

func TestExampleConfigParses(t *testing.T) {
	l, err := LoadConfig("dsrlb.example.yaml")
	require.NoError(t, err)
	require.Len(t, l.Services, 2)
	assert.Len(t, l.File.Services[0].Checks, 2)
	assert.Equal(t, dsr.TCPAndUDP, l.Services[1].Protocol)
}

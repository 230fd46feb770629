package main

import (
	"fmt"
	"net/http"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dsrlb/dsrlb/internal/netlab"
)

// TestIntegrationDaemonVLAN runs the daemon on a trunk of VLANs 10 and 20
// (clients c0, c1 and servers s0, s1 | s2, s3 on access ports) with the same
// VIP:port as a service on each VLAN, checked with the DSR-path check from
// a probe source per VLAN: each client reaches its VLAN's servers, and a
// server that stops is taken down, and back up, by the tagged checks of its
// VLAN only.
func TestIntegrationDaemonVLAN(t *testing.T) {
	netlab.RequirePrivileged(t)
	bin := buildDaemon(t)
	lab := netlab.NewT(t, &netlab.Config{Servers: 4, Clients: 2})
	require.NoError(t, lab.SetTrunkVLANs(lab.Balancer, 10, 20))
	require.NoError(t, lab.SetAccessVLAN(lab.Clients[0], 10))
	require.NoError(t, lab.SetAccessVLAN(lab.Clients[1], 20))
	for i, s := range lab.Servers {
		require.NoError(t, lab.SetAccessVLAN(s, []uint16{10, 10, 20, 20}[i]))
	}
	vip := lab.VIPs[0]
	config := fmt.Sprintf(`interface: %s
listen: 127.0.0.1:9180
health:
  interval: 200ms
  timeout: 150ms
  rise: 1
  fall: 2
  vlan_sources:
    - vlan: 10
      addrs: [192.0.2.250]
    - vlan: 20
      addrs: [192.0.2.251]
arp:
  resolve_interval: 500ms
services:
  - name: web
    vip: %[2]s
    protocol: tcp
    port: 80
    vlan: 10
    checks:
      - type: dsr
    backends:
      - addr: %[3]s
      - addr: %[4]s
  - name: web-20
    vip: %[2]s
    protocol: tcp
    port: 80
    vlan: 20
    checks:
      - type: dsr
    backends:
      - addr: %[5]s
      - addr: %[6]s
`, lab.Balancer.Link, vip, lab.Servers[0].IP, lab.Servers[1].IP, lab.Servers[2].IP, lab.Servers[3].IP)
	d := startDaemon(t, lab, bin, config)
	for _, s := range lab.Servers[2:] {
		d.waitMetric(`dsrlb_backend_resolved{backend="`+s.IP.String()+`",service="web-20"}`, 1)
	}

	fetch := func(client int) (string, error) {
		tr := &http.Transport{DialContext: lab.Clients[client].DialContext, DisableKeepAlives: true}
		defer tr.CloseIdleConnections()
		hc := &http.Client{Transport: tr, Timeout: 5 * time.Second}
		r, err := hc.Get("http://" + netip.AddrPortFrom(vip, 80).String() + "/")
		if err != nil {
			return "", err
		}
		r.Body.Close()
		return r.Header.Get("X-Backend"), nil
	}
	for client, want := range [][]string{{"s0", "s1"}, {"s2", "s3"}} {
		for range 8 {
			be, err := fetch(client)
			require.NoError(t, err, "client c%d", client)
			assert.Contains(t, want, be, "client c%d reached a server of another VLAN", client)
		}
	}

	// s3 stops serving: the tagged checks of VLAN 20 take it down, and
	// nothing of VLAN 10 moves; it comes back once they pass again.
	s3 := `{backend="` + lab.Servers[3].IP.String() + `",service="web-20"}`
	require.NoError(t, lab.StopServer(3))
	d.waitMetric("dsrlb_backend_healthy"+s3, 0)
	for _, s := range lab.Servers[:2] {
		v, ok := d.metric(`dsrlb_backend_healthy{backend="` + s.IP.String() + `",service="web"}`)
		assert.True(t, ok && v == 1, "VLAN 10's %s stays healthy", s.Name)
	}
	for range 8 {
		be, err := fetch(1)
		require.NoError(t, err)
		assert.Equal(t, "s2", be, "VLAN 20's flows go to its healthy server")
	}
	require.NoError(t, lab.StartServer(3))
	d.waitMetric("dsrlb_backend_healthy"+s3, 1)
	page, err := d.get("/")
	require.NoError(t, err)
	assert.True(t, strings.Contains(page, "web-20"), "the status page lists the VLAN 20 service")
}

// A reload that changes health.vlan_sources while the dsr check runs is
// refused at that field: the running check keeps the sources it opened
// with. The same sources reload fine.
func TestIntegrationReloadVLANSources(t *testing.T) {
	netlab.RequirePrivileged(t)
	lab := netlab.NewT(t, &netlab.Config{Servers: 1, NoServerProcesses: true})
	conf := func(src string) *Loaded {
		cfg, err := ParseConfig("r.yaml", []byte(fmt.Sprintf(`interface: %s
health:
  vlan_sources:
    - vlan: 10
      addrs: [%s]
services:
  - vip: 192.0.2.100
    protocol: tcp
    port: 80
    vlan: 10
    checks:
      - type: dsr
`, lab.Balancer.Link, src)))
		require.NoError(t, err)
		return cfg
	}
	d := &daemon{}
	t.Cleanup(func() {
		if d.dsrChecker != nil {
			d.dsrChecker.Close()
		}
	})
	require.NoError(t, lab.Balancer.Do(func() error {
		_, err := d.withChecks(conf("192.0.2.250"))
		return err
	}))
	require.NotNil(t, d.dsrChecker)
	_, err := d.withChecks(conf("192.0.2.250"))
	require.NoError(t, err, "unchanged sources")
	_, err = d.withChecks(conf("192.0.2.251"))
	var ce *ConfigError
	require.ErrorAs(t, err, &ce)
	assert.Equal(t, "health.vlan_sources", ce.Field)
	assert.ErrorContains(t, err, "restart")
}

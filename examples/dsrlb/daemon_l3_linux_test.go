package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/netip"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dsrlb/dsrlb/internal/netlab"
)

// TestIntegrationDaemonL3 runs the README's L3 set-up end to end: the
// servers in another subnet than the balancer, prepared with the built
// realserver command (`realserver prepare --mode gue --balancer ...`), and
// the daemon with a gue service whose tunnel source it takes from its
// interface. The DSR-path check passes through the tunnel, and a client on
// a third subnet downloads through the VIP.
func TestIntegrationDaemonL3(t *testing.T) {
	netlab.RequirePrivileged(t)
	bin := buildDaemon(t)
	rs := filepath.Join(t.TempDir(), "realserver")
	out, err := exec.Command("go", "build", "-o", rs, "../realserver").CombinedOutput()
	require.NoError(t, err, "go build realserver: %s", out)

	vip := netip.MustParseAddr("198.51.100.200")
	lab := netlab.NewT(t, &netlab.Config{Servers: 2, VIPs: []netip.Addr{vip}})
	router := lab.Balancer
	lbLink, cLink := netip.MustParsePrefix("203.0.113.0/30"), netip.MustParsePrefix("198.51.100.0/30")
	lb, err := lab.AddExternal(router, lbLink)
	require.NoError(t, err)
	client, err := lab.AddExternal(router, cLink)
	require.NoError(t, err)
	gw := lbLink.Addr().Next()
	require.NoError(t, router.Sysctl("net.ipv4.conf.all.rp_filter", "0"))
	require.NoError(t, router.Sysctl("net.ipv4.conf.eth0.rp_filter", "0"))
	require.NoError(t, router.AddRoute(netip.PrefixFrom(vip, 32), lb.IP))
	for i, s := range lab.Servers {
		require.NoError(t, s.AddRoute(lbLink, router.IP))
		require.NoError(t, s.AddRoute(cLink, router.IP))
		state := filepath.Join(t.TempDir(), fmt.Sprintf("s%d.json", i))
		cmd := s.Command(context.Background(), rs, "prepare", "--mode", "gue", "--balancer", lb.IP.String(),
			"--vip", vip.String(), "--port", "80", "--state", state)
		out, err := cmd.CombinedOutput()
		require.NoError(t, err, "realserver prepare on %s: %s", s.Name, out)
		assert.Contains(t, string(out), "decap-counters", "prepare's check shows the decapsulation program")
		t.Cleanup(func() {
			out, err := s.Command(context.Background(), rs, "undo", "--state", state).CombinedOutput()
			assert.NoError(t, err, "realserver undo on %s: %s", s.Name, out)
		})
	}

	config := fmt.Sprintf(`interface: eth0
listen: 127.0.0.1:9180
health:
  interval: 200ms
  timeout: 500ms
  rise: 1
  fall: 2
services:
  - name: web
    vip: %s
    protocol: tcp
    port: 80
    mode: gue
    gateway: %s
    checks:
      - type: dsr
    backends:
      - addr: %s
      - addr: %s
`, vip, gw, lab.Servers[0].IP, lab.Servers[1].IP)
	d := launchDaemon(t, lab, lb, bin, config)
	for _, s := range lab.Servers {
		d.waitMetric(`dsrlb_backend_resolved{backend="`+s.IP.String()+`",service="web"}`, 1)
		d.waitMetric(`dsrlb_backend_healthy{backend="`+s.IP.String()+`",service="web"}`, 1)
	}

	hc := client.HTTPClient()
	hc.Transport.(*http.Transport).DisableKeepAlives = true // a new flow per request
	hc.Timeout = 10 * time.Second
	seen := map[string]int{}
	for range 20 {
		resp, err := hc.Get("http://" + vip.String() + "/")
		require.NoError(t, err)
		body, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		require.NoError(t, err)
		seen[string(body)]++
	}
	assert.Len(t, seen, 2, "both servers answer through the tunnel: %v", seen)
	v, ok := d.metric("dsrlb_l3_encapsulated_total")
	require.True(t, ok)
	assert.GreaterOrEqual(t, v, 20.0, "the metrics count the encapsulated frames")
}

package main

import (
	"fmt"
	"io"
	"net/netip"
	"os"
	"strings"
	"syscall"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dsrlb/dsrlb/internal/netlab"
)

// labConfig6 is labConfig for the lab's IPv6 VIP and the servers' IPv6
// addresses: backends resolved by neighbour discovery and checked with the
// DSR-path check in IPv6 frames.
func labConfig6(lab *netlab.Lab, servers []int) string {
	addrs := make([]netip.Addr, len(servers))
	for k, i := range servers {
		addrs[k] = lab.Servers[i].IP6
	}
	return serviceConfig(lab, lab.VIPs[len(lab.VIPs)-1], addrs, "")
}

func fetchVIP6(lab *netlab.Lab, path string) (string, error) {
	return fetchFrom(lab, lab.VIPs[len(lab.VIPs)-1], path)
}

// TestIntegrationDaemonIPv6Reload runs the daemon on an IPv6 service with
// the DSR-path check, and reloads it with a good and a bad configuration
// while a download is in progress: the download finishes byte-exact on its
// backend, the good reload brings a new backend in, the bad one changes
// nothing.
func TestIntegrationDaemonIPv6Reload(t *testing.T) {
	netlab.RequirePrivileged(t)
	bin := buildDaemon(t)
	lab := netlab.NewT(t, &netlab.Config{Servers: 3, IPv6: true})
	d := startDaemon(t, lab, bin, labConfig6(lab, []int{0, 1}))
	for _, i := range []int{0, 1} {
		d.waitMetric(fmt.Sprintf(`dsrlb_backend_healthy{backend="%s",service="web"}`, lab.Servers[i].IP6), 1)
	}
	seen := map[string]bool{}
	for range 40 {
		got, err := fetchVIP6(lab, "/")
		require.NoError(t, err)
		seen[strings.Split(got, ":")[0]] = true
	}
	require.Len(t, seen, 2, "both IPv6 backends serve: %v", seen)

	hc := lab.Clients[0].HTTPClient()
	defer hc.CloseIdleConnections()
	const size = 8 << 20
	resp, err := hc.Get(fmt.Sprintf("http://%s/bytes?n=%d", netip.AddrPortFrom(lab.VIPs[len(lab.VIPs)-1], 80), size))
	require.NoError(t, err)
	defer resp.Body.Close()
	head := make([]byte, 1<<20)
	_, err = io.ReadFull(resp.Body, head)
	require.NoError(t, err)

	// Good: a third backend, resolved by neighbour discovery.
	require.NoError(t, os.WriteFile(d.config, []byte(labConfig6(lab, []int{0, 1, 2})), 0o644))
	require.NoError(t, d.cmd.Process.Signal(syscall.SIGHUP))
	d.waitMetric(`dsrlb_config_reloads_total{result="ok"}`, 1)
	d.waitMetric(`dsrlb_backend_healthy{backend="`+lab.Servers[2].IP6.String()+`",service="web"}`, 1)
	seen = map[string]bool{}
	for range 60 {
		got, err := fetchVIP6(lab, "/")
		require.NoError(t, err)
		seen[strings.Split(got, ":")[0]] = true
	}
	assert.True(t, seen[lab.Servers[2].Name], "the new backend serves: %v", seen)

	// Bad: a misspelt key. Rejected with its line and field; the running
	// configuration stays.
	bad := strings.Replace(labConfig6(lab, []int{0}), "scheduler: mh", "schedular: mh", 1)
	require.NoError(t, os.WriteFile(d.config, []byte(bad), 0o644))
	require.NoError(t, d.cmd.Process.Signal(syscall.SIGHUP))
	d.waitMetric(`dsrlb_config_reloads_total{result="failed"}`, 1)
	assert.Contains(t, d.logs.String(), fmt.Sprintf("%s:%d: services[0].schedular", d.config, lineOfText(t, bad, "schedular: mh")))
	seen = map[string]bool{}
	for range 60 {
		got, err := fetchVIP6(lab, "/")
		require.NoError(t, err)
		seen[strings.Split(got, ":")[0]] = true
	}
	assert.Len(t, seen, 3, "still three backends after the rejected reload: %v", seen)

	rest, err := io.ReadAll(resp.Body)
	require.NoError(t, err, "the download survives both reloads")
	assert.Equal(t, size, len(head)+len(rest))
	assert.Equal(t, -1, netlab.CheckPattern(head, 0))
	assert.Equal(t, -1, netlab.CheckPattern(rest, int64(len(head))), "byte-exact")
	v, _ := d.metric(`dsrlb_service_rescheduled_flows_total{service="web"}`)
	assert.Zero(t, v, "no established flow moved")
}

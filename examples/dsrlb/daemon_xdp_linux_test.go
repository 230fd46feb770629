package main

import (
	"fmt"
	"io"
	"os"
	"strings"
	"syscall"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dsrlb/dsrlb/internal/netlab"
)

// TestIntegrationDaemonXDP runs the daemon with `dataplane: xdp`: the
// program forwards the service's flows in the kernel, a download survives a
// reload byte-exact, and the metrics and the status page say which data
// plane runs and what the program did.
func TestIntegrationDaemonXDP(t *testing.T) {
	netlab.RequirePrivileged(t)
	bin := buildDaemon(t)
	lab := netlab.NewT(t, &netlab.Config{Servers: 3})
	cfg := strings.Replace(labConfig(lab, []int{0, 1}, ""), "listen:", "dataplane: xdp\nlisten:", 1)
	d := startDaemon(t, lab, bin, cfg)
	d.waitMetric(`dsrlb_dataplane{dataplane="xdp"}`, 1)
	for _, i := range []int{0, 1} {
		d.waitMetric(fmt.Sprintf(`dsrlb_backend_healthy{backend="%s",service="web"}`, lab.Servers[i].IP), 1)
	}
	seen := map[string]bool{}
	for range 40 {
		got, err := fetchVIP(lab, "/")
		require.NoError(t, err)
		seen[strings.Split(got, ":")[0]] = true
	}
	assert.Len(t, seen, 2, "both backends serve: %v", seen)

	hc := lab.Clients[0].HTTPClient()
	defer hc.CloseIdleConnections()
	const size = 8 << 20
	resp, err := hc.Get(fmt.Sprintf("http://%s/bytes?n=%d", lab.VIPs[0], size))
	require.NoError(t, err)
	defer resp.Body.Close()
	head := make([]byte, 1<<20)
	_, err = io.ReadFull(resp.Body, head)
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(d.config, []byte(strings.Replace(labConfig(lab, []int{0, 1, 2}, ""), "listen:", "dataplane: xdp\nlisten:", 1)), 0o644))
	require.NoError(t, d.cmd.Process.Signal(syscall.SIGHUP))
	d.waitMetric(`dsrlb_config_reloads_total{result="ok"}`, 1)
	rest, err := io.ReadAll(resp.Body)
	require.NoError(t, err, "the download survives the reload")
	assert.Equal(t, size, len(head)+len(rest))
	assert.Equal(t, -1, netlab.CheckPattern(rest, int64(len(head))), "byte-exact")

	fwd, ok := d.metric(`dsrlb_xdp_frames_total{reason="",verdict="forwarded"}`)
	require.True(t, ok)
	assert.Positive(t, fwd, "the program forwarded in the kernel")
	page, err := d.get("/")
	require.NoError(t, err)
	assert.Contains(t, page, `id="dataplane">data plane <b>xdp</b>`)
}

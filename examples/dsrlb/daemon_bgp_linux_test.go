package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dsrlb/dsrlb/internal/netlab"
)

// birdRouter runs BIRD 2 in h's namespace, peering with the balancer.
func birdRouter(t *testing.T, h *netlab.Host, peer string) (routePresent func(prefix string) bool) {
	t.Helper()
	sock := runBird(t, h, fmt.Sprintf(`router id %s;
protocol device {}
protocol bgp lb {
	local %s as 65000;
	neighbor %s as 65001;
	ipv4 { import all; export none; };
	graceful restart on;
	connect retry time 1;
}
`, h.IP, h.IP, peer))
	return func(prefix string) bool {
		out, _ := exec.Command("birdc", "-s", sock, "show", "route", "for", prefix).CombinedOutput()
		return strings.Contains(string(out), prefix+" ")
	}
}

// runBird starts BIRD 2 with config in h's namespace, its files under a
// temporary directory, stopped at the end of the test, and returns its
// control socket once it is up.
func runBird(t *testing.T, h *netlab.Host, config string) (sock string) {
	t.Helper()
	if _, err := exec.LookPath("bird"); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("bird is not installed (scripts/install-deps.sh installs bird2)")
		}
		t.Skip("bird is not installed: run scripts/install-deps.sh")
	}
	dir := t.TempDir()
	conf := filepath.Join(dir, "bird.conf")
	require.NoError(t, os.WriteFile(conf, []byte(config), 0o644))
	sock = filepath.Join(dir, "bird.ctl")
	ctx, cancel := context.WithCancel(context.Background())
	cmd := h.Command(ctx, "bird", "-f", "-c", conf, "-s", sock, "-P", filepath.Join(dir, "bird.pid"))
	out := &syncBuffer{}
	cmd.Stdout, cmd.Stderr = out, out
	require.NoError(t, cmd.Start())
	t.Cleanup(func() {
		cancel()
		_ = cmd.Wait()
		if t.Failed() {
			t.Logf("bird output:\n%s", out.String())
		}
	})
	require.Eventually(t, func() bool { _, err := os.Stat(sock); return err == nil }, 10*time.Second, 20*time.Millisecond)
	return sock
}

func TestIntegrationDaemonBGP(t *testing.T) {
	netlab.RequirePrivileged(t)
	bin := buildDaemon(t)
	lab := netlab.NewT(t, &netlab.Config{Servers: 2})
	router := lab.Clients[0]
	present := birdRouter(t, router, lab.Balancer.IP.String())
	vip := lab.VIPs[0].String()
	prefix := vip + "/32"
	d := startDaemon(t, lab, bin, labConfig(lab, []int{0, 1}, fmt.Sprintf(`bgp:
  router_id: %s
  local_as: 65001
  peers:
    - address: %s
      as: 65000
      hold_time: 3s
      graceful_restart: true
`, lab.Balancer.IP, router.IP)))

	d.waitMetric(`dsrlb_bgp_session_up{peer="`+router.IP.String()+`"}`, 1)
	d.waitMetric(`dsrlb_bgp_announced{vip="`+vip+`"}`, 1)
	d.waitFor("the route at the router", 10*time.Second, func() bool { return present(prefix) })
	d.waitEvent("bgp-peer-up", map[string]any{"peer": router.IP.String()})
	d.waitEvent("bgp-announced", map[string]any{"prefix": prefix})
	page, err := d.get("/")
	require.NoError(t, err)
	assert.Contains(t, page, `<tr class="bgp-peer" data-peer="`+router.IP.String()+`">`)
	assert.Regexp(t, `data-vip="`+vip+`">.*<td class="l ok">announced</td>`, page)

	// Every backend fails: the route is withdrawn; one recovers: it is back.
	require.NoError(t, lab.StopServer(0))
	require.NoError(t, lab.StopServer(1))
	d.waitMetric(`dsrlb_bgp_announced{vip="`+vip+`"}`, 0)
	d.waitFor("the withdrawal at the router", 10*time.Second, func() bool { return !present(prefix) })
	d.waitEvent("bgp-withdrawn", map[string]any{"prefix": prefix})
	page, err = d.get("/")
	require.NoError(t, err)
	assert.Contains(t, page, "withdrawn: too few healthy backends")
	require.NoError(t, lab.StartServer(1))
	d.waitMetric(`dsrlb_bgp_announced{vip="`+vip+`"}`, 1)
	d.waitFor("the route back at the router", 10*time.Second, func() bool { return present(prefix) })

	// SIGTERM: the route is withdrawn first, while the daemon still drains.
	require.NoError(t, d.cmd.Process.Signal(syscall.SIGTERM))
	waitFor(t, "the withdrawal after SIGTERM", 10*time.Second, nil, func() bool { return !present(prefix) })
	select {
	case err := <-d.done:
		t.Fatalf("the daemon had already exited (%v) when the router lost the route: the withdrawal must come before the drain, not with the exit", err)
	default:
	}
	select {
	case err := <-d.done:
		require.NoError(t, err, "the daemon exits cleanly after draining")
	case <-time.After(30 * time.Second):
		t.Fatal("the daemon did not stop after draining")
	}
	assert.Contains(t, d.logs.String(), "bgp: VIPs withdrawn; draining")
}

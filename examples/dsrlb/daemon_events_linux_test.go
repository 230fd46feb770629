package main

import (
	"encoding/json"
	"fmt"
	"net/netip"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dsrlb/dsrlb/internal/netlab"
)

// jsonEvents decodes the daemon's JSON log lines that carry an event key.
func jsonEvents(t testing.TB, logs string) []map[string]any {
	t.Helper()
	var out []map[string]any
	for _, line := range strings.Split(logs, "\n") {
		if !strings.HasPrefix(line, "{") {
			continue
		}
		var m map[string]any
		require.NoError(t, json.Unmarshal([]byte(line), &m), "every JSON line decodes: %s", line)
		if _, ok := m["event"]; ok {
			out = append(out, m)
		}
	}
	return out
}

// findEvent returns the first event of kind whose fields include want.
func findEvent(events []map[string]any, kind string, want map[string]any) (map[string]any, bool) {
next:
	for _, e := range events {
		if e["event"] != kind {
			continue
		}
		for k, v := range want {
			if e[k] != v {
				continue next
			}
		}
		return e, true
	}
	return nil, false
}

// waitEvent waits (bounded) until the daemon's JSON log has an event of
// kind whose fields include want, and returns it.
func (d *runningDaemon) waitEvent(kind string, want map[string]any) map[string]any {
	d.t.Helper()
	var got map[string]any
	d.waitFor(fmt.Sprintf("event %s %v", kind, want), 30*time.Second, func() bool {
		var ok bool
		got, ok = findEvent(jsonEvents(d.t, d.logs.String()), kind, want)
		return ok
	})
	return got
}

// TestIntegrationDaemonEventLog runs the daemon with JSON logs in a lab,
// triggers every event kind a lab can produce and finds each in the log
// with its facts as separate fields. The kinds a lab cannot produce
// (SYN retransmits, VRRP and BGP changes) are covered by
// TestEventAttributeMapping and dsr's TestEventLogAttrs.
func TestIntegrationDaemonEventLog(t *testing.T) {
	netlab.RequirePrivileged(t)
	bin := buildDaemon(t)
	lab := netlab.NewT(t, &netlab.Config{Servers: 2})
	s0, s1 := lab.Servers[0], lab.Servers[1]
	vip := lab.VIPs[0]
	svc := netip.AddrPortFrom(vip, 80).String() + "/tcp"
	config := func(extra string) string {
		return fmt.Sprintf(`interface: %s
listen: 127.0.0.1:9180
drain_timeout: 20s
health:
  interval: 200ms
  timeout: 150ms
  rise: 1
  fall: 2
arp:
  resolve_interval: 500ms
  conflict_probe_interval: 500ms
services:
  - name: web
    vip: %s
    protocol: tcp
    port: 80
    scheduler: mh
    min_healthy: 2
    fail_open: true
    checks:
      - type: tcp
    backends:
      - addr: %s
      - addr: %s
%s`, lab.Balancer.Link, vip, s0.IP, s1.IP, extra)
	}
	d := launchDaemon(t, lab, nil, bin, config(""), "-log-format", "json")

	expect := d.waitEvent

	expect("started", map[string]any{"interface": lab.Balancer.Link, "services": 1.0})
	expect("dataplane", map[string]any{"dataplane": "packet"})
	for _, s := range lab.Servers {
		e := expect("mac-resolved", map[string]any{"backend": s.IP.String(), "mac": s.MAC.String()})
		assert.Equal(t, "INFO", e["level"])
	}
	d.waitMetric(`dsrlb_backend_healthy{backend="`+s1.IP.String()+`",service="web"}`, 1)
	d.waitMetric(`dsrlb_backend_healthy{backend="`+s0.IP.String()+`",service="web"}`, 1)

	// One backend down: below min_healthy.
	require.NoError(t, lab.StopServer(1))
	e := expect("backend-down", map[string]any{"service": svc, "backend": s1.IP.String()})
	assert.NotEmpty(t, e["reason"], "the failing check's reason")
	assert.Equal(t, "WARN", e["level"])
	expect("below-min-healthy", map[string]any{"service": svc, "count": 1.0})

	// Both down: the service fails open.
	require.NoError(t, lab.StopServer(0))
	expect("backend-down", map[string]any{"service": svc, "backend": s0.IP.String()})
	expect("fail-open", map[string]any{"service": svc})

	// Both back.
	require.NoError(t, lab.StartServer(0))
	require.NoError(t, lab.StartServer(1))
	for _, s := range lab.Servers {
		expect("backend-up", map[string]any{"service": svc, "backend": s.IP.String()})
	}
	expect("min-healthy-restored", map[string]any{"service": svc, "count": 2.0})

	// A real server that answers ARP for the VIP: a conflict naming it.
	for _, k := range []string{"net.ipv4.conf.all.arp_ignore", "net.ipv4.conf.eth0.arp_ignore"} {
		require.NoError(t, s0.Sysctl(k, "0"))
	}
	e = expect("vip-conflict", map[string]any{"vip": vip.String(), "mac": s0.MAC.String(), "backend": s0.IP.String()})
	assert.Equal(t, "WARN", e["level"])
	for _, k := range []string{"net.ipv4.conf.all.arp_ignore", "net.ipv4.conf.eth0.arp_ignore"} {
		require.NoError(t, s0.Sysctl(k, "1"))
	}

	// A reload that drains one backend and adds one nobody answers for.
	ghost := netip.MustParseAddr("192.0.2.199")
	good := strings.Replace(config("      - addr: "+ghost.String()+"\n"), "      - addr: "+s1.IP.String()+"\n",
		"      - addr: "+s1.IP.String()+"\n        state: draining\n", 1)
	require.NoError(t, os.WriteFile(d.config, []byte(good), 0o644))
	require.NoError(t, d.cmd.Process.Signal(syscall.SIGHUP))
	expect("reloaded", map[string]any{"services": 1.0})
	expect("backend-drained", map[string]any{"service": svc, "backend": s1.IP.String()})
	expect("unresolved", map[string]any{"backend": ghost.String()})

	// A reload refused: where and what, as fields.
	bad := strings.Replace(good, "protocol: tcp", "protocol: sctp", 1)
	require.NoError(t, os.WriteFile(d.config, []byte(bad), 0o644))
	require.NoError(t, d.cmd.Process.Signal(syscall.SIGHUP))
	e = expect("reload-rejected", map[string]any{"file": d.config, "field": "services[0].protocol",
		"line": float64(lineOfText(t, bad, "protocol: sctp"))})
	assert.NotEmpty(t, e["problem"])
	assert.Equal(t, "ERROR", e["level"])

	// SIGTERM: drain, then stop.
	require.NoError(t, d.cmd.Process.Signal(syscall.SIGTERM))
	expect("draining", map[string]any{"timeout": float64(20 * time.Second)})
	select {
	case err := <-d.done:
		require.NoError(t, err)
	case <-time.After(30 * time.Second):
		t.Fatal("the daemon did not stop after draining")
	}
	for _, kind := range []string{"drained", "stopped"} {
		_, ok := findEvent(jsonEvents(t, d.logs.String()), kind, nil)
		assert.True(t, ok, kind)
	}

	// No event line is left preformatted: the kind is a bare name and the
	// facts are not repeated inside it.
	for _, e := range jsonEvents(t, d.logs.String()) {
		kind, _ := e["event"].(string)
		assert.NotContains(t, kind, " ", "event %v", e)
		assert.NotContains(t, kind, "=", "event %v", e)
	}
}

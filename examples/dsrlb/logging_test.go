package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dsrlb/dsrlb/bgp"
	"github.com/dsrlb/dsrlb/internal/version"
	"github.com/dsrlb/dsrlb/vrrp"
)

// logLine logs one event line as JSON and decodes it.
func logLine(t *testing.T, event string, attrs []slog.Attr) map[string]any {
	t.Helper()
	var buf bytes.Buffer
	log, err := newLogger(&buf, logJSON, slog.LevelInfo)
	require.NoError(t, err)
	logEvent(log, slog.LevelInfo, "msg", event, attrs...)
	var got map[string]any
	require.NoError(t, json.Unmarshal(buf.Bytes(), &got), "%s", buf.String())
	return got
}

// The kinds a namespace lab cannot easily produce (a VRRP peer's reasons,
// BGP prefix events without a router) are checked here, attribute by
// attribute.
func TestEventAttributeMapping(t *testing.T) {
	peer := netip.MustParseAddr("192.0.2.2")
	tests := []struct {
		name, event string
		attrs       []slog.Attr
		want        map[string]any
	}{
		{"vrrp master", vrrpEventName(vrrp.BecameMaster),
			vrrpAttrs(vrrp.Event{Kind: vrrp.BecameMaster, State: vrrp.Master, Prev: vrrp.Backup, Reason: "master down interval passed"}, []string{"192.0.2.100", "192.0.2.101"}),
			map[string]any{"event": "ha-became-master", "state": vrrp.Master.String(), "prev": vrrp.Backup.String(),
				"reason": "master down interval passed", "vips": "192.0.2.100,192.0.2.101", "vip_owner": "this balancer"}},
		{"vrrp backup", vrrpEventName(vrrp.BecameBackup),
			vrrpAttrs(vrrp.Event{Kind: vrrp.BecameBackup, State: vrrp.Backup, Prev: vrrp.Master, Peer: peer, PeerPriority: 200, Reason: "higher priority"}, []string{"192.0.2.100"}),
			map[string]any{"event": "ha-became-backup", "peer": peer.String(), "peer_priority": 200.0, "vip_owner": "peer", "vips": "192.0.2.100"}},
		{"bgp peer down", "bgp-" + bgp.EventPeerDown.String(),
			bgpAttrs(bgp.Event{Kind: bgp.EventPeerDown, Peer: peer, Reason: "hold timer expired"}),
			map[string]any{"event": "bgp-peer-down", "peer": peer.String(), "reason": "hold timer expired"}},
		{"bgp announced", "bgp-" + bgp.EventAnnounced.String(),
			bgpAttrs(bgp.Event{Kind: bgp.EventAnnounced, Prefix: netip.MustParsePrefix("192.0.2.100/32")}),
			map[string]any{"event": "bgp-announced", "prefix": "192.0.2.100/32"}},
		{"config error", evReloadRejected,
			errAttrs(&ConfigError{File: "/etc/dsrlb/dsrlb.yaml", Line: 12, Field: "services[0].protocol", Err: errors.New("unknown protocol")}),
			map[string]any{"event": "reload-rejected", "file": "/etc/dsrlb/dsrlb.yaml", "line": 12.0, "field": "services[0].protocol",
				"problem": "unknown protocol", "err": "/etc/dsrlb/dsrlb.yaml:12: services[0].protocol: unknown protocol"}},
		{"plain error", evStopped, errAttrs(errors.New("forwarding failed: boom")),
			map[string]any{"event": "stopped", "err": "forwarding failed: boom"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := logLine(t, tc.event, tc.attrs)
			for k, v := range tc.want {
				assert.Equal(t, v, got[k], k)
			}
		})
	}
	assert.NotContains(t, logLine(t, evStopped, errAttrs(errors.New("x"))), "file", "only configuration errors have a file")
}

func TestNewLogger(t *testing.T) {
	var buf bytes.Buffer
	log, err := newLogger(&buf, logText, slog.LevelWarn)
	require.NoError(t, err)
	logEvent(log, slog.LevelInfo, "hidden", evReloaded)
	logEvent(log, slog.LevelWarn, "drain timeout passed", evDrainTimeout, slog.Duration("timeout", 3*time.Second))
	assert.NotContains(t, buf.String(), "hidden", "below the level")
	assert.Contains(t, buf.String(), `msg="drain timeout passed" event=drain-timeout timeout=3s`)
	_, err = newLogger(&buf, "xml", slog.LevelInfo)
	assert.ErrorContains(t, err, `unknown log format "xml"`)
}

func TestMainFlags(t *testing.T) {
	var out, errb bytes.Buffer
	assert.Equal(t, 0, realMain([]string{"-version"}, &out, &errb))
	assert.Equal(t, "dsrlb "+version.Get().String()+"\n", out.String())

	out.Reset()
	errb.Reset()
	assert.Equal(t, 2, realMain([]string{"-log-format", "xml"}, &out, &errb))
	assert.Contains(t, errb.String(), "-log-format")

	// A refused configuration is also a structured event.
	path := filepath.Join(t.TempDir(), "bad.yaml")
	require.NoError(t, os.WriteFile(path, []byte("interface: eth0\nservices:\n  - vip: nope\n"), 0o644))
	errb.Reset()
	assert.Equal(t, 1, realMain([]string{"-config", path}, &out, &errb))
	var line map[string]any
	for _, l := range strings.Split(errb.String(), "\n") {
		if strings.HasPrefix(l, "{") {
			require.NoError(t, json.Unmarshal([]byte(l), &line))
		}
	}
	require.NotNil(t, line, "a JSON line: %s", errb.String())
	assert.Equal(t, evConfigError, line["event"])
	assert.Equal(t, path, line["file"])
	assert.Equal(t, "services[0].vip", line["field"])
	assert.Equal(t, 3.0, line["line"])
}

// The daemon's notifications reach a socket named by $NOTIFY_SOCKET, and
// the stop timeout follows drain_timeout.
func TestNotify(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "notify")
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: sock, Net: "unixgram"})
	require.NoError(t, err)
	defer conn.Close()
	t.Setenv("NOTIFY_SOCKET", sock)
	require.NoError(t, sdNotify("STOPPING=1", extendTimeout(40*time.Second)))
	require.NoError(t, conn.SetReadDeadline(time.Now().Add(5*time.Second)))
	buf := make([]byte, 256)
	n, err := conn.Read(buf)
	require.NoError(t, err)
	assert.Equal(t, "STOPPING=1\nEXTEND_TIMEOUT_USEC=40000000", string(buf[:n]))

	t.Setenv("NOTIFY_SOCKET", "")
	assert.NoError(t, sdNotify("READY=1"), "no socket: nothing to do")
	t.Setenv("NOTIFY_SOCKET", filepath.Join(t.TempDir(), "absent"))
	assert.Error(t, sdNotify("READY=1"))

	for _, tc := range []struct {
		yaml string
		want time.Duration
	}{
		{"", defaultDrainTimeout + stopMargin},
		{"drain_timeout: 2m\n", 2*time.Minute + stopMargin},
	} {
		cfg, err := ParseConfig("x.yaml", []byte("interface: eth0\n"+tc.yaml+"services: []\n"))
		require.NoError(t, err)
		assert.Equal(t, tc.want, stopTimeoutOf(cfg), tc.yaml)
	}
}

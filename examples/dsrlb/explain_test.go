package main

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dsrlb/dsrlb/dsr"
)

const explainConfig = `interface: eth0
seed: 42
services:
  - name: web
    vip: 192.0.2.100
    protocol: tcp
    port: 80
    backends:
      - addr: 192.0.2.21
        mac: 02:00:00:00:00:21
      - addr: 192.0.2.22
      - addr: 192.0.2.23
        state: down
  - name: web6
    vip: 2001:db8::100
    protocol: udp
    port: 53
    scheduler: rr
    backends:
      - addr: 2001:db8::21
        mac: 02:00:00:00:00:31
`

func runExplainArgs(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "dsrlb.yaml")
	require.NoError(t, os.WriteFile(path, []byte(explainConfig), 0o600))
	var out, errb bytes.Buffer
	code := runExplain(append([]string{"-config", path}, args...), &out, &errb)
	return code, out.String(), errb.String()
}

// oracle places a flow with a Balancer built from the same services, the
// way the daemon builds its own.
func oracle(t *testing.T, tuple dsr.Tuple) netip.Addr {
	t.Helper()
	cfg, err := ParseConfig("x", []byte(explainConfig))
	require.NoError(t, err)
	b, err := dsr.New(&cfg.Balancer)
	require.NoError(t, err)
	svcs, _ := withPlaceholderMACs(cfg.Services)
	require.NoError(t, b.SetServices(svcs))
	e, err := b.ExplainFlow(tuple)
	require.NoError(t, err)
	return e.Backend
}

func TestExplainCommand(t *testing.T) {
	code, out, errOut := runExplainArgs(t, "198.51.100.7:40000", "192.0.2.100:80/tcp")
	require.Equal(t, 0, code, errOut)
	assert.Contains(t, out, "service 192.0.2.100:80/tcp, scheduler mh")
	assert.Contains(t, out, "selects slot")
	assert.NotContains(t, out, "192.0.2.23 (", "a down backend gets nothing")

	// Over many sources the placement covers both usable backends and
	// says when the MAC is a stand-in.
	seen := map[string]bool{}
	for p := 1000; p < 1100; p++ {
		tuple := dsr.Tuple{Src: netip.AddrPortFrom(netip.MustParseAddr("198.51.100.7"), uint16(p)), Dst: netip.MustParseAddrPort("192.0.2.100:80"), Protocol: dsr.TCP}
		code, out, _ := runExplainArgs(t, "-json", tuple.Src.String(), "192.0.2.100:80/tcp")
		require.Equal(t, 0, code)
		var j explanationJSON
		require.NoError(t, json.Unmarshal([]byte(out), &j))
		require.Equal(t, oracle(t, tuple).String(), j.Backend)
		require.NotNil(t, j.Slot)
		seen[j.Backend] = true
		if j.Backend == "192.0.2.22" {
			assert.Empty(t, j.MAC, "no configured MAC: none is claimed")
			assert.Contains(t, strings.Join(j.Steps, "\n"), "has no configured MAC")
		}
	}
	assert.Equal(t, map[string]bool{"192.0.2.21": true, "192.0.2.22": true}, seen)
}

func TestExplainCommandOtherCases(t *testing.T) {
	code, out, _ := runExplainArgs(t, "[2001:db8:1::7]:5353", "[2001:db8::100]:53/udp")
	require.Equal(t, 0, code)
	assert.Contains(t, out, "rr picks by turn or load")

	code, out, _ = runExplainArgs(t, "198.51.100.7:1", "192.0.2.100:81/tcp")
	assert.Equal(t, 1, code, "a dropped flow exits 1")
	assert.Contains(t, out, "dropped (no_service)")

	for _, args := range [][]string{
		{"198.51.100.7", "192.0.2.100:80/tcp"},
		{"198.51.100.7:1", "192.0.2.100:80"},
		{"198.51.100.7:1", "192.0.2.100:80/sctp"},
		{"198.51.100.7:1"},
	} {
		code, _, errOut := runExplainArgs(t, args...)
		assert.Equal(t, 2, code, "%v", args)
		assert.NotEmpty(t, errOut)
	}
	var out2, errb bytes.Buffer
	require.Equal(t, 1, runExplain([]string{"-config", filepath.Join(t.TempDir(), "missing.yaml"), "198.51.100.7:1", "192.0.2.100:80/tcp"}, &out2, &errb))
	assert.Contains(t, errb.String(), "missing.yaml")
}

func TestExplainHandler(t *testing.T) {
	cfg, err := ParseConfig("x", []byte(explainConfig))
	require.NoError(t, err)
	b, err := dsr.New(&cfg.Balancer)
	require.NoError(t, err)
	svcs, _ := withPlaceholderMACs(cfg.Services)
	require.NoError(t, b.SetServices(svcs))
	srv := httptest.NewServer(explainHandler(b))
	defer srv.Close()

	resp, err := http.Get(srv.URL + "/explain?flow=198.51.100.7:40000+192.0.2.100:80/tcp&format=json")
	require.NoError(t, err)
	defer resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
	var j explanationJSON
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&j))
	assert.Equal(t, "new flow", j.Why)
	assert.True(t, j.Forward)

	resp2, err := http.Get(srv.URL + "/explain?flow=nonsense")
	require.NoError(t, err)
	resp2.Body.Close()
	assert.Equal(t, http.StatusBadRequest, resp2.StatusCode)

	// The page the status page links to: a form, and the answer under it,
	// escaped.
	page := func(q string) string {
		resp, err := http.Get(srv.URL + "/explain?format=html" + q)
		require.NoError(t, err)
		defer resp.Body.Close()
		require.Equal(t, http.StatusOK, resp.StatusCode)
		b, err := io.ReadAll(resp.Body)
		require.NoError(t, err)
		return string(b)
	}
	empty := page("")
	assert.Contains(t, empty, `<form action="/explain"`)
	assert.NotContains(t, empty, `id="explanation"`)
	answered := page("&flow=" + url.QueryEscape("198.51.100.7:40000 192.0.2.100:80/tcp"))
	assert.Contains(t, answered, `id="explanation"`)
	assert.Contains(t, answered, "selects slot")
	bad := page("&flow=" + url.QueryEscape("<b>x</b> y"))
	assert.Contains(t, bad, `id="error"`)
	assert.NotContains(t, bad, "<b>x</b>", "input is escaped")
}

func TestDataPlaneConfig(t *testing.T) {
	for _, mode := range []string{"", "packet", "xdp", "auto"} {
		cfg := strings.Replace(explainConfig, "interface: eth0\n", "interface: eth0\ndataplane: "+mode+"\n", 1)
		l, err := ParseConfig("dsrlb.yaml", []byte(cfg))
		require.NoError(t, err, mode)
		assert.Equal(t, mode, l.File.DataPlane)
	}
	_, err := ParseConfig("dsrlb.yaml", []byte(strings.Replace(explainConfig, "interface: eth0\n", "interface: eth0\ndataplane: xpd\n", 1)))
	require.Error(t, err)
	assert.Contains(t, err.Error(), "dsrlb.yaml:2: dataplane: ")
	assert.Contains(t, err.Error(), "did you mean xdp")
}

package main

import (
	"bytes"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dsrlb/dsrlb/dsr"
	"github.com/dsrlb/dsrlb/health"
)

const goodConfig = `interface: eth0
listen: 127.0.0.1:0
workers: 2
fragments: hash
drain_timeout: 5s
flow_table:
  max_flows: 100000
  tcp_timeout: 10m
health:
  interval: 1s
  fall: 2
services:
  - name: web
    vip: 192.0.2.100
    protocol: tcp
    port: 80
    scheduler: mh
    fail_open: true
    checks:
      - type: tcp
      - type: http
        status: 200-299
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
	assert.Equal(t, Duration(time.Second), l.File.Health.Interval)
	assert.Equal(t, 2, l.File.Health.Fall)
	require.Len(t, l.Services, 2)
	web := l.Services[0]
	assert.Equal(t, dsr.TCP, web.Protocol)
	assert.Equal(t, uint16(80), web.Port)
	assert.True(t, web.FailOpen)
	require.Len(t, web.Backends, 2)
	assert.Equal(t, uint32(3), web.Backends[1].Weight)
	assert.Equal(t, dsr.BackendDraining, web.Backends[1].State)
	assert.Empty(t, web.Checks, "the daemon builds the checks itself")
	require.Len(t, l.File.Services[0].Checks, 2)
	assert.Equal(t, "http", l.File.Services[0].Checks[1].Type)
	assert.Equal(t, "web", l.Names[web.Key()])
	assert.Equal(t, dsr.TCPAndUDP, l.Services[1].Protocol)
	assert.Equal(t, "[2001:db8::100]:*/tcp+udp", l.Names[l.Services[1].Key()], "unnamed services are named by their key")
}

func TestParseAnchorsAndMerge(t *testing.T) {
	cfg := `interface: eth0
defaults: &be
  weight: 4
services:
  - vip: 192.0.2.100
    protocol: tcp
    port: 80
    backends:
      - <<: *be
        addr: 192.0.2.20
`
	_, err := ParseConfig("a.yaml", []byte(cfg))
	require.Error(t, err, "an unknown top-level key is refused even when it only holds an anchor")
	assert.Contains(t, err.Error(), "a.yaml:2: defaults: unknown key")

	cfg = strings.Replace(cfg, "defaults: &be\n  weight: 4\n", "", 1)
	cfg = strings.Replace(cfg, "      - <<: *be\n        addr", "      - &be\n        weight: 4\n        addr", 1) +
		"      - <<: *be\n        addr: 192.0.2.21\n"
	l, err := ParseConfig("a.yaml", []byte(cfg))
	require.NoError(t, err)
	require.Len(t, l.Services[0].Backends, 2)
	assert.Equal(t, uint32(4), l.Services[0].Backends[1].Weight, "merge keys apply")
}

// lineOfText returns the 1-based line where s starts in text.
func lineOfText(t *testing.T, text, s string) int {
	t.Helper()
	i := strings.Index(text, s)
	require.GreaterOrEqual(t, i, 0, "%q not in the text", s)
	return 1 + strings.Count(text[:i], "\n")
}

func TestBadConfigNamesFileLineField(t *testing.T) {
	cases := []struct {
		kind, name    string
		replace, with string
		field         string // expected field path
		want          string // more of the expected message
		at            string // the line is the one holding this text; empty: the line of with
		is            error  // the error wraps this, if set
	}{
		{kind: "syntax", name: "two colons", replace: "  max_flows: 100000", with: "  max_flows: 100000: 3",
			field: "flow_table.max_flows", want: `syntax error: mapping values are not allowed in this context (the line reads "max_flows: 100000: 3")`},
		{kind: "syntax", name: "unclosed flow list", replace: "    backends: []", with: "    backends: [",
			field: "services[1].backends", want: "syntax error: did not find expected node content"},
		{kind: "syntax", name: "tab indentation", replace: "  tcp_timeout: 10m", with: "\ttcp_timeout: 10m",
			field: "after flow_table.max_flows (line 7)", want: `syntax error: found a tab character that violates indentation (indent with spaces, not tabs) (the line reads "tcp_timeout: 10m")`},

		{kind: "unknown key", name: "top level, misspelt", replace: "workers: 2", with: "wokers: 2",
			field: "wokers", want: "unknown key; did you mean workers?"},
		{kind: "unknown key", name: "nested, misspelt", replace: "  interval: 1s", with: "  intervall: 1s",
			field: "health.intervall", want: "unknown key; did you mean interval?"},
		{kind: "unknown key", name: "dash for underscore", replace: "    fail_open: true", with: "    fail-open: true",
			field: "services[0].fail-open", want: "did you mean fail_open?"},
		{kind: "unknown key", name: "in a list item", replace: "        weight: 3", with: "        wieght: 3",
			field: "services[0].backends[1].wieght", want: "did you mean weight?"},
		{kind: "unknown key", name: "nothing close", replace: "        status: 200-299", with: "        colour: blue",
			field: "services[0].checks[1].colour", want: "unknown key; valid keys here: body, expect, host, insecure, method, name, path, payload, port, status, type"},
		{kind: "unknown key", name: "set twice", replace: "    port: 80\n", with: "    port: 80\n    port: 81\n",
			field: "services[0].port", want: "set twice (first on line 16)", at: "port: 81"},

		{kind: "wrong type", name: "word for a number", replace: "workers: 2", with: "workers: two",
			field: "workers", want: `want a whole number, got "two"`},
		{kind: "wrong type", name: "port out of range", replace: "    port: 80", with: "    port: 70000",
			field: "services[0].port", want: `want a whole number from 0 to 65535, got "70000"`},
		{kind: "wrong type", name: "negative weight", replace: "        weight: 3", with: "        weight: -3",
			field: "services[0].backends[1].weight", want: `want a whole number from 0 to 4294967295, got "-3"`},
		{kind: "wrong type", name: "quoted number", replace: "  fall: 2", with: `  fall: "2"`,
			field: "health.fall", want: `got "2"`},
		{kind: "wrong type", name: "not a bool", replace: "fail_open: true", with: "fail_open: maybe",
			field: "services[0].fail_open", want: `want true or false, got "maybe"`},
		{kind: "wrong type", name: "mapping for a list", replace: "    backends: []", with: "    backends: {addr: 192.0.2.30}",
			field: "services[1].backends", want: "want a list"},
		{kind: "wrong type", name: "list for a value", replace: "vip: 192.0.2.100", with: "vip: [192.0.2.100]",
			field: "services[0].vip", want: "want a single value, got a list"},
		{kind: "wrong type", name: "value for a mapping", replace: "flow_table:\n  max_flows: 100000\n  tcp_timeout: 10m\n", with: "flow_table: big\n",
			field: "flow_table", want: `want a mapping (key: value lines), got "big"`},

		{kind: "bad duration", name: "words", replace: "drain_timeout: 5s", with: "drain_timeout: 1 second",
			field: "drain_timeout", want: `"1 second" is not a duration (write it like 10s, 500ms or 1m30s)`},
		{kind: "bad duration", name: "no unit", replace: "  tcp_timeout: 10m", with: "  tcp_timeout: 600",
			field: "flow_table.tcp_timeout", want: `"600" has no unit: write it like 600s or 600ms`},
		{kind: "bad duration", name: "negative", replace: "  interval: 1s", with: "  interval: -1s",
			field: "health.interval", want: `"-1s" is negative`},

		{kind: "bad address", name: "vip", replace: "vip: 192.0.2.100", with: "vip: 192.0.2.300",
			field: "services[0].vip", want: `"192.0.2.300" is not an IP address`},
		{kind: "bad address", name: "backend", replace: "addr: 192.0.2.21", with: "addr: server-21",
			field: "services[0].backends[1].addr", want: `"server-21" is not an IP address`},
		{kind: "bad address", name: "missing backend address", replace: "      - addr: 192.0.2.20\n", with: "      -\n",
			field: "services[0].backends[0].addr", want: "required", at: "mac: 02:00:00:00:00:20"},
		{kind: "bad address", name: "mac", replace: "mac: 02:00:00:00:00:21", with: "mac: nope",
			field: "services[0].backends[1].mac", want: `"nope" is not a MAC address`},
		{kind: "bad address", name: "listen", replace: "listen: 127.0.0.1:0", with: "listen: nowhere",
			field: "listen", want: `"nowhere": want host:port`},

		{kind: "bad enum", name: "protocol", replace: "protocol: tcp\n", with: "protocol: sctp\n",
			field: "services[0].protocol", want: `"sctp": want tcp, udp or tcp+udp`},
		{kind: "bad enum", name: "protocol typo", replace: "protocol: tcp\n", with: "protocol: tpc\n",
			field: "services[0].protocol", want: "did you mean tcp?"},
		{kind: "bad enum", name: "state", replace: "state: draining", with: "state: sleeping",
			field: "services[0].backends[1].state", want: `"sleeping": want active, draining or down`},
		{kind: "bad enum", name: "fragments", replace: "fragments: hash", with: "fragments: maybe",
			field: "fragments", want: `"maybe": want drop or hash`},
		{kind: "bad enum", name: "check type", replace: "      - type: http", with: "      - type: htpp",
			field: "services[0].checks[1].type", want: `"htpp": want tcp, http, https, udp, dns, icmp or dsr; did you mean http?`},
		{kind: "bad enum", name: "http status", replace: "status: 200-299", with: "status: ok",
			field: "services[0].checks[1].status", want: `"ok": want a code or a range like 200-399`},

		{kind: "dsr validation", name: "unknown scheduler", replace: "scheduler: mh", with: "scheduler: nope",
			field: "services[0].scheduler", want: `"nope" is not registered`},
		{kind: "dsr validation", name: "duplicate backend", replace: "addr: 192.0.2.21", with: "addr: 192.0.2.20",
			field: "services[0].backends[1].addr", at: "- addr: 192.0.2.20\n        mac: 02:00:00:00:00:21"},
		{kind: "dsr validation", name: "multicast mac", replace: "mac: 02:00:00:00:00:21", with: "mac: 01:00:5e:00:00:01",
			field: "services[0].backends[1].mac", want: "multicast", is: dsr.ErrInvalidConfig},
		{kind: "dsr validation", name: "weight too big", replace: "weight: 3", with: "weight: 70000",
			field: "services[0].backends[1].weight", want: "exceeds"},
		{kind: "dsr validation", name: "overlapping services", replace: "  - vip: 2001:db8::100\n    protocol: tcp+udp\n", with: "  - vip: 192.0.2.100\n    protocol: tcp+udp\n    port: 80\n",
			field: "services[1]", want: "overlaps services[0]", at: "- vip: 192.0.2.100\n    protocol: tcp+udp", is: dsr.ErrExists},
		{kind: "dsr validation", name: "check that cannot probe the service", replace: "    backends: []", with: "    checks:\n      - type: icmp\n      - type: tcp\n    backends: [{addr: 2001:db8::20}]",
			field: "services[1].checks[1]", at: "- type: tcp\n    backends: [{addr", want: "it needs a port and none is set", is: health.ErrUnsupportedTarget},
	}
	for _, tc := range cases {
		t.Run(tc.kind+"/"+tc.name, func(t *testing.T) {
			require.Contains(t, goodConfig, tc.replace)
			bad := strings.Replace(goodConfig, tc.replace, tc.with, 1)
			line := 0
			switch tc.at {
			case "":
				line = lineOfText(t, bad, strings.TrimLeft(tc.with, " -\t"))
			default:
				line = lineOfText(t, bad, tc.at)
			}
			_, err := ParseConfig("bad.yaml", []byte(bad))
			require.Error(t, err)
			var ce *ConfigError
			require.ErrorAs(t, err, &ce)
			assert.Equal(t, "bad.yaml", ce.File)
			assert.Equal(t, line, ce.Line, "line")
			assert.Equal(t, tc.field, ce.Field, "field")
			prefix := fmt.Sprintf("bad.yaml:%d: %s: ", line, tc.field)
			assert.True(t, strings.HasPrefix(err.Error(), prefix), "%q does not start with %q", err.Error(), prefix)
			assert.Contains(t, err.Error(), tc.want)
			assert.NotContains(t, err.Error(), "main.", "no Go type names")
			if tc.is != nil {
				assert.ErrorIs(t, err, tc.is)
			}
		})
	}
	_, err := ParseConfig("empty.yaml", nil)
	assert.EqualError(t, err, "empty.yaml: empty configuration")
	_, err = ParseConfig("list.yaml", []byte("- a\n- b\n"))
	assert.EqualError(t, err, "list.yaml:1: want a mapping (key: value lines), got a list")
}

// An impossible check/service combination is refused with the check's line,
// whichever checker cannot work: a tcp check has no port to probe on an
// all-ports service (impossible by construction), and the DSR-path check
// on an IPv6 service while the checker supports IPv4 only.
func TestCheckThatCannotProbeIsRefused(t *testing.T) {
	cases := []struct {
		name, service, check string
		skip                 string
	}{
		{name: "tcp check on an all-ports service", service: "    vip: 192.0.2.100\n    protocol: tcp\n", check: "      - type: tcp\n"},
		{name: "udp check on an all-ports service", service: "    vip: 192.0.2.100\n    protocol: udp\n", check: "      - type: udp\n"},
		{name: "dsr check on an all-ports service", service: "    vip: 192.0.2.100\n    protocol: tcp\n", check: "      - type: dsr\n"},
		{name: "dsr check on an IPv6 service", service: "    vip: 2001:db8::100\n    protocol: tcp\n    port: 80\n", check: "      - type: dsr\n",
			skip: func() string {
				sup := health.SupportOf(offlineDSRChecker)
				if sup.Validate(health.Target{Addr: netip.MustParseAddr("2001:db8::20"), VIP: netip.MustParseAddr("2001:db8::100"), Port: 80}) == nil {
					return "the DSR-path checker supports IPv6 VIPs now"
				}
				return ""
			}()},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if tc.skip != "" {
				t.Skip(tc.skip)
			}
			backend := "192.0.2.20"
			if strings.Contains(tc.service, "2001:") {
				backend = "2001:db8::20"
			}
			cfg := "interface: eth0\nservices:\n  - name: ok\n    vip: 192.0.2.50\n    protocol: tcp\n    port: 80\n" +
				"  - name: bad\n" + tc.service + "    checks:\n      - type: icmp\n" + tc.check +
				"    backends:\n      - addr: " + backend + "\n"
			path := filepath.Join(t.TempDir(), "dsrlb.yaml")
			require.NoError(t, os.WriteFile(path, []byte(cfg), 0o644))
			want := fmt.Sprintf("%s:%d: services[1].checks[1]: ", path, lineOfText(t, cfg, strings.TrimSpace(tc.check)))

			_, err := LoadConfig(path)
			require.ErrorIs(t, err, health.ErrUnsupportedTarget)
			assert.True(t, strings.HasPrefix(err.Error(), want), "%q does not start with %q", err, want)

			for _, args := range [][]string{{"-check"}, {}} {
				var stdout, stderr bytes.Buffer
				code := realMain(append(args, "-config", path), &stdout, &stderr)
				assert.Equal(t, 1, code, "%v refuses the file", args)
				assert.Contains(t, stderr.String(), "dsrlb: "+want, "%v names file, line and field", args)
				assert.Empty(t, stdout.String())
			}
		})
	}
}

func TestCheckFlag(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "good.yaml")
	require.NoError(t, os.WriteFile(good, []byte(goodConfig), 0o644))
	bad := filepath.Join(dir, "bad.yaml")
	require.NoError(t, os.WriteFile(bad, []byte(strings.Replace(goodConfig, "  interval: 1s", "  intervall: 1s", 1)), 0o644))

	var stdout, stderr bytes.Buffer
	require.Equal(t, 0, realMain([]string{"-check", "-config", good}, &stdout, &stderr), stderr.String())
	assert.Equal(t, good+": ok (2 services)\n", stdout.String())

	stdout.Reset()
	stderr.Reset()
	require.Equal(t, 1, realMain([]string{"-check", "-config", bad}, &stdout, &stderr))
	assert.Equal(t, "dsrlb: "+bad+":10: health.intervall: unknown key; did you mean interval?\n", stderr.String())

	stderr.Reset()
	require.Equal(t, 1, realMain([]string{"-check", "-config", filepath.Join(dir, "missing.yaml")}, &stdout, &stderr))
	assert.Contains(t, stderr.String(), "missing.yaml")

	stderr.Reset()
	require.Equal(t, 2, realMain([]string{"-nope"}, &stdout, &stderr))
}

func TestSuggestions(t *testing.T) {
	keys := []string{"interval", "timeout", "rise", "fall"}
	cases := []struct{ in, want string }{
		{"intervall", "interval"},
		{"Interval", "interval"},
		{"timout", "timeout"},
		{"ris", "rise"},
		{"falls", "fall"},
		{"colour", ""},
		{"x", ""},
	}
	for _, tc := range cases {
		assert.Equal(t, tc.want, closest(tc.in, keys), tc.in)
	}
	assert.Equal(t, 0, editDistance("abc", "abc"))
	assert.Equal(t, 3, editDistance("", "abc"))
	assert.Equal(t, 1, editDistance("ab", "ba"), "a transposition is one edit")
	assert.Equal(t, 2, editDistance("ab", "ca"))
}

func TestExampleConfigParses(t *testing.T) {
	l, err := LoadConfig("dsrlb.example.yaml")
	require.NoError(t, err)
	require.Len(t, l.Services, 2)
	assert.Len(t, l.File.Services[0].Checks, 2)
	assert.Equal(t, dsr.TCPAndUDP, l.Services[1].Protocol)
}

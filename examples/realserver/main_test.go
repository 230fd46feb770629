package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dsrlb/dsrlb/dsr/realserver"
	"github.com/dsrlb/dsrlb/internal/netlab"
)

func TestMain(m *testing.M) {
	netlab.RunChildIfRequested()
	os.Exit(m.Run())
}

// Usage errors exit 2 before touching the system.
func TestUsageErrors(t *testing.T) {
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"no command", nil, "missing command"},
		{"unknown command", []string{"fix"}, "unknown command"},
		{"no vip", []string{"check", "--port", "80"}, "--vip"},
		{"bad vip", []string{"check", "--vip", "nope"}, "invalid value"},
		{"bad port", []string{"check", "--vip", "192.0.2.100", "--port", "0"}, "bad port"},
		{"bad proto", []string{"check", "--vip", "192.0.2.100", "--proto", "sctp"}, "bad protocol"},
		{"bad mac", []string{"check", "--vip", "192.0.2.100", "--balancer-mac", "xx"}, "invalid value"},
		{"extra argument", []string{"check", "--vip", "192.0.2.100", "now"}, "unexpected argument"},
		{"bad interface", []string{"check", "--vip", "192.0.2.100", "--interface", "a/b"}, "interface name"},
		{"loopback vip", []string{"check", "--vip", "127.0.0.1"}, "unusable VIP"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if (tc.name == "bad interface" || tc.name == "loopback vip") && runtime.GOOS != "linux" {
				t.Skip("validated by the Linux implementation")
			}
			var out, errb bytes.Buffer
			code := run(context.Background(), tc.args, &out, &errb)
			assert.Equal(t, exitUsage, code, "stderr: %s", errb.String())
			assert.Contains(t, errb.String(), tc.want)
			assert.Empty(t, out.String())
		})
	}
}

// buildCLI compiles this program once per test.
func buildCLI(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "realserver")
	cmd := exec.Command("go", "build", "-o", bin, ".")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, "%s", out)
	return bin
}

// runIn runs the CLI inside h's namespace and returns its exit status and
// output.
func runIn(t *testing.T, h *netlab.Host, bin string, args ...string) (int, string, string) {
	t.Helper()
	var out, errb bytes.Buffer
	cmd := h.Command(context.Background(), bin, args...)
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return ee.ExitCode(), out.String(), errb.String()
	}
	require.NoError(t, err)
	return 0, out.String(), errb.String()
}

// The whole cycle on a broken server: check finds the errors (text and
// JSON), prepare fixes them and records what it did, check is clean, undo
// brings the errors back and removes the state file.
func TestIntegrationCLI(t *testing.T) {
	ign := 0
	lab := netlab.NewT(t, &netlab.Config{Servers: 1, Server: func(int) netlab.ServerOptions {
		return netlab.ServerOptions{NoVIP: true, ARPIgnore: &ign}
	}})
	bin := buildCLI(t)
	h := lab.Servers[0]
	state := filepath.Join(t.TempDir(), "state.json")
	base := []string{"--vip", lab.VIPs[0].String(), "--port", "80", "--state", state, "--arp-window", "-1s"}

	code, out, errOut := runIn(t, h, bin, append([]string{"check"}, base...)...)
	assert.Equal(t, exitFound, code, "stderr: %s", errOut)
	assert.Contains(t, out, "error   vip-missing")
	assert.Contains(t, out, "fix: ip addr add 192.0.2.100/32 dev lo")
	assert.Contains(t, out, "fix: sysctl -w net.ipv4.conf.all.arp_ignore=1")
	assert.Contains(t, out, "2 error(s)")

	code, out, _ = runIn(t, h, bin, append([]string{"check", "--json"}, base...)...)
	assert.Equal(t, exitFound, code)
	var rep realserver.Report
	require.NoError(t, json.Unmarshal([]byte(out), &rep), out)
	assert.Equal(t, []string{realserver.CodeVIPMissing, realserver.CodeARPIgnore}, rep.Codes(realserver.Warning))

	code, out, errOut = runIn(t, h, bin, append([]string{"prepare"}, base...)...)
	assert.Equal(t, exitOK, code, "stdout: %s stderr: %s", out, errOut)
	assert.Contains(t, out, "prepare: 2 change(s)")
	assert.FileExists(t, state)

	// Prepare again: nothing more to do, the record is unchanged.
	recorded, err := os.ReadFile(state)
	require.NoError(t, err)
	code, out, _ = runIn(t, h, bin, append([]string{"prepare"}, base...)...)
	assert.Equal(t, exitOK, code)
	assert.Contains(t, out, "prepare: 0 change(s)")
	again, err := os.ReadFile(state)
	require.NoError(t, err)
	assert.Equal(t, string(recorded), string(again))

	code, out, _ = runIn(t, h, bin, append([]string{"check"}, base...)...)
	assert.Equal(t, exitOK, code, out)
	assert.Contains(t, out, "0 error(s), 0 warning(s)")

	code, out, _ = runIn(t, h, bin, "undo", "--state", state)
	assert.Equal(t, exitOK, code, out)
	assert.Equal(t, "undo: 2 change(s) reverted\n", out)
	assert.NoFileExists(t, state)

	code, _, _ = runIn(t, h, bin, append([]string{"check"}, base...)...)
	assert.Equal(t, exitFound, code)

	code, _, errOut = runIn(t, h, bin, "check")
	assert.Equal(t, exitUsage, code)
	assert.True(t, strings.Contains(errOut, "--vip"), errOut)
}

// An IPv6 VIP through the whole cycle: check finds what is wrong with its
// fixes (text and JSON) and exits 1, prepare fixes it and exits 0, a second
// prepare changes nothing, undo brings the errors back. Dual-stack is
// checked for both families in one run.
func TestIntegrationCLIIPv6(t *testing.T) {
	lab := netlab.NewT(t, &netlab.Config{Servers: 1, IPv6: true, NoServerProcesses: true, Server: func(int) netlab.ServerOptions {
		return netlab.ServerOptions{NoVIP: true}
	}})
	bin := buildCLI(t)
	h := lab.Servers[0]
	require.NoError(t, h.Sysctl("net.ipv6.conf.eth0.proxy_ndp", "1"))
	state := filepath.Join(t.TempDir(), "state.json")
	vip6 := netlab.DefaultVIP6.String()
	base := []string{"--vip", vip6, "--state", state, "--arp-window", "-1s", "--ndp-window", "-1s"}

	code, out, errOut := runIn(t, h, bin, append([]string{"check"}, base...)...)
	assert.Equal(t, exitFound, code, "stderr: %s", errOut)
	assert.Contains(t, out, "error   vip-missing: "+vip6+" is not on lo")
	assert.Contains(t, out, "fix: ip addr add "+vip6+"/128 dev lo nodad")
	assert.Contains(t, out, "warning proxy-ndp")
	assert.Contains(t, out, "fix: sysctl -w net.ipv6.conf.eth0.proxy_ndp=0")
	assert.Contains(t, out, "info    ndp-unchecked: neighbour-discovery probe disabled")
	assert.Contains(t, out, "1 error(s), 1 warning(s)")
	assert.NotContains(t, out, "not implemented")

	code, out, _ = runIn(t, h, bin, append([]string{"check", "--json"}, base...)...)
	assert.Equal(t, exitFound, code)
	var rep realserver.Report
	require.NoError(t, json.Unmarshal([]byte(out), &rep), out)
	assert.Equal(t, []string{realserver.CodeVIPMissing, realserver.CodeProxyNDP}, rep.Codes(realserver.Warning))
	assert.Equal(t, netlab.DefaultVIP6, rep.Findings[0].VIP)

	code, out, errOut = runIn(t, h, bin, append([]string{"prepare"}, base...)...)
	assert.Equal(t, exitOK, code, "stdout: %s stderr: %s", out, errOut)
	assert.Contains(t, out, "prepare: 2 change(s)")
	assert.Contains(t, out, "0 error(s), 0 warning(s)")
	recorded, err := os.ReadFile(state)
	require.NoError(t, err)
	assert.Contains(t, string(recorded), `"nodad": true`)

	code, out, _ = runIn(t, h, bin, append([]string{"prepare"}, base...)...)
	assert.Equal(t, exitOK, code)
	assert.Contains(t, out, "prepare: 0 change(s)")
	again, err := os.ReadFile(state)
	require.NoError(t, err)
	assert.Equal(t, string(recorded), string(again))

	// Dual-stack: the IPv4 VIP is missing and checked in the same run.
	dual := append([]string{"check", "--vip", netlab.DefaultVIP4.String()}, base...)
	code, out, _ = runIn(t, h, bin, dual...)
	assert.Equal(t, exitFound, code, out)
	assert.Contains(t, out, "fix: ip addr add 192.0.2.100/32 dev lo\n")
	assert.Contains(t, out, "1 error(s), 0 warning(s)")

	code, out, _ = runIn(t, h, bin, "undo", "--state", state)
	assert.Equal(t, exitOK, code, out)
	assert.Equal(t, "undo: 2 change(s) reverted\n", out)
	assert.NoFileExists(t, state)

	code, out, _ = runIn(t, h, bin, append([]string{"check"}, base...)...)
	assert.Equal(t, exitFound, code, out)
	assert.Contains(t, out, "1 error(s), 1 warning(s)")
}

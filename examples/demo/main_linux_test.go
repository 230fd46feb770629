package main

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dsrlb/dsrlb/internal/netlab"
)

func buildDemo(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "demo")
	out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput()
	require.NoError(t, err, "go build: %s", out)
	return bin
}

// TestIntegrationDemo runs the demo to completion, as the README's first
// command does, and checks what it shows.
func TestIntegrationDemo(t *testing.T) {
	netlab.RequirePrivileged(t)
	bin := buildDemo(t)
	for _, tc := range []struct {
		family  string
		args    []string
		service string
		backend string
	}{
		{"IPv4", nil, "192.0.2.100:80/tcp", "192.0.2.21"},
		{"IPv6", []string{"-ipv6"}, "[2001:db8:0:1::100]:80/tcp", "2001:db8:0:1::15"},
		{"XDP", []string{"-xdp"}, "192.0.2.100:80/tcp", "192.0.2.21"},
	} {
		t.Run(tc.family, func(t *testing.T) { testDemo(t, bin, tc.args, tc.service, tc.backend) })
	}
}

func testDemo(t *testing.T, bin string, args []string, service, backend string) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	var out bytes.Buffer
	cmd := exec.CommandContext(ctx, bin, append([]string{"-phase", "1500ms"}, args...)...)
	cmd.Stdout, cmd.Stderr = &out, &out
	require.NoError(t, cmd.Run(), "demo output:\n%s", out.String())
	text := out.String()
	t.Logf("demo output:\n%s", text)

	if slices.Contains(args, "-xdp") {
		m := regexp.MustCompile(`XDP program: (\d+) frames forwarded in the kernel`).FindStringSubmatch(text)
		require.NotNil(t, m, "the demo reports the XDP program's work")
		assert.NotEqual(t, "0", m[1], "the program forwarded frames in the kernel")
		assert.Contains(t, text, "data plane: XDP")
	}
	for _, want := range []string{
		"phase 1: balancing",
		"phase 2: stopping server s1",
		"phase 3: starting server s1 again",
		"event: backend-down service=" + service + " backend=" + backend,
		"event: backend-up service=" + service + " backend=" + backend,
		"done: the balancer forwarded",
	} {
		assert.Contains(t, text, want)
	}
	// Every backend served in phase 1, and the balancer carried a small
	// share of the bytes delivered.
	lines := strings.Split(text, "\n")
	phase := 0
	carried := regexp.MustCompile(`\((\d+\.\d+)%\)`)
	s1 := regexp.MustCompile(`s1 +(\d+) req`)
	var last1, last2, last3, afterDown string
	down := false
	for _, l := range lines {
		switch {
		case strings.Contains(l, "phase 1:"):
			phase = 1
		case strings.Contains(l, "phase 2:"):
			phase = 2
		case strings.Contains(l, "phase 3:"):
			phase = 3
		case strings.Contains(l, "event: backend-down"):
			down = true
		case strings.HasPrefix(l, " s0"):
			switch phase {
			case 1:
				last1 = l
			case 2:
				last2 = l
				if down && afterDown == "" {
					afterDown = l
				}
			case 3:
				last3 = l
			}
			m := carried.FindStringSubmatch(l)
			require.NotNil(t, m, l)
			assert.Less(t, m[1], "2.", "the balancer carries under 2%% of the bytes: %s", l)
		}
	}
	require.NotEmpty(t, last1)
	require.NotEmpty(t, last2)
	require.NotEmpty(t, last3)
	assert.NotContains(t, last1, "   0 req", "every server serves in phase 1")
	require.NotEmpty(t, afterDown, "a progress line after the failover")
	assert.Equal(t, s1.FindStringSubmatch(afterDown)[1], s1.FindStringSubmatch(last2)[1],
		"the stopped server gets nothing after failover:\n%s\n%s", afterDown, last2)
	assert.Regexp(t, `s1 +[1-9]\d* req`, last3, "the restarted server serves again")
	assert.Contains(t, last3, "failed   0", "no failures once it is back")
}

// TestIntegrationDemoHA runs the demo's -ha mode: two balancers in one VRRP
// group, the master crashes mid-run, the backup takes over and the long
// downloads finish through it.
func TestIntegrationDemoHA(t *testing.T) {
	netlab.RequirePrivileged(t)
	bin := buildDemo(t)
	for _, tc := range []struct {
		name string
		args []string
	}{
		{"IPv4", nil},
		{"IPv6", []string{"-ipv6"}},
		{"XDP", []string{"-xdp"}},
	} {
		t.Run(tc.name, func(t *testing.T) { testDemoHA(t, bin, tc.args) })
	}
}

func testDemoHA(t *testing.T, bin string, args []string) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	var out bytes.Buffer
	cmd := exec.CommandContext(ctx, bin, append([]string{"-ha", "-phase", "1500ms"}, args...)...)
	cmd.Stdout, cmd.Stderr = &out, &out
	require.NoError(t, cmd.Run(), "demo output:\n%s", out.String())
	text := out.String()
	t.Logf("demo output:\n%s", text)

	// A was master before the crash, B became master after it, and the
	// demo says how long that took.
	crash := strings.Index(text, "phase 2: crashing balancer A")
	require.Positive(t, crash, "the demo crashes balancer A")
	aMaster := strings.Index(text, "balancer A vrrp: became master")
	require.True(t, aMaster >= 0 && aMaster < crash, "A is master before the crash")
	// (B may have become master briefly before, when a loaded machine
	// delayed A's advertisements; A's reassertion ends that, so it is
	// not asserted here.)
	assert.Contains(t, text[crash:], "balancer B vrrp: became master (backup -> master)")
	m := regexp.MustCompile(`takeover: balancer B \(192\.0\.2\.11\) became master (\S+) after balancer A was killed`).FindStringSubmatch(text)
	require.NotNil(t, m, "the takeover line")
	took, err := time.ParseDuration(m[1])
	require.NoError(t, err)
	assert.Positive(t, took)
	// A crash sends no priority 0 advertisement: B waits out the master
	// down interval.
	assert.Regexp(t, `balancer B vrrp: became master \(backup -> master\): [^\n]*master down interval`, text[crash:])
	assert.NotContains(t, text[crash:], "(priority 0 advertisement)")

	// Requests kept succeeding through the new master.
	m = regexp.MustCompile(`done: after the takeover (\d+) requests succeeded`).FindStringSubmatch(text)
	require.NotNil(t, m)
	assert.NotEqual(t, "0", m[1], "requests succeed after the takeover")

	// Every long download completed byte-exact.
	assert.NotContains(t, text, "FAILED")
	m = regexp.MustCompile(`done: (\d+) of (\d+) long downloads of [\d.]+ MiB completed byte-exact`).FindStringSubmatch(text)
	require.NotNil(t, m)
	assert.NotEqual(t, "0", m[2])
	assert.Equal(t, m[2], m[1], "no failed long download")
	assert.Equal(t, strings.Count(text, "byte-exact in "), mustAtoi(t, m[2]), "one line per long download")

	// The new master forwarded the traffic after the crash.
	m = regexp.MustCompile(`balancer B \(new master\) forwarded (\d+) frames since the crash`).FindStringSubmatch(text)
	require.NotNil(t, m)
	assert.Positive(t, mustAtoi(t, m[1]), "the new master forwarded frames")
	var afterTakeover []string
	for _, l := range strings.Split(text[crash:], "\n") {
		if strings.HasPrefix(l, " s0") {
			afterTakeover = append(afterTakeover, l)
		}
	}
	require.NotEmpty(t, afterTakeover, "progress lines after the crash")
	for _, l := range afterTakeover {
		assert.Contains(t, l, "A dead", l)
		assert.Contains(t, l, "B master", l)
	}
}

func mustAtoi(t *testing.T, s string) int {
	t.Helper()
	n, err := strconv.Atoi(s)
	require.NoError(t, err)
	return n
}

// TestDemoWithoutPrivileges: without root the demo says what it needs and
// exits non-zero.
func TestDemoWithoutPrivileges(t *testing.T) {
	if ok, _ := netlab.Privileged(); !ok {
		bin := buildDemo(t)
		out, err := exec.Command(bin).CombinedOutput()
		var ee *exec.ExitError
		require.ErrorAs(t, err, &ee)
		assert.Equal(t, 2, ee.ExitCode())
		assert.Contains(t, string(out), "needs Linux and root")
		return
	}
	// As root: run it as an unprivileged user.
	bin := buildDemo(t)
	for dir := filepath.Dir(bin); dir != os.TempDir() && dir != "/"; dir = filepath.Dir(dir) {
		require.NoError(t, os.Chmod(dir, 0o755), "let the unprivileged user reach the binary")
	}
	cmd := exec.Command(bin)
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
	out, err := cmd.CombinedOutput()
	var ee *exec.ExitError
	require.ErrorAs(t, err, &ee, "output: %s", out)
	assert.Equal(t, 2, ee.ExitCode())
	assert.Contains(t, string(out), "needs Linux and root")
}

// TestIntegrationDemoInterrupted: Ctrl-C mid-run removes everything the demo
// built.
func TestIntegrationDemoInterrupted(t *testing.T) {
	netlab.RequirePrivileged(t)
	bin := buildDemo(t)
	var out syncWriter
	cmd := exec.Command(bin, "-phase", "30s")
	cmd.Stdout, cmd.Stderr = &out, &out
	require.NoError(t, cmd.Start())
	// Wait until traffic flows, then interrupt.
	deadline := time.Now().Add(60 * time.Second)
	for !strings.Contains(out.String(), "phase 1: balancing") {
		require.True(t, time.Now().Before(deadline), "demo did not start: %s", out.String())
		time.Sleep(20 * time.Millisecond)
	}
	m := regexp.MustCompile(`namespaces dsrlb-([0-9a-f]+)-\*`).FindStringSubmatch(out.String())
	require.NotNil(t, m, "the demo names its namespaces: %s", out.String())
	require.NotEmpty(t, labNamespaces(t, m[1]), "the demo's namespaces exist while it runs")
	require.NoError(t, cmd.Process.Signal(syscall.SIGINT))
	err := cmd.Wait()
	var ee *exec.ExitError
	require.ErrorAs(t, err, &ee)
	assert.Equal(t, 130, ee.ExitCode())
	assert.Contains(t, out.String(), "interrupted; everything the demo built has been removed")
	assert.Empty(t, labNamespaces(t, m[1]), "no namespace left behind")
}

// labNamespaces lists the named namespaces of the lab with this ID.
func labNamespaces(t *testing.T, id string) []string {
	entries, err := os.ReadDir("/run/netns")
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	var out []string
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), "dsrlb-"+id+"-") {
			out = append(out, e.Name())
		}
	}
	return out
}

type syncWriter struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (w *syncWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.Write(p)
}

func (w *syncWriter) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.String()
}

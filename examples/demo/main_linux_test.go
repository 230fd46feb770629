package main

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
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

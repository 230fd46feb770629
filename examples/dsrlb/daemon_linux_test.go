package main

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dsrlb/dsrlb/internal/netlab"
)

// runningDaemon is the dsrlb binary running inside a lab's balancer
// namespace.
type runningDaemon struct {
	t      *testing.T
	lab    *netlab.Lab
	cmd    *exec.Cmd
	logs   *syncBuffer
	config string
	done   chan error
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func buildDaemon(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "dsrlb")
	out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput()
	require.NoError(t, err, "go build: %s", out)
	return bin
}

func labConfig(lab *netlab.Lab, servers []int, extra string) string {
	var b strings.Builder
	fmt.Fprintf(&b, `interface: %s
listen: 127.0.0.1:9180
drain_timeout: 20s
health:
  interval: 200ms
  timeout: 150ms
  rise: 1
  fall: 2
arp:
  resolve_interval: 500ms
services:
  - name: web
    vip: %s
    protocol: tcp
    port: 80
    scheduler: mh
    checks:
      - type: tcp
      - type: dsr
    backends:
`, lab.Balancer.Link, lab.VIPs[0])
	for _, i := range servers {
		fmt.Fprintf(&b, "      - addr: %s\n", lab.Servers[i].IP)
	}
	b.WriteString(extra)
	return b.String()
}

func startDaemon(t *testing.T, lab *netlab.Lab, bin, config string) *runningDaemon {
	t.Helper()
	path := filepath.Join(t.TempDir(), "dsrlb.yaml")
	require.NoError(t, os.WriteFile(path, []byte(config), 0o644))
	d := &runningDaemon{t: t, lab: lab, logs: &syncBuffer{}, config: path, done: make(chan error, 1)}
	d.cmd = lab.Balancer.Command(context.Background(), bin, "-config", path, "-log-level", "info")
	d.cmd.Stdout, d.cmd.Stderr = d.logs, d.logs
	require.NoError(t, d.cmd.Start())
	go func() { d.done <- d.cmd.Wait() }()
	t.Cleanup(func() {
		if d.cmd.ProcessState == nil {
			_ = d.cmd.Process.Kill()
			<-d.done
		}
		if t.Failed() {
			t.Logf("daemon output:\n%s", d.logs.String())
		}
	})
	// Ready when the first backend is resolved and healthy.
	d.waitMetric(`dsrlb_backend_resolved{backend="`+lab.Servers[servers(config)[0]].IP.String()+`",service="web"}`, 1)
	d.waitMetric(`dsrlb_backend_healthy{backend="`+lab.Servers[servers(config)[0]].IP.String()+`",service="web"}`, 1)
	return d
}

// servers returns the lab server indexes in a config built by labConfig.
func servers(config string) []int {
	var out []int
	for _, line := range strings.Split(config, "\n") {
		if a, ok := strings.CutPrefix(strings.TrimSpace(line), "- addr: 192.0.2."); ok {
			n, _ := strconv.Atoi(a)
			out = append(out, n-20)
		}
	}
	return out
}

func (d *runningDaemon) get(path string) (string, error) {
	hc := d.lab.Balancer.HTTPClient()
	defer hc.CloseIdleConnections()
	hc.Timeout = 2 * time.Second
	r, err := hc.Get("http://127.0.0.1:9180" + path)
	if err != nil {
		return "", err
	}
	defer r.Body.Close()
	b, err := io.ReadAll(r.Body)
	if r.StatusCode != http.StatusOK {
		return "", fmt.Errorf("%s: %s", path, r.Status)
	}
	return string(b), err
}

// metric returns the value of one sample line of the metrics page.
func (d *runningDaemon) metric(series string) (float64, bool) {
	page, err := d.get("/metrics")
	if err != nil {
		return 0, false
	}
	sc := bufio.NewScanner(strings.NewReader(page))
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), series+" "); ok {
			f, err := strconv.ParseFloat(v, 64)
			return f, err == nil
		}
	}
	return 0, false
}

// waitMetric polls the metrics endpoint (bounded) until series has value.
func (d *runningDaemon) waitMetric(series string, want float64) {
	d.t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		if v, ok := d.metric(series); ok && v == want {
			return
		}
		select {
		case err := <-d.done:
			d.t.Fatalf("daemon exited: %v", err)
		case <-time.After(100 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			v, _ := d.metric(series)
			d.t.Fatalf("%s = %v, want %v", series, v, want)
		}
	}
}

func fetchVIP(lab *netlab.Lab, path string) (string, error) {
	tr := &http.Transport{DialContext: lab.Clients[0].DialContext, DisableKeepAlives: true}
	defer tr.CloseIdleConnections()
	hc := &http.Client{Transport: tr, Timeout: 5 * time.Second}
	r, err := hc.Get(fmt.Sprintf("http://%s%s", lab.VIPs[0], path))
	if err != nil {
		return "", err
	}
	defer r.Body.Close()
	b, err := io.ReadAll(r.Body)
	if err == nil && r.StatusCode != http.StatusOK {
		err = fmt.Errorf("status %s", r.Status)
	}
	return r.Header.Get("X-Backend") + ":" + strconv.Itoa(len(b)), err
}

func TestIntegrationDaemon(t *testing.T) {
	netlab.RequirePrivileged(t)
	bin := buildDaemon(t)
	lab := netlab.NewT(t, &netlab.Config{Servers: 3})
	d := startDaemon(t, lab, bin, labConfig(lab, []int{0, 1}, ""))
	for _, i := range []int{0, 1} {
		d.waitMetric(fmt.Sprintf(`dsrlb_backend_resolved{backend="%s",service="web"}`, lab.Servers[i].IP), 1)
		d.waitMetric(fmt.Sprintf(`dsrlb_backend_healthy{backend="%s",service="web"}`, lab.Servers[i].IP), 1)
	}

	t.Run("serves through the VIP", func(t *testing.T) {
		seen := map[string]int{}
		for range 40 {
			got, err := fetchVIP(lab, "/")
			require.NoError(t, err)
			seen[strings.Split(got, ":")[0]]++
		}
		assert.Len(t, seen, 2, "both backends serve: %v", seen)
		v, ok := d.metric(`dsrlb_service_flows_total{service="web"}`)
		require.True(t, ok)
		assert.GreaterOrEqual(t, v, 40.0, "metrics show the traffic")
		v, _ = d.metric(`dsrlb_backend_packets_total{backend="` + lab.Servers[0].IP.String() + `",service="web"}`)
		assert.Positive(t, v)
	})

	t.Run("reload", func(t *testing.T) {
		// A download in progress across both reloads: its flow must stay on
		// its backend.
		hc := lab.Clients[0].HTTPClient()
		defer hc.CloseIdleConnections()
		const size = 8 << 20
		resp, err := hc.Get(fmt.Sprintf("http://%s/bytes?n=%d", lab.VIPs[0], size))
		require.NoError(t, err)
		defer resp.Body.Close()
		head := make([]byte, 1<<20)
		_, err = io.ReadFull(resp.Body, head)
		require.NoError(t, err)

		// Good: a third backend.
		require.NoError(t, os.WriteFile(d.config, []byte(labConfig(lab, []int{0, 1, 2}, "")), 0o644))
		require.NoError(t, d.cmd.Process.Signal(syscall.SIGHUP))
		d.waitMetric(`dsrlb_config_reloads_total{result="ok"}`, 1)
		d.waitMetric(`dsrlb_backend_resolved{backend="`+lab.Servers[2].IP.String()+`",service="web"}`, 1)
		d.waitMetric(`dsrlb_backend_healthy{backend="`+lab.Servers[2].IP.String()+`",service="web"}`, 1)
		seen := map[string]bool{}
		for range 60 {
			got, err := fetchVIP(lab, "/")
			require.NoError(t, err)
			seen[strings.Split(got, ":")[0]] = true
		}
		assert.True(t, seen[lab.Servers[2].Name], "the new backend serves: %v", seen)

		// Bad: rejected, the running configuration stays.
		bad := strings.Replace(labConfig(lab, []int{0}, ""), "protocol: tcp", "protocol: sctp", 1)
		require.NoError(t, os.WriteFile(d.config, []byte(bad), 0o644))
		require.NoError(t, d.cmd.Process.Signal(syscall.SIGHUP))
		d.waitMetric(`dsrlb_config_reloads_total{result="failed"}`, 1)
		assert.Contains(t, d.logs.String(), "services[0].protocol")
		seen = map[string]bool{}
		for range 60 {
			got, err := fetchVIP(lab, "/")
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
	})

	t.Run("status page in a browser", func(t *testing.T) {
		if _, err := exec.LookPath("chromium"); err != nil {
			if os.Getenv("CI") == "true" {
				t.Fatal("chromium is not installed (scripts/install-deps.sh installs it)")
			}
			t.Skip("chromium is not installed")
		}
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		defer cancel()
		profile := t.TempDir()
		cmd := lab.Balancer.Command(ctx, "chromium", "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
			"--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync",
			"--user-data-dir="+profile, "--virtual-time-budget=2000", "--dump-dom", "http://127.0.0.1:9180/")
		var out, errOut bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &errOut
		require.NoError(t, cmd.Run(), "chromium: %s", errOut.String())
		dom := out.String()
		assert.Contains(t, dom, "<h1>dsrlb on eth0</h1>")
		assert.Contains(t, dom, `class="service" data-key="192.0.2.100:80/tcp"`)
		for _, i := range []int{0, 1, 2} {
			assert.Contains(t, dom, `data-addr="`+lab.Servers[i].IP.String()+`"`)
		}
		assert.Contains(t, dom, lab.Servers[0].MAC.String(), "resolved MACs are shown")
		assert.Contains(t, dom, ">passing<")
		assert.NotContains(t, dom, "failing")
	})

	t.Run("drain on SIGTERM", func(t *testing.T) {
		var ok, failed atomic.Int64
		stop := make(chan struct{})
		var wg sync.WaitGroup
		for range 4 {
			wg.Go(func() {
				for {
					select {
					case <-stop:
						return
					default:
					}
					if _, err := fetchVIP(lab, "/bytes?n=200000"); err != nil {
						failed.Add(1)
						t.Logf("request failed: %v", err)
					} else {
						ok.Add(1)
					}
				}
			})
		}
		// Let traffic flow, then ask the daemon to stop while it runs.
		for ok.Load() < 20 {
			select {
			case err := <-d.done:
				t.Fatalf("daemon exited early: %v", err)
			case <-time.After(20 * time.Millisecond):
			}
		}
		require.NoError(t, d.cmd.Process.Signal(syscall.SIGTERM))
		for n := ok.Load(); ok.Load() < n+20; {
			time.Sleep(20 * time.Millisecond)
		}
		close(stop)
		wg.Wait()
		select {
		case err := <-d.done:
			require.NoError(t, err, "the daemon exits cleanly after draining")
		case <-time.After(30 * time.Second):
			t.Fatal("the daemon did not stop after draining")
		}
		assert.Zero(t, failed.Load(), "no request failed during the drain (%d succeeded)", ok.Load())
		assert.Contains(t, d.logs.String(), "drained")
	})
}

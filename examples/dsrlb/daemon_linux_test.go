package main

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dsrlb/dsrlb/health"
	"github.com/dsrlb/dsrlb/internal/netlab"
)

// runningDaemon is the dsrlb binary running inside a lab's balancer
// namespace.
type runningDaemon struct {
	t      testing.TB
	lab    *netlab.Lab
	cmd    *exec.Cmd
	logs   *syncBuffer
	config string
	done   chan error
	// host is the namespace the daemon runs in; nil means lab.Balancer.
	host *netlab.Host
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

func buildDaemon(t testing.TB) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "dsrlb")
	out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput()
	require.NoError(t, err, "go build: %s", out)
	return bin
}

func labConfig(lab *netlab.Lab, servers []int, extra string) string {
	addrs := make([]netip.Addr, len(servers))
	for k, i := range servers {
		addrs[k] = lab.Servers[i].IP
	}
	return serviceConfig(lab, lab.VIPs[0], addrs, extra)
}

// serviceConfig is a daemon configuration with one service "web" on
// vip:80 over backends, checked with a tcp and the DSR-path check.
func serviceConfig(lab *netlab.Lab, vip netip.Addr, backends []netip.Addr, extra string) string {
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
`, lab.Balancer.Link, vip)
	for _, a := range backends {
		fmt.Fprintf(&b, "      - addr: %s\n", a)
	}
	b.WriteString(extra)
	return b.String()
}

// launchDaemon writes config to a file and starts the daemon binary on
// host h (nil: the lab's balancer) with it and args; the daemon is killed
// at the end of the test, and its output logged if the test failed.
func launchDaemon(t testing.TB, lab *netlab.Lab, h *netlab.Host, bin, config string, args ...string) *runningDaemon {
	t.Helper()
	if h == nil {
		h = lab.Balancer
	}
	path := filepath.Join(t.TempDir(), "dsrlb.yaml")
	require.NoError(t, os.WriteFile(path, []byte(config), 0o644))
	d := &runningDaemon{t: t, lab: lab, logs: &syncBuffer{}, config: path, done: make(chan error, 1), host: h}
	d.cmd = h.Command(context.Background(), bin, append([]string{"-config", path, "-log-level", "info"}, args...)...)
	d.cmd.Stdout, d.cmd.Stderr = d.logs, d.logs
	require.NoError(t, d.cmd.Start())
	go func() { d.done <- d.cmd.Wait() }()
	t.Cleanup(func() {
		if d.cmd.ProcessState == nil {
			_ = d.cmd.Process.Kill()
			<-d.done
		}
		if t.Failed() {
			t.Logf("daemon on %s output:\n%s", h.Name, d.logs.String())
		}
	})
	return d
}

func startDaemon(t *testing.T, lab *netlab.Lab, bin, config string) *runningDaemon {
	t.Helper()
	d := launchDaemon(t, lab, nil, bin, config)
	// Ready when the first backend is resolved and healthy.
	first := backendAddrs(config)[0]
	d.waitMetric(`dsrlb_backend_resolved{backend="`+first+`",service="web"}`, 1)
	d.waitMetric(`dsrlb_backend_healthy{backend="`+first+`",service="web"}`, 1)
	return d
}

// backendAddrs returns the backend addresses of a config built by
// labConfig or labConfig6, in order.
func backendAddrs(config string) []string {
	var out []string
	for _, line := range strings.Split(config, "\n") {
		if a, ok := strings.CutPrefix(strings.TrimSpace(line), "- addr: "); ok {
			out = append(out, a)
		}
	}
	return out
}

func (d *runningDaemon) get(path string) (string, error) {
	h := d.lab.Balancer
	if d.host != nil {
		h = d.host
	}
	hc := h.HTTPClient()
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
	d.waitFor(fmt.Sprintf("%s = %v", series, want), 20*time.Second, func() bool {
		v, ok := d.metric(series)
		return ok && v == want
	})
}

// waitFor polls cond every 50ms until it holds, failing the test after
// timeout or when the daemon exits.
func (d *runningDaemon) waitFor(what string, timeout time.Duration, cond func() bool) {
	d.t.Helper()
	waitFor(d.t, what, timeout, d.done, cond)
}

// waitFor polls cond every 50ms until it holds; it fails t after timeout,
// or when exited delivers (a process that ended early).
func waitFor(t testing.TB, what string, timeout time.Duration, exited <-chan error, cond func() bool) {
	t.Helper()
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		select {
		case err := <-exited:
			t.Fatalf("waiting for %s: the daemon exited: %v", what, err)
		case <-deadline.C:
			t.Fatalf("waiting for %s: not within %v", what, timeout)
		case <-tick.C:
		}
	}
}

var chartPointsRe = regexp.MustCompile(`data-points="([0-9]+)"`)

// chartPoints returns the number of points of the first graph of a page
// (the first service's packet rate).
func chartPoints(page string) int {
	m := chartPointsRe.FindStringSubmatch(page)
	if m == nil {
		return 0
	}
	n, _ := strconv.Atoi(m[1])
	return n
}

// chromium runs headless Chromium in the balancer's namespace on the status
// page with args (--dump-dom, --screenshot=…) and returns its output.
func chromium(t *testing.T, lab *netlab.Lab, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	base := []string{"--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
		"--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync",
		"--user-data-dir=" + t.TempDir(), "--virtual-time-budget=2000"}
	cmd := lab.Balancer.Command(ctx, "chromium", append(append(base, args...), "http://127.0.0.1:9180/")...)
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	require.NoError(t, cmd.Run(), "chromium: %s", errOut.String())
	return out.String()
}

func fetchVIP(lab *netlab.Lab, path string) (string, error) {
	return fetchFrom(lab, lab.VIPs[0], path)
}

// fetchFrom GETs path from vip:80 on a new connection from the first client
// and returns "backend:length".
func fetchFrom(lab *netlab.Lab, vip netip.Addr, path string) (string, error) {
	tr := &http.Transport{DialContext: lab.Clients[0].DialContext, DisableKeepAlives: true}
	defer tr.CloseIdleConnections()
	hc := &http.Client{Transport: tr, Timeout: 5 * time.Second}
	r, err := hc.Get("http://" + netip.AddrPortFrom(vip, 80).String() + path)
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
		assert.Contains(t, d.logs.String(), fmt.Sprintf("%s:%d: services[0].protocol: ", d.config, lineOfText(t, bad, "protocol: sctp")))

		// Bad: checks that cannot probe the service, refused at the
		// check's line. A tcp check has no port on an all-ports service;
		// the DSR-path check on an IPv6 VIP, while it supports IPv4 only.
		impossible := []struct{ replace, with, check string }{
			{"    port: 80\n", "    port: 0\n", "- type: tcp"},
		}
		if health.SupportOf(offlineDSRChecker).Validate(health.Target{Addr: lab.Servers[0].IP, VIP: netip.MustParseAddr("2001:db8:0:1::100"), Port: 80}) != nil {
			impossible = append(impossible, struct{ replace, with, check string }{"vip: " + lab.VIPs[0].String(), "vip: 2001:db8:0:1::100", "- type: dsr"})
		}
		failed := 1.0
		for _, c := range impossible {
			bad := strings.Replace(labConfig(lab, []int{0}, ""), c.replace, c.with, 1)
			require.NotEqual(t, labConfig(lab, []int{0}, ""), bad)
			require.NoError(t, os.WriteFile(d.config, []byte(bad), 0o644))
			require.NoError(t, d.cmd.Process.Signal(syscall.SIGHUP))
			failed++
			d.waitMetric(`dsrlb_config_reloads_total{result="failed"}`, failed)
			field := "services[0].checks[0]"
			if c.check == "- type: dsr" {
				field = "services[0].checks[1]"
			}
			assert.Contains(t, d.logs.String(), fmt.Sprintf("%s:%d: %s: ", d.config, lineOfText(t, bad, c.check), field))
		}
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
		// One backend down, so the page has a degraded banner and a
		// backend-down event with its reason.
		down := lab.Servers[2]
		require.NoError(t, lab.StopServer(2))
		d.waitMetric(`dsrlb_backend_healthy{backend="`+down.IP.String()+`",service="web"}`, 0)

		// Real traffic while the page is loaded, bounded in count and time.
		stop := make(chan struct{})
		var wg sync.WaitGroup
		var served atomic.Int64
		wg.Go(func() {
			end := time.Now().Add(60 * time.Second)
			for range 5000 {
				select {
				case <-stop:
					return
				default:
				}
				if time.Now().After(end) {
					return
				}
				if _, err := fetchVIP(lab, "/bytes?n=50000"); err == nil {
					served.Add(1)
				}
			}
		})
		defer func() {
			close(stop)
			wg.Wait()
		}()
		// The graphs draw one point a second: wait for a few with traffic.
		d.waitFor("the service graph to have points with traffic", 30*time.Second, func() bool {
			page, err := d.get("/")
			return err == nil && served.Load() > 0 && chartPoints(page) >= 4
		})

		dom := chromium(t, lab, "--dump-dom")
		assert.Contains(t, dom, "<h1>dsrlb on eth0</h1>")
		assert.Contains(t, dom, `class="service" data-key="192.0.2.100:80/tcp"`)
		for _, i := range []int{0, 1, 2} {
			assert.Contains(t, dom, `data-addr="`+lab.Servers[i].IP.String()+`"`)
		}
		assert.Contains(t, dom, lab.Servers[0].MAC.String(), "resolved MACs are shown")
		assert.Contains(t, dom, ">passing<")
		assert.Contains(t, dom, `<div class="banner warn" data-level="warn">Degraded: 2 of 3 healthy</div>`)
		assert.Contains(t, dom, `<td class="weight">1</td>`, "weights are shown")
		assert.Contains(t, dom, `<span class="checks">tcp, dsr</span>`)
		assert.Regexp(t, `<td class="l bad">failing: [^<]+</td>`, dom, "the failing backend says why")
		assert.Regexp(t, `<td class="l reason">check failed: [^<]+</td>`, dom, "its last change has a reason")
		for _, kind := range []string{"backend-down", "reloaded", "reload-rejected", "mac-resolved"} {
			assert.Contains(t, dom, `<td class="l kind">`+kind+`</td>`, "the events list has %s", kind)
		}
		assert.Contains(t, dom, "answered and announced by this balancer", "VIP ownership")
		assert.Regexp(t, `version <b>[^<]+</b>`, dom)
		assert.Contains(t, dom, d.config, "the configuration path")
		assert.Regexp(t, `up <b id="uptime">[0-9]+[smhd]`, dom)
		assert.Regexp(t, `[0-9.]+ (k|M)?pps`, dom, "rates in human units")
		assert.Regexp(t, `[0-9.]+ (KiB|MiB|GiB)`, dom, "bytes in binary units")
		assert.GreaterOrEqual(t, chartPoints(dom), 4, "the service graph has data points")
		assert.Contains(t, dom, `<polyline class="line" points="`)
		assert.NotContains(t, dom, "<script", "the page needs no script")
		assert.NotRegexp(t, `(src|href)="https?:`, dom, "and no external asset")

		dir := os.Getenv("DSRLB_TEST_ARTIFACTS")
		if dir == "" {
			dir = t.TempDir()
		}
		require.NoError(t, os.MkdirAll(dir, 0o755))
		shot := filepath.Join(dir, "dsrlb-status.png")
		_ = os.Remove(shot)
		chromium(t, lab, "--window-size=1400,1500", "--hide-scrollbars", "--screenshot="+shot)
		fi, err := os.Stat(shot)
		require.NoError(t, err, "the screenshot is written")
		assert.Positive(t, fi.Size())
		t.Logf("status page screenshot: %s", shot)

		require.NoError(t, lab.StartServer(2))
		d.waitMetric(`dsrlb_backend_healthy{backend="`+down.IP.String()+`",service="web"}`, 1)
	})

	t.Run("metrics pass promtool during traffic", func(t *testing.T) {
		page, err := d.get("/metrics")
		require.NoError(t, err)
		promtoolCheck(t, page)
		for _, series := range []string{"dsrlb_arp_replies_total", "dsrlb_arp_resolve_requests_total", "dsrlb_arp_announcements_total"} {
			v, ok := sampleValue(page, series)
			require.True(t, ok, series)
			assert.Positive(t, v, "%s counts the speaker's work", series)
		}
		v, ok := sampleValue(page, `dsrlb_health_events_total{backend="`+lab.Servers[2].IP.String()+`",result="down",service="web"}`)
		require.True(t, ok)
		assert.GreaterOrEqual(t, v, 1.0, "the stopped backend's down event is counted with its service")
		v, ok = sampleValue(page, "dsrlb_arp_enabled")
		require.True(t, ok)
		assert.Equal(t, 1.0, v)
	})

	t.Run("drain on SIGTERM", func(t *testing.T) {
		var ok, failed atomic.Int64
		stop := make(chan struct{})
		var wg sync.WaitGroup
		for range 4 {
			wg.Go(func() {
				// Bounded in count and time even if stop never comes.
				end := time.Now().Add(90 * time.Second)
				for range 2000 {
					select {
					case <-stop:
						return
					default:
					}
					if time.Now().After(end) {
						return
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
		d.waitFor("20 requests before SIGTERM", 30*time.Second, func() bool { return ok.Load() >= 20 })
		require.NoError(t, d.cmd.Process.Signal(syscall.SIGTERM))
		n := ok.Load()
		waitFor(t, "20 requests during the drain", 30*time.Second, nil, func() bool { return ok.Load() >= n+20 })
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

package main

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dsrlb/dsrlb/arp"
	"github.com/dsrlb/dsrlb/dsr"
)

// newTestDaemon is a daemon on a configuration without sockets: no
// forwarders, no speaker; enough for the metrics and the status page.
func newTestDaemon(t *testing.T, config string) *daemon {
	t.Helper()
	cfg, err := ParseConfig("test.yaml", []byte(config))
	require.NoError(t, err)
	d := &daemon{
		path: "test.yaml", log: slog.New(slog.DiscardHandler), cfg: cfg, started: time.Now(),
		healthEvents: map[healthKey]uint64{}, conflicts: map[netip.Addr]*conflictInfo{},
		marks: map[backendKey]stateMark{}, rates: newRateSampler(),
	}
	d.version, d.revision = buildVersion()
	bc := cfg.Balancer
	bc.OnEvent = d.onEvent
	d.b, err = dsr.New(&bc)
	require.NoError(t, err)
	require.NoError(t, d.b.SetServices(cfg.Services))
	return d
}

func scrape(t *testing.T, d *daemon) string {
	t.Helper()
	srv := httptest.NewServer(promhttp.HandlerFor(newRegistry(d), promhttp.HandlerOpts{}))
	defer srv.Close()
	resp, err := http.Get(srv.URL)
	require.NoError(t, err)
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, resp.StatusCode)
	return string(body)
}

// sampleValue returns the value of the sample line for series, and whether
// it is there.
func sampleValue(page, series string) (float64, bool) {
	sc := bufio.NewScanner(strings.NewReader(page))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), series+" "); ok {
			f, err := strconv.ParseFloat(v, 64)
			return f, err == nil
		}
	}
	return 0, false
}

// promtoolCheck lints an exposition with promtool: missing promtool fails
// under CI=true (scripts/install-deps.sh installs it) and skips elsewhere.
func promtoolCheck(t *testing.T, page string) {
	t.Helper()
	path, err := exec.LookPath("promtool")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("promtool is not installed (scripts/install-deps.sh installs the Debian package prometheus)")
		}
		t.Skip("promtool is not installed (Debian package prometheus; scripts/install-deps.sh)")
	}
	cmd := exec.Command(path, "check", "metrics")
	cmd.Stdin = strings.NewReader(page)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err = cmd.Run()
	var exit *exec.ExitError
	if errors.As(err, &exit) {
		t.Fatalf("promtool check metrics found problems:\n%s", out.String())
	}
	require.NoError(t, err, "promtool: %s", out.String())
}

func TestMetricsPresentFromStart(t *testing.T) {
	d := newTestDaemon(t, goodConfig)
	page := scrape(t, d)
	web, be := `service="web"`, `backend="192.0.2.20"`
	for _, series := range []string{
		`dsrlb_health_events_total{` + be + `,result="down",` + web + `}`,
		`dsrlb_health_events_total{` + be + `,result="up",` + web + `}`,
		`dsrlb_arp_conflicts_total{vip="192.0.2.100"}`,
		`dsrlb_arp_conflicts_total{vip="2001:db8::100"}`,
		`dsrlb_config_reloads_total{result="failed"}`,
		`dsrlb_drops_total{reason="no_backend"}`,
		`dsrlb_malformed_total{error="truncated"}`,
		`dsrlb_arp_replies_total`,
		`dsrlb_arp_announcements_total`,
		`dsrlb_arp_resolve_requests_total`,
		`dsrlb_arp_conflict_packets_total`,
		`dsrlb_arp_drops_total{reason="not_ours"}`,
		`dsrlb_arp_drops_total{reason="rate_limited"}`,
		`dsrlb_arp_socket_errors_total{op="read"}`,
		`dsrlb_backend_syn_retransmits_total{` + be + `,` + web + `}`,
	} {
		v, ok := sampleValue(page, series)
		if assert.True(t, ok, "%s is exported from the start", series) {
			assert.Zero(t, v, series)
		}
	}
	for series, want := range map[string]float64{
		// 192.0.2.20 is active with a static MAC and healthy until its
		// first check; 192.0.2.21 is draining.
		`dsrlb_service_healthy_backends{` + web + `}`:            1,
		`dsrlb_backend_weight{backend="192.0.2.21",` + web + `}`: 3,
		`dsrlb_backend_weight{` + be + `,` + web + `}`:           1,
		`dsrlb_service_min_healthy_backends{` + web + `}`:        0,
		`dsrlb_config_last_reload_successful`:                    1,
		`dsrlb_arp_enabled`:                                      0,
	} {
		v, ok := sampleValue(page, series)
		if assert.True(t, ok, series) {
			assert.Equal(t, want, v, series)
		}
	}
	for _, family := range []string{"go_goroutines", "go_memstats_heap_alloc_bytes", "process_cpu_seconds_total",
		"process_resident_memory_bytes", "dsrlb_build_info", "dsrlb_config_last_reload_timestamp_seconds"} {
		assert.Contains(t, page, "\n# TYPE "+family+" ", "%s is exported", family)
	}
	reasons := arp.DropReasons()
	require.NotEmpty(t, reasons)
	for _, r := range reasons {
		assert.Contains(t, page, `dsrlb_arp_drops_total{reason="`+r.String()+`"} 0`)
	}
	assert.Equal(t, arp.DropReason(1), reasons[0])
	promtoolCheck(t, page)
}

func TestHealthEventsCarryTheService(t *testing.T) {
	// One backend in two services: its health changes count per service.
	cfg := `interface: eth0
services:
  - name: web
    vip: 192.0.2.100
    protocol: tcp
    port: 80
    backends: [{addr: 192.0.2.20}]
  - name: api
    vip: 192.0.2.100
    protocol: tcp
    port: 443
    backends: [{addr: 192.0.2.20}]
`
	d := newTestDaemon(t, cfg)
	web, api := d.cfg.Services[0].Key(), d.cfg.Services[1].Key()
	addr := netip.MustParseAddr("192.0.2.20")
	d.onEvent(dsr.Event{Kind: dsr.EventBackendDown, Service: web, Backend: addr, At: time.Now(), Reason: errors.New("connection refused")})
	d.onEvent(dsr.Event{Kind: dsr.EventBackendDown, Service: web, Backend: addr, At: time.Now()})
	d.onEvent(dsr.Event{Kind: dsr.EventBackendUp, Service: api, Backend: addr, At: time.Now()})
	page := scrape(t, d)
	for series, want := range map[string]float64{
		`dsrlb_health_events_total{backend="192.0.2.20",result="down",service="web"}`: 2,
		`dsrlb_health_events_total{backend="192.0.2.20",result="up",service="web"}`:   0,
		`dsrlb_health_events_total{backend="192.0.2.20",result="down",service="api"}`: 0,
		`dsrlb_health_events_total{backend="192.0.2.20",result="up",service="api"}`:   1,
	} {
		v, ok := sampleValue(page, series)
		if assert.True(t, ok, series) {
			assert.Equal(t, want, v, series)
		}
	}
	promtoolCheck(t, page)
}

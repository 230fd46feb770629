package main

import (
	"errors"
	"io"
	"net"
	"net/http/httptest"
	"net/netip"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dsrlb/dsrlb/dsr"
)

func renderStatus(t *testing.T, d *daemon) string {
	t.Helper()
	rec := httptest.NewRecorder()
	d.statusPage(rec, httptest.NewRequest("GET", "/", nil))
	body, err := io.ReadAll(rec.Result().Body)
	require.NoError(t, err)
	assert.Equal(t, "text/html; charset=utf-8", rec.Result().Header.Get("Content-Type"))
	return string(body)
}

func TestStatusPageWithoutTraffic(t *testing.T) {
	d := newTestDaemon(t, goodConfig)
	page := renderStatus(t, d)
	assert.Contains(t, page, `<div class="banner ok" data-level="ok">All healthy: 1 of 1 · 1 draining</div>`)
	assert.Contains(t, page, `<div class="banner bad" data-level="bad">Down: no backends configured; traffic is dropped</div>`)
	assert.Contains(t, page, `<td class="weight">3</td>`)
	assert.Contains(t, page, `<span class="checks">tcp, http</span>`)
	assert.Contains(t, page, "no data yet", "graphs say when they have nothing to draw")
	assert.Contains(t, page, `<p id="events">None since start.</p>`)
	assert.Contains(t, page, "not answered here (arp.disabled)", "VIP ownership without a speaker")
	assert.Contains(t, page, "version <b>"+d.version+"</b>")
	assert.Contains(t, page, "none since start")
}

func TestStatusPageGraphsEventsAndEscaping(t *testing.T) {
	cfg := strings.Replace(goodConfig, "name: web", `name: "<script>alert(1)</script>"`, 1)
	d := newTestDaemon(t, cfg)
	key := d.cfg.Services[0].Key()
	addr := d.cfg.Services[0].Backends[0].Addr

	// Synthetic counters: n samples a second apart, 1000 packets of 1500
	// bytes per second to one backend.
	const n = 30
	at := time.Now().Add(-n * time.Second)
	for i := range n {
		st := d.b.Stats()
		st.Services[0].Packets, st.Services[0].Bytes = uint64(i)*1000, uint64(i)*1500*1000
		st.Services[0].Backends[0].Packets, st.Services[0].Backends[0].Bytes = uint64(i)*1000, uint64(i)*1500*1000
		d.rates.sample(st, at.Add(time.Duration(i)*time.Second))
	}
	cur, hist := d.rates.get(rateKey{svc: key})
	require.Len(t, hist, n-1, "one rate per pair of samples")
	assert.InDelta(t, 1000, cur.PPS, 1e-6)
	assert.InDelta(t, 8*1500*1000, cur.BPS, 1e-3)

	d.onEvent(dsr.Event{Kind: dsr.EventBackendDown, Service: key, Backend: addr, At: time.Now(), Reason: errors.New(`refused <b>&"`)})
	d.onEvent(dsr.Event{Kind: dsr.EventVIPConflict, VIP: key.VIP, MAC: net.HardwareAddr{2, 0, 0, 0, 0, 0x99}, At: time.Now()})
	page := renderStatus(t, d)

	assert.NotContains(t, page, "<script>alert(1)</script>", "names are escaped")
	assert.Contains(t, page, "&lt;script&gt;alert(1)&lt;/script&gt;")
	assert.NotContains(t, page, `refused <b>&"`, "reasons are escaped")
	assert.Contains(t, page, "refused &lt;b&gt;&amp;&#34;")

	m := regexp.MustCompile(`data-points="([0-9]+)"[^>]*><polygon class="area" points="[^"]+"/><polyline class="line" points="([^"]+)"/>`).FindStringSubmatch(page)
	require.NotNil(t, m, "the first graph is drawn")
	assert.Equal(t, strconv.Itoa(n-1), m[1])
	assert.Len(t, strings.Fields(m[2]), n-1, "one point per rate")
	assert.Contains(t, page, "max "+humanRate(1000, "pps"))
	assert.Contains(t, page, "max "+humanRate(8*1500*1000, "bps"))
	assert.Contains(t, page, "now <b>"+humanRate(1000, "pps")+"</b>")

	assert.Contains(t, page, `<td class="l kind">backend-down</td>`)
	assert.Contains(t, page, `<td class="l kind">vip-conflict</td>`)
	assert.Contains(t, page, "claimed by 02:00:00:00:00:99")
	assert.Contains(t, page, "CONTESTED", "a recent conflict marks the VIP contested")
}

func TestEventRingIsBounded(t *testing.T) {
	var r eventRing
	for i := range maxEvents + 7 {
		r.add(recentEvent{Kind: strconv.Itoa(i)})
	}
	got := r.newestFirst()
	require.Len(t, got, maxEvents)
	assert.Equal(t, strconv.Itoa(maxEvents+6), got[0].Kind, "newest first")
	assert.Equal(t, "7", got[len(got)-1].Kind, "the oldest are overwritten")
}

func TestServiceBanner(t *testing.T) {
	mac := net.HardwareAddr{2, 0, 0, 0, 0, 1}
	be := func(healthy bool, state dsr.BackendState) dsr.BackendStats {
		return dsr.BackendStats{Addr: netip.MustParseAddr("192.0.2.20"), MAC: mac, Healthy: healthy, State: state}
	}
	cases := []struct {
		name     string
		backends []dsr.BackendStats
		conf     dsr.Service
		level    string
		prefix   string
	}{
		{"all healthy", []dsr.BackendStats{be(true, dsr.BackendActive), be(true, dsr.BackendActive)}, dsr.Service{}, "ok", "All healthy: 2 of 2"},
		{"degraded", []dsr.BackendStats{be(true, dsr.BackendActive), be(false, dsr.BackendActive)}, dsr.Service{}, "warn", "Degraded: 1 of 2 healthy"},
		{"below min_healthy", []dsr.BackendStats{be(true, dsr.BackendActive), be(false, dsr.BackendActive)}, dsr.Service{MinHealthy: 2}, "bad", "Below min_healthy: 1 of 2 healthy, min_healthy 2"},
		{"down", []dsr.BackendStats{be(false, dsr.BackendActive)}, dsr.Service{}, "bad", "Down: no healthy backend of 1; new flows are dropped"},
		{"down, fail open", []dsr.BackendStats{be(false, dsr.BackendActive)}, dsr.Service{FailOpen: true}, "bad", "Down: no healthy backend of 1; fail_open"},
		{"only draining", []dsr.BackendStats{be(true, dsr.BackendDraining)}, dsr.Service{}, "bad", "Down: no healthy backend of 0"},
		{"unresolved counts as unhealthy", []dsr.BackendStats{be(true, dsr.BackendActive), {Healthy: true}}, dsr.Service{}, "warn", "Degraded: 1 of 2 healthy"},
		{"no backends", nil, dsr.Service{}, "bad", "Down: no backends configured"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			b := serviceBanner(dsr.ServiceStats{Backends: tc.backends}, tc.conf)
			assert.Equal(t, tc.level, b.Level)
			assert.True(t, strings.HasPrefix(b.Text, tc.prefix), "%q does not start with %q", b.Text, tc.prefix)
		})
	}
}

func TestHumanUnits(t *testing.T) {
	bytes := []struct {
		n    uint64
		want string
	}{
		{0, "0 B"}, {1023, "1023 B"}, {1024, "1 KiB"}, {1536, "1.50 KiB"}, {10 << 20, "10 MiB"},
		{3<<30 + 1<<29, "3.50 GiB"}, {5 << 40, "5 TiB"},
	}
	for _, tc := range bytes {
		assert.Equal(t, tc.want, humanBytes(tc.n), "%d bytes", tc.n)
	}
	rate := []struct {
		v    float64
		unit string
		want string
	}{
		{0, "pps", "0 pps"}, {999, "pps", "999 pps"}, {1650, "pps", "1.65 kpps"}, {12_500, "pps", "12.5 kpps"},
		{1.04e6, "bps", "1.04 Mbps"}, {2.5e9, "bps", "2.50 Gbps"},
	}
	for _, tc := range rate {
		assert.Equal(t, tc.want, humanRate(tc.v, tc.unit), "%v %s", tc.v, tc.unit)
	}
	assert.Equal(t, "9999", humanCount(9999))
	assert.Equal(t, "48.3 k", humanCount(48_300))
	durations := []struct {
		d    time.Duration
		want string
	}{
		{0, "0s"}, {59 * time.Second, "59s"}, {3*time.Minute + 7*time.Second, "3m07s"},
		{2*time.Hour + 5*time.Minute, "2h05m"}, {76 * time.Hour, "3d4h"}, {-time.Second, "0s"},
	}
	for _, tc := range durations {
		assert.Equal(t, tc.want, humanDuration(tc.d), "%v", tc.d)
	}
}

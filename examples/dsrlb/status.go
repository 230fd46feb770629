package main

import (
	"fmt"
	"html/template"
	"math"
	"net/http"
	"net/netip"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/dsrlb/dsrlb/bgp"
	"github.com/dsrlb/dsrlb/dsr"
	"github.com/dsrlb/dsrlb/vrrp"
)

// The status page is server-rendered HTML with inline CSS and SVG: no
// script and no external asset, so it works on an air-gapped host and in
// any browser. html/template escapes every value that comes from the
// configuration or the network (names, reasons, error texts).

type statusData struct {
	Interface, Now     string
	Version, Revision  string
	Uptime, Started    string
	ConfigPath         string
	DataPlane          string
	DataPlaneWhy       string
	Reload             string
	ReloadBad          bool
	Draining           bool
	Received           string
	Forwarded          string
	Flows, Capacity    string
	Drops              []dropRow
	DropTotal          string
	Services           []statusService
	VIPs               []vipRow
	ARP                string
	HA                 string
	HABad              bool
	BGP                *bgpStatus // nil without a bgp section
	Events             []eventRow
	EventsShown, Total int
}

type statusService struct {
	Name, Key, Scheduler, Checks string
	Banner                       banner
	Packets, Bytes, Flows        string
	Rescheduled                  uint64
	PPS, BPS                     string
	PPSChart, BPSChart           chart
	Backends                     []statusBackend
}

type banner struct {
	Level string // ok, warn, bad: the CSS class
	Text  string
}

type statusBackend struct {
	Addr, MAC, State, Health string
	Weight                   uint32
	Healthy                  bool
	Since, Reason            string
	Packets, Bytes           string
	Flows                    uint64
	Active                   int64
	PPS, BPS                 string
	Chart                    chart
}

type vipRow struct {
	VIP, Family, Services, Owner string
	OwnerOK                      bool
	Conflicts                    uint64
	LastConflict                 string
}

type bgpStatus struct {
	RouterID, AS string
	Peers        []bgpPeerRow
	Routes       []bgpRouteRow
}

type bgpPeerRow struct {
	Addr, AS, State, Since string
	Up                     bool
}

type bgpRouteRow struct {
	VIP, Prefix, State string
	Announced          bool
}

// bgpStatus reports the sessions and, for every VIP BGP may announce,
// whether its host route is announced.
func (d *daemon) bgpStatus(now time.Time) *bgpStatus {
	if d.bgp == nil {
		return nil
	}
	d.mu.Lock()
	cfg := d.cfg.BGP
	d.mu.Unlock()
	out := &bgpStatus{RouterID: cfg.RouterID.String(), AS: strconv.FormatUint(uint64(cfg.LocalAS), 10)}
	for _, p := range d.bgp.Peers() {
		r := bgpPeerRow{Addr: p.Addr.String(), AS: strconv.FormatUint(uint64(p.AS), 10), State: p.State, Up: p.Up}
		if !p.Since.IsZero() {
			r.Since = humanDuration(now.Sub(p.Since))
		}
		out.Peers = append(out.Peers, r)
	}
	announced := map[netip.Addr]bool{}
	for _, p := range d.bgp.Announced() {
		announced[p.Addr()] = true
	}
	for _, vip := range d.bgpVIPs() {
		pfx, _ := bgp.HostPrefix(vip)
		r := bgpRouteRow{VIP: vip.String(), Prefix: pfx.String(), Announced: announced[vip], State: "withdrawn: too few healthy backends"}
		if r.Announced {
			r.State = "announced"
		}
		if d.isDraining() {
			r.State = "withdrawn: draining"
		}
		out.Routes = append(out.Routes, r)
	}
	return out
}

func (d *daemon) isDraining() bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.draining
}

type eventRow struct {
	Ago, Clock, Kind, Subject, Detail, Severity string
}

type dropRow struct {
	Reason string
	Count  uint64
}

// shownEvents is how many of the kept events the page lists.
const shownEvents = 50

func (d *daemon) statusPage(w http.ResponseWriter, _ *http.Request) {
	now := time.Now()
	st := d.b.Stats()
	v := d.view()
	cfg := v.cfg
	data := statusData{
		Interface: cfg.File.Interface, Now: now.UTC().Format("2006-01-02 15:04:05 UTC"),
		Version: d.version, Revision: d.revision,
		Uptime: humanDuration(now.Sub(d.started)), Started: d.started.UTC().Format(time.RFC3339),
		ConfigPath: d.path, Draining: v.draining, DataPlane: d.plane, DataPlaneWhy: d.planeWhy,
		Received: humanCount(st.Received), Forwarded: humanCount(st.Forwarded),
		Flows: humanCount(uint64(st.Flows)), Capacity: humanCount(uint64(st.FlowCapacity)),
	}
	switch {
	case v.lastReload.At.IsZero():
		data.Reload = "none since start"
	case v.lastReload.OK:
		data.Reload = fmt.Sprintf("applied %s ago (%d ok, %d rejected)", humanDuration(now.Sub(v.lastReload.At)), v.reloadOK, v.reloadFailed)
	default:
		data.ReloadBad = true
		data.Reload = fmt.Sprintf("rejected %s ago, the running configuration stays: %s (%d ok, %d rejected)",
			humanDuration(now.Sub(v.lastReload.At)), v.lastReload.Err, v.reloadOK, v.reloadFailed)
	}
	var dropTotal uint64
	for _, r := range dsr.DropReasons() {
		if n := st.Drops[r]; n > 0 {
			data.Drops = append(data.Drops, dropRow{r.String(), n})
			dropTotal += n
		}
	}
	data.DropTotal = humanCount(dropTotal)
	sort.Slice(data.Drops, func(i, j int) bool { return data.Drops[i].Count > data.Drops[j].Count })

	checkTypes := map[dsr.ServiceKey]string{}
	for i, s := range cfg.Services {
		var types []string
		for _, c := range cfg.File.Services[i].Checks {
			t := c.Type
			if c.Port != 0 {
				t += " :" + strconv.Itoa(int(c.Port))
			}
			types = append(types, t)
		}
		checkTypes[s.Key()] = strings.Join(types, ", ")
	}
	vipServices := map[netip.Addr][]string{}
	for _, s := range st.Services {
		conf := v.configured[s.Key]
		name := v.name(s.Key)
		vipServices[s.Key.VIP] = append(vipServices[s.Key.VIP], name)
		sched := conf.Scheduler
		if sched == "" {
			sched = "mh"
		}
		checks := checkTypes[s.Key]
		if checks == "" {
			checks = "none"
		}
		cur, hist := d.rates.get(rateKey{svc: s.Key})
		ss := statusService{
			Name: name, Key: s.Key.String(), Scheduler: sched, Checks: checks,
			Banner:  serviceBanner(s, conf),
			Packets: humanCount(s.Packets), Bytes: humanBytes(s.Bytes), Flows: humanCount(s.Flows), Rescheduled: s.Rescheduled,
			PPS: humanRate(cur.PPS, "pps"), BPS: humanRate(cur.BPS, "bps"),
			PPSChart: newChart(hist, func(r rates) float64 { return r.PPS }, 300, 70, "pps", "packets per second"),
			BPSChart: newChart(hist, func(r rates) float64 { return r.BPS }, 300, 70, "bps", "bits per second"),
		}
		weights := map[netip.Addr]uint32{}
		for _, b := range conf.Backends {
			weights[b.Addr] = effectiveWeight(b.Weight)
		}
		for _, b := range s.Backends {
			h := "passing"
			if len(conf.Checks) == 0 {
				h = "not checked"
			}
			if !b.Healthy {
				h = "failing: " + b.HealthError
			}
			mac := "unresolved"
			if b.MAC != nil {
				mac = b.MAC.String()
			}
			m := v.marks[backendKey{svc: s.Key, addr: b.Addr}]
			since := "—"
			if !m.since.IsZero() {
				since = humanDuration(now.Sub(m.since))
			}
			cur, hist := d.rates.get(rateKey{svc: s.Key, addr: b.Addr})
			ss.Backends = append(ss.Backends, statusBackend{
				Addr: b.Addr.String(), MAC: mac, State: b.State.String(), Health: h, Healthy: b.Healthy,
				Weight: weights[b.Addr], Since: since, Reason: m.reason,
				Packets: humanCount(b.Packets), Bytes: humanBytes(b.Bytes), Flows: b.Flows, Active: b.ActiveFlows,
				PPS: humanRate(cur.PPS, "pps"), BPS: humanRate(cur.BPS, "bps"),
				Chart: newChart(hist, func(r rates) float64 { return r.PPS }, 120, 24, "pps", "packets per second"),
			})
		}
		data.Services = append(data.Services, ss)
	}

	data.VIPs, data.ARP = d.vipRows(vipServices, v, now)
	if v.ha.enabled {
		data.HA = fmt.Sprintf("VRRP %s (vrid %d, priority %d) for %s: %s · became master %d times · advertisements %d sent, %d received",
			strings.ToUpper(v.ha.state.String()), v.ha.vrid, v.ha.priority, humanDuration(now.Sub(v.ha.since)), v.ha.reason,
			v.ha.becameMaster, v.ha.sent, v.ha.received)
		data.HABad = v.ha.state == vrrp.Fault
	}
	data.BGP = d.bgpStatus(now)
	data.Total = len(v.events)
	for i, e := range v.events {
		if i == shownEvents {
			break
		}
		subject := ""
		if e.Service.VIP.IsValid() {
			subject = v.name(e.Service)
		}
		if e.Backend.IsValid() {
			subject = strings.TrimSpace(subject + " " + e.Backend.String())
		}
		if e.VIP.IsValid() {
			subject = strings.TrimSpace(subject + " VIP " + e.VIP.String())
		}
		data.Events = append(data.Events, eventRow{
			Ago: humanDuration(now.Sub(e.At)) + " ago", Clock: e.At.UTC().Format("15:04:05"),
			Kind: e.Kind, Subject: subject, Detail: e.Detail, Severity: e.Severity,
		})
	}
	data.EventsShown = len(data.Events)

	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	if err := statusTemplate.Execute(w, data); err != nil {
		d.log.Error("status page", "err", err)
	}
}

// vipRows describes who owns each VIP on the segment, and the speaker's
// counters in one line.
func (d *daemon) vipRows(services map[netip.Addr][]string, v *daemonView, now time.Time) ([]vipRow, string) {
	vips := make([]netip.Addr, 0, len(services))
	for vip := range services {
		vips = append(vips, vip)
	}
	sort.Slice(vips, func(i, j int) bool { return vips[i].Less(vips[j]) })
	var rows []vipRow
	for _, vip := range vips {
		r := vipRow{VIP: vip.String(), Family: "IPv4 (ARP)", Services: strings.Join(services[vip], ", ")}
		if vip.Is6() {
			r.Family = "IPv6 (NDP)"
		}
		switch {
		case d.speaker == nil:
			r.Owner = "not answered here (arp.disabled): another host must own it"
		case vip.Is6() && !d.speaker.NDP():
			r.Owner = "not answered: no neighbour discovery socket"
		case v.ha.enabled && v.ha.state != vrrp.Master:
			r.Owner, r.OwnerOK = "not answered here: VRRP "+v.ha.state.String()+", the master answers for it", true
		default:
			r.Owner, r.OwnerOK = "answered and announced by this balancer", true
		}
		if c, ok := v.conflicts[vip]; ok {
			r.Conflicts = c.count
			r.LastConflict = fmt.Sprintf("%s ago by %s", humanDuration(now.Sub(c.lastAt)), c.lastMAC)
			if c.backend.IsValid() {
				r.LastConflict += " (backend " + c.backend.String() + ")"
			}
			if now.Sub(c.lastAt) < 5*time.Minute {
				r.OwnerOK = false
				r.Owner = "CONTESTED: another host answers for it"
			}
		}
		rows = append(rows, r)
	}
	if d.speaker == nil {
		return rows, "ARP and neighbour discovery are disabled (arp.disabled)."
	}
	as := d.speaker.Stats()
	var drops uint64
	for _, n := range as.Drops {
		drops += n
	}
	ndp := "on"
	if !d.speaker.NDP() {
		ndp = "off"
	}
	return rows, fmt.Sprintf("Speaker MAC %s, neighbour discovery %s · %s replies · %s announcements · %s resolve requests · %s conflict probes · %s conflicting packets · %s frames ignored",
		d.speaker.HardwareAddr(), ndp, humanCount(as.Replies), humanCount(as.Announcements), humanCount(as.ResolveRequests),
		humanCount(as.ConflictProbes), humanCount(as.Conflicts), humanCount(drops))
}

// serviceBanner sums a service's health up in one line.
func serviceBanner(s dsr.ServiceStats, conf dsr.Service) banner {
	var active, healthy, draining, down int
	for _, b := range s.Backends {
		switch b.State {
		case dsr.BackendDraining:
			draining++
			continue
		case dsr.BackendDown:
			down++
			continue
		}
		active++
		if b.Healthy && b.MAC != nil {
			healthy++
		}
	}
	var extra []string
	if draining > 0 {
		extra = append(extra, fmt.Sprintf("%d draining", draining))
	}
	if down > 0 {
		extra = append(extra, fmt.Sprintf("%d set down", down))
	}
	tail := ""
	if len(extra) > 0 {
		tail = " · " + strings.Join(extra, " · ")
	}
	switch {
	case len(s.Backends) == 0:
		return banner{"bad", "Down: no backends configured; traffic is dropped"}
	case healthy == 0 && conf.FailOpen:
		return banner{"bad", fmt.Sprintf("Down: no healthy backend of %d; fail_open keeps the last healthy set%s", active, tail)}
	case healthy == 0:
		return banner{"bad", fmt.Sprintf("Down: no healthy backend of %d; new flows are dropped%s", active, tail)}
	case conf.MinHealthy > 0 && healthy < conf.MinHealthy:
		return banner{"bad", fmt.Sprintf("Below min_healthy: %d of %d healthy, min_healthy %d%s", healthy, active, conf.MinHealthy, tail)}
	case healthy < active:
		return banner{"warn", fmt.Sprintf("Degraded: %d of %d healthy%s", healthy, active, tail)}
	}
	return banner{"ok", fmt.Sprintf("All healthy: %d of %d%s", healthy, active, tail)}
}

// chart is a small line graph drawn as inline SVG.
type chart struct {
	W, H     int
	Line     string // polyline points
	Area     string // polygon points (the line closed to the baseline)
	Points   int
	Max      string
	Title    string
	Empty    bool
	Baseline int
}

// minChartSpan is the shortest time axis of a graph, in samples: a young
// history is drawn on a one-minute axis rather than squeezed into a corner
// of the five-minute one.
const minChartSpan = 60

// newChart draws the history hist (oldest first, one point a second) into
// a w×h box. The time axis spans the history, at least minChartSpan
// samples, so the graphs of one page line up.
func newChart(hist []rates, value func(rates) float64, w, h int, unit, title string) chart {
	span := max(len(hist), minChartSpan)
	c := chart{W: w, H: h, Baseline: h - 1, Points: len(hist), Title: title + ", last " + humanDuration(time.Duration(span)*time.Second)}
	if len(hist) < 2 {
		c.Empty = true
		c.Max = "no data yet"
		return c
	}
	peak := 0.0
	for _, r := range hist {
		peak = math.Max(peak, value(r))
	}
	c.Max = "max " + humanRate(peak, unit)
	if peak == 0 {
		peak = 1
	}
	top := 2.0 // room for the line's width
	height := float64(h-1) - top
	var line strings.Builder
	start := span - len(hist)
	firstX := 0.0
	lastX := 0.0
	for i, r := range hist {
		x := float64(start+i) * float64(w-1) / float64(span-1)
		y := float64(h-1) - value(r)/peak*height
		if i == 0 {
			firstX = x
		} else {
			line.WriteByte(' ')
		}
		lastX = x
		line.WriteString(strconv.FormatFloat(x, 'f', 1, 64) + "," + strconv.FormatFloat(y, 'f', 1, 64))
	}
	c.Line = line.String()
	c.Area = fmt.Sprintf("%.1f,%d %s %.1f,%d", firstX, h-1, c.Line, lastX, h-1)
	return c
}

// humanBytes formats a byte count with binary units (KiB, MiB, GiB, TiB).
func humanBytes(n uint64) string {
	if n < 1024 {
		return strconv.FormatUint(n, 10) + " B"
	}
	v := float64(n)
	units := []string{"B", "KiB", "MiB", "GiB", "TiB", "PiB"}
	i := 0
	for v >= 1024 && i < len(units)-1 {
		v /= 1024
		i++
	}
	return formatFloat(v) + " " + units[i]
}

// humanCount formats a count: exact below 10000, else with a k/M/G suffix.
func humanCount(n uint64) string {
	if n < 10000 {
		return strconv.FormatUint(n, 10)
	}
	return siPrefix(float64(n), "")
}

// humanRate formats a rate with an SI prefix before unit: "12.5 kpps",
// "3.2 Mbps".
func humanRate(v float64, unit string) string {
	return siPrefix(v, unit)
}

func siPrefix(v float64, unit string) string {
	prefixes := []string{"", "k", "M", "G", "T"}
	i := 0
	for v >= 1000 && i < len(prefixes)-1 {
		v /= 1000
		i++
	}
	return strings.TrimSpace(formatFloat(v) + " " + prefixes[i] + unit)
}

// formatFloat keeps three significant digits: 1.23, 12.3, 123.
func formatFloat(v float64) string {
	switch {
	case v >= 100 || v == math.Trunc(v):
		return strconv.FormatFloat(v, 'f', 0, 64)
	case v >= 10:
		return strconv.FormatFloat(v, 'f', 1, 64)
	}
	return strconv.FormatFloat(v, 'f', 2, 64)
}

// humanDuration formats a duration to the second, in at most two units:
// "45s", "3m12s", "2h05m", "3d4h".
func humanDuration(d time.Duration) string {
	s := int64(d.Round(time.Second) / time.Second)
	switch {
	case s < 0:
		return "0s"
	case s < 60:
		return fmt.Sprintf("%ds", s)
	case s < 3600:
		return fmt.Sprintf("%dm%02ds", s/60, s%60)
	case s < 86400:
		return fmt.Sprintf("%dh%02dm", s/3600, s%3600/60)
	}
	return fmt.Sprintf("%dd%dh", s/86400, s%86400/3600)
}

func plural(n int, what string) string {
	if n == 1 {
		return "1 " + what
	}
	return strconv.Itoa(n) + " " + what + "s"
}

var statusTemplate = template.Must(template.New("status").Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta http-equiv="refresh" content="5">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>dsrlb on {{.Interface}}</title>
<style>
body{font:14px/1.4 system-ui,sans-serif;margin:1.2em 1.5em;color:#1f2328;background:#fff}
h1{font-size:1.5em;margin:0 0 .2em}h2{font-size:1.2em;margin:1.4em 0 .3em}h2 small{font-weight:normal;color:#59636e}
table{border-collapse:collapse;margin:.4em 0 1em}
th,td{border:1px solid #d1d9e0;padding:.2em .55em;text-align:right;vertical-align:middle}
th{background:#f6f8fa;font-weight:600}td.l,th.l{text-align:left}
.meta{color:#59636e;margin:.1em 0}.meta b{color:#1f2328;font-weight:600}
.ok{color:#1a7f37;font-weight:600}.bad{color:#cf222e;font-weight:600}.warn{color:#9a6700;font-weight:600}
.banner{padding:.35em .7em;border-radius:4px;margin:.3em 0 .5em;font-weight:600;display:inline-block}
.banner.ok{background:#dafbe1;border:1px solid #4ac26b;color:#116329}
.banner.warn{background:#fff8c5;border:1px solid #d4a72c;color:#7d4e00}
.banner.bad{background:#ffebe9;border:1px solid #ff8182;color:#a40e26}
.draining{background:#fff8c5;padding:.4em .7em;border:1px solid #d4a72c;border-radius:4px}
.charts{display:flex;gap:1.5em;flex-wrap:wrap;margin:.3em 0}
figure{margin:0}figcaption{font-size:12px;color:#59636e}
svg.chart{background:#f6f8fa;border:1px solid #d1d9e0;display:block}
svg .line{fill:none;stroke:#0969da;stroke-width:1.5}svg .area{fill:#0969da;fill-opacity:.15;stroke:none}
svg .bits .line{stroke:#8250df}svg .bits .area{fill:#8250df}
svg text{font:11px system-ui,sans-serif;fill:#59636e}
tr.ev-bad td.kind{color:#cf222e;font-weight:600}tr.ev-ok td.kind{color:#1a7f37;font-weight:600}tr.ev-warn td.kind{color:#9a6700;font-weight:600}
td.reason{color:#59636e;max-width:28em}
</style></head><body>
<h1>dsrlb on {{.Interface}}</h1>
<p class="meta" id="build">version <b>{{.Version}}</b>{{if .Revision}} · revision <b>{{.Revision}}</b>{{end}} · up <b id="uptime">{{.Uptime}}</b> (since {{.Started}}) · {{.Now}}</p>
<p class="meta" id="dataplane">data plane <b>{{.DataPlane}}</b> <span title="{{.DataPlaneWhy}}">({{.DataPlaneWhy}})</span></p>
{{if .HA}}<p class="meta" id="ha"><span class="{{if .HABad}}bad{{end}}">{{.HA}}</span></p>
{{end}}<p class="meta" id="config">configuration <b>{{.ConfigPath}}</b> · last reload: <span id="reload" class="{{if .ReloadBad}}bad{{end}}">{{.Reload}}</span></p>
<p class="meta" id="summary">frames received <b>{{.Received}}</b> · forwarded <b>{{.Forwarded}}</b> · dropped <b>{{.DropTotal}}</b> · flows <b>{{.Flows}}</b> of {{.Capacity}}</p>
{{if .Draining}}<p class="draining" id="draining">Draining: finishing established flows before stopping.</p>{{end}}
{{range .Services}}
<section class="service" data-key="{{.Key}}">
<h2 class="service" data-key="{{.Key}}">{{.Name}} <small>{{.Key}} · scheduler {{.Scheduler}} · checks: <span class="checks">{{.Checks}}</span></small></h2>
<div class="banner {{.Banner.Level}}" data-level="{{.Banner.Level}}">{{.Banner.Text}}</div>
<p class="meta">{{.Packets}} packets · {{.Bytes}} · {{.Flows}} flows ({{.Rescheduled}} rescheduled) · now <b>{{.PPS}}</b>, <b>{{.BPS}}</b></p>
<div class="charts">
<figure>{{template "chart" .PPSChart}}<figcaption>{{.PPSChart.Title}} · {{.PPSChart.Max}}</figcaption></figure>
<figure class="bits">{{template "chart" .BPSChart}}<figcaption>{{.BPSChart.Title}} · {{.BPSChart.Max}}</figcaption></figure>
</div>
<table class="backends"><thead><tr><th class="l">backend</th><th class="l">MAC</th><th>weight</th><th class="l">state</th><th class="l">health</th><th class="l">for</th><th class="l">last change</th><th>packets</th><th>bytes</th><th>flows</th><th>active</th><th>rate</th><th class="l">packets/s</th></tr></thead><tbody>
{{range .Backends}}<tr class="backend" data-addr="{{.Addr}}"><td class="l">{{.Addr}}</td><td class="l">{{.MAC}}</td><td class="weight">{{.Weight}}</td><td class="l">{{.State}}</td><td class="l {{if .Healthy}}ok{{else}}bad{{end}}">{{.Health}}</td><td class="l since">{{.Since}}</td><td class="l reason">{{.Reason}}</td><td>{{.Packets}}</td><td>{{.Bytes}}</td><td>{{.Flows}}</td><td>{{.Active}}</td><td>{{.PPS}}<br>{{.BPS}}</td><td class="l">{{template "chart" .Chart}}</td></tr>
{{end}}</tbody></table>
</section>
{{else}}<p>No services configured.</p>{{end}}
<h2>VIP ownership</h2>
<table id="vips"><thead><tr><th class="l">VIP</th><th class="l">family</th><th class="l">services</th><th class="l">owner on the segment</th><th>conflicts</th><th class="l">last conflict</th></tr></thead><tbody>
{{range .VIPs}}<tr class="vip" data-vip="{{.VIP}}"><td class="l">{{.VIP}}</td><td class="l">{{.Family}}</td><td class="l">{{.Services}}</td><td class="l {{if .OwnerOK}}ok{{else}}bad{{end}}">{{.Owner}}</td><td>{{.Conflicts}}</td><td class="l">{{.LastConflict}}</td></tr>
{{end}}</tbody></table>
<p class="meta" id="arp">{{.ARP}}</p>
{{with .BGP}}<h2>BGP</h2>
<p class="meta">router id <b>{{.RouterID}}</b> · AS <b>{{.AS}}</b></p>
<table id="bgp-peers"><thead><tr><th class="l">peer</th><th>AS</th><th class="l">session</th><th class="l">for</th></tr></thead><tbody>
{{range .Peers}}<tr class="bgp-peer" data-peer="{{.Addr}}"><td class="l">{{.Addr}}</td><td>{{.AS}}</td><td class="l {{if .Up}}ok{{else}}bad{{end}}">{{.State}}</td><td class="l">{{.Since}}</td></tr>
{{end}}</tbody></table>
<table id="bgp-routes"><thead><tr><th class="l">VIP</th><th class="l">route</th><th class="l">state</th></tr></thead><tbody>
{{range .Routes}}<tr class="bgp-route" data-vip="{{.VIP}}"><td class="l">{{.VIP}}</td><td class="l">{{.Prefix}}</td><td class="l {{if .Announced}}ok{{else}}bad{{end}}">{{.State}}</td></tr>
{{end}}</tbody></table>{{end}}
<h2>Recent events</h2>
{{if .Events}}<table id="events"><thead><tr><th class="l">when</th><th class="l">event</th><th class="l">about</th><th class="l">detail</th></tr></thead><tbody>
{{range .Events}}<tr class="event ev-{{.Severity}}"><td class="l" title="{{.Clock}} UTC">{{.Ago}}</td><td class="l kind">{{.Kind}}</td><td class="l">{{.Subject}}</td><td class="l reason">{{.Detail}}</td></tr>
{{end}}</tbody></table>
<p class="meta">{{.EventsShown}} newest of {{.Total}} kept.</p>{{else}}<p id="events">None since start.</p>{{end}}
<p class="meta" id="explain-link"><a href="/explain?format=html">Explain a flow</a>: which backend a flow has or would get, and why.</p>
<h2>Drops</h2>
{{if .Drops}}<table id="drops"><thead><tr><th class="l">reason</th><th>frames</th></tr></thead><tbody>
{{range .Drops}}<tr><td class="l">{{.Reason}}</td><td>{{.Count}}</td></tr>{{end}}
</tbody></table>{{else}}<p id="drops">None.</p>{{end}}
</body></html>
{{define "chart"}}<svg class="chart" width="{{.W}}" height="{{.H}}" viewBox="0 0 {{.W}} {{.H}}" role="img" aria-label="{{.Title}}" data-points="{{.Points}}">{{if .Empty}}<text x="4" y="{{.Baseline}}" dy="-3">no data yet</text>{{else}}<polygon class="area" points="{{.Area}}"/><polyline class="line" points="{{.Line}}"/>{{end}}</svg>{{end}}
`))

package main

import (
	"context"
	"html/template"
	"net/http"
	"net/netip"
	"sort"
	"strconv"
	"sync"
	"time"

	"github.com/dsrlb/dsrlb/dsr"
)

// rateSampler turns the Balancer's counters into per-second rates for the
// status page, sampling once a second.
type rateSampler struct {
	b    *dsr.Balancer
	mu   sync.Mutex
	last map[rateKey]sample
	rate map[rateKey]rates
}

type rateKey struct {
	svc  dsr.ServiceKey
	addr netip.Addr // invalid for the service itself
}

type sample struct {
	at             time.Time
	packets, bytes uint64
}

type rates struct{ PPS, BPS float64 }

func newRateSampler(b *dsr.Balancer) *rateSampler {
	return &rateSampler{b: b, last: map[rateKey]sample{}, rate: map[rateKey]rates{}}
}

func (r *rateSampler) run(ctx context.Context) {
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-t.C:
			r.sample(now)
		}
	}
}

func (r *rateSampler) sample(now time.Time) {
	st := r.b.Stats()
	r.mu.Lock()
	defer r.mu.Unlock()
	next := map[rateKey]sample{}
	put := func(k rateKey, packets, bytes uint64) {
		s := sample{at: now, packets: packets, bytes: bytes}
		if prev, ok := r.last[k]; ok && now.After(prev.at) && packets >= prev.packets {
			dt := now.Sub(prev.at).Seconds()
			r.rate[k] = rates{PPS: float64(packets-prev.packets) / dt, BPS: 8 * float64(bytes-prev.bytes) / dt}
		}
		next[k] = s
	}
	for _, s := range st.Services {
		put(rateKey{svc: s.Key}, s.Packets, s.Bytes)
		for _, b := range s.Backends {
			put(rateKey{svc: s.Key, addr: b.Addr}, b.Packets, b.Bytes)
		}
	}
	r.last = next
}

func (r *rateSampler) get(k rateKey) rates {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.rate[k]
}

type statusBackend struct {
	Addr, MAC, State, Health string
	Healthy                  bool
	Packets, Bytes, Flows    uint64
	Active                   int64
	Rates                    rates
}

type statusService struct {
	Name, Key, Scheduler string
	Packets, Bytes       uint64
	Flows, Rescheduled   uint64
	Rates                rates
	Backends             []statusBackend
}

type statusData struct {
	Interface          string
	Now                string
	Draining           bool
	Received           uint64
	Forwarded          uint64
	Flows, Capacity    int
	Drops              []dropRow
	Services           []statusService
	ReloadOK, ReloadNo uint64
}

type dropRow struct {
	Reason string
	Count  uint64
}

func (d *daemon) statusPage(w http.ResponseWriter, _ *http.Request) {
	st := d.b.Stats()
	d.mu.Lock()
	cfg := d.cfg
	draining := d.draining
	d.mu.Unlock()
	data := statusData{
		Interface: cfg.File.Interface, Now: time.Now().UTC().Format(time.RFC3339), Draining: draining,
		Received: st.Received, Forwarded: st.Forwarded, Flows: st.Flows, Capacity: st.FlowCapacity,
	}
	data.ReloadOK, data.ReloadNo = d.reloadCounts()
	for _, r := range dsr.DropReasons() {
		if n := st.Drops[r]; n > 0 {
			data.Drops = append(data.Drops, dropRow{r.String(), n})
		}
	}
	sort.Slice(data.Drops, func(i, j int) bool { return data.Drops[i].Count > data.Drops[j].Count })
	configured := map[dsr.ServiceKey]dsr.Service{}
	for _, s := range d.b.Services() {
		configured[s.Key()] = s
	}
	for _, s := range st.Services {
		conf := configured[s.Key]
		sched := conf.Scheduler
		if sched == "" {
			sched = "mh"
		}
		ss := statusService{
			Name: cfg.Names[s.Key], Key: s.Key.String(), Scheduler: sched,
			Packets: s.Packets, Bytes: s.Bytes, Flows: s.Flows, Rescheduled: s.Rescheduled,
			Rates: d.rates.get(rateKey{svc: s.Key}),
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
			ss.Backends = append(ss.Backends, statusBackend{
				Addr: b.Addr.String(), MAC: mac, State: b.State.String(), Health: h, Healthy: b.Healthy,
				Packets: b.Packets, Bytes: b.Bytes, Flows: b.Flows, Active: b.ActiveFlows,
				Rates: d.rates.get(rateKey{svc: s.Key, addr: b.Addr}),
			})
		}
		data.Services = append(data.Services, ss)
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	if err := statusTemplate.Execute(w, data); err != nil {
		d.log.Error("status page", "err", err)
	}
}

var statusTemplate = template.Must(template.New("status").Funcs(template.FuncMap{
	"si": func(v float64) string {
		units := []string{"", "k", "M", "G", "T"}
		i := 0
		for v >= 1000 && i < len(units)-1 {
			v /= 1000
			i++
		}
		return template.HTMLEscapeString(formatFloat(v) + " " + units[i])
	},
}).Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta http-equiv="refresh" content="5">
<title>dsrlb status</title>
<style>
body{font:14px system-ui,sans-serif;margin:1.5em;color:#222}
table{border-collapse:collapse;margin:.5em 0 1.5em}
th,td{border:1px solid #ccc;padding:.25em .6em;text-align:right}
th{background:#f3f3f3}td.l,th.l{text-align:left}
.ok{color:#176c2e;font-weight:600}.bad{color:#b00020;font-weight:600}
.draining{background:#fff3cd;padding:.4em;border:1px solid #e0c060}
</style></head><body>
<h1>dsrlb on {{.Interface}}</h1>
<p id="summary">{{.Now}} · frames received {{.Received}} · forwarded {{.Forwarded}} · flows {{.Flows}} / {{.Capacity}} · reloads ok {{.ReloadOK}}, rejected {{.ReloadNo}}</p>
{{if .Draining}}<p class="draining" id="draining">Draining: finishing established flows before stopping.</p>{{end}}
{{range .Services}}
<h2 class="service" data-key="{{.Key}}">{{.Name}} <small>{{.Key}} · scheduler {{.Scheduler}}</small></h2>
<p>{{.Packets}} packets · {{.Bytes}} bytes · {{.Flows}} flows ({{.Rescheduled}} rescheduled) · {{si .Rates.PPS}}pkt/s · {{si .Rates.BPS}}bit/s</p>
<table class="backends"><thead><tr><th class="l">backend</th><th class="l">MAC</th><th class="l">state</th><th class="l">health</th><th>packets</th><th>bytes</th><th>flows</th><th>active</th><th>pkt/s</th><th>bit/s</th></tr></thead><tbody>
{{range .Backends}}<tr class="backend" data-addr="{{.Addr}}"><td class="l">{{.Addr}}</td><td class="l">{{.MAC}}</td><td class="l">{{.State}}</td><td class="l {{if .Healthy}}ok{{else}}bad{{end}}">{{.Health}}</td><td>{{.Packets}}</td><td>{{.Bytes}}</td><td>{{.Flows}}</td><td>{{.Active}}</td><td>{{si .Rates.PPS}}</td><td>{{si .Rates.BPS}}</td></tr>
{{end}}</tbody></table>
{{else}}<p>No services configured.</p>{{end}}
<h2>Drops</h2>
{{if .Drops}}<table id="drops"><thead><tr><th class="l">reason</th><th>frames</th></tr></thead><tbody>
{{range .Drops}}<tr><td class="l">{{.Reason}}</td><td>{{.Count}}</td></tr>{{end}}
</tbody></table>{{else}}<p id="drops">None.</p>{{end}}
</body></html>
`))

func formatFloat(v float64) string {
	if v >= 100 || v == float64(int64(v)) {
		return strconv.FormatFloat(v, 'f', 0, 64)
	}
	return strconv.FormatFloat(v, 'f', 1, 64)
}

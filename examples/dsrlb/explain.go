package main

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"html/template"
	"io"
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"strings"

	"github.com/dsrlb/dsrlb/dsr"
)

// explainUsage is the synopsis of the explain command.
const explainUsage = `usage: dsrlb explain [-config FILE] [-json] SRC:PORT DST:PORT/PROTO[@vlanN]

Says which service a flow from SRC:PORT to DST:PORT matches and which
backend it would get, and why, from the configuration file alone: every
backend counts as healthy, and backends without a configured MAC as resolved.
PROTO is tcp or udp; @vlanN says the flow arrives tagged with VLAN N (on a
trunk), and its absence that it arrives untagged. A running daemon answers the same question for its live
state (flow table, health, drains) on its status page and at
/explain?flow=SRC:PORT+DST:PORT/PROTO.`

// parseTuple reads "SRC:PORT DST:PORT/PROTO[@vlanN]" (IPv6 addresses in
// brackets).
func parseTuple(src, dst string) (dsr.Tuple, error) {
	var t dsr.Tuple
	s, err := netip.ParseAddrPort(src)
	if err != nil {
		return t, fmt.Errorf("source %q: want ADDR:PORT ([ADDR]:PORT for IPv6)", src)
	}
	d, proto, ok := strings.Cut(dst, "/")
	if !ok {
		return t, fmt.Errorf("destination %q: want ADDR:PORT/PROTO, PROTO tcp or udp", dst)
	}
	dp, err := netip.ParseAddrPort(d)
	if err != nil {
		return t, fmt.Errorf("destination %q: want ADDR:PORT/PROTO ([ADDR]:PORT/PROTO for IPv6)", dst)
	}
	if p, vlan, ok := strings.Cut(proto, "@vlan"); ok {
		n, err := strconv.ParseUint(vlan, 10, 16)
		if err != nil || n == 0 || n > dsr.MaxVLAN {
			return t, fmt.Errorf("destination %q: VLAN %q: want @vlanN with N in 1..%d", dst, vlan, dsr.MaxVLAN)
		}
		proto, t.VLAN = p, uint16(n)
	}
	switch strings.ToLower(proto) {
	case "tcp":
		t.Protocol = dsr.TCP
	case "udp":
		t.Protocol = dsr.UDP
	default:
		return t, fmt.Errorf("destination %q: protocol %q: want tcp or udp", dst, proto)
	}
	t.Src, t.Dst = s, dp
	return t, nil
}

// runExplain is "dsrlb explain": offline, from the configuration file.
func runExplain(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("dsrlb explain", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprintln(stderr, explainUsage); fs.PrintDefaults() }
	configPath := fs.String("config", defaultConfigPath, "configuration file")
	asJSON := fs.Bool("json", false, "print the explanation as JSON")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if fs.NArg() != 2 {
		fs.Usage()
		return 2
	}
	t, err := parseTuple(fs.Arg(0), fs.Arg(1))
	if err != nil {
		fmt.Fprintf(stderr, "dsrlb explain: %v\n", err)
		return 2
	}
	cfg, err := LoadConfig(*configPath)
	if err != nil {
		fmt.Fprintf(stderr, "dsrlb explain: %v\n", err)
		return 1
	}
	bc := cfg.Balancer
	b, err := dsr.New(&bc)
	if err != nil {
		fmt.Fprintf(stderr, "dsrlb explain: %v\n", err)
		return 1
	}
	services, unresolved := withPlaceholderMACs(cfg.Services)
	if err := b.SetServices(services); err != nil {
		fmt.Fprintf(stderr, "dsrlb explain: %s: %v\n", *configPath, err)
		return 1
	}
	e, err := b.ExplainFlow(t)
	if err != nil {
		fmt.Fprintf(stderr, "dsrlb explain: %v\n", err)
		return 2
	}
	if unresolved[e.Backend] {
		e.BackendMAC = nil
		e.Steps = append(e.Steps, fmt.Sprintf("(%s has no configured MAC: the daemon resolves it by ARP or neighbour discovery)", e.Backend))
	}
	writeExplanation(stdout, &e, *asJSON)
	if !e.Forward {
		return 1
	}
	return 0
}

// withPlaceholderMACs prepares services for an offline explanation, which
// describes the steady state: every backend without a configured MAC gets
// a locally administered stand-in derived from its address (so it counts
// as resolved), and slow start is left out (every backend would otherwise
// have just joined). It returns which backends got a stand-in MAC.
func withPlaceholderMACs(in []dsr.Service) ([]dsr.Service, map[netip.Addr]bool) {
	unresolved := map[netip.Addr]bool{}
	out := make([]dsr.Service, len(in))
	for i, s := range in {
		s.SlowStart = 0
		s.Backends = append([]dsr.Backend(nil), s.Backends...)
		for j := range s.Backends {
			be := &s.Backends[j]
			if be.MAC == nil {
				a := be.Addr.As16()
				be.MAC = net.HardwareAddr{0x02, 0xd5, a[12], a[13], a[14], a[15]}
				unresolved[be.Addr] = true
			}
		}
		out[i] = s
	}
	return out, unresolved
}

// explanationJSON is the JSON form of an explanation.
type explanationJSON struct {
	Flow       string   `json:"flow"`
	Forward    bool     `json:"forward"`
	Drop       string   `json:"drop,omitempty"`
	Why        string   `json:"why"`
	Service    string   `json:"service,omitempty"`
	Backend    string   `json:"backend,omitempty"`
	MAC        string   `json:"mac,omitempty"`
	Candidates []string `json:"candidates,omitempty"`
	Scheduler  string   `json:"scheduler,omitempty"`
	Slot       *int     `json:"slot,omitempty"`
	TableSize  int      `json:"table_size,omitempty"`
	Plan       uint64   `json:"plan_generation"`
	Table      uint64   `json:"scheduler_generation,omitempty"`
	FlowState  string   `json:"flow_state,omitempty"`
	VLAN       uint16   `json:"vlan,omitempty"`
	Steps      []string `json:"steps"`
	// L3 modes: how the frame travels, when forwarded encapsulated.
	Mode         string `json:"mode,omitempty"`
	TunnelSource string `json:"tunnel_source,omitempty"`
	TunnelDest   string `json:"tunnel_dest,omitempty"`
	NextHop      string `json:"next_hop,omitempty"`
	GUEPort      uint16 `json:"gue_port,omitempty"`
}

func writeExplanation(w io.Writer, e *dsr.Explanation, asJSON bool) {
	if !asJSON {
		fmt.Fprintln(w, e.String())
		return
	}
	j := explanationJSON{Flow: e.Tuple.String(), Forward: e.Forward, Why: e.Why.String(), Scheduler: e.Scheduler,
		Plan: e.PlanGeneration, Table: e.SchedulerGeneration, Steps: e.Steps, VLAN: e.Tuple.VLAN}
	if !e.Forward {
		j.Drop = e.Drop.String()
	}
	if e.HasService {
		j.Service = e.Service.String()
	}
	if e.Backend.IsValid() {
		j.Backend = e.Backend.String()
	}
	if e.BackendMAC != nil {
		j.MAC = e.BackendMAC.String()
	}
	if e.Forward {
		j.Mode = e.Mode.String()
	}
	if e.TunnelDest.IsValid() {
		j.TunnelSource, j.TunnelDest, j.NextHop, j.GUEPort = e.TunnelSource.String(), e.TunnelDest.String(), e.NextHop.String(), e.GUEPort
	}
	for _, c := range e.Candidates {
		j.Candidates = append(j.Candidates, c.String())
	}
	if p := e.Placement; p != nil && p.TableSize > 0 {
		slot := p.Slot
		j.Slot, j.TableSize = &slot, p.TableSize
	}
	if e.Flow != nil {
		j.FlowState = e.Flow.State
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(j)
}

// explainHandler answers /explain?flow=SRC:PORT+DST:PORT/PROTO from the
// live Balancer: text, JSON with &format=json, or a page with a form with
// &format=html (what the status page links to; without a flow it is the
// empty form).
func explainHandler(b *dsr.Balancer) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		flow := strings.TrimSpace(r.URL.Query().Get("flow"))
		format := r.URL.Query().Get("format")
		var e dsr.Explanation
		err := errors.New("want ?flow=SRC:PORT+DST:PORT/PROTO")
		if src, dst, ok := strings.Cut(flow, " "); ok {
			var t dsr.Tuple
			if t, err = parseTuple(strings.TrimSpace(src), strings.TrimSpace(dst)); err == nil {
				e, err = b.ExplainFlow(t)
			}
		}
		if errors.Is(err, dsr.ErrNotAFlow) {
			err = fmt.Errorf("%v (both addresses must be of one family)", err)
		}
		switch {
		case format == "html":
			page := explainPage{Flow: flow}
			switch {
			case flow == "":
			case err != nil:
				page.Error = err.Error()
			default:
				page.Result = e.String()
			}
			w.Header().Set("Content-Type", "text/html; charset=utf-8")
			if err := explainTemplate.Execute(w, page); err != nil {
				http.Error(w, err.Error(), http.StatusInternalServerError)
			}
		case err != nil:
			http.Error(w, err.Error(), http.StatusBadRequest)
		case format == "json":
			w.Header().Set("Content-Type", "application/json")
			writeExplanation(w, &e, true)
		default:
			w.Header().Set("Content-Type", "text/plain; charset=utf-8")
			writeExplanation(w, &e, false)
		}
	}
}

type explainPage struct{ Flow, Result, Error string }

var explainTemplate = template.Must(template.New("explain").Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>dsrlb: explain a flow</title>
<style>body{font:14px/1.4 system-ui,sans-serif;margin:1.2em 1.5em;color:#1f2328}
input[type=text]{font:14px ui-monospace,monospace;width:34em;padding:.2em}pre{background:#f6f8fa;border:1px solid #d1d9e0;padding:.6em}
.bad{color:#cf222e;font-weight:600}</style></head><body>
<h1>Explain a flow</h1>
<p>Which backend a flow has or would get, and why, from the live forwarding state. <a href="/">status page</a></p>
<form action="/explain" method="get"><input type="hidden" name="format" value="html">
<input type="text" name="flow" value="{{.Flow}}" placeholder="198.51.100.7:40000 192.0.2.100:80/tcp" aria-label="flow">
<button type="submit">Explain</button></form>
{{if .Error}}<p class="bad" id="error">{{.Error}}</p>{{end}}
{{if .Result}}<pre id="explanation">{{.Result}}</pre>{{end}}
</body></html>`))

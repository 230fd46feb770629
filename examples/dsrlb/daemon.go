package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"os"
	"reflect"
	"slices"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/dsrlb/dsrlb/arp"
	"github.com/dsrlb/dsrlb/bgp"
	"github.com/dsrlb/dsrlb/dsr"
	"github.com/dsrlb/dsrlb/health"
	"github.com/dsrlb/dsrlb/vrrp"
)

// daemon is one running balancer with its configuration, sockets and
// endpoints.
type daemon struct {
	path string
	log  *slog.Logger
	b    *dsr.Balancer
	fwds []forwarder
	// plane is the data plane in use ("packet" or "xdp") and why.
	plane, planeWhy string
	// xdpPin is where the XDP data plane is pinned, or "" (no pinning).
	xdpPin string

	speaker    *arp.Speaker
	bgp        *bgp.Speaker   // nil without a bgp section
	announcer  *bgp.Announcer // nil without a bgp section
	dsrChecker *health.DSRPathChecker
	dsrSources map[uint16][]netip.Addr // the VLAN sources dsrChecker was opened with
	// router and gate are set with an ha section: the gate serves the
	// VIPs on the speaker only while the router is master.
	router *vrrp.Router
	gate   *vrrp.Gate

	started           time.Time
	version, revision string

	mu           sync.Mutex
	cfg          *Loaded
	reloadOK     uint64
	reloadFailed uint64
	lastReload   reloadResult // zero At: never reloaded
	haState      vrrp.State
	haSince      time.Time
	haReason     string
	haMaster     uint64 // times it became master
	healthEvents map[healthKey]uint64
	conflicts    map[netip.Addr]*conflictInfo
	marks        map[backendKey]stateMark
	events       eventRing
	draining     bool
	rates        *rateSampler
}

// healthKey counts health state changes of a backend in a service.
type healthKey struct {
	backendKey
	result string // "up" or "down"
}

func newDaemon(path string, cfg *Loaded, log *slog.Logger) (*daemon, error) {
	d := &daemon{
		path:         path,
		log:          log,
		cfg:          cfg,
		started:      time.Now(),
		healthEvents: map[healthKey]uint64{},
		conflicts:    map[netip.Addr]*conflictInfo{},
		marks:        map[backendKey]stateMark{},
	}
	d.version, d.revision = buildVersion()
	ok := false
	defer func() {
		if !ok {
			d.close()
		}
	}()
	ifi, err := net.InterfaceByName(cfg.File.Interface)
	if err != nil {
		return nil, cfg.errorAt("interface", err)
	}
	bc := cfg.Balancer
	bc.Logger = log
	bc.OnEvent = d.onEvent
	hc := cfg.File.Health
	bc.Health = &health.MonitorConfig{Interval: time.Duration(hc.Interval), Timeout: time.Duration(hc.Timeout), Rise: hc.Rise, Fall: hc.Fall, Logger: log}
	if !cfg.File.ARP.Disabled {
		ac := cfg.File.ARP
		d.speaker, err = arp.Listen(ifi, &arp.Config{
			AnnounceInterval:      time.Duration(ac.AnnounceInterval),
			ResolveInterval:       time.Duration(ac.ResolveInterval),
			ConflictProbeInterval: time.Duration(ac.ConflictProbeInterval),
			Logger:                log,
		})
		if err != nil {
			return nil, err
		}
		bc.ARP = d.speaker
	}
	if vc := cfg.VRRPConfig(); vc != nil {
		d.gate = vrrp.NewGate(d.speaker)
		bc.ARP = d.gate
		vc.OnEvent = d.onVRRPEvent
		vc.Logger = log
		if d.router, err = vrrp.New(vc); err != nil {
			return nil, cfg.errorAt("ha", err)
		}
	}
	b, err := dsr.New(&bc)
	if err != nil {
		return nil, cfg.locate(err)
	}
	d.b = b
	if cfg.BGP != nil {
		bgpc := *cfg.BGP
		bgpc.Logger, bgpc.OnEvent = log, d.onBGPEvent
		if d.bgp, err = bgp.New(&bgpc); err != nil {
			return nil, cfg.errorAt("bgp", err)
		}
		var only func(netip.Addr) bool
		if allowed := cfg.BGPVIPs; allowed != nil {
			only = func(v netip.Addr) bool { return allowed[v] }
		}
		if d.announcer, err = bgp.NewAnnouncer(b, d.bgp, &bgp.AnnouncerConfig{Announce: only, Logger: log}); err != nil {
			return nil, err
		}
	}
	services, err := d.withChecks(cfg)
	if err != nil {
		return nil, err
	}
	if err := b.SetServices(services); err != nil {
		return nil, cfg.locate(err)
	}
	d.reconcileMarks(b.Stats(), d.started)
	var vips []netip.Addr
	for _, s := range cfg.Services {
		vips = append(vips, s.VIP)
	}
	problems, err := dsr.CheckHost(cfg.File.Interface, vips)
	if err != nil {
		return nil, fmt.Errorf("host check: %w", err)
	}
	for _, p := range problems {
		logEvent(log, slog.LevelWarn, "host problem: this host's kernel would also handle VIP traffic", evHostProblem,
			slog.String("problem", p.Problem), slog.String("fix", p.Fix))
	}
	if err := d.openForwarders(cfg, vips); err != nil {
		return nil, err
	}
	logEvent(log, slog.LevelInfo, "data plane", evDataPlane, slog.String("dataplane", d.plane), slog.String("why", d.planeWhy))
	d.rates = newRateSampler()
	ok = true
	return d, nil
}

// forwarder is what the daemon needs of a PacketForwarder or an
// XDPForwarder.
type forwarder interface {
	dsr.Forwarder
	Close() error
}

// openForwarders opens the data plane the configuration asks for.
func (d *daemon) openForwarders(cfg *Loaded, vips []netip.Addr) error {
	// One fanout group per daemon process keeps two daemons on one host
	// (a mistake, but a possible one) from sharing queues.
	group := uint16(os.Getpid())
	mode := cfg.File.DataPlane
	if mode == "xdp" || mode == "auto" {
		pin, why := xdpPinPath(cfg.File)
		if pin == "" {
			d.removeStalePins(cfg.File)
			d.log.Info("xdp: not pinning: a restart loses the XDP flows", "why", why)
		}
		listen := func(pin string) (*dsr.XDPForwarder, error) {
			return dsr.ListenXDP(cfg.File.Interface, &dsr.XDPConfig{
				Packet:   &dsr.PacketConfig{VIPs: vips},
				MaxFlows: cfg.File.FlowTable.MaxFlows,
				PinPath:  pin,
				Logger:   d.log,
			})
		}
		x, err := listen(pin)
		if err != nil && pin != "" && cfg.File.XDPPin == "" {
			// The default pin directory may exist but be out of reach (a
			// service user without access to the BPF filesystem's root):
			// XDP without pinning beats no XDP.
			d.log.Warn("xdp: not pinning: a restart loses the XDP flows", "why", fmt.Sprintf("pinning under %s failed: %v", pin, err))
			pin = ""
			x, err = listen(pin)
		}
		if err == nil {
			d.fwds = append(d.fwds, x)
			d.xdpPin = pin
			d.plane, d.planeWhy = "xdp", "the XDP program forwards the flows of mh and hrw services in the kernel; the rest goes to a packet socket"
			return nil
		}
		if mode == "xdp" {
			return fmt.Errorf("dataplane xdp: %w", err)
		}
		d.planeWhy = fmt.Sprintf("XDP did not load (%v): packet sockets instead", err)
	} else {
		d.planeWhy = "configured"
	}
	d.removeStalePins(cfg.File)
	d.plane = "packet"
	workers := cfg.File.Workers
	if workers == 0 {
		workers = 1
	}
	for range workers {
		f, err := dsr.ListenPacket(cfg.File.Interface, &dsr.PacketConfig{Fanout: group, VIPs: vips})
		if err != nil {
			return err
		}
		d.fwds = append(d.fwds, f)
	}
	return nil
}

// withChecks returns the configuration's services with their health checks
// built; the DSR-path checker is opened on first need. Errors are
// *ConfigError values pointing at the check's line.
func (d *daemon) withChecks(cfg *Loaded) ([]dsr.Service, error) {
	out := make([]dsr.Service, len(cfg.Services))
	for i, s := range cfg.Services {
		for j, cc := range cfg.File.Services[i].Checks {
			field := fmt.Sprintf("services[%d].checks[%d]", i, j)
			if cc.Type == "dsr" && d.dsrChecker != nil && !sameVLANSources(d.dsrSources, cfg.VLANSources) {
				return nil, cfg.errorAt("health.vlan_sources", errVLANSourcesChanged)
			}
			if cc.Type == "dsr" && d.dsrChecker == nil {
				c, err := health.NewDSRPathChecker(&health.DSRPathConfig{Interface: cfg.File.Interface, VLANSources: cfg.VLANSources})
				if err != nil {
					return nil, cfg.errorAt(field, err)
				}
				d.dsrChecker, d.dsrSources = c, cfg.VLANSources
			}
			var dc health.Checker = offlineDSRChecker
			if d.dsrChecker != nil {
				dc = d.dsrChecker
			}
			c, err := buildChecker(cc, dc)
			if err != nil {
				return nil, cfg.within(field, err)
			}
			s.Checks = append(s.Checks, dsr.HealthCheck{Checker: c, Port: cc.Port})
		}
		if needsSource(&s) {
			src, err := interfaceSource(cfg.File.Interface, s.VIP)
			if err != nil {
				return nil, cfg.errorAt(fmt.Sprintf("services[%d].source", i), err)
			}
			s.TunnelSource = src
		}
		out[i] = s
	}
	return out, nil
}

// close releases every socket the daemon opened.
func (d *daemon) close() {
	for _, f := range d.fwds {
		_ = f.Close()
	}
	if d.speaker != nil {
		_ = d.speaker.Close()
	}
	if d.router != nil {
		_ = d.router.Close()
	}
	if d.dsrChecker != nil {
		_ = d.dsrChecker.Close()
	}
}

// onEvent counts the Balancer's events, keeps them for the status page
// and notes why a backend changed state.
func (d *daemon) onEvent(e dsr.Event) {
	d.announcer.HandleEvent(e) // nil-safe; never blocks
	r := eventFromDSR(e)
	d.mu.Lock()
	defer d.mu.Unlock()
	d.events.add(r)
	bk := backendKey{svc: e.Service, addr: e.Backend}
	switch e.Kind {
	case dsr.EventBackendUp:
		d.healthEvents[healthKey{bk, "up"}]++
		m := d.marks[bk]
		d.marks[bk] = stateMark{state: m.state, healthy: true, since: r.At, reason: "health checks pass"}
	case dsr.EventBackendDown:
		d.healthEvents[healthKey{bk, "down"}]++
		m := d.marks[bk]
		d.marks[bk] = stateMark{state: m.state, healthy: false, since: r.At, reason: "check failed: " + r.Detail}
	case dsr.EventBackendDrained:
		if m, ok := d.marks[bk]; ok {
			m.reason = "drained: " + r.Detail
			d.marks[bk] = m
		}
	case dsr.EventVIPConflict:
		c := d.conflicts[e.VIP]
		if c == nil {
			c = &conflictInfo{}
			d.conflicts[e.VIP] = c
		}
		c.count++
		c.lastAt, c.lastMAC, c.backend = r.At, e.MAC.String(), e.Backend
	}
}

// bgpVIPs lists the VIPs BGP may announce, sorted: the configured ones, or
// every VIP of the services.
func (d *daemon) bgpVIPs() []netip.Addr {
	d.mu.Lock()
	cfg := d.cfg
	d.mu.Unlock()
	seen := map[netip.Addr]bool{}
	var out []netip.Addr
	for _, s := range cfg.Services {
		if !seen[s.VIP] && (cfg.BGPVIPs == nil || cfg.BGPVIPs[s.VIP]) {
			seen[s.VIP] = true
			out = append(out, s.VIP)
		}
	}
	slices.SortFunc(out, netip.Addr.Compare)
	return out
}

// onBGPEvent keeps the speaker's session and announcement changes for the
// status page.
func (d *daemon) onBGPEvent(e bgp.Event) {
	r := recentEvent{At: e.At, Kind: "bgp-" + e.Kind.String(), Severity: "ok"}
	switch e.Kind {
	case bgp.EventPeerUp, bgp.EventPeerDown:
		r.Detail = "peer " + e.Peer.String()
		if e.Reason != "" {
			r.Detail += ": " + e.Reason
		}
		if e.Kind == bgp.EventPeerDown {
			r.Severity = "bad"
		}
	default:
		r.Detail = e.Prefix.String()
		if e.Kind == bgp.EventWithdrawn {
			r.Severity = "warn"
		}
	}
	d.mu.Lock()
	d.events.add(r)
	d.mu.Unlock()
	lvl := slog.LevelInfo
	if e.Kind == bgp.EventPeerDown {
		lvl = slog.LevelWarn
	}
	logEvent(d.log, lvl, r.Kind, r.Kind, bgpAttrs(e)...)
}

// sampleLoop samples the counters once a second, for the rates and graphs
// of the status page and the time each backend has been in its state.
func (d *daemon) sampleLoop(ctx context.Context) {
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-t.C:
			st := d.b.Stats()
			d.rates.sample(st, now)
			d.reconcileMarks(st, now)
		}
	}
}

// reconcileMarks starts the clock of backends that are new or whose state
// or health changed without an event (a reload that drains one).
func (d *daemon) reconcileMarks(st dsr.Stats, now time.Time) {
	d.mu.Lock()
	defer d.mu.Unlock()
	present := map[backendKey]bool{}
	for _, s := range st.Services {
		for _, b := range s.Backends {
			k := backendKey{svc: s.Key, addr: b.Addr}
			present[k] = true
			m, ok := d.marks[k]
			switch {
			case !ok && d.lastReload.At.IsZero():
				d.marks[k] = stateMark{state: b.State, healthy: b.Healthy, since: d.started, reason: "since start"}
			case !ok:
				d.marks[k] = stateMark{state: b.State, healthy: b.Healthy, since: now, reason: "added by a reload"}
			case m.state != b.State:
				d.marks[k] = stateMark{state: b.State, healthy: b.Healthy, since: now, reason: "set " + b.State.String() + " by the configuration"}
			case m.healthy != b.Healthy:
				m.healthy, m.since = b.Healthy, now
				d.marks[k] = m
			}
		}
	}
	for k := range d.marks {
		if !present[k] {
			delete(d.marks, k)
		}
	}
}

// run forwards until ctx ends (immediate stop) or SIGTERM arrives (drain,
// then stop); SIGHUP reloads the configuration file.
func (d *daemon) run(ctx context.Context, hup, term <-chan os.Signal) error {
	defer d.close()
	fwdCtx, stopFwd := context.WithCancel(context.Background())
	defer stopFwd()
	var wg sync.WaitGroup
	defer wg.Wait()
	defer stopFwd()
	errs := make(chan error, len(d.fwds))
	for _, f := range d.fwds {
		wg.Go(func() {
			if err := d.b.Serve(fwdCtx, f); err != nil {
				errs <- err
			}
		})
	}
	wg.Go(func() { _ = d.b.Run(fwdCtx) })
	// VRRP stops first on SIGTERM (its priority 0 advertisement hands the
	// VIPs to the backup at once), then the drain serves the stragglers.
	vrrpCtx, stopVRRP := context.WithCancel(fwdCtx)
	defer stopVRRP()
	if d.router != nil {
		wg.Go(func() {
			if err := d.router.Run(vrrpCtx); err != nil {
				logEvent(d.log, slog.LevelError, "vrrp stopped: this balancer no longer takes part in the ha group", evVRRPFailed, errAttrs(err)...)
			}
		})
	}
	wg.Go(func() { d.sampleLoop(fwdCtx) })
	// BGP stops after forwarding has drained (its own context, cancelled
	// first among the deferred calls so the sessions close cleanly).
	bgpCtx, stopBGP := context.WithCancel(context.Background())
	bgpErr := make(chan error, 1)
	if d.bgp != nil {
		wg.Go(func() { _ = d.announcer.Run(bgpCtx) })
		wg.Go(func() {
			if err := d.bgp.Run(bgpCtx); err != nil {
				bgpErr <- err
			}
		})
	}
	defer stopBGP()

	if srv, err := d.serveHTTP(); err != nil {
		return err
	} else if srv != nil {
		defer srv.Close()
	}
	logEvent(d.log, slog.LevelInfo, "forwarding", evStarted, slog.String("interface", d.cfg.File.Interface),
		slog.Int("services", len(d.cfg.Services)), slog.Int("workers", len(d.fwds)), slog.String("dataplane", d.plane),
		slog.String("version", d.version), slog.String("revision", d.revision))
	d.notify("READY=1", fmt.Sprintf("STATUS=forwarding %d services on %s", len(d.cfg.Services), d.cfg.File.Interface))

	for {
		select {
		case <-ctx.Done():
			logEvent(d.log, slog.LevelInfo, "stopping", evStopping)
			d.notify("STOPPING=1")
			return nil
		case err := <-errs:
			return fmt.Errorf("forwarding failed: %w", err)
		case err := <-bgpErr:
			return err
		case <-hup:
			d.notify("RELOADING=1")
			d.reload()
			d.notify("READY=1")
		case <-term:
			d.mu.Lock()
			stopIn := stopTimeoutOf(d.cfg)
			d.mu.Unlock()
			d.notify("STOPPING=1", extendTimeout(stopIn), "STATUS=draining")
			stopVRRP()
			if d.announcer != nil {
				// Withdraw first: routers stop sending new flows here
				// while the established ones drain.
				if err := d.announcer.WithdrawAll(); err != nil {
					logEvent(d.log, slog.LevelError, "bgp: withdraw on SIGTERM", evBGPWithdrawAll, errAttrs(err)...)
				}
				logEvent(d.log, slog.LevelInfo, "bgp: VIPs withdrawn; draining", evBGPWithdrawAll)
			}
			if d.xdpPin != "" {
				// The pinned program goes on forwarding every established
				// flow after this process exits, until the next one takes
				// it over: nothing to drain.
				d.log.Info("stopping; the XDP program stays attached and pinned (dsrlb xdp-cleanup detaches it)", "pin_path", d.xdpPin)
				return nil
			}
			d.drain(ctx)
			return nil
		}
	}
}

// reload applies the configuration file again. A file that does not parse
// or validate, or that the Balancer rejects, leaves the running
// configuration in force; established flows are untouched either way.
func (d *daemon) reload() {
	next, err := LoadConfig(d.path)
	if err == nil && next.File.Interface != d.cfg.File.Interface {
		err = next.errorAt("interface", fmt.Errorf("changing %q to %q needs a restart", d.cfg.File.Interface, next.File.Interface))
	}
	if err == nil && next.File.XDPPin != d.cfg.File.XDPPin {
		err = next.errorAt("xdp_pin", errors.New("changing it needs a restart"))
	}
	if err == nil && next.File.Listen != d.cfg.File.Listen {
		err = next.errorAt("listen", errors.New("changing it needs a restart"))
	}
	if err == nil && !reflect.DeepEqual(next.VRRPConfig(), d.cfg.VRRPConfig()) {
		err = next.errorAt("ha", errors.New("changing the ha section (or the IPv4 VIPs it advertises) needs a restart"))
	}
	if err == nil && !reflect.DeepEqual(next.File.BGP, d.cfg.File.BGP) {
		err = next.errorAt("bgp", errors.New("changing it needs a restart"))
	}
	var services []dsr.Service
	if err == nil {
		services, err = d.withChecks(next)
	}
	if err == nil {
		if err = d.b.SetServices(services); err != nil {
			err = next.locate(err)
		}
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	now := time.Now()
	if err != nil {
		d.reloadFailed++
		d.lastReload = reloadResult{At: now, Err: err.Error()}
		d.events.add(recentEvent{At: now, Kind: "reload-rejected", Detail: err.Error() + " (the running configuration stays in force)", Severity: "bad"})
		logEvent(d.log, slog.LevelError, "reload rejected; the running configuration stays in force", evReloadRejected, errAttrs(err)...)
		return
	}
	d.reloadOK++
	d.lastReload = reloadResult{At: now, OK: true}
	d.cfg = next
	d.events.add(recentEvent{At: now, Kind: "reloaded", Detail: plural(len(next.Services), "service"), Severity: "ok"})
	logEvent(d.log, slog.LevelInfo, "reloaded", evReloaded, slog.Int("services", len(next.Services)))
}

// drain keeps forwarding until the flows go quiet (no packet for
// quietPeriod) or the drain timeout passes, so that transfers in progress
// complete while clients move elsewhere.
func (d *daemon) drain(ctx context.Context) {
	d.mu.Lock()
	timeout := drainTimeoutOf(d.cfg)
	d.draining = true
	d.mu.Unlock()
	logEvent(d.log, slog.LevelInfo, "draining", evDraining, slog.Duration("timeout", timeout))
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	tick := time.NewTicker(200 * time.Millisecond)
	defer tick.Stop()
	// Service packets, not all received frames: ARP and other segment
	// chatter never stops.
	servicePackets := func() (n uint64) {
		for _, s := range d.b.Stats().Services {
			n += s.Packets
		}
		return n
	}
	last := servicePackets()
	quietSince := time.Now()
	for {
		select {
		case <-ctx.Done():
			return
		case <-deadline.C:
			logEvent(d.log, slog.LevelWarn, "drain timeout passed; stopping with flows still active", evDrainTimeout, slog.Duration("timeout", timeout))
			return
		case now := <-tick.C:
			cur := servicePackets()
			if cur != last {
				last, quietSince = cur, now
			}
			if now.Sub(quietSince) >= quietPeriod {
				logEvent(d.log, slog.LevelInfo, "drained: no traffic for the quiet period", evDrained, slog.Duration("quiet", quietPeriod))
				return
			}
		}
	}
}

// quietPeriod is how long a draining daemon waits without traffic before it
// considers its flows finished.
const quietPeriod = 2 * time.Second

func (d *daemon) serveHTTP() (*http.Server, error) {
	addr := d.cfg.File.Listen
	if addr == "off" {
		return nil, nil
	}
	if addr == "" {
		addr = "127.0.0.1:9180"
	}
	reg := newRegistry(d)
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	mux.HandleFunc("GET /{$}", d.statusPage)
	mux.HandleFunc("GET /explain", explainHandler(d.b))
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) { fmt.Fprintln(w, "ok") })
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("listen: %w", err)
	}
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			logEvent(d.log, slog.LevelError, "http server failed", evHTTPFailed, errAttrs(err)...)
		}
	}()
	d.log.Info("metrics and status page", "addr", ln.Addr().String())
	return srv, nil
}

// daemonView is a consistent copy of the daemon's state for one scrape or
// one page, with zero entries for every known service, backend and VIP.
type daemonView struct {
	cfg            *Loaded
	configured     map[dsr.ServiceKey]dsr.Service
	healthEvents   map[healthKey]uint64
	conflictCounts map[netip.Addr]uint64
	conflicts      map[netip.Addr]conflictInfo
	marks          map[backendKey]stateMark
	events         []recentEvent
	reloadOK       uint64
	reloadFailed   uint64
	lastReload     reloadResult
	draining       bool
	ha             haView
}

// haView is the VRRP side of the daemon (ha section), zero without one.
type haView struct {
	enabled        bool
	vrid, priority uint8
	state          vrrp.State
	since          time.Time
	reason         string
	becameMaster   uint64
	sent, received uint64
}

func (d *daemon) view() *daemonView {
	v := &daemonView{
		configured:     map[dsr.ServiceKey]dsr.Service{},
		healthEvents:   map[healthKey]uint64{},
		conflictCounts: map[netip.Addr]uint64{},
		conflicts:      map[netip.Addr]conflictInfo{},
		marks:          map[backendKey]stateMark{},
	}
	for _, s := range d.b.Services() {
		v.configured[s.Key()] = s
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	v.cfg = d.cfg
	for _, s := range d.cfg.Services {
		for _, b := range s.Backends {
			bk := backendKey{svc: s.Key(), addr: b.Addr}
			v.healthEvents[healthKey{bk, "up"}] = 0
			v.healthEvents[healthKey{bk, "down"}] = 0
		}
		v.conflictCounts[s.VIP] = 0
	}
	for k, n := range d.healthEvents {
		v.healthEvents[k] = n
	}
	for vip, c := range d.conflicts {
		v.conflictCounts[vip] = c.count
		v.conflicts[vip] = *c
	}
	for k, m := range d.marks {
		v.marks[k] = m
	}
	v.events = d.events.newestFirst()
	v.reloadOK, v.reloadFailed, v.lastReload, v.draining = d.reloadOK, d.reloadFailed, d.lastReload, d.draining
	if d.router != nil {
		st := d.router.Stats()
		v.ha = haView{enabled: true, vrid: d.router.VRID(), priority: d.router.Priority(),
			state: d.haState, since: d.haSince, reason: d.haReason, becameMaster: d.haMaster,
			sent: st.Sent, received: st.Received}
	}
	return v
}

// name is the service's configured name, else its key.
func (v *daemonView) name(k dsr.ServiceKey) string {
	if n, ok := v.cfg.Names[k]; ok {
		return n
	}
	return k.String()
}

// onVRRPEvent moves the VIPs with the router's state and keeps the
// transition for the status page and the metrics.
func (d *daemon) onVRRPEvent(e vrrp.Event) {
	d.gate.HandleEvent(e)
	sev := "ok"
	switch e.Kind {
	case vrrp.BecameBackup, vrrp.Stopped:
		sev = "warn"
	case vrrp.BecameFault:
		sev = "bad"
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if e.Kind == vrrp.BecameMaster {
		d.haMaster++
	}
	if e.Kind != vrrp.Reasserted {
		d.haState, d.haSince, d.haReason = e.State, e.At, e.Reason
	}
	d.events.add(recentEvent{At: e.At, Kind: "vrrp " + e.Kind.String(), Detail: e.Reason, Severity: sev})
	var vips []string
	if e.Kind != vrrp.Reasserted {
		for _, v := range d.cfg.HAVIPs() {
			vips = append(vips, v.String())
		}
	}
	lvl := slog.LevelInfo
	if sev != "ok" {
		lvl = slog.LevelWarn
	}
	logEvent(d.log, lvl, "vrrp "+e.Kind.String(), vrrpEventName(e.Kind), vrrpAttrs(e, vips)...)
}

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
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/dsrlb/dsrlb/arp"
	"github.com/dsrlb/dsrlb/dsr"
	"github.com/dsrlb/dsrlb/health"
)

// daemon is one running balancer with its configuration, sockets and
// endpoints.
type daemon struct {
	path string
	log  *slog.Logger
	b    *dsr.Balancer
	fwds []*dsr.PacketForwarder

	speaker    *arp.Speaker
	dsrChecker *health.DSRPathChecker

	mu           sync.Mutex
	cfg          *Loaded
	reloadOK     uint64
	reloadFailed uint64
	healthEvents map[[2]string]uint64
	conflicts    map[string]uint64
	draining     bool
	rates        *rateSampler
}

func newDaemon(path string, cfg *Loaded, log *slog.Logger) (*daemon, error) {
	d := &daemon{
		path:         path,
		log:          log,
		cfg:          cfg,
		healthEvents: map[[2]string]uint64{},
		conflicts:    map[string]uint64{},
	}
	ok := false
	defer func() {
		if !ok {
			d.close()
		}
	}()
	ifi, err := net.InterfaceByName(cfg.File.Interface)
	if err != nil {
		return nil, fmt.Errorf("%s: interface: %w", path, err)
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
	b, err := dsr.New(&bc)
	if err != nil {
		return nil, err
	}
	d.b = b
	services, err := d.withChecks(cfg)
	if err != nil {
		return nil, err
	}
	if err := b.SetServices(services); err != nil {
		return nil, err
	}
	var vips []netip.Addr
	for _, s := range cfg.Services {
		vips = append(vips, s.VIP)
	}
	problems, err := dsr.CheckHost(cfg.File.Interface, vips)
	if err != nil {
		return nil, fmt.Errorf("host check: %w", err)
	}
	for _, p := range problems {
		log.Warn("host problem: this host's kernel would also handle VIP traffic", "problem", p.Problem, "fix", p.Fix)
	}
	workers := cfg.File.Workers
	if workers == 0 {
		workers = 1
	}
	// One fanout group per daemon process keeps two daemons on one host
	// (a mistake, but a possible one) from sharing queues.
	group := uint16(os.Getpid())
	for range workers {
		f, err := dsr.ListenPacket(cfg.File.Interface, &dsr.PacketConfig{Fanout: group, VIPs: vips})
		if err != nil {
			return nil, err
		}
		d.fwds = append(d.fwds, f)
	}
	d.rates = newRateSampler(b)
	ok = true
	return d, nil
}

// withChecks returns the configuration's services with their health checks
// built; the DSR-path checker is opened on first need.
func (d *daemon) withChecks(cfg *Loaded) ([]dsr.Service, error) {
	out := make([]dsr.Service, len(cfg.Services))
	for i, s := range cfg.Services {
		for j, cc := range cfg.File.Services[i].Checks {
			if cc.Type == "dsr" && d.dsrChecker == nil {
				c, err := health.NewDSRPathChecker(&health.DSRPathConfig{Interface: cfg.File.Interface})
				if err != nil {
					return nil, fmt.Errorf("services[%d].checks[%d]: %w", i, j, err)
				}
				d.dsrChecker = c
			}
			var dc health.Checker
			if d.dsrChecker != nil {
				dc = d.dsrChecker
			}
			c, err := buildChecker(cc, dc)
			if err != nil {
				return nil, fmt.Errorf("services[%d].checks[%d]: %w", i, j, err)
			}
			s.Checks = append(s.Checks, dsr.HealthCheck{Checker: c, Port: cc.Port})
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
	if d.dsrChecker != nil {
		_ = d.dsrChecker.Close()
	}
}

// onEvent logs and counts the Balancer's events.
func (d *daemon) onEvent(e dsr.Event) {
	d.mu.Lock()
	defer d.mu.Unlock()
	switch e.Kind {
	case dsr.EventBackendUp:
		d.healthEvents[[2]string{e.Backend.String(), "up"}]++
	case dsr.EventBackendDown:
		d.healthEvents[[2]string{e.Backend.String(), "down"}]++
	case dsr.EventVIPConflict:
		d.conflicts[e.VIP.String()]++
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
	wg.Go(func() { d.rates.run(fwdCtx) })

	if srv, err := d.serveHTTP(); err != nil {
		return err
	} else if srv != nil {
		defer srv.Close()
	}
	d.log.Info("forwarding", "interface", d.cfg.File.Interface, "services", len(d.cfg.Services), "workers", len(d.fwds))

	for {
		select {
		case <-ctx.Done():
			d.log.Info("stopping")
			return nil
		case err := <-errs:
			return fmt.Errorf("forwarding failed: %w", err)
		case <-hup:
			d.reload()
		case <-term:
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
		err = fmt.Errorf("%s: interface: changing %q to %q needs a restart", d.path, d.cfg.File.Interface, next.File.Interface)
	}
	if err == nil && next.File.Listen != d.cfg.File.Listen {
		err = fmt.Errorf("%s: listen: changing it needs a restart", d.path)
	}
	var services []dsr.Service
	if err == nil {
		services, err = d.withChecks(next)
	}
	if err == nil {
		err = d.b.SetServices(services)
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if err != nil {
		d.reloadFailed++
		d.log.Error("reload rejected; the running configuration stays in force", "err", err)
		return
	}
	d.reloadOK++
	d.cfg = next
	d.log.Info("reloaded", "services", len(next.Services))
}

// drain keeps forwarding until the flows go quiet (no packet for
// quietPeriod) or the drain timeout passes, so that transfers in progress
// complete while clients move elsewhere.
func (d *daemon) drain(ctx context.Context) {
	timeout := time.Duration(d.cfg.File.DrainTimeout)
	if timeout == 0 {
		timeout = 30 * time.Second
	}
	d.mu.Lock()
	d.draining = true
	d.mu.Unlock()
	d.log.Info("draining", "timeout", timeout)
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
			d.log.Warn("drain timeout passed; stopping with flows still active")
			return
		case now := <-tick.C:
			cur := servicePackets()
			if cur != last {
				last, quietSince = cur, now
			}
			if now.Sub(quietSince) >= quietPeriod {
				d.log.Info("drained: no traffic for the quiet period", "quiet", quietPeriod)
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
	reg := prometheus.NewRegistry()
	reg.MustRegister(newCollector(d))
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	mux.HandleFunc("GET /{$}", d.statusPage)
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) { fmt.Fprintln(w, "ok") })
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("listen: %w", err)
	}
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			d.log.Error("http server failed", "err", err)
		}
	}()
	d.log.Info("metrics and status page", "addr", ln.Addr().String())
	return srv, nil
}

func (d *daemon) names() map[dsr.ServiceKey]string {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.cfg.Names
}

func (d *daemon) healthEventCounts() map[[2]string]uint64 {
	d.mu.Lock()
	defer d.mu.Unlock()
	out := make(map[[2]string]uint64, len(d.healthEvents))
	for k, v := range d.healthEvents {
		out[k] = v
	}
	return out
}

func (d *daemon) conflictCounts() map[string]uint64 {
	d.mu.Lock()
	defer d.mu.Unlock()
	out := make(map[string]uint64, len(d.conflicts))
	for k, v := range d.conflicts {
		out[k] = v
	}
	return out
}

func (d *daemon) reloadCounts() (ok, failed uint64) {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.reloadOK, d.reloadFailed
}

package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/dsrlb/dsrlb/arp"
	"github.com/dsrlb/dsrlb/dsr"
	"github.com/dsrlb/dsrlb/health"
	"github.com/dsrlb/dsrlb/internal/netlab"
	"github.com/dsrlb/dsrlb/vrrp"
)

// Settings of the -ha mode.
const (
	haSeed       = 42                     // the same on both balancers
	haVRID       = 51                     // the VRRP group
	haInterval   = 100 * time.Millisecond // VRRP advertisement interval
	longCount    = 4                      // long downloads running across the crash
	longSize     = 16 << 20               // bytes per long download
	takeoverWait = 10 * time.Second       // how long the demo waits for the backup to take over
)

// haNode is one balancer of the VRRP group, with everything it opened.
type haNode struct {
	name     string // "A" or "B"
	host     *netlab.Host
	priority uint8
	fwd      interface {
		dsr.Forwarder
		Close() error
	}
	speaker *arp.Speaker
	checker *health.DSRPathChecker
	gate    *vrrp.Gate
	router  *vrrp.Router
	b       *dsr.Balancer

	became chan struct{} // one value per BecameMaster (dropped when full)

	cancel context.CancelFunc
	wg     sync.WaitGroup
	down   sync.Once
	dead   atomic.Bool
	last   uint64 // Forwarded when it crashed (an XDP forwarder's counters go with it)
}

// forwarded returns the frames the node forwarded, also once it crashed.
func (n *haNode) forwarded() uint64 {
	if n.dead.Load() {
		return n.last
	}
	return n.b.Stats().Forwarded
}

func (n *haNode) label() string {
	return fmt.Sprintf("balancer %s (%s, %s)", n.name, n.host.Name, n.host.IP)
}

// open opens the node's sockets inside its namespace and builds its
// balancer, VRRP router and gate.
func (n *haNode) open(vip, vrrpVIP netip.Addr, svc dsr.Service, useXDP bool) error {
	n.became = make(chan struct{}, 8)
	err := n.host.Do(func() error {
		problems, err := dsr.CheckHost(n.host.Link, []netip.Addr{vip})
		if err != nil {
			return err
		}
		for _, p := range problems {
			say("balancer %s host check: %s", n.name, p)
		}
		ifi, err := net.InterfaceByName(n.host.Link)
		if err != nil {
			return err
		}
		pc := &dsr.PacketConfig{VIPs: []netip.Addr{vip}}
		if useXDP {
			x, err := dsr.ListenXDP(n.host.Link, &dsr.XDPConfig{Packet: pc})
			if err != nil {
				return fmt.Errorf("XDP data plane: %w", err)
			}
			n.fwd = x
		} else {
			p, err := dsr.ListenPacket(n.host.Link, pc)
			if err != nil {
				return err
			}
			n.fwd = p
		}
		if n.speaker, err = arp.Listen(ifi, nil); err != nil {
			return err
		}
		if n.checker, err = health.NewDSRPathChecker(&health.DSRPathConfig{Interface: n.host.Link}); err != nil {
			return err
		}
		n.gate = vrrp.NewGate(n.speaker)
		n.router, err = vrrp.New(&vrrp.Config{
			Interface: n.host.Link, VRID: haVRID, Priority: n.priority, Interval: haInterval,
			VIPs: []netip.Addr{vrrpVIP}, OnEvent: n.onVRRP,
		})
		return err
	})
	if err != nil {
		return err
	}
	n.b, err = dsr.New(&dsr.Config{
		Logger: slog.New(slog.DiscardHandler),
		ARP:    n.gate,
		Seed:   haSeed,
		Health: &health.MonitorConfig{Interval: 200 * time.Millisecond, Timeout: 150 * time.Millisecond, Rise: 2, Fall: 2},
		OnEvent: func(e dsr.Event) {
			say("balancer %s event: %s", n.name, e)
		},
	})
	if err != nil {
		return err
	}
	svc.Checks = []dsr.HealthCheck{{Checker: n.checker}}
	return n.b.AddService(svc)
}

func (n *haNode) onVRRP(e vrrp.Event) {
	n.gate.HandleEvent(e)
	say("balancer %s %s", n.name, e)
	if e.Kind == vrrp.BecameMaster {
		select {
		case n.became <- struct{}{}:
		default:
		}
	}
}

// start runs the balancer, its forwarder and its VRRP router.
func (n *haNode) start(ctx context.Context) {
	ctx, n.cancel = context.WithCancel(ctx)
	n.wg.Go(func() { _ = n.b.Serve(ctx, n.fwd) })
	n.wg.Go(func() { _ = n.b.Run(ctx) })
	n.wg.Go(func() { _ = n.router.Run(ctx) })
}

// crash stops the node the way a dying process would: the VRRP socket is
// closed first, so no priority 0 advertisement goes out (Router.Close, not
// a cancelled Run), then Serve and Run are cancelled and every socket is
// closed. The backup only notices that advertisements stop. Safe to call
// more than once, also on a node that never started.
func (n *haNode) crash() {
	n.down.Do(func() {
		if n.b != nil {
			n.last = n.b.Stats().Forwarded
		}
		n.dead.Store(true)
		if n.router != nil {
			n.router.Close()
		}
		if n.cancel != nil {
			n.cancel()
		}
		n.wg.Wait()
		for _, c := range []io.Closer{n.fwd, n.speaker, n.checker} {
			if c != nil && !isNil(c) {
				c.Close()
			}
		}
	})
}

// isNil reports whether c holds a typed nil pointer.
func isNil(c io.Closer) bool {
	switch v := c.(type) {
	case *arp.Speaker:
		return v == nil
	case *health.DSRPathChecker:
		return v == nil
	}
	return false
}

// waitFor waits for a value from ch, at most d.
func waitFor(ctx context.Context, ch <-chan struct{}, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ch:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return fmt.Errorf("no takeover within %v", d)
	}
}

// runHA is the -ha mode: two balancers in one VRRP group, the master
// crashes while traffic flows, the backup takes over.
func runHA(ctx context.Context, phase time.Duration, clients, size int, ipv6, useXDP bool) error {
	say("building the lab: a client, two balancers and 3 servers on one bridge, each in its own network namespace")
	lab, err := netlab.New(ctx, &netlab.Config{Servers: 3, Clients: 2, IPv6: ipv6})
	if err != nil {
		return err
	}
	defer func() {
		if err := lab.Close(); err != nil {
			fmt.Println("demo: cleanup:", err)
		}
	}()
	vip := lab.VIPs[0]
	if ipv6 {
		vip = lab.VIPs[len(lab.VIPs)-1]
	}
	// VRRP speaks IPv4 only: the group advertises the IPv4 VIP and an IPv6
	// VIP follows its state (the gate serves whatever VIPs it is given).
	vrrpVIP := lab.VIPs[0]
	say("namespaces dsrlb-%s-* (look inside with: ip netns exec dsrlb-%s-lb ip addr)", lab.ID, lab.ID)
	say("VIP %s; VRRP group %d advertises %s every %v; both balancers use Seed %d and the same service",
		vip, haVRID, vrrpVIP, haInterval, haSeed)
	if useXDP {
		say("data plane: XDP on both balancers")
	} else {
		say("data plane: packet sockets on both balancers")
	}

	svc := dsr.Service{VIP: vip, Protocol: dsr.TCP, Port: 80, Scheduler: "mh"}
	for _, s := range lab.Servers {
		addr := s.IP
		if ipv6 {
			addr = s.IP6
		}
		svc.Backends = append(svc.Backends, dsr.Backend{Addr: addr})
	}
	nodes := []*haNode{
		{name: "A", host: lab.Balancer, priority: 150},
		{name: "B", host: lab.Clients[1], priority: 100},
	}
	defer func() {
		for _, n := range nodes {
			n.crash()
		}
	}()
	for _, n := range nodes {
		if err := n.open(vip, vrrpVIP, svc, useXDP); err != nil {
			return fmt.Errorf("balancer %s: %w", n.name, err)
		}
	}
	a, b := nodes[0], nodes[1]
	say("starting %s with VRRP priority %d", a.label(), a.priority)
	a.start(ctx)
	if err := waitFor(ctx, a.became, takeoverWait); err != nil {
		return fmt.Errorf("balancer A did not become master: %w", err)
	}
	say("starting %s with VRRP priority %d", b.label(), b.priority)
	b.start(ctx)
	for _, n := range nodes {
		if err := waitHealthy(ctx, n.b, len(lab.Servers)); err != nil {
			return fmt.Errorf("balancer %s: %w", n.name, err)
		}
	}
	if st := b.router.State(); st != vrrp.Backup {
		return fmt.Errorf("balancer B is %s, want backup", st)
	}
	say("balancer A is master, balancer B is backup; both forward %s/tcp:80 to %d servers (scheduler mh)", vip, len(lab.Servers))

	runCtx, stopTraffic := context.WithCancel(ctx)
	defer stopTraffic()
	tr := &traffic{per: map[string]*counter{}}
	var twg sync.WaitGroup
	defer twg.Wait()
	defer stopTraffic()
	url := fmt.Sprintf("http://%s", netip.AddrPortFrom(vip, 80))
	for range clients {
		twg.Go(func() { tr.client(runCtx, lab.Clients[0], fmt.Sprintf("%s/bytes?n=%d", url, size)) })
	}
	// The long downloads are paced to last two phases, so they are in the
	// middle of their transfer when the master dies.
	var longDone, longOK atomic.Int64
	longErrs := make([]error, longCount)
	var lwg sync.WaitGroup
	longCtx, cancelLong := context.WithTimeout(ctx, 2*phase+takeoverWait+30*time.Second)
	defer cancelLong()
	for i := range longCount {
		lwg.Go(func() {
			defer longDone.Add(1)
			backend, d, err := longDownload(longCtx, lab.Clients[0], fmt.Sprintf("%s/bytes?n=%d", url, longSize), longSize, 2*phase)
			longErrs[i] = err
			if err == nil {
				longOK.Add(1)
				say("long download %d from %s: %.1f MiB byte-exact in %v", i+1, backend, float64(longSize)/(1<<20), d.Round(10*time.Millisecond))
			} else {
				say("long download %d FAILED: %v", i+1, err)
			}
		})
	}

	show := func(title string, d time.Duration) error {
		return showPhase(ctx, title, d, func() error {
			printHA(lab, tr, nodes, longDone.Load())
			return nil
		})
	}
	if err := show("phase 1: balancing through balancer A (master)", phase); err != nil {
		return err
	}
	say("phase 2: crashing balancer A: its VRRP socket is closed without the priority 0 advertisement, its Serve and Run are cancelled and its sockets closed (as if the process were killed)")
	// Forget B's earlier mastership (a split brain on a loaded machine,
	// which A's reassertion ended): only a takeover after the crash counts.
	for len(b.became) > 0 {
		<-b.became
	}
	before := b.b.Stats().Forwarded
	killed := time.Now()
	a.crash()
	if b.router.State() == vrrp.Master {
		say("balancer B was already master when A crashed (a split brain: it missed A's advertisements)")
	} else if err := waitFor(ctx, b.became, takeoverWait); err != nil {
		return fmt.Errorf("balancer B did not take over: %w", err)
	}
	took := time.Since(killed)
	tr.reset()
	say("takeover: balancer B (%s) became master %v after balancer A was killed", b.host.IP, took.Round(time.Millisecond))
	if err := show("  requests and the long downloads continue through balancer B", phase); err != nil {
		return err
	}
	lwg.Wait()
	stopTraffic()
	twg.Wait()
	var requests int64
	tr.mu.Lock()
	for _, c := range tr.per {
		requests += c.requests.Load()
	}
	tr.mu.Unlock()
	st := b.b.Stats()
	fmt.Println()
	say("done: after the takeover %d requests succeeded, %d failed", requests, tr.failed.Load())
	say("done: %d of %d long downloads of %.1f MiB completed byte-exact across the crash", longOK.Load(), longCount, float64(longSize)/(1<<20))
	say("done: balancer B (new master) forwarded %d frames since the crash; drops: %s", st.Forwarded-before, drops(st))
	if err := errors.Join(longErrs...); err != nil {
		return fmt.Errorf("long downloads failed: %w", err)
	}
	return nil
}

// printHA prints one progress line of the -ha mode.
func printHA(lab *netlab.Lab, t *traffic, nodes []*haNode, longDone int64) {
	var line strings.Builder
	for _, s := range lab.Servers {
		c := t.get(s.Name)
		fmt.Fprintf(&line, " %s %4d req |", s.Name, c.requests.Load())
	}
	for _, n := range nodes {
		state := n.router.State().String()
		if n.dead.Load() {
			state = "dead"
		}
		fmt.Fprintf(&line, " %s %-6s fwd %7d |", n.name, state, n.forwarded())
	}
	fmt.Printf("%s failed %3d | long downloads done %d/%d\n", line.String(), t.failed.Load(), longDone, longCount)
}

// longDownload fetches n pattern bytes from url, paced to take about d,
// checks every byte, and returns the backend that served it and how long it
// took.
func longDownload(ctx context.Context, h *netlab.Host, url string, n int64, d time.Duration) (string, time.Duration, error) {
	tr := &http.Transport{DialContext: h.DialContext, DisableKeepAlives: true}
	defer tr.CloseIdleConnections()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return "", 0, err
	}
	start := time.Now()
	resp, err := (&http.Client{Transport: tr}).Do(req)
	if err != nil {
		return "", 0, err
	}
	defer resp.Body.Close()
	backend := resp.Header.Get("X-Backend")
	if resp.StatusCode != http.StatusOK {
		return backend, 0, fmt.Errorf("%s: status %s", backend, resp.Status)
	}
	buf := make([]byte, 64<<10)
	var off int64
	for off < n {
		k, err := resp.Body.Read(buf[:min(int64(len(buf)), n-off)])
		if j := netlab.CheckPattern(buf[:k], off); j >= 0 {
			return backend, 0, fmt.Errorf("%s: byte %d differs", backend, off+int64(j))
		}
		off += int64(k)
		if err == io.EOF {
			break
		}
		if err != nil {
			return backend, 0, fmt.Errorf("%s: after %d of %d bytes: %w", backend, off, n, err)
		}
		due := start.Add(time.Duration(float64(d) * float64(off) / float64(n)))
		if w := time.Until(due); w > 0 {
			t := time.NewTimer(w)
			select {
			case <-ctx.Done():
				t.Stop()
				return backend, 0, ctx.Err()
			case <-t.C:
			}
		}
	}
	if off != n {
		return backend, 0, fmt.Errorf("%s: %d of %d bytes", backend, off, n)
	}
	return backend, time.Since(start), nil
}

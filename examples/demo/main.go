// Command demo shows L2 Direct Server Return at work on this machine, in
// throw-away network namespaces: a client, a balancer running dsrlb and three
// web servers on one virtual Ethernet segment.
//
// It drives real HTTP traffic through the VIP and shows, live, how requests
// and bytes spread over the servers and how few of those bytes the balancer
// carried (the responses go from the servers straight to the client). Then it
// stops one server, shows the balancer fail over to the others, and brings
// the server back. Everything it built is removed on exit, also on Ctrl-C.
//
// It needs Linux and root (CAP_NET_ADMIN and CAP_NET_RAW):
//
//	sudo go run ./examples/demo
//
// With -ipv6 the same runs on an IPv6 VIP, with the servers' MACs learned
// by neighbour discovery.
//
// With -ha two balancers (hosts lb and c1) run in one VRRP group with the
// same Seed and service. While requests and a few long, paced downloads flow
// through the VIP, the master crashes (its VRRP socket closes without the
// priority 0 advertisement, its forwarding stops and its sockets close); the
// demo shows the backup taking over, after how long, and the downloads
// completing byte-exact through the new master.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/signal"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/dsrlb/dsrlb/arp"
	"github.com/dsrlb/dsrlb/dsr"
	"github.com/dsrlb/dsrlb/health"
	"github.com/dsrlb/dsrlb/internal/netlab"
)

func main() {
	netlab.RunChildIfRequested()

	phase := flag.Duration("phase", 3*time.Second, "how long each phase of the demo runs")
	clients := flag.Int("clients", 8, "concurrent HTTP clients")
	size := flag.Int("size", 256<<10, "bytes per response")
	ipv6 := flag.Bool("ipv6", false, "balance an IPv6 VIP (servers reached by neighbour discovery) instead of an IPv4 one")
	useXDP := flag.Bool("xdp", false, "forward in the kernel with the XDP data plane (the Go path handles what it passes up)")
	ha := flag.Bool("ha", false, "run two balancers in one VRRP group and crash the master while traffic and long downloads flow")
	flag.Parse()

	if ok, why := netlab.Privileged(); !ok {
		fmt.Fprintf(os.Stderr, "demo: %s\n", why)
		fmt.Fprintln(os.Stderr, "demo: it builds network namespaces and opens a packet socket, so it needs Linux and root")
		fmt.Fprintln(os.Stderr, "demo: (CAP_NET_ADMIN and CAP_NET_RAW); run it as: sudo go run ./examples/demo")
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	demo := run
	if *ha {
		demo = runHA
	}
	if err := demo(ctx, *phase, *clients, *size, *ipv6, *useXDP); err != nil {
		if errors.Is(err, context.Canceled) {
			fmt.Println("\ninterrupted; everything the demo built has been removed")
			os.Exit(130)
		}
		fmt.Fprintln(os.Stderr, "demo:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, phase time.Duration, clients, size int, ipv6, useXDP bool) error {
	say("building the lab: a client, a balancer and 3 servers on one bridge, each in its own network namespace")
	lab, err := netlab.New(ctx, &netlab.Config{Servers: 3, IPv6: ipv6})
	if err != nil {
		return err
	}
	defer func() {
		if err := lab.Close(); err != nil {
			fmt.Fprintln(os.Stderr, "demo: cleanup:", err)
		}
	}()
	vip := lab.VIPs[0]
	if ipv6 {
		vip = lab.VIPs[len(lab.VIPs)-1]
	}
	say("namespaces dsrlb-%s-* (look inside with: ip netns exec dsrlb-%s-lb ip addr)", lab.ID, lab.ID)
	if vip.Is6() {
		say("IPv6 VIP %s; servers hold it on lo, where nothing answers neighbour solicitations for it", vip)
	} else {
		say("VIP %s; servers hold it on lo with arp_ignore=1, arp_announce=2", vip)
	}

	// Everything that touches the segment is opened inside the balancer's
	// namespace: the packet socket that forwards, the ARP speaker that owns
	// the VIP, and the DSR-path health checker.
	var (
		fwd interface {
			dsr.Forwarder
			Close() error
		}
		speaker *arp.Speaker
		checker *health.DSRPathChecker
	)
	err = lab.Balancer.Do(func() error {
		problems, err := dsr.CheckHost(lab.Balancer.Link, []netip.Addr{vip})
		if err != nil {
			return err
		}
		for _, p := range problems {
			say("host check: %s", p)
		}
		ifi, err := net.InterfaceByName(lab.Balancer.Link)
		if err != nil {
			return err
		}
		pc := &dsr.PacketConfig{VIPs: []netip.Addr{vip}}
		if useXDP {
			x, err := dsr.ListenXDP(lab.Balancer.Link, &dsr.XDPConfig{Packet: pc})
			if err != nil {
				return fmt.Errorf("XDP data plane: %w", err)
			}
			fwd = x
			say("data plane: XDP (the kernel forwards the service's flows; the Go path gets what it passes up)")
		} else {
			p, err := dsr.ListenPacket(lab.Balancer.Link, pc)
			if err != nil {
				return err
			}
			fwd = p
			say("data plane: packet sockets (Go decides every frame)")
		}
		if speaker, err = arp.Listen(ifi, nil); err != nil {
			return err
		}
		checker, err = health.NewDSRPathChecker(&health.DSRPathConfig{Interface: lab.Balancer.Link})
		return err
	})
	defer func() {
		if fwd != nil {
			fwd.Close()
		}
		if speaker != nil {
			speaker.Close()
		}
		if checker != nil {
			checker.Close()
		}
	}()
	if err != nil {
		return err
	}

	b, err := dsr.New(&dsr.Config{
		Logger: slog.New(slog.DiscardHandler),
		ARP:    speaker,
		Health: &health.MonitorConfig{Interval: 200 * time.Millisecond, Timeout: 150 * time.Millisecond, Rise: 2, Fall: 2},
		OnEvent: func(e dsr.Event) {
			say("event: %s", e)
		},
	})
	if err != nil {
		return err
	}
	// No MACs configured: the ARP speaker resolves them. The DSR-path
	// check sends a SYN to the VIP addressed to each server's MAC, exactly
	// as forwarded traffic travels, and wants a SYN-ACK from the VIP.
	svc := dsr.Service{VIP: vip, Protocol: dsr.TCP, Port: 80, Scheduler: "mh",
		Checks: []dsr.HealthCheck{{Checker: checker}}}
	for _, s := range lab.Servers {
		addr := s.IP
		if ipv6 {
			addr = s.IP6
		}
		svc.Backends = append(svc.Backends, dsr.Backend{Addr: addr})
	}
	if err := b.AddService(svc); err != nil {
		return err
	}

	runCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	defer wg.Wait()
	defer cancel()
	wg.Go(func() { _ = b.Serve(runCtx, fwd) })
	wg.Go(func() { _ = b.Run(runCtx) })
	if err := waitHealthy(ctx, b, len(lab.Servers)); err != nil {
		return err
	}
	say("balancer %s forwarding %s/tcp:80 to %d servers (scheduler mh)", lab.Balancer.MAC, vip, len(lab.Servers))

	tr := &traffic{per: map[string]*counter{}}
	trafficCtx, stopTraffic := context.WithCancel(runCtx)
	defer stopTraffic()
	var twg sync.WaitGroup
	for range clients {
		twg.Go(func() {
			tr.client(trafficCtx, lab.Clients[0], fmt.Sprintf("http://%s/bytes?n=%d", netip.AddrPortFrom(vip, 80), size))
		})
	}

	base, err := lab.Balancer.LinkStats()
	if err != nil {
		return err
	}
	show := func(title string, d time.Duration) error {
		return showPhase(ctx, title, d, func() error {
			st, err := lab.Balancer.LinkStats()
			if err != nil {
				return err
			}
			tr.print(lab, st.Sub(base))
			return nil
		})
	}
	if err := show("phase 1: balancing", phase); err != nil {
		return err
	}
	say("phase 2: stopping server %s (its web server process is killed)", lab.Servers[1].Name)
	if err := lab.StopServer(1); err != nil {
		return err
	}
	tr.reset()
	if err := show("  the health check marks it down; new connections go to the others", phase); err != nil {
		return err
	}
	say("phase 3: starting server %s again", lab.Servers[1].Name)
	if err := lab.StartServer(1); err != nil {
		return err
	}
	tr.reset()
	if err := show("  the health check brings it back", phase); err != nil {
		return err
	}
	stopTraffic()
	twg.Wait()
	st := b.Stats()
	fmt.Println()
	say("done: the balancer forwarded %d frames, %d flows; drops: %s", st.Forwarded, st.Services[0].Flows, drops(st))
	if x := st.XDP; x != nil {
		say("XDP program: %d frames forwarded in the kernel, %d passed up to the Go path", x.Forwarded, sum(x.Passed))
	}
	return nil
}

func sum(m map[string]uint64) (n uint64) {
	for _, v := range m {
		n += v
	}
	return n
}

// showPhase announces a phase and prints progress twice a second for d.
func showPhase(ctx context.Context, title string, d time.Duration, progress func() error) error {
	say("%s", title)
	deadline := time.Now().Add(d)
	tick := time.NewTicker(500 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-tick.C:
		}
		if err := progress(); err != nil {
			return err
		}
		if time.Now().After(deadline) {
			return nil
		}
	}
}

func say(format string, args ...any) {
	fmt.Printf("[%s] %s\n", time.Now().Format("15:04:05"), fmt.Sprintf(format, args...))
}

func drops(st dsr.Stats) string {
	var parts []string
	for _, r := range dsr.DropReasons() {
		if n := st.Drops[r]; n > 0 {
			parts = append(parts, fmt.Sprintf("%s=%d", r, n))
		}
	}
	if len(parts) == 0 {
		return "none"
	}
	return strings.Join(parts, " ")
}

type counter struct{ requests, bytes atomic.Int64 }

type traffic struct {
	mu        sync.Mutex
	per       map[string]*counter
	failed    atomic.Int64
	delivered atomic.Int64 // never reset
}

func (t *traffic) get(name string) *counter {
	t.mu.Lock()
	defer t.mu.Unlock()
	c := t.per[name]
	if c == nil {
		c = &counter{}
		t.per[name] = c
	}
	return c
}

func (t *traffic) reset() {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.per = map[string]*counter{}
	t.failed.Store(0)
}

// client fetches url over a new connection each time (a new flow, so a new
// scheduling decision) until ctx is done.
func (t *traffic) client(ctx context.Context, h *netlab.Host, url string) {
	tr := &http.Transport{DialContext: h.DialContext, DisableKeepAlives: true}
	defer tr.CloseIdleConnections()
	hc := &http.Client{Transport: tr, Timeout: 5 * time.Second}
	for ctx.Err() == nil {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		resp, err := hc.Do(req)
		if err != nil {
			if ctx.Err() == nil {
				t.failed.Add(1)
				time.Sleep(50 * time.Millisecond) // back off like a real client
			}
			continue
		}
		n, err := io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if err != nil {
			if ctx.Err() == nil { // not the demo stopping the traffic
				t.failed.Add(1)
			}
			continue
		}
		c := t.get(resp.Header.Get("X-Backend"))
		c.requests.Add(1)
		c.bytes.Add(n)
		t.delivered.Add(n)
	}
}

func (t *traffic) print(lab *netlab.Lab, lb netlab.LinkStats) {
	var line strings.Builder
	for _, s := range lab.Servers {
		c := t.get(s.Name)
		fmt.Fprintf(&line, " %s %4d req %6.1f MB |", s.Name, c.requests.Load(), float64(c.bytes.Load())/1e6)
	}
	delivered := t.delivered.Load()
	carried := lb.RxBytes + lb.TxBytes
	pct := 0.0
	if delivered > 0 {
		pct = 100 * float64(carried) / float64(delivered)
	}
	fmt.Printf("%s failed %3d | delivered %7.1f MB, balancer carried %5.2f MB (%.2f%%)\n",
		line.String(), t.failed.Load(), float64(delivered)/1e6, float64(carried)/1e6, pct)
}

// waitHealthy waits until n backends are resolved and pass their checks.
func waitHealthy(ctx context.Context, b *dsr.Balancer, n int) error {
	ctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		ready := 0
		for _, be := range b.Stats().Services[0].Backends {
			if be.MAC != nil && be.Healthy {
				ready++
			}
		}
		if ready == n {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("backends not ready: %w", ctx.Err())
		case <-tick.C:
		}
	}
}

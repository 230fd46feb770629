package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dsrlb/dsrlb/internal/netlab"
)

// ecmpRouter runs BIRD 2 on h as the router in front of the balancers: one
// eBGP session per balancer, and the kernel protocol exporting the VIP's
// routes merged into one Linux multipath route.
func ecmpRouter(t *testing.T, h *netlab.Host, balancers []*netlab.Host) (birdc func(args ...string) string) {
	t.Helper()
	var b strings.Builder
	fmt.Fprintf(&b, `router id %s;
protocol device {}
protocol kernel {
	ipv4 { import none; export all; };
	merge paths on;
}
template bgp lb {
	local %s as 65000;
	ipv4 { import all; export none; };
	connect retry time 1;
}
`, h.IP, h.IP)
	for i, lb := range balancers {
		fmt.Fprintf(&b, "protocol bgp lb%d from lb { neighbor %s as 65001; }\n", i, lb.IP)
	}
	sock := runBird(t, h, b.String())
	return func(args ...string) string {
		out, _ := exec.Command("birdc", append([]string{"-s", sock}, args...)...).CombinedOutput()
		return string(out)
	}
}

// ecmpConfig is the configuration of one of the balancers: the same Seed
// and service everywhere, with the backends listed in a different order on
// each (the Maglev table must not depend on it), backend MACs configured
// (ARP for the VIP is the router's business here: it routes the VIP to the
// balancers' own addresses), and a BGP session to the router.
func ecmpConfig(lab *netlab.Lab, self, router *netlab.Host, rotate int) string {
	var b strings.Builder
	fmt.Fprintf(&b, `interface: %s
listen: 127.0.0.1:9180
drain_timeout: 2s
seed: 14
health:
  interval: 200ms
  timeout: 150ms
  rise: 1
  fall: 2
arp:
  disabled: true
services:
  - name: web
    vip: %s
    protocol: tcp
    port: 80
    scheduler: mh
    checks:
      - type: tcp
    backends:
`, self.Link, lab.VIPs[0])
	n := len(lab.Servers)
	for k := range n {
		s := lab.Servers[(k+rotate)%n]
		fmt.Fprintf(&b, "      - addr: %s\n        mac: %s\n", s.IP, s.MAC)
	}
	fmt.Fprintf(&b, `bgp:
  router_id: %s
  local_as: 65001
  peers:
    - address: %s
      as: 65000
      hold_time: 3s
`, self.IP, router.IP)
	return b.String()
}

// ecmpFlow is one long-lived client connection through the router.
type ecmpFlow struct {
	conn    net.Conn
	rd      *bufio.Reader
	port    uint16
	backend string // the server that answered the first request
}

// ask sends one keep-alive request on the flow and returns the name of the
// server that answered it.
func (f *ecmpFlow) ask() (string, error) {
	if err := f.conn.SetDeadline(time.Now().Add(10 * time.Second)); err != nil {
		return "", err
	}
	if _, err := io.WriteString(f.conn, "GET / HTTP/1.1\r\nHost: vip\r\n\r\n"); err != nil {
		return "", err
	}
	r, err := http.ReadResponse(f.rd, nil)
	if err != nil {
		return "", err
	}
	defer r.Body.Close()
	body, err := io.ReadAll(r.Body)
	if err != nil {
		return "", err
	}
	if r.StatusCode != http.StatusOK {
		return "", fmt.Errorf("status %s", r.Status)
	}
	return string(body), nil
}

// forEach runs fn for every flow on a few goroutines.
func forEach(flows []*ecmpFlow, fn func(i int, f *ecmpFlow)) {
	var wg sync.WaitGroup
	next := make(chan int)
	for range 32 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				fn(i, flows[i])
			}
		}()
	}
	for i := range flows {
		next <- i
	}
	close(next)
	wg.Wait()
}

// holder returns the index of the daemon whose flow table holds the flow:
// the balancer the router sends it through. It asks every daemon's live
// Explain; exactly one must hold the flow.
func holder(daemons []*runningDaemon, src netip.Addr, vip netip.Addr, f *ecmpFlow) (int, error) {
	found := -1
	q := url.Values{"flow": {fmt.Sprintf("%s:%d %s:80/tcp", src, f.port, vip)}, "format": {"json"}}
	for i, d := range daemons {
		page, err := d.get("/explain?" + q.Encode())
		if err != nil {
			return -1, err
		}
		var e struct {
			Why string `json:"why"`
		}
		if err := json.Unmarshal([]byte(page), &e); err != nil {
			return -1, fmt.Errorf("%s: %w", page, err)
		}
		if e.Why != "flow-table hit" {
			continue
		}
		if found >= 0 {
			return -1, fmt.Errorf("port %d: held by balancers %d and %d", f.port, found, i)
		}
		found = i
	}
	if found < 0 {
		return -1, fmt.Errorf("port %d: no balancer holds the flow", f.port)
	}
	return found, nil
}

// TestIntegrationECMPScaleOut is issue 14's ECMP test: three balancers with
// the same Seed and service announce the VIP by BGP to a router (BIRD),
// whose kernel spreads the clients' flows over them by a multipath route
// with the L4 hash. Clients sit behind the router on a link of their own;
// the servers answer them directly through the router. With 1,000
// long-lived flows open, one balancer stops: its route is withdrawn and the
// router re-hashes its flows onto the other two, which must send each to the
// backend it already had (same Seed, same Maglev table). None of the flows
// on the remaining balancers may break, and under 1% of the flows that moved.
func TestIntegrationECMPScaleOut(t *testing.T) {
	netlab.RequirePrivileged(t)
	const flowCount = 1000
	bin := buildDaemon(t)
	lab := netlab.NewT(t, &netlab.Config{Servers: 3, Clients: 3})
	router := lab.Clients[0]
	balancers := []*netlab.Host{lab.Balancer, lab.Clients[1], lab.Clients[2]}
	clientLink := netip.MustParsePrefix("198.51.100.0/30")
	client, err := lab.AddExternal(router, clientLink)
	require.NoError(t, err)
	for _, s := range lab.Servers {
		require.NoError(t, s.AddRoute(clientLink, router.IP), "the servers answer the clients through the router")
	}
	require.NoError(t, router.Sysctl("net.ipv4.fib_multipath_hash_policy", "1"))
	birdc := ecmpRouter(t, router, balancers)
	vip := lab.VIPs[0]

	daemons := make([]*runningDaemon, len(balancers))
	for i, h := range balancers {
		daemons[i] = startOn(t, lab, h, bin, ecmpConfig(lab, h, router, i))
	}
	routeShow := func() string {
		out, err := router.Command(context.Background(), "ip", "route", "show", vip.String()+"/32").CombinedOutput()
		require.NoError(t, err, "%s", out)
		return string(out)
	}
	waitFor(t, "a multipath route to the VIP over the three balancers", 30*time.Second, nil, func() bool {
		return strings.Count(routeShow(), "nexthop via") == len(balancers)
	})
	t.Logf("router's route:\n%s", routeShow())

	// Open the flows; each asks once and stays open (the servers keep idle
	// keep-alive connections without limit).
	flows := make([]*ecmpFlow, flowCount)
	var mu sync.Mutex
	var openErrs []error
	forEach(flows, func(i int, _ *ecmpFlow) {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		c, err := client.DialContext(ctx, "tcp4", netip.AddrPortFrom(vip, 80).String())
		if err == nil {
			f := &ecmpFlow{conn: c, rd: bufio.NewReader(c), port: uint16(c.LocalAddr().(*net.TCPAddr).Port)}
			if f.backend, err = f.ask(); err == nil {
				flows[i] = f
				return
			}
			_ = c.Close()
		}
		mu.Lock()
		openErrs = append(openErrs, err)
		mu.Unlock()
	})
	t.Cleanup(func() {
		for _, f := range flows {
			if f != nil {
				_ = f.conn.Close()
			}
		}
	})
	require.Empty(t, openErrs, "every flow opens and is answered before any balancer stops")

	// Which balancer carries each flow: the one whose flow table holds it.
	on := make([]int, flowCount)
	var holdErrs []error
	forEach(flows, func(i int, f *ecmpFlow) {
		var err error
		if on[i], err = holder(daemons, client.IP, vip, f); err != nil {
			mu.Lock()
			holdErrs = append(holdErrs, err)
			mu.Unlock()
		}
	})
	require.Empty(t, holdErrs)
	perBalancer := make([]int, len(balancers))
	perBackend := map[string]int{}
	for i, f := range flows {
		perBalancer[on[i]]++
		perBackend[f.backend]++
	}
	names := make([]string, len(balancers))
	for i, h := range balancers {
		names[i] = h.Name + " " + h.IP.String()
	}
	t.Logf("flows per balancer %v: %v; per backend: %v", names, perBalancer, perBackend)
	for i, h := range balancers {
		require.Positive(t, perBalancer[i], "the router sent no flow to %s: the L4 multipath hash is not in effect", h.Name)
	}
	require.Len(t, perBackend, len(lab.Servers), "every backend has flows")

	// Stop one balancer: SIGTERM withdraws its route first, then it drains
	// and exits.
	gone := 1
	require.NoError(t, daemons[gone].cmd.Process.Signal(syscall.SIGTERM))
	waitFor(t, "the router's route without the stopped balancer", 30*time.Second, nil, func() bool {
		r := routeShow()
		return strings.Count(r, "nexthop via") == len(balancers)-1 && !strings.Contains(r, "via "+balancers[gone].IP.String()+" ")
	})
	select {
	case err := <-daemons[gone].done:
		require.NoError(t, err, "the stopped balancer exits cleanly")
	case <-time.After(30 * time.Second):
		t.Fatal("the stopped balancer did not exit after its drain")
	}
	t.Logf("router's route after the stop:\n%s\n%s", routeShow(), birdc("show", "protocols"))

	// Every flow asks again on its open connection: a flow that reached
	// another backend would be reset by it (or answered by another name).
	// The flows of the stopped balancer move to the other two; the kernel's
	// hash-threshold multipath may also move some flows between those two,
	// which then must not break either.
	var brokeMoved, brokeStayed int
	var examples []string
	forEach(flows, func(i int, f *ecmpFlow) {
		name, err := f.ask()
		if err == nil && name == f.backend {
			return
		}
		mu.Lock()
		defer mu.Unlock()
		if on[i] == gone {
			brokeMoved++
		} else {
			brokeStayed++
		}
		if len(examples) < 5 {
			examples = append(examples, fmt.Sprintf("port %d (was on %s, backend %s): got %q, %v", f.port, balancers[on[i]].Name, f.backend, name, err))
		}
	})
	movedN := perBalancer[gone]
	stayedN := flowCount - movedN
	t.Logf("%d flows: %d on the remaining balancers (%d broke), %d moved from the stopped one to another (%d broke)",
		flowCount, stayedN, brokeStayed, movedN, brokeMoved)
	assert.Zero(t, brokeStayed, "flows on the remaining balancers broke: %v", examples)
	assert.Less(t, brokeMoved*100, movedN, "1%% or more of the moved flows broke: %v", examples)
}

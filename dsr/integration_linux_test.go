package dsr

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptrace"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/vishvananda/netlink"

	"github.com/dsrlb/dsrlb/arp"
	"github.com/dsrlb/dsrlb/health"
	"github.com/dsrlb/dsrlb/internal/flowtable"
	"github.com/dsrlb/dsrlb/internal/netlab"
	"github.com/dsrlb/dsrlb/internal/xdp"
)

// liveBalancer is a Balancer forwarding with real AF_PACKET sockets inside a
// lab's balancer namespace.
type liveBalancer struct {
	*Balancer
	lab  *netlab.Lab
	fwds []servedForwarder
}

// servedForwarder is what the tests need of a PacketForwarder or an
// XDPForwarder.
type servedForwarder interface {
	Forwarder
	Stats() PacketStats
	Close() error
}

// dataPlanes are the two ways a Balancer forwards, which the integration
// tests that carry real traffic run in turn.
var dataPlanes = []string{"packet", "xdp"}

// startBalancerOn is startBalancerWith on the data plane plane ("packet" or
// "xdp").
func startBalancerOn(t *testing.T, lab *netlab.Lab, plane string, cfg *Config, arpCfg *arp.Config, services ...Service) *liveBalancer {
	t.Helper()
	return startBalancerPlane(t, lab, plane, cfg, arpCfg, services...)
}

// startBalancer runs a Balancer with `workers` packet forwarders (one
// fanout group) and an ARP speaker in the lab's balancer namespace until the
// test ends. Clients reach the VIPs through their kernels' ARP.
func startBalancer(t *testing.T, lab *netlab.Lab, workers int, services ...Service) *liveBalancer {
	return startBalancerWith(t, lab, &Config{Workers: workers}, nil, services...)
}

func startBalancerWith(t *testing.T, lab *netlab.Lab, cfg *Config, arpCfg *arp.Config, services ...Service) *liveBalancer {
	t.Helper()
	return startBalancerPlane(t, lab, "packet", cfg, arpCfg, services...)
}

func startBalancerPlane(t *testing.T, lab *netlab.Lab, plane string, cfg *Config, arpCfg *arp.Config, services ...Service) *liveBalancer {
	t.Helper()
	workers := max(cfg.Workers, 1)
	var speaker *arp.Speaker
	require.NoError(t, lab.Balancer.Do(func() error {
		ifi, err := net.InterfaceByName(lab.Balancer.Link)
		if err != nil {
			return err
		}
		speaker, err = arp.Listen(ifi, arpCfg)
		return err
	}))
	cfg.ARP = speaker
	b, err := New(cfg)
	require.NoError(t, err)
	for _, s := range services {
		require.NoError(t, b.AddService(s))
	}
	lb := &liveBalancer{Balancer: b, lab: lab}
	var vips []netip.Addr
	for _, s := range services {
		vips = append(vips, s.VIP)
	}
	require.NoError(t, lab.Balancer.Do(func() error {
		problems, err := CheckHost(lab.Balancer.Link, vips)
		if err != nil {
			return err
		}
		if len(problems) > 0 {
			return fmt.Errorf("host check: %v", problems)
		}
		if plane == "xdp" {
			// One program serves the interface; the frames it passes up
			// come to one packet socket.
			f, err := ListenXDP(lab.Balancer.Link, &XDPConfig{Packet: &PacketConfig{VIPs: vips}})
			if err != nil {
				return err
			}
			lb.fwds = append(lb.fwds, f)
			return nil
		}
		for range workers {
			// The filter passes the VIPs from the start: traffic that arrives
			// before Serve takes over the socket is not lost.
			f, err := ListenPacket(lab.Balancer.Link, &PacketConfig{Fanout: 7, VIPs: vips})
			if err != nil {
				return err
			}
			lb.fwds = append(lb.fwds, f)
		}
		return nil
	}))
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	for _, f := range lb.fwds {
		wg.Go(func() {
			if err := b.Serve(ctx, f); err != nil {
				t.Errorf("serve: %v", err)
			}
		})
	}
	wg.Go(func() { _ = b.Run(ctx) })
	// Traffic starts once every forwarder is served: an XDP program with
	// no plan yet passes everything up, and a flow whose first packets the
	// Go path took and whose next ones the program takes would have an
	// entry in both tables.
	deadline := time.Now().Add(10 * time.Second)
	for {
		b.fwdMu.Lock()
		n := len(b.forwarders)
		b.fwdMu.Unlock()
		if n == len(lb.fwds) {
			break
		}
		require.True(t, time.Now().Before(deadline), "forwarders not served within 10s")
		time.Sleep(5 * time.Millisecond)
	}
	t.Cleanup(func() {
		if t.Failed() {
			// Before the forwarders stop: an XDP forwarder's counters go
			// with it.
			st := b.Stats()
			t.Logf("balancer stats: %+v", st)
			if st.XDP != nil {
				t.Logf("xdp program: %+v", *st.XDP)
				s := b.snap.Load()
				now := b.now()
				for _, f := range lb.fwds {
					if x, ok := f.(*XDPForwarder); ok {
						_ = x.prog.Flows(func(k flowtable.Key, fl xdp.Flow) bool {
							id, ok := x.goID(fl.Backend)
							if be := s.backend(id); ok && be != nil && be.state == BackendDraining && !x.prog.Expired(k.Proto, fl, now) {
								t.Logf("live XDP flow on a draining backend: %s:%d state %v lastseen %d now %d", k.SrcAddr(), k.SrcPort, fl.State, fl.LastSeen, now)
							}
							return true
						})
					}
				}
			}
		}
		cancel()
		wg.Wait()
		for _, f := range lb.fwds {
			_ = f.Close()
		}
		_ = speaker.Close()
	})
	return lb
}

func labService(lab *netlab.Lab, vip netip.Addr, port uint16, servers ...int) Service {
	s := Service{VIP: vip, Protocol: TCP, Port: port}
	for _, i := range servers {
		s.Backends = append(s.Backends, labBackend(lab, i, vip.Is6()))
	}
	return s
}

func labBackend(lab *netlab.Lab, i int, v6 bool) Backend {
	h := lab.Servers[i]
	addr := h.IP
	if v6 {
		addr = h.IP6
	}
	return Backend{Addr: addr, MAC: h.MAC}
}

func serverIndex(lab *netlab.Lab, name string) int {
	for i, h := range lab.Servers {
		if h.Name == name {
			return i
		}
	}
	return -1
}

// expectedBackend asks Explain which backend the flow has, from the plan
// and flow table the forwarding path used: a real TCP connection and the
// explanation of its flow must agree.
func (lb *liveBalancer) expectedBackend(t *testing.T, src, dst netip.AddrPort) netip.Addr {
	e, err := lb.ExplainFlow(Tuple{Src: src, Dst: dst, Protocol: TCP})
	require.NoError(t, err)
	require.True(t, e.Forward, "%s", e.String())
	return e.Backend
}

func TestIntegrationForwardHTTP(t *testing.T) {
	lab := netlab.NewT(t, &netlab.Config{Servers: 3, IPv6: true})
	v4 := labService(lab, lab.VIPs[0], 80, 0, 1, 2)
	v6 := labService(lab, lab.VIPs[1], 80, 0, 1, 2)
	lb := startBalancer(t, lab, 2, v4, v6)
	client := lab.Clients[0]

	for _, vip := range lab.VIPs {
		t.Run(vip.String(), func(t *testing.T) {
			tr := &http.Transport{DialContext: client.DialContext, DisableKeepAlives: true}
			defer tr.CloseIdleConnections()
			hc := &http.Client{Transport: tr, Timeout: 10 * time.Second}
			url := "http://" + netip.AddrPortFrom(vip, 80).String() + "/"
			per := map[string]int{}
			const requests = 150
			for range requests {
				var local netip.AddrPort
				ctx := httptrace.WithClientTrace(context.Background(), &httptrace.ClientTrace{
					GotConn: func(ci httptrace.GotConnInfo) {
						local = ci.Conn.LocalAddr().(*net.TCPAddr).AddrPort()
					},
				})
				req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
				require.NoError(t, err)
				resp, err := hc.Do(req)
				require.NoError(t, err)
				body, err := io.ReadAll(resp.Body)
				resp.Body.Close()
				require.NoError(t, err)
				require.Equal(t, http.StatusOK, resp.StatusCode)
				name := string(body)
				require.Equal(t, name, resp.Header.Get("X-Backend"))
				per[name]++
				// The server that answered is the one the scheduler picks.
				want := lb.expectedBackend(t, netip.AddrPortFrom(local.Addr().Unmap(), local.Port()), netip.AddrPortFrom(vip, 80))
				i := serverIndex(lab, name)
				require.GreaterOrEqual(t, i, 0)
				got := lab.Servers[i].IP
				if vip.Is6() {
					got = lab.Servers[i].IP6
				}
				require.Equal(t, want, got, "request from %s", local)
			}
			require.Len(t, per, 3, "all three servers served: %v", per)
			for name, n := range per {
				assert.Greater(t, n, requests/10, "server %s got %d of %d", name, n, requests)
			}
		})
	}
	st := lb.Stats()
	assert.Zero(t, st.Drops[DropMalformed])
	assert.Zero(t, st.Drops[DropOwnSource], "own transmissions must not come back")
}

func TestIntegrationBulkTransfersBypassBalancer(t *testing.T) {
	for _, plane := range dataPlanes {
		for _, family := range []string{"IPv4", "IPv6"} {
			t.Run(plane+"/"+family, func(t *testing.T) {
				lab := netlab.NewT(t, &netlab.Config{Servers: 3, IPv6: family == "IPv6"})
				testBulkTransfers(t, lab, plane, lab.VIPs[len(lab.VIPs)-1])
			})
		}
	}
}

// testBulkTransfers downloads and uploads 20 MB through vip, with the
// default offloads on every interface.
func testBulkTransfers(t *testing.T, lab *netlab.Lab, plane string, vip netip.Addr) {
	lb := startBalancerOn(t, lab, plane, &Config{Workers: 1}, nil, labService(lab, vip, 80, 0, 1, 2))
	client := lab.Clients[0]
	hc := client.HTTPClient()
	hc.Timeout = time.Minute // the whole download, body included: a stalled flow fails the test
	defer hc.CloseIdleConnections()
	base := "http://" + netip.AddrPortFrom(vip, 80).String()
	const size = 20 << 20

	before, err := lab.Balancer.LinkStats()
	require.NoError(t, err)
	resp, err := hc.Get(fmt.Sprintf("%s/bytes?n=%d", base, size))
	require.NoError(t, err)
	n, bad := readPattern(t, resp.Body, 0)
	resp.Body.Close()
	require.Equal(t, int64(size), n)
	require.Equal(t, -1, bad, "downloaded bytes differ from the pattern at %d", bad)
	after, err := lab.Balancer.LinkStats()
	require.NoError(t, err)
	seen := after.Sub(before)
	carried := seen.RxBytes + seen.TxBytes
	t.Logf("download of %d bytes: the balancer's interface carried %d bytes (%.3f%%)", size, carried, 100*float64(carried)/size)
	assert.Less(t, float64(carried), 0.02*size, "response bytes must bypass the balancer")

	// Upload: every byte passes the balancer, and arrives intact.
	payload := make([]byte, size)
	netlab.FillPattern(payload, 0)
	sum := sha256.Sum256(payload)
	resp, err = hc.Post(base+"/upload", "application/octet-stream", bytes.NewReader(payload))
	require.NoError(t, err)
	var up netlab.UploadResult
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&up))
	resp.Body.Close()
	assert.Equal(t, int64(size), up.N)
	assert.Equal(t, hex.EncodeToString(sum[:]), up.SHA256)

	st := lb.Stats()
	assert.Zero(t, st.Drops[DropMalformed])
	assert.Zero(t, st.Drops[DropTransmit])
	t.Logf("forwarded %d frames; packet stats %+v", st.Forwarded, lb.fwds[0].Stats())
}

// readPattern drains r, which continues the servers' pattern at offset off,
// and returns the offset it ended at and the offset of the first byte that
// differs from the pattern (-1 if none).
func readPattern(t *testing.T, r io.Reader, off int64) (int64, int) {
	buf := make([]byte, 256<<10)
	bad := -1
	for {
		n, err := r.Read(buf)
		if n > 0 && bad < 0 {
			if i := netlab.CheckPattern(buf[:n], off); i >= 0 {
				bad = int(off) + i
			}
		}
		off += int64(n)
		if err == io.EOF {
			return off, bad
		}
		require.NoError(t, err)
	}
}

// TestIntegrationBackendChangesDuringDownload changes the backend set while
// a download is half read: the client holds the rest in the server's socket
// buffers and its own receive window, so the flow is live across the change.
func TestIntegrationBackendChangesDuringDownload(t *testing.T) {
	lab := netlab.NewT(t, &netlab.Config{Servers: 4})
	svc := labService(lab, lab.VIPs[0], 80, 0, 1, 2)
	lb := startBalancer(t, lab, 1, svc)
	client := lab.Clients[0]
	hc := client.HTTPClient()
	hc.Timeout = time.Minute // the whole download, body included: a stalled flow fails the test
	defer hc.CloseIdleConnections()
	const size = 20 << 20

	resp, err := hc.Get(fmt.Sprintf("http://%s/bytes?n=%d", lab.VIPs[0], size))
	require.NoError(t, err)
	defer resp.Body.Close()
	serving := serverIndex(lab, resp.Header.Get("X-Backend"))
	require.GreaterOrEqual(t, serving, 0)

	// Read the first megabyte, then change the backend set under the
	// running download: add server 3 and remove a server that is not
	// serving it.
	buf := make([]byte, 1<<20)
	_, err = io.ReadFull(resp.Body, buf)
	require.NoError(t, err)
	require.Equal(t, -1, netlab.CheckPattern(buf, 0))
	require.NoError(t, lb.AddBackend(svc.Key(), labBackend(lab, 3, false)))
	other := (serving + 1) % 3
	require.NoError(t, lb.RemoveBackend(svc.Key(), lab.Servers[other].IP))

	rest, bad := readPattern(t, resp.Body, 1<<20)
	assert.Equal(t, int64(size), rest)
	assert.Equal(t, -1, bad)
	assert.Zero(t, lb.Stats().Services[0].Rescheduled, "the download's flow never moved")

	// New requests are spread over the new set, and never reach the
	// removed server.
	tr := &http.Transport{DialContext: client.DialContext, DisableKeepAlives: true}
	defer tr.CloseIdleConnections()
	hc2 := &http.Client{Transport: tr, Timeout: 10 * time.Second}
	seen := map[string]bool{}
	for range 60 {
		r, err := hc2.Get(fmt.Sprintf("http://%s/", lab.VIPs[0]))
		require.NoError(t, err)
		body, _ := io.ReadAll(r.Body)
		r.Body.Close()
		seen[strings.TrimSpace(string(body))] = true
	}
	assert.False(t, seen[lab.Servers[other].Name], "removed backend got new flows")
	assert.True(t, seen[lab.Servers[3].Name], "added backend got no flows: %v", seen)
}

func TestIntegrationUDP(t *testing.T) {
	lab := netlab.NewT(t, &netlab.Config{Servers: 3})
	svc := labService(lab, lab.VIPs[0], lab.Cfg.UDPPort, 0, 1, 2)
	svc.Protocol = UDP
	startBalancer(t, lab, 1, svc)
	seen := map[string]bool{}
	for i := range 60 {
		c, err := lab.Clients[0].DialContext(context.Background(), "udp", netip.AddrPortFrom(lab.VIPs[0], lab.Cfg.UDPPort).String())
		require.NoError(t, err)
		require.NoError(t, c.SetDeadline(time.Now().Add(5*time.Second)))
		msg := fmt.Sprintf("ping-%d", i)
		_, err = c.Write([]byte(msg))
		require.NoError(t, err)
		buf := make([]byte, 512)
		n, err := c.Read(buf)
		require.NoError(t, err)
		name, payload, ok := strings.Cut(string(buf[:n]), ":")
		require.True(t, ok)
		require.Equal(t, msg, payload)
		seen[name] = true
		c.Close()
	}
	assert.Len(t, seen, 3, "datagrams of different flows spread over all servers: %v", seen)
}

// TestIntegrationARP: the client's kernel finds the VIP through the
// balancer's ARP answers; backends configured without a MAC are resolved;
// a server whose MAC changes keeps getting its traffic within one resolver
// refresh.
func TestIntegrationARP(t *testing.T) {
	lab := netlab.NewT(t, &netlab.Config{Servers: 2})
	svc := Service{VIP: lab.VIPs[0], Protocol: TCP, Port: 80}
	for _, s := range lab.Servers {
		svc.Backends = append(svc.Backends, Backend{Addr: s.IP}) // no MAC: resolve it
	}
	events := make(chan Event, 64)
	cfg := &Config{OnEvent: func(e Event) { events <- e }}
	lb := startBalancerWith(t, lab, cfg, &arp.Config{ResolveInterval: 300 * time.Millisecond, ResolveTimeout: 200 * time.Millisecond}, svc)

	resolved := map[netip.Addr]bool{}
	deadline := time.After(10 * time.Second) // once: other events must not extend it
	for len(resolved) < len(lab.Servers) {
		select {
		case e := <-events:
			if e.Kind == EventMACResolved {
				resolved[e.Backend] = true
			}
		case <-deadline:
			t.Fatalf("backends resolved: %v", resolved)
		}
	}
	client := lab.Clients[0]
	get := func() (string, error) {
		tr := &http.Transport{DialContext: client.DialContext, DisableKeepAlives: true}
		defer tr.CloseIdleConnections()
		hc := &http.Client{Transport: tr, Timeout: 2 * time.Second}
		r, err := hc.Get(fmt.Sprintf("http://%s/", lab.VIPs[0]))
		if err != nil {
			return "", err
		}
		defer r.Body.Close()
		b, err := io.ReadAll(r.Body)
		return string(b), err
	}
	seen := map[string]bool{}
	for range 40 {
		name, err := get()
		require.NoError(t, err)
		seen[name] = true
	}
	require.Len(t, seen, 2)
	// The client's kernel learned the VIP from our ARP answer.
	var neighMAC net.HardwareAddr
	require.NoError(t, client.Do(func() error {
		ns, err := netlink.NeighList(0, netlink.FAMILY_V4)
		for _, n := range ns {
			if a, ok := netip.AddrFromSlice(n.IP); ok && a.Unmap() == lab.VIPs[0] {
				neighMAC = n.HardwareAddr
			}
		}
		return err
	}))
	assert.Equal(t, lab.Balancer.MAC, neighMAC)

	// Server 1 gets a new MAC.
	newMAC := net.HardwareAddr{0x02, 0xaa, 0, 0, 0, 0x21}
	require.NoError(t, lab.Servers[1].Do(func() error {
		l, err := netlink.LinkByName(lab.Servers[1].Link)
		if err != nil {
			return err
		}
		return netlink.LinkSetHardwareAddr(l, newMAC)
	}))
	changed := time.Now()
	changeDeadline := time.After(5 * time.Second) // once: other events must not extend it
	for {
		select {
		case e := <-events:
			if e.Kind != EventMACResolved || e.Backend != lab.Servers[1].IP {
				continue
			}
			assert.Equal(t, newMAC, e.MAC)
		case <-changeDeadline:
			t.Fatal("no MAC change noticed")
		}
		break
	}
	t.Logf("MAC change followed after %v", time.Since(changed))
	st := lb.Stats().Services[0].Backends[1]
	assert.Equal(t, newMAC, st.MAC)
	seen = map[string]bool{}
	for range 40 {
		name, err := get()
		require.NoError(t, err, "requests succeed after the MAC change")
		seen[name] = true
	}
	assert.True(t, seen[lab.Servers[1].Name], "the moved server still gets traffic: %v", seen)
}

// TestIntegrationVIPConflict: a server with arp_ignore=0 answers ARP for the
// VIP and steals traffic; the Balancer names it.
func TestIntegrationVIPConflict(t *testing.T) {
	zero := 0
	lab := netlab.NewT(t, &netlab.Config{Servers: 2, Server: func(i int) netlab.ServerOptions {
		if i == 1 {
			return netlab.ServerOptions{ARPIgnore: &zero, ARPAnnounce: &zero}
		}
		return netlab.ServerOptions{}
	}})
	events := make(chan Event, 64)
	cfg := &Config{OnEvent: func(e Event) { events <- e }}
	startBalancerWith(t, lab, cfg, &arp.Config{ConflictProbeInterval: 300 * time.Millisecond}, labService(lab, lab.VIPs[0], 80, 0, 1))
	deadline := time.After(10 * time.Second) // once: other events must not extend it
	for {
		select {
		case e := <-events:
			if e.Kind != EventVIPConflict {
				continue
			}
			assert.Equal(t, lab.VIPs[0], e.VIP)
			assert.Equal(t, lab.Servers[1].MAC, e.MAC)
			assert.Equal(t, lab.Servers[1].IP, e.Backend, "the conflict names the misconfigured backend")
			assert.ErrorContains(t, e.Reason, "arp_ignore")
			return
		case <-deadline:
			t.Fatal("no conflict event")
		}
	}
}

// TestIntegrationVIPConflictIPv6: a server with the VIP on its segment
// interface answers neighbour solicitations for it and steals traffic; the
// Balancer names it.
func TestIntegrationVIPConflictIPv6(t *testing.T) {
	lab := netlab.NewT(t, &netlab.Config{Servers: 2, IPv6: true})
	vip := lab.VIPs[1]
	require.True(t, vip.Is6())
	out, err := lab.Servers[1].Command(context.Background(), "ip", "-6", "addr", "add", vip.String()+"/128", "dev", lab.Servers[1].Link, "nodad").CombinedOutput()
	require.NoError(t, err, "%s", out)
	events := make(chan Event, 64)
	cfg := &Config{OnEvent: func(e Event) { events <- e }}
	startBalancerWith(t, lab, cfg, &arp.Config{ConflictProbeInterval: 300 * time.Millisecond}, labService(lab, vip, 80, 0, 1))
	e := waitFor(t, events, EventVIPConflict, netip.Addr{}, 10*time.Second)
	assert.Equal(t, vip, e.VIP)
	assert.Equal(t, lab.Servers[1].MAC, e.MAC)
	assert.Equal(t, lab.Servers[1].IP6, e.Backend, "the conflict names the misconfigured backend")
	assert.ErrorContains(t, e.Reason, "neighbour solicitations")
}

// loadLoop sends requests over new connections until stop is closed and
// records each result with its time.
type loadLoop struct {
	mu      sync.Mutex
	results []loadResult
	stop    chan struct{}
	wg      sync.WaitGroup
}

type loadResult struct {
	at      time.Time
	backend string
	err     error
}

func startLoad(lab *netlab.Lab, vip netip.Addr, clients int, path string) *loadLoop {
	l := &loadLoop{stop: make(chan struct{})}
	for range clients {
		l.wg.Go(func() {
			tr := &http.Transport{DialContext: lab.Clients[0].DialContext, DisableKeepAlives: true}
			defer tr.CloseIdleConnections()
			hc := &http.Client{Transport: tr, Timeout: 3 * time.Second}
			for {
				select {
				case <-l.stop:
					return
				default:
				}
				r, err := hc.Get(fmt.Sprintf("http://%s%s", netip.AddrPortFrom(vip, 80), path))
				res := loadResult{at: time.Now(), err: err}
				if err == nil {
					_, err = io.Copy(io.Discard, r.Body)
					r.Body.Close()
					res.backend, res.err = r.Header.Get("X-Backend"), err
				}
				l.mu.Lock()
				l.results = append(l.results, res)
				l.mu.Unlock()
			}
		})
	}
	return l
}

func (l *loadLoop) halt() []loadResult {
	close(l.stop)
	l.wg.Wait()
	return l.results
}

// count returns how many results so far succeeded.
func (l *loadLoop) count() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := 0
	for _, r := range l.results {
		if r.err == nil {
			n++
		}
	}
	return n
}

// waitFor waits (bounded) for the next event of kind about backend.
func waitFor(t *testing.T, events <-chan Event, kind EventKind, backend netip.Addr, within time.Duration) Event {
	t.Helper()
	deadline := time.After(within)
	for {
		select {
		case e := <-events:
			if e.Kind == kind && (!backend.IsValid() || e.Backend == backend) {
				return e
			}
		case <-deadline:
			t.Fatalf("no %s event for %s within %v", kind, backend, within)
			return Event{}
		}
	}
}

func (l *loadLoop) waitSuccesses(t *testing.T, n int) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for l.count() < n {
		require.True(t, time.Now().Before(deadline), "only %d successful requests", l.count())
		time.Sleep(10 * time.Millisecond)
	}
}

// TestIntegrationHealthFailover kills a server under load: the DSR-path
// check marks it down within fall × interval, its new flows go to the
// others, and every request after fall × interval + 1 s succeeds. Restarted,
// it is back after rise checks.
func TestIntegrationHealthFailover(t *testing.T) {
	for _, plane := range dataPlanes {
		for _, family := range []string{"IPv4", "IPv6"} {
			t.Run(plane+"/"+family, func(t *testing.T) {
				lab := netlab.NewT(t, &netlab.Config{Servers: 3, IPv6: family == "IPv6"})
				testHealthFailover(t, lab, plane, lab.VIPs[len(lab.VIPs)-1])
			})
		}
	}
}

func testHealthFailover(t *testing.T, lab *netlab.Lab, plane string, vip netip.Addr) {
	var checker *health.DSRPathChecker
	require.NoError(t, lab.Balancer.Do(func() (err error) {
		checker, err = health.NewDSRPathChecker(&health.DSRPathConfig{Interface: lab.Balancer.Link})
		return err
	}))
	t.Cleanup(func() { checker.Close() })
	const interval, fall, rise = 200 * time.Millisecond, 2, 2
	events := make(chan Event, 256)
	cfg := &Config{
		Health:  &health.MonitorConfig{Interval: interval, Timeout: 150 * time.Millisecond, Fall: fall, Rise: rise},
		OnEvent: func(e Event) { events <- e },
	}
	svc := labService(lab, vip, 80, 0, 1, 2)
	svc.Checks = []HealthCheck{{Checker: checker}}
	startBalancerOn(t, lab, plane, cfg, nil, svc)
	victim := lab.Servers[1]
	victimAddr := labBackend(lab, 1, vip.Is6()).Addr

	load := startLoad(lab, vip, 4, "/")
	load.waitSuccesses(t, 50)
	require.NoError(t, lab.StopServer(1))
	killed := time.Now()
	down := waitFor(t, events, EventBackendDown, victimAddr, 5*time.Second)
	t.Logf("down after %v: %v", down.At.Sub(killed), down.Reason)
	settled := killed.Add(fall*interval + time.Second)
	load.waitSuccesses(t, load.count()+100)
	for time.Now().Before(settled.Add(500 * time.Millisecond)) {
		time.Sleep(20 * time.Millisecond)
	}
	require.NoError(t, lab.StartServer(1))
	restarted := time.Now()
	up := waitFor(t, events, EventBackendUp, victimAddr, 5*time.Second)
	t.Logf("up after %v", up.At.Sub(restarted))
	load.waitSuccesses(t, load.count()+400)
	results := load.halt()

	failedAfter, servedByVictim, backAfter := 0, 0, 0
	for _, r := range results {
		switch {
		case r.at.After(settled) && r.at.Before(restarted):
			if r.err != nil {
				failedAfter++
			}
			if r.backend == victim.Name {
				servedByVictim++
			}
		case r.at.After(up.At) && r.backend == victim.Name:
			backAfter++
		}
	}
	assert.Zero(t, failedAfter, "requests after fall × interval + 1 s all succeed")
	assert.Zero(t, servedByVictim, "no new flow reaches the dead server")
	assert.Positive(t, backAfter, "the restarted server takes flows again")
}

// TestIntegrationDrainUnderLoad drains a backend while clients keep
// requesting: nothing fails, and the drained event comes once its last flow
// has ended.
func TestIntegrationDrainUnderLoad(t *testing.T) {
	for _, plane := range dataPlanes {
		for _, family := range []string{"IPv4", "IPv6"} {
			t.Run(plane+"/"+family, func(t *testing.T) {
				lab := netlab.NewT(t, &netlab.Config{Servers: 3, IPv6: family == "IPv6"})
				testDrainUnderLoad(t, lab, plane, lab.VIPs[len(lab.VIPs)-1])
			})
		}
	}
}

func testDrainUnderLoad(t *testing.T, lab *netlab.Lab, plane string, vip netip.Addr) {
	events := make(chan Event, 256)
	cfg := &Config{TCPClosingTimeout: time.Second, OnEvent: func(e Event) { events <- e }}
	svc := labService(lab, vip, 80, 0, 1, 2)
	lb := startBalancerOn(t, lab, plane, cfg, nil, svc)
	load := startLoad(lab, vip, 4, "/bytes?n=300000")
	load.waitSuccesses(t, 60)
	drained := lab.Servers[2]
	drainedAddr := labBackend(lab, 2, vip.Is6()).Addr
	require.NoError(t, lb.DrainBackend(svc.Key(), drainedAddr))
	drainedAt := time.Now()
	load.waitSuccesses(t, load.count()+150)
	e := waitFor(t, events, EventBackendDrained, drainedAddr, 15*time.Second)
	require.NoError(t, e.Reason, "drained because its flows ended, not by deadline")
	results := load.halt()
	failed, lateOnDrained := 0, 0
	for _, r := range results {
		if r.err != nil {
			failed++
			t.Logf("failed: %v", r.err)
		}
		if r.at.After(drainedAt.Add(time.Second)) && r.backend == drained.Name {
			lateOnDrained++
		}
	}
	assert.Zero(t, failed, "no request fails while a backend drains")
	assert.Zero(t, lateOnDrained, "no new flow reaches the draining backend")
	assert.Zero(t, lb.Stats().Services[0].Backends[2].ActiveFlows)
}

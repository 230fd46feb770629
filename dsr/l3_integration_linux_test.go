package dsr

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net"
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/dsrlb/dsrlb/arp"
	"github.com/dsrlb/dsrlb/dsr/realserver"
	"github.com/dsrlb/dsrlb/health"
	"github.com/dsrlb/dsrlb/internal/decap"
	"github.com/dsrlb/dsrlb/internal/netlab"
)

// The L3 lab: the netlab segment (192.0.2.0/24, 2001:db8:0:1::/64) is the
// servers' subnet; its "lb" host is a router between it and two external
// hosts on links of their own, the balancer (203.0.113.0/30,
// 2001:db8:0:b::/64) and the client (198.51.100.0/30, 2001:db8:0:c::/64).
// The router routes the VIPs to the balancer, which encapsulates to the
// servers through the router; the servers answer the client directly
// through the router.
var (
	l3VIP4    = netip.MustParseAddr("198.51.100.200")
	l3VIP6    = netip.MustParseAddr("2001:db8:0:f::100")
	l3LBLink  = netip.MustParsePrefix("203.0.113.0/30")
	l3CLink   = netip.MustParsePrefix("198.51.100.0/30")
	l3LB6     = netip.MustParsePrefix("2001:db8:0:b::2/64")
	l3LBGW6   = netip.MustParsePrefix("2001:db8:0:b::1/64")
	l3Client6 = netip.MustParsePrefix("2001:db8:0:c::2/64")
	l3CGW6    = netip.MustParsePrefix("2001:db8:0:c::1/64")
)

type l3Lab struct {
	*netlab.Lab
	router, lb, client *netlab.Host
	lb4, lb6, gw4, gw6 netip.Addr
}

func (l *l3Lab) vip(v6 bool) netip.Addr {
	if v6 {
		return l3VIP6
	}
	return l3VIP4
}

// newL3Lab builds the L3 lab with servers prepared for mode by
// realserver.Prepare (advmss as given: 0 lowers it, -1 leaves the routes
// alone), undone when the test ends.
func newL3Lab(t *testing.T, servers int, mode realserver.Mode, advmss int) *l3Lab {
	t.Helper()
	lab := netlab.NewT(t, &netlab.Config{Servers: servers, IPv6: true, VIPs: []netip.Addr{l3VIP4, l3VIP6}})
	l := &l3Lab{Lab: lab, router: lab.Balancer}
	var err error
	l.lb, err = lab.AddExternal(l.router, l3LBLink)
	require.NoError(t, err)
	l.client, err = lab.AddExternal(l.router, l3CLink)
	require.NoError(t, err)
	l.lb4, l.gw4 = l.lb.IP, l3LBLink.Addr().Next()
	l.lb6, l.gw6 = l3LB6.Addr(), l3LBGW6.Addr()

	// IPv6 on the external links, which AddExternal leaves IPv4-only.
	addr6 := func(h *netlab.Host, dev string, p netip.Prefix, gw netip.Addr) {
		for _, k := range []string{"all", "default", dev} {
			require.NoError(t, h.Sysctl("net.ipv6.conf."+k+".disable_ipv6", "0"))
		}
		require.NoError(t, h.Do(func() error {
			link, err := netlink.LinkByName(dev)
			if err != nil {
				return err
			}
			a := &netlink.Addr{IPNet: &net.IPNet{IP: p.Addr().AsSlice(), Mask: net.CIDRMask(p.Bits(), 128)}, Flags: unix.IFA_F_NODAD}
			if err := netlink.AddrAdd(link, a); err != nil {
				return err
			}
			if gw.IsValid() {
				return netlink.RouteAdd(&netlink.Route{LinkIndex: link.Attrs().Index, Gw: gw.AsSlice()})
			}
			return nil
		}))
	}
	addr6(l.router, "x0", l3LBGW6, netip.Addr{})
	addr6(l.router, "x1", l3CGW6, netip.Addr{})
	addr6(l.lb, "eth0", l3LB6, l3LBGW6.Addr())
	addr6(l.client, "eth0", l3Client6, l3CGW6.Addr())
	for _, kv := range [][2]string{
		{"net.ipv6.conf.all.forwarding", "1"},
		// Replies from the VIPs come from the servers, while the router
		// routes the VIPs to the balancer: no reverse-path filter.
		{"net.ipv4.conf.all.rp_filter", "0"}, {"net.ipv4.conf.eth0.rp_filter", "0"},
	} {
		require.NoError(t, l.router.Sysctl(kv[0], kv[1]))
	}
	require.NoError(t, l.router.AddRoute(netip.PrefixFrom(l3VIP4, 32), l.lb4))
	require.NoError(t, l.router.AddRoute(netip.PrefixFrom(l3VIP6, 128), l.lb6))
	for i, s := range lab.Servers {
		for _, p := range []netip.Prefix{l3LBLink, l3CLink} {
			require.NoError(t, s.AddRoute(p, l.router.IP))
		}
		for _, p := range []netip.Prefix{l3LB6.Masked(), l3Client6.Masked()} {
			require.NoError(t, s.AddRoute(p, l.router.IP6))
		}
		if mode.L3() {
			l.prepare(t, i, mode, advmss)
		}
	}
	return l
}

// prepare runs realserver's L3 preparation on server i, as the command
// does, and undoes it when the test ends.
func (l *l3Lab) prepare(t *testing.T, i int, mode realserver.Mode, advmss int) {
	t.Helper()
	s := l.Servers[i]
	cfg := &realserver.Config{VIPs: l.VIPs, Mode: mode, Balancers: []netip.Addr{l.lb4, l.lb6}, AdvMSS: advmss, Decap: realserver.DecapProgram}
	st := &realserver.State{}
	require.NoError(t, s.Do(func() error { return realserver.Prepare(cfg, st) }))
	t.Cleanup(func() { _ = s.Do(func() error { return realserver.Undo(st) }) })
	var rep *realserver.Report
	require.NoError(t, s.Do(func() (err error) {
		rep, err = realserver.Check(context.Background(), cfg)
		return err
	}))
	require.True(t, rep.OK(), "check after prepare: %v", rep.Findings)
	assert.Contains(t, rep.Codes(realserver.Info), realserver.CodeDecapCounters)
	if advmss >= 0 {
		assert.NotContains(t, rep.Codes(realserver.Warning), realserver.CodeMSSTooLarge)
	} else {
		assert.Contains(t, rep.Codes(realserver.Warning), realserver.CodeMSSTooLarge, "routes left alone: check says the MSS is too large")
	}
}

// l3Service is a service on the lab's VIP of the family, in mode, over
// the given servers, through the router.
func (l *l3Lab) service(mode Mode, v6 bool, servers ...int) Service {
	s := Service{VIP: l.vip(v6), Protocol: TCP, Port: 80, Mode: mode, TunnelSource: l.lb4, Gateway: l.gw4}
	if v6 {
		s.TunnelSource, s.Gateway = l.lb6, l.gw6
	}
	for _, i := range servers {
		a := l.Servers[i].IP
		if v6 {
			a = l.Servers[i].IP6
		}
		s.Backends = append(s.Backends, Backend{Addr: a})
	}
	return s
}

// start runs a Balancer with one packet forwarder and an address resolver
// on the balancer host until the test ends.
func (l *l3Lab) start(t *testing.T, cfg *Config, services ...Service) (*Balancer, servedForwarder) {
	return l.startPlane(t, "packet", cfg, services...)
}

// startPlane is start on the data plane plane ("packet" or "xdp").
func (l *l3Lab) startPlane(t *testing.T, plane string, cfg *Config, services ...Service) (*Balancer, servedForwarder) {
	t.Helper()
	var speaker *arp.Speaker
	var fwd servedForwarder
	var vips []netip.Addr
	for _, s := range services {
		vips = append(vips, s.VIP)
	}
	require.NoError(t, l.lb.Do(func() error {
		ifi, err := net.InterfaceByName(l.lb.Link)
		if err != nil {
			return err
		}
		if speaker, err = arp.Listen(ifi, nil); err != nil {
			return err
		}
		problems, err := CheckHost(l.lb.Link, vips)
		if err != nil {
			return err
		}
		if len(problems) > 0 {
			return fmt.Errorf("host check: %v", problems)
		}
		if plane == "xdp" {
			fwd, err = ListenXDP(l.lb.Link, &XDPConfig{Packet: &PacketConfig{VIPs: vips}})
		} else {
			fwd, err = ListenPacket(l.lb.Link, &PacketConfig{VIPs: vips})
		}
		return err
	}))
	cfg.ARP = speaker
	b, err := New(cfg)
	require.NoError(t, err)
	for _, s := range services {
		require.NoError(t, b.AddService(s))
	}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() {
		if err := b.Serve(ctx, fwd); err != nil {
			t.Errorf("serve: %v", err)
		}
	})
	wg.Go(func() { _ = b.Run(ctx) })
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("balancer stats: %+v", b.Stats())
			t.Logf("lab logs:\n%s", l.Logs())
		}
		cancel()
		wg.Wait()
		_ = fwd.Close()
		_ = speaker.Close()
	})
	// Traffic starts once the next hop is resolved.
	deadline := time.Now().Add(10 * time.Second)
	for {
		ready := true
		for _, ss := range b.Stats().Services {
			for _, be := range ss.Backends {
				ready = ready && be.MAC != nil
			}
		}
		if ready {
			break
		}
		require.True(t, time.Now().Before(deadline), "next hops not resolved within 10s")
		time.Sleep(10 * time.Millisecond)
	}
	return b, fwd
}

// transfer downloads and uploads size bytes through vip from the client
// and returns the bytes the balancer's interface carried for the download.
func (l *l3Lab) transfer(t *testing.T, vip netip.Addr, size int) uint64 {
	t.Helper()
	hc := l.client.HTTPClient()
	hc.Timeout = time.Minute // the whole transfer: a stalled flow fails the test
	defer hc.CloseIdleConnections()
	base := "http://" + netip.AddrPortFrom(vip, 80).String()

	before, err := l.lb.LinkStats()
	require.NoError(t, err)
	resp, err := hc.Get(fmt.Sprintf("%s/bytes?n=%d", base, size))
	require.NoError(t, err)
	n, bad := readPattern(t, resp.Body, 0)
	resp.Body.Close()
	require.Equal(t, int64(size), n)
	require.Equal(t, -1, bad, "downloaded bytes differ from the pattern at %d", bad)
	after, err := l.lb.LinkStats()
	require.NoError(t, err)
	seen := after.Sub(before)
	carried := seen.RxBytes + seen.TxBytes

	payload := make([]byte, size)
	netlab.FillPattern(payload, 0)
	sum := sha256.Sum256(payload)
	resp, err = hc.Post(base+"/upload", "application/octet-stream", bytes.NewReader(payload))
	require.NoError(t, err)
	var up netlab.UploadResult
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&up))
	resp.Body.Close()
	assert.Equal(t, int64(size), up.N)
	assert.Equal(t, hex.EncodeToString(sum[:]), up.SHA256, "upload arrived intact")
	return carried
}

// TestIntegrationL3BulkTransfers: 20 MB down and up through the balancer in
// ipip and gue modes, IPv4 and IPv6, default offloads, servers prepared by
// realserver (decapsulation program, lowered MSS). The balancer carries the
// requests only; no packet is too big, because the MSS is lowered.
func TestIntegrationL3BulkTransfers(t *testing.T) {
	netlab.RequirePrivileged(t)
	for _, mode := range []Mode{ModeIPIP, ModeGUE} {
		t.Run(mode.String(), func(t *testing.T) {
			l := newL3Lab(t, 2, realserver.Mode(mode.String()), 0)
			b, _ := l.start(t, &Config{Workers: 1}, l.service(mode, false, 0, 1), l.service(mode, true, 0, 1))
			const size = 20 << 20
			for _, v6 := range []bool{false, true} {
				carried := l.transfer(t, l.vip(v6), size)
				t.Logf("%s IPv6=%v: download of %d bytes: the balancer's interface carried %d bytes (%.3f%%)", mode, v6, size, carried, 100*float64(carried)/size)
				assert.Less(t, float64(carried), 0.02*size, "response bytes must bypass the balancer")
			}
			st := b.Stats()
			assert.NotZero(t, st.L3.Encapsulated)
			assert.Zero(t, st.L3.TooBigAnswered+st.L3.TooBigLimited+st.L3.TooBigUnanswered, "with the MSS lowered no client packet is too big")
			assert.Zero(t, st.Drops[DropEncap])
			assert.Zero(t, st.Drops[DropMalformed])
			var decapsulated uint64
			for i, s := range l.Servers {
				var ds *decap.Status
				require.NoError(t, s.Do(func() (err error) { ds, err = decap.Get(s.Link); return err }))
				decapsulated += ds.Stats.Decapsulated()
				assert.Zero(t, ds.Stats.Dropped(), "server %d dropped tunnel packets: %+v", i, ds.Stats)
			}
			// Every encapsulated frame the balancer sent (a super-frame
			// as its segments) reached a server's program.
			assert.GreaterOrEqual(t, decapsulated, st.L3.Encapsulated)
		})
	}
}

// TestIntegrationL3PathMTU: the servers advertise their full MSS (realserver
// left the routes alone), so the client's full-size packets are too big once
// encapsulated: the balancer's ICMP too-big answers make the client's path
// MTU discovery shrink them, and the upload completes.
func TestIntegrationL3PathMTU(t *testing.T) {
	netlab.RequirePrivileged(t)
	for _, tc := range []struct {
		mode Mode
		v6   bool
	}{{ModeIPIP, false}, {ModeGUE, true}} {
		t.Run(fmt.Sprintf("%s/IPv6=%v", tc.mode, tc.v6), func(t *testing.T) {
			l := newL3Lab(t, 1, realserver.Mode(tc.mode.String()), -1)
			b, _ := l.start(t, &Config{Workers: 1}, l.service(tc.mode, tc.v6, 0))
			l.transfer(t, l.vip(tc.v6), 4<<20)
			st := b.Stats()
			assert.NotZero(t, st.L3.TooBigAnswered, "the client learnt the path MTU from the balancer")
			t.Logf("L3 stats: %+v", st.L3)
		})
	}
}

// TestIntegrationL3DecapDrops: garbage and truncated tunnel packets, and
// tunnel packets from a host that is not the balancer, are dropped by the
// server's decapsulation program and counted.
func TestIntegrationL3DecapDrops(t *testing.T) {
	netlab.RequirePrivileged(t)
	l := newL3Lab(t, 1, realserver.ModeGUE, 0)
	s := l.Servers[0]
	get := func() decap.Stats {
		var ds *decap.Status
		require.NoError(t, s.Do(func() (err error) { ds, err = decap.Get(s.Link); return err }))
		return ds.Stats
	}
	send := func(h *netlab.Host, network, dst string, payload []byte, n int) {
		require.NoError(t, h.Do(func() error {
			c, err := net.ListenPacket(network, "")
			if err != nil {
				return err
			}
			defer c.Close()
			var to net.Addr
			if network == "udp4" {
				to, err = net.ResolveUDPAddr(network, dst)
			} else {
				to, err = net.ResolveIPAddr(network, dst)
			}
			if err != nil {
				return err
			}
			for range n {
				if _, err := c.WriteTo(payload, to); err != nil {
					return err
				}
			}
			return nil
		}))
	}
	before := get()
	server := s.IP.String()
	// A truncated inner IPv4 header in IPIP.
	send(l.lb, "ip4:4", server, []byte{0x45, 0, 0, 40, 0, 0, 0x40, 0}, 5)
	// GUE with an unknown version.
	send(l.lb, "udp4", server+":6080", append([]byte{0x80, 4, 0, 0}, make([]byte, 20)...), 6)
	// A well-formed GUE packet from the client, which is not a balancer.
	inner := []byte{0x45, 0, 0, 20, 0, 0, 0x40, 0, 64, 6, 0, 0, 198, 51, 100, 2, 198, 51, 100, 200}
	send(l.client, "udp4", server+":6080", append([]byte{0, 4, 0, 0}, inner...), 7)

	deadline := time.Now().Add(5 * time.Second)
	var d decap.Stats
	for {
		d = get()
		if d.Truncated-before.Truncated >= 5 && d.BadVersion-before.BadVersion >= 6 && d.NotBalancer-before.NotBalancer >= 7 {
			break
		}
		require.True(t, time.Now().Before(deadline), "drops not counted: %+v", d)
		time.Sleep(20 * time.Millisecond)
	}
	assert.EqualValues(t, 5, d.Truncated-before.Truncated)
	assert.EqualValues(t, 6, d.BadVersion-before.BadVersion)
	assert.EqualValues(t, 7, d.NotBalancer-before.NotBalancer)
	assert.Equal(t, before.Decapsulated(), d.Decapsulated(), "nothing of it was decapsulated")

	// check reports the drops.
	var rep *realserver.Report
	require.NoError(t, s.Do(func() (err error) {
		rep, err = realserver.Check(context.Background(), &realserver.Config{VIPs: l.VIPs, Mode: realserver.ModeGUE, Balancers: []netip.Addr{l.lb4, l.lb6}})
		return err
	}))
	assert.Contains(t, rep.Codes(realserver.Warning), realserver.CodeDecapDrops)
}

// TestIntegrationL3HealthCheck: the DSR-path check passes through the
// tunnel and fails once the server no longer decapsulates; realserver check
// then reports the missing decapsulation.
func TestIntegrationL3HealthCheck(t *testing.T) {
	netlab.RequirePrivileged(t)
	l := newL3Lab(t, 2, realserver.ModeIPIP, 0)
	var chk *health.DSRPathChecker
	require.NoError(t, l.lb.Do(func() (err error) {
		chk, err = health.NewDSRPathChecker(&health.DSRPathConfig{Interface: l.lb.Link})
		return err
	}))
	t.Cleanup(func() { chk.Close() })
	svc := l.service(ModeIPIP, false, 0, 1)
	svc.Checks = []HealthCheck{{Checker: chk}}
	b, _ := l.start(t, &Config{Workers: 1, Health: &health.MonitorConfig{Interval: 200 * time.Millisecond, Timeout: time.Second, Rise: 1, Fall: 2}}, svc)
	healthy := func(i int) (bool, string) {
		be := b.Stats().Services[0].Backends[i]
		return be.Healthy, be.HealthError
	}
	wait := func(i int, want bool) {
		t.Helper()
		deadline := time.Now().Add(15 * time.Second)
		for {
			h, why := healthy(i)
			if h == want {
				return
			}
			require.True(t, time.Now().Before(deadline), "backend %d healthy=%v (%s), want %v", i, h, why, want)
			time.Sleep(50 * time.Millisecond)
		}
	}
	// Checked and passing: the counter of decapsulated packets of each
	// server grows with the probes.
	for i, s := range l.Servers {
		deadline := time.Now().Add(15 * time.Second)
		for {
			var ds *decap.Status
			require.NoError(t, s.Do(func() (err error) { ds, err = decap.Get(s.Link); return err }))
			if ds.Stats.IPIP4 >= 2 {
				break
			}
			require.True(t, time.Now().Before(deadline), "server %d saw no encapsulated probe", i)
			time.Sleep(50 * time.Millisecond)
		}
		wait(i, true)
	}
	// Server 0 stops decapsulating.
	s := l.Servers[0]
	require.NoError(t, s.Do(func() error { return decap.Detach(s.Link) }))
	wait(0, false)
	h, _ := healthy(1)
	assert.True(t, h, "the other server still passes")
	var rep *realserver.Report
	require.NoError(t, s.Do(func() (err error) {
		rep, err = realserver.Check(context.Background(), &realserver.Config{VIPs: l.VIPs, Mode: realserver.ModeIPIP, Balancers: []netip.Addr{l.lb4, l.lb6}})
		return err
	}))
	assert.Contains(t, rep.Codes(realserver.Error), realserver.CodeDecapMissing)
}

// TestIntegrationL3NotOffloadedToXDP: with the XDP data plane, an L3
// service is known to the program as one it does not run: its frames pass
// up to the Go path (counted as not_capable), which encapsulates them, and
// the transfer works as with packet sockets.
func TestIntegrationL3NotOffloadedToXDP(t *testing.T) {
	netlab.RequirePrivileged(t)
	l := newL3Lab(t, 1, realserver.ModeIPIP, 0)
	b, _ := l.startPlane(t, "xdp", &Config{Workers: 1}, l.service(ModeIPIP, false, 0))
	l.transfer(t, l.vip(false), 4<<20)
	st := b.Stats()
	require.NotNil(t, st.XDP)
	assert.Zero(t, st.XDP.Forwarded, "the program forwarded nothing of the L3 service")
	assert.NotZero(t, st.XDP.Received)
	assert.NotZero(t, st.L3.Encapsulated, "the Go path encapsulated it")
	assert.NotZero(t, st.XDP.Passed["not_capable"], "passed up as a service the program does not run")
	assert.Zero(t, st.XDP.Passed["not_vip"], "the program knows the VIP")
	t.Logf("xdp: %+v; L3: %+v", *st.XDP, st.L3)
}

package dsr

import (
	"bytes"
	"fmt"
	"net"
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dsrlb/dsrlb/health"
	"github.com/dsrlb/dsrlb/internal/flowtable"
	"github.com/dsrlb/dsrlb/internal/frame"
	ft "github.com/dsrlb/dsrlb/internal/frame/frametest"
)

var (
	lbMAC     = ft.MAC("02:00:00:00:00:01")
	clientMAC = ft.MAC("02:00:00:00:00:0a")
	otherMAC  = ft.MAC("02:00:00:00:00:99")
	vip4      = netip.MustParseAddr("192.0.2.100")
	vip6      = netip.MustParseAddr("2001:db8::100")
	client4   = netip.MustParseAddr("198.51.100.7")
	client6   = netip.MustParseAddr("2001:db8:1::7")
	router4   = netip.MustParseAddr("203.0.113.1")
	router6   = netip.MustParseAddr("2001:db8:2::1")
)

func backendMAC(i int) net.HardwareAddr {
	return net.HardwareAddr{0x02, 0, 0, 0, 0x10, byte(i)}
}

func backends(n int, v6 bool) []Backend {
	out := make([]Backend, n)
	for i := range out {
		a := netip.AddrFrom4([4]byte{192, 0, 2, byte(21 + i)})
		if v6 {
			a = netip.MustParseAddr(fmt.Sprintf("2001:db8::%d", 21+i))
		}
		out[i] = Backend{Addr: a, MAC: backendMAC(i)}
	}
	return out
}

// fakeClock is a manually advanced clock for flow timeouts.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// harness drives the Balancer's per-frame decision directly, one frame at a
// time, as one worker would.
type harness struct {
	t     testing.TB
	b     *Balancer
	w     *worker
	clock *fakeClock
}

func newHarness(t testing.TB, cfg *Config, services ...Service) *harness {
	t.Helper()
	clock := &fakeClock{t: time.Unix(1_700_000_000, 0)}
	if cfg == nil {
		cfg = &Config{}
	}
	cfg.Clock = clock.Now
	b, err := New(cfg)
	require.NoError(t, err)
	for _, s := range services {
		require.NoError(t, b.AddService(s))
	}
	w := &worker{b: b, mac: lbMAC, slot: 0, c: &b.workers[0]}
	return &harness{t: t, b: b, w: w, clock: clock}
}

// send processes one frame and returns the transmitted frame, or nil.
func (h *harness) send(in []byte) []byte {
	return h.sendOffload(in, Offload{})
}

func (h *harness) sendOffload(in []byte, off Offload) []byte {
	f := []Frame{{Buf: make([]byte, MaxFrameSize), Offload: off}}
	f[0].N = copy(f[0].Buf, in)
	out := h.w.processBatch(f, nil)
	h.w.c.forwarded.Add(uint64(len(out)))
	if len(out) == 0 {
		return nil
	}
	require.Equal(h.t, off, out[0].Offload, "offload metadata must pass through untouched")
	return out[0].Bytes()
}

func (h *harness) drops(r DropReason) uint64 { return h.b.Stats().Drops[r] }

// expectForward asserts that out is in with only the MACs rewritten, and
// returns the index of the backend it went to.
func expectForward(t testing.TB, in, out []byte) int {
	t.Helper()
	require.NotNil(t, out, "frame was not forwarded")
	require.Len(t, out, len(in))
	assert.Equal(t, lbMAC[:], out[6:12], "source MAC must be the balancer's")
	assert.Equal(t, in[12:], out[12:], "everything after the MACs must be untouched")
	for i := range 64 {
		if bytes.Equal(out[0:6], backendMAC(i)) {
			return i
		}
	}
	t.Fatalf("destination MAC %s is no backend's", net.HardwareAddr(out[0:6]))
	return -1
}

func tcp4(sport uint16, flags uint8) []byte {
	return ft.Build(
		ft.Ethernet{Dst: lbMAC, Src: clientMAC},
		ft.IPv4{Src: client4, Dst: vip4, TTL: 57, ID: 7},
		ft.TCP{SrcPort: sport, DstPort: 80, Flags: flags, Seq: 1000},
		ft.Raw("hello"),
	)
}

func tcp6(sport uint16, flags uint8) []byte {
	return ft.Build(
		ft.Ethernet{Dst: lbMAC, Src: clientMAC},
		ft.IPv6{Src: client6, Dst: vip6, HopLimit: 57},
		ft.TCP{SrcPort: sport, DstPort: 443, Flags: flags},
	)
}

func web4(n int) Service {
	return Service{VIP: vip4, Protocol: TCP, Port: 80, Backends: backends(n, false)}
}

func TestForwardRewritesOnlyMACs(t *testing.T) {
	h := newHarness(t, nil, web4(3), Service{VIP: vip6, Protocol: TCP, Port: 443, Backends: backends(3, true)})
	for _, in := range [][]byte{tcp4(40000, frame.FlagSYN), tcp6(40000, frame.FlagSYN)} {
		out := h.send(in)
		expectForward(t, in, out)
		var p frame.Packet
		require.NoError(t, frame.Parse(out, &p))
		assert.Equal(t, uint8(57), p.TTL, "TTL/hop limit untouched")
		assert.True(t, frame.TransportChecksumOK(out, &p), "checksum still valid")
	}
	st := h.b.Stats()
	assert.Equal(t, uint64(2), st.Received)
	assert.Equal(t, uint64(2), st.Forwarded)
	assert.Equal(t, 2, st.Flows)
}

// A tagged frame keeps its tag, priority bits included. The service is on
// the frame's VLAN (100): tagged frames no longer match untagged services
// (see vlan_test.go).
func TestVLANTagPreserved(t *testing.T) {
	svc := web4(2)
	svc.VLAN = 100
	h := newHarness(t, nil, svc)
	in := ft.Build(
		ft.Ethernet{Dst: lbMAC, Src: clientMAC},
		ft.VLAN{TCI: 0x2064},
		ft.IPv4{Src: client4, Dst: vip4},
		ft.TCP{SrcPort: 1234, DstPort: 80, Flags: frame.FlagSYN},
	)
	expectForward(t, in, h.send(in))
}

func TestAffinityAndSpread(t *testing.T) {
	h := newHarness(t, nil, web4(3))
	first := map[uint16]int{}
	counts := make([]int, 3)
	for sport := uint16(30000); sport < 30300; sport++ {
		in := tcp4(sport, frame.FlagSYN)
		be := expectForward(t, in, h.send(in))
		first[sport] = be
		counts[be]++
	}
	for i, c := range counts {
		assert.Greater(t, c, 50, "backend %d got %d of 300 flows", i, c)
	}
	// Every later packet of every flow goes where its first one went.
	for sport, be := range first {
		for _, fl := range []uint8{frame.FlagACK, frame.FlagACK | frame.FlagPSH, frame.FlagFIN | frame.FlagACK} {
			in := tcp4(sport, fl)
			assert.Equal(t, be, expectForward(t, in, h.send(in)))
		}
	}
	st := h.b.Stats().Services[0]
	assert.Equal(t, uint64(300), st.Flows)
	assert.Equal(t, uint64(1200), st.Packets)
}

func TestDropsByReason(t *testing.T) {
	h := newHarness(t, nil, web4(2), Service{VIP: vip6, Protocol: UDP, Port: 53})
	cases := []struct {
		name   string
		in     []byte
		reason DropReason
	}{
		{"own source", ft.Build(ft.Ethernet{Dst: lbMAC, Src: lbMAC}, ft.IPv4{Src: client4, Dst: vip4}, ft.TCP{SrcPort: 1, DstPort: 80}), DropOwnSource},
		{"foreign dst mac", ft.Build(ft.Ethernet{Dst: otherMAC, Src: clientMAC}, ft.IPv4{Src: client4, Dst: vip4}, ft.TCP{SrcPort: 1, DstPort: 80}), DropForeignMAC},
		{"arp", ft.Build(ft.Ethernet{Dst: [6]byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}, Src: clientMAC}, ft.ARP{SenderMAC: clientMAC, SenderIP: client4, TargetIP: vip4}), DropARP},
		{"not ip", ft.Build(ft.Ethernet{Dst: lbMAC, Src: clientMAC, EtherType: 0x88cc}, ft.Raw(make([]byte, 46))), DropNotIP},
		{"not a vip", ft.Build(ft.Ethernet{Dst: lbMAC, Src: clientMAC}, ft.IPv4{Src: client4, Dst: router4}, ft.TCP{SrcPort: 1, DstPort: 80}), DropNotVIP},
		{"vip wrong port", ft.Build(ft.Ethernet{Dst: lbMAC, Src: clientMAC}, ft.IPv4{Src: client4, Dst: vip4}, ft.TCP{SrcPort: 1, DstPort: 81}), DropNoService},
		{"vip wrong protocol", ft.Build(ft.Ethernet{Dst: lbMAC, Src: clientMAC}, ft.IPv4{Src: client4, Dst: vip4}, ft.UDP{SrcPort: 1, DstPort: 80}), DropNoService},
		{"icmp echo to vip", ft.Build(ft.Ethernet{Dst: lbMAC, Src: clientMAC}, ft.IPv4{Src: client4, Dst: vip4}, ft.ICMPv4{Type: 8}), DropNoService},
		{"no backend", ft.Build(ft.Ethernet{Dst: lbMAC, Src: clientMAC}, ft.IPv6{Src: client6, Dst: vip6}, ft.UDP{SrcPort: 9, DstPort: 53}), DropNoBackend},
		{"fragment (drop policy)", ft.Build(ft.Ethernet{Dst: lbMAC, Src: clientMAC}, ft.IPv4{Src: client4, Dst: vip4, MF: true, ID: 9}, ft.TCP{SrcPort: 1, DstPort: 80}), DropFragment},
		{"malformed", ft.Build(ft.Ethernet{Dst: lbMAC, Src: clientMAC}, ft.IPv4{Src: client4, Dst: vip4, Length: 400}, ft.TCP{SrcPort: 1, DstPort: 80}), DropMalformed},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			before := h.b.Stats()
			assert.Nil(t, h.send(tc.in))
			after := h.b.Stats()
			assert.Equal(t, before.Drops[tc.reason]+1, after.Drops[tc.reason], "counted under %s", tc.reason)
			var total, totalBefore uint64
			for r := range after.Drops {
				total += after.Drops[r]
				totalBefore += before.Drops[r]
			}
			assert.Equal(t, totalBefore+1, total, "counted under exactly one reason")
		})
	}
	st := h.b.Stats()
	assert.Equal(t, uint64(1), st.Malformed["truncated"])
	var dropped uint64
	for _, v := range st.Drops {
		dropped += v
	}
	assert.Equal(t, st.Received, st.Forwarded+dropped)
}

func TestICMPErrorFollowsItsFlow(t *testing.T) {
	h := newHarness(t, nil, web4(5), Service{VIP: vip6, Protocol: TCP, Port: 443, Backends: backends(5, true)})

	syn := tcp4(41000, frame.FlagSYN)
	be := expectForward(t, syn, h.send(syn))
	// A router between the server and the client cannot forward the
	// server's reply (VIP:80 → client:41000) and tells the VIP.
	fragNeeded := ft.Build(
		ft.Ethernet{Dst: lbMAC, Src: clientMAC},
		ft.IPv4{Src: router4, Dst: vip4},
		ft.ICMPv4{Type: 3, Code: 4, Rest: 1400, Truncate: 28},
		ft.IPv4{Src: vip4, Dst: client4},
		ft.TCP{SrcPort: 80, DstPort: 41000, Flags: frame.FlagACK},
	)
	for range 5 {
		assert.Equal(t, be, expectForward(t, fragNeeded, h.send(fragNeeded)))
	}

	syn6 := tcp6(41000, frame.FlagSYN)
	be6 := expectForward(t, syn6, h.send(syn6))
	tooBig := ft.Build(
		ft.Ethernet{Dst: lbMAC, Src: clientMAC},
		ft.IPv6{Src: router6, Dst: vip6},
		ft.ICMPv6{Type: 2, Rest: 1280},
		ft.IPv6{Src: vip6, Dst: client6},
		ft.TCP{SrcPort: 443, DstPort: 41000, Flags: frame.FlagACK},
	)
	assert.Equal(t, be6, expectForward(t, tooBig, h.send(tooBig)))

	// An error about a flow nobody has is dropped, not guessed.
	unknown := ft.Build(
		ft.Ethernet{Dst: lbMAC, Src: clientMAC},
		ft.IPv4{Src: router4, Dst: vip4},
		ft.ICMPv4{Type: 11},
		ft.IPv4{Src: vip4, Dst: client4},
		ft.TCP{SrcPort: 80, DstPort: 9, Flags: frame.FlagACK},
	)
	assert.Nil(t, h.send(unknown))
	assert.Equal(t, uint64(1), h.drops(DropICMPNoFlow))
}

func TestFragmentHashPolicy(t *testing.T) {
	// Whatever the service's scheduler — rotating and least-connection
	// ones included, whose picks do not follow the flow — every fragment
	// of a datagram reaches one backend.
	for _, name := range []string{"mh", "sh", "hrw", "rr", "wrr", "lc", "wlc"} {
		t.Run(name, func(t *testing.T) {
			udp := Service{VIP: vip4, Protocol: UDP, Port: 5000, Scheduler: name, Backends: backends(4, false)}
			h := newHarness(t, &Config{Fragments: FragmentsHash}, udp)
			spread := map[int]bool{}
			for src := range 40 {
				client := netip.AddrFrom4([4]byte{198, 51, 100, byte(10 + src)})
				first := ft.Build(ft.Ethernet{Dst: lbMAC, Src: clientMAC}, ft.IPv4{Src: client, Dst: vip4, MF: true, ID: 77}, ft.UDP{SrcPort: 7000, DstPort: 5000, Length: 3000}, ft.Raw(make([]byte, 1472)))
				later := ft.Build(ft.Ethernet{Dst: lbMAC, Src: clientMAC}, ft.IPv4{Src: client, Dst: vip4, FragOffset: 185, ID: 77, Protocol: frame.ProtoUDP}, ft.Raw(make([]byte, 1000)))
				last := ft.Build(ft.Ethernet{Dst: lbMAC, Src: clientMAC}, ft.IPv4{Src: client, Dst: vip4, FragOffset: 310, ID: 77, Protocol: frame.ProtoUDP}, ft.Raw(make([]byte, 500)))
				a := expectForward(t, first, h.send(first))
				b := expectForward(t, later, h.send(later))
				c := expectForward(t, last, h.send(last))
				assert.Equal(t, a, b, "all fragments of a datagram reach one backend")
				assert.Equal(t, a, c, "all fragments of a datagram reach one backend")
				spread[a] = true
			}
			assert.Greater(t, len(spread), 1, "fragments of different sources spread over backends")
			assert.Equal(t, 0, h.b.Stats().Flows, "fragments create no flow state")
		})
	}

	udp := Service{VIP: vip4, Protocol: UDP, Port: 5000, Backends: backends(4, false)}
	h := newHarness(t, &Config{Fragments: FragmentsHash}, udp)

	// Two port services on the VIP: a later fragment cannot be assigned.
	require.NoError(t, h.b.AddService(Service{VIP: vip4, Protocol: UDP, Port: 5001, Backends: backends(2, false)}))
	later := ft.Build(ft.Ethernet{Dst: lbMAC, Src: clientMAC}, ft.IPv4{Src: client4, Dst: vip4, FragOffset: 185, ID: 78, Protocol: frame.ProtoUDP}, ft.Raw(make([]byte, 100)))
	assert.Nil(t, h.send(later))
	assert.Equal(t, uint64(1), h.drops(DropFragment))
}

func TestPortWildcardAndBothProtocols(t *testing.T) {
	all := Service{VIP: vip4, Protocol: TCPAndUDP, Backends: backends(2, false)}
	exact := Service{VIP: vip4, Protocol: TCP, Port: 80, Backends: []Backend{{Addr: netip.MustParseAddr("192.0.2.50"), MAC: backendMAC(9)}}}
	h := newHarness(t, nil, all, exact)
	in := tcp4(5555, frame.FlagSYN)
	assert.Equal(t, 9, expectForward(t, in, h.send(in)), "the exact port service wins")
	udp := ft.Build(ft.Ethernet{Dst: lbMAC, Src: clientMAC}, ft.IPv4{Src: client4, Dst: vip4}, ft.UDP{SrcPort: 5, DstPort: 53})
	assert.Less(t, expectForward(t, udp, h.send(udp)), 2)
	other := ft.Build(ft.Ethernet{Dst: lbMAC, Src: clientMAC}, ft.IPv4{Src: client4, Dst: vip4}, ft.TCP{SrcPort: 5, DstPort: 8443, Flags: frame.FlagSYN})
	assert.Less(t, expectForward(t, other, h.send(other)), 2)
}

// flowsByBackend opens n flows and returns each flow's backend.
func (h *harness) open(n int, base uint16) map[uint16]int {
	out := map[uint16]int{}
	for i := range n {
		sport := base + uint16(i)
		in := tcp4(sport, frame.FlagSYN)
		out[sport] = expectForward(h.t, in, h.send(in))
		ack := tcp4(sport, frame.FlagACK)
		expectForward(h.t, ack, h.send(ack))
	}
	return out
}

func (h *harness) where(sport uint16) int {
	in := tcp4(sport, frame.FlagACK)
	return expectForward(h.t, in, h.send(in))
}

func TestFlowsSurviveConfigChanges(t *testing.T) {
	svc := web4(3)
	h := newHarness(t, nil, svc)
	flows := h.open(200, 20000)
	key := svc.Key()

	steps := []struct {
		name   string
		change func() error
	}{
		{"add a backend", func() error {
			return h.b.AddBackend(key, Backend{Addr: netip.MustParseAddr("192.0.2.40"), MAC: backendMAC(3)})
		}},
		{"change weights", func() error {
			bs := backends(3, false)
			bs[0].Weight, bs[1].Weight = 10, 3
			return h.b.SetBackends(key, append(bs, Backend{Addr: netip.MustParseAddr("192.0.2.40"), MAC: backendMAC(3)}))
		}},
		{"change scheduler", func() error {
			s := web4(3)
			s.Scheduler = "mh"
			s.SchedulerConfig.Seed = 42
			return h.b.UpdateService(s)
		}},
		{"change scheduler to rr", func() error {
			cur := h.b.Services()[0]
			cur.Scheduler = "rr"
			return h.b.UpdateService(cur)
		}},
		{"change scheduler to lc", func() error {
			cur := h.b.Services()[0]
			cur.Scheduler = "lc"
			return h.b.UpdateService(cur)
		}},
		{"drain a backend", func() error { return h.b.DrainBackend(key, backends(3, false)[1].Addr) }},
		{"unrelated service", func() error { return h.b.AddService(Service{VIP: vip6, Protocol: UDP, Port: 53}) }},
		{"replace everything with the same", func() error { return h.b.SetServices(h.b.Services()) }},
	}
	for _, st := range steps {
		require.NoError(t, st.change(), st.name)
		for sport, be := range flows {
			require.Equal(t, be, h.where(sport), "%s moved flow %d", st.name, sport)
		}
	}
	assert.Zero(t, h.b.Stats().Services[0].Rescheduled)

	// New flows avoid the draining backend.
	for sport := uint16(50000); sport < 50100; sport++ {
		in := tcp4(sport, frame.FlagSYN)
		assert.NotEqual(t, 1, expectForward(t, in, h.send(in)))
	}
}

func TestDownOrRemovedBackendFlowsAreRescheduled(t *testing.T) {
	svc := web4(3)
	h := newHarness(t, nil, svc)
	flows := h.open(300, 20000)
	key := svc.Key()
	onDown, onGone := 0, 0
	for _, be := range flows {
		switch be {
		case 0:
			onDown++
		case 2:
			onGone++
		}
	}
	require.NotZero(t, onDown)
	require.NotZero(t, onGone)

	require.NoError(t, h.b.SetBackendState(key, backends(3, false)[0].Addr, BackendDown))
	require.NoError(t, h.b.RemoveBackend(key, backends(3, false)[2].Addr))
	for sport, be := range flows {
		now := h.where(sport)
		if be == 1 {
			assert.Equal(t, 1, now, "flows on healthy backends stay")
		} else {
			assert.Equal(t, 1, now, "flows of a down or removed backend move to the remaining one")
		}
		assert.Equal(t, now, h.where(sport), "and then stay there")
	}
	st := h.b.Stats().Services[0]
	assert.Equal(t, uint64(onDown+onGone), st.Rescheduled)
	// Re-adding the removed backend gives it a new identity: its old flows
	// stay where they were moved to.
	require.NoError(t, h.b.AddBackend(key, backends(3, false)[2]))
	for sport := range flows {
		assert.Equal(t, 1, h.where(sport))
	}
}

func TestFlowExpiry(t *testing.T) {
	h := newHarness(t, &Config{TCPTimeout: time.Minute, TCPClosingTimeout: 5 * time.Second, EmbryonicTimeout: 10 * time.Second}, web4(2))
	h.open(10, 1000) // established
	syn := tcp4(2000, frame.FlagSYN)
	expectForward(t, syn, h.send(syn)) // embryonic
	fin := tcp4(1000, frame.FlagFIN|frame.FlagACK)
	expectForward(t, fin, h.send(fin)) // closing
	require.Equal(t, 11, h.b.Stats().Flows)
	active := func() (n int64) {
		for _, be := range h.b.Stats().Services[0].Backends {
			n += be.ActiveFlows
		}
		return n
	}
	require.Equal(t, int64(11), active())

	h.clock.Advance(6 * time.Second)
	h.b.ExpireFlows(1 << 30)
	assert.Equal(t, 10, h.b.Stats().Flows, "closing flow expired after its short timeout")
	h.clock.Advance(5 * time.Second)
	h.b.ExpireFlows(1 << 30)
	assert.Equal(t, 9, h.b.Stats().Flows, "embryonic flow expired")
	h.clock.Advance(time.Minute)
	h.b.ExpireFlows(1 << 30)
	assert.Equal(t, 0, h.b.Stats().Flows)
	assert.Equal(t, int64(0), active())
}

func TestFullTableKeepsEstablishedFlows(t *testing.T) {
	svc := web4(3)
	svc.Scheduler = "rr" // a re-pick would land elsewhere: only the table keeps affinity
	h := newHarness(t, &Config{MaxFlows: 4096}, svc)
	capacity := h.b.Stats().FlowCapacity
	// Establish flows until the table refuses one.
	established := map[uint16]int{}
	for sport := uint16(1); h.b.Stats().Stateless == 0; sport++ {
		require.Less(t, int(sport), 4*capacity, "table never filled")
		for _, fl := range []uint8{frame.FlagSYN, frame.FlagACK} {
			in := tcp4(sport, fl)
			established[sport] = expectForward(t, in, h.send(in))
		}
	}
	inTable := func(sport uint16) bool {
		k := flowtable.MakeKey(client4, vip4, sport, 80, frame.ProtoTCP)
		_, ok := h.b.flows.Lookup(&k, h.b.flows.Hash(&k), h.b.now(), 0)
		return ok
	}
	for sport := range established {
		if !inTable(sport) {
			delete(established, sport)
		}
	}
	require.Greater(t, len(established), capacity/2)
	// A flood of SYNs from random sources.
	for i := range 40000 {
		src := netip.AddrFrom4([4]byte{203, 0, byte(i >> 8), byte(i)})
		in := ft.Build(ft.Ethernet{Dst: lbMAC, Src: clientMAC}, ft.IPv4{Src: src, Dst: vip4}, ft.TCP{SrcPort: uint16(i), DstPort: 80, Flags: frame.FlagSYN})
		expectForward(t, in, h.send(in))
	}
	st := h.b.Stats()
	assert.LessOrEqual(t, st.Flows, capacity)
	for sport, be := range established {
		require.True(t, inTable(sport), "established flow %d was evicted", sport)
		require.Equal(t, be, h.where(sport))
	}
}

func TestOffloadMetadataPassesThrough(t *testing.T) {
	h := newHarness(t, nil, web4(2))
	in := ft.Build(
		ft.Ethernet{Dst: lbMAC, Src: clientMAC},
		ft.IPv4{Src: client4, Dst: vip4, Length: -1},
		ft.TCP{SrcPort: 3333, DstPort: 80, Flags: frame.FlagACK, Checksum: ft.ChecksumPartial},
		ft.Raw(make([]byte, 30000)),
	)
	off := Offload{Flags: OffloadChecksumPartial, GSOType: GSOTCPv4, GSOSize: 1448, HeaderLen: 54, ChecksumStart: 34, ChecksumOffset: 16}
	expectForward(t, in, h.sendOffload(in, off))
}

func TestBadConfigRejectedWhole(t *testing.T) {
	good := web4(2)
	h := newHarness(t, nil, good)
	flows := h.open(20, 1000)

	mut := func(f func(*Service)) Service {
		s := web4(2)
		f(&s)
		return s
	}
	cases := []struct {
		name  string
		svcs  []Service
		field string
	}{
		{"missing vip", []Service{mut(func(s *Service) { s.VIP = netip.Addr{} })}, "services[0].vip"},
		{"multicast vip", []Service{mut(func(s *Service) { s.VIP = netip.MustParseAddr("224.0.0.1") })}, "services[0].vip"},
		{"no protocol", []Service{mut(func(s *Service) { s.Protocol = 0 })}, "services[0].protocol"},
		{"unknown scheduler", []Service{mut(func(s *Service) { s.Scheduler = "nope" })}, "services[0].scheduler"},
		{"bad backend addr", []Service{mut(func(s *Service) { s.Backends[1].Addr = netip.Addr{} })}, "services[0].backends[1].addr"},
		{"duplicate backend", []Service{mut(func(s *Service) { s.Backends[1].Addr = s.Backends[0].Addr })}, "services[0].backends[1].addr"},
		{"short mac", []Service{mut(func(s *Service) { s.Backends[0].MAC = net.HardwareAddr{1, 2, 3} })}, "services[0].backends[0].mac"},
		{"multicast mac", []Service{mut(func(s *Service) { s.Backends[0].MAC = net.HardwareAddr{1, 0, 0x5e, 0, 0, 1} })}, "services[0].backends[0].mac"},
		{"weight", []Service{mut(func(s *Service) { s.Backends[0].Weight = MaxWeight + 1 })}, "services[0].backends[0].weight"},
		{"state", []Service{mut(func(s *Service) { s.Backends[0].State = 9 })}, "services[0].backends[0].state"},
		{"overlap", []Service{web4(2), {VIP: vip4, Protocol: TCPAndUDP, Port: 80}}, "services[1]"},
		{"good then bad", []Service{{VIP: vip6, Protocol: UDP, Port: 53}, mut(func(s *Service) { s.Backends[0].Addr = vip4 })}, "services[1].backends[0].addr"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := h.b.SetServices(tc.svcs)
			require.ErrorIs(t, err, ErrInvalidConfig)
			var ce *ConfigError
			require.ErrorAs(t, err, &ce)
			assert.Equal(t, tc.field, ce.Field)
			assert.Contains(t, err.Error(), tc.field)
			// The running config stays in force, flows included.
			require.Len(t, h.b.Services(), 1)
			assert.Equal(t, good.Key(), h.b.Services()[0].Key())
			for sport, be := range flows {
				require.Equal(t, be, h.where(sport))
			}
		})
	}
	require.ErrorIs(t, h.b.AddService(good), ErrExists)
	require.ErrorIs(t, h.b.RemoveService(ServiceKey{VIP: vip6, Protocol: TCP, Port: 1}), ErrNotFound)
	require.ErrorIs(t, h.b.DrainBackend(good.Key(), netip.MustParseAddr("192.0.2.99")), ErrNotFound)

	_, err := New(&Config{MaxFlows: -1})
	var ce *ConfigError
	require.ErrorAs(t, err, &ce)
	assert.Equal(t, "MaxFlows", ce.Field)
}

func TestBackendWithoutMACTakesNoFlows(t *testing.T) {
	svc := web4(2)
	svc.Backends[0].MAC = nil
	h := newHarness(t, nil, svc)
	for sport := uint16(100); sport < 200; sport++ {
		in := tcp4(sport, frame.FlagSYN)
		assert.Equal(t, 1, expectForward(t, in, h.send(in)))
	}
	require.NoError(t, h.b.SetBackendMAC(svc.Backends[0].Addr, backendMAC(0)))
	got := map[int]bool{}
	for sport := uint16(1000); sport < 1100; sport++ {
		in := tcp4(sport, frame.FlagSYN)
		got[expectForward(t, in, h.send(in))] = true
	}
	assert.True(t, got[0], "backend takes flows once its MAC is known")
}

func TestProcessAllocatesNothing(t *testing.T) {
	h := newHarness(t, nil, web4(3))
	h.open(10000, 1)
	frames := make([]Frame, 4)
	inputs := [][]byte{tcp4(500, frame.FlagACK), tcp4(60000, frame.FlagSYN), tcp6(1, frame.FlagSYN), ft.Build(ft.Ethernet{Dst: lbMAC, Src: clientMAC}, ft.IPv4{Src: client4, Dst: router4}, ft.UDP{SrcPort: 1, DstPort: 2})}
	for i := range frames {
		frames[i].Buf = make([]byte, MaxFrameSize)
	}
	out := make([]Frame, 0, len(frames))
	allocs := testing.AllocsPerRun(1000, func() {
		for i := range frames {
			frames[i].N = copy(frames[i].Buf, inputs[i])
		}
		out = h.w.processBatch(frames, out[:0])
	})
	assert.Zero(t, allocs)
}

// BenchmarkProcess measures the per-frame decision (parse, flow-table hit,
// rewrite, counters) with 10k live flows.
func BenchmarkProcess(b *testing.B) { benchProcess(b, frame.FlagACK) }

// benchProcess forwards batches of 64 frames with the given TCP flags, each
// of a flow among 10k that the table holds.
func benchProcess(b *testing.B, flags uint8) {
	h := newHarness(b, nil, web4(3))
	const flows = 10000
	for i := range flows {
		in := tcp4(uint16(i+1), frame.FlagSYN)
		h.send(in)
	}
	frames := make([]Frame, 64)
	inputs := make([][]byte, len(frames))
	for i := range frames {
		frames[i].Buf = make([]byte, 2048)
		inputs[i] = tcp4(uint16(1+(i*157)%flows), flags)
	}
	out := make([]Frame, 0, len(frames))
	b.ReportAllocs()
	b.ResetTimer()
	for n := 0; n < b.N; n += len(frames) {
		for i := range frames {
			frames[i].N = copy(frames[i].Buf, inputs[i])
		}
		out = h.w.processBatch(frames, out[:0])
	}
	b.StopTimer()
	if len(out) != len(frames) {
		b.Fatalf("forwarded %d of %d", len(out), len(frames))
	}
}

// BenchmarkProcessMillionFlows is BenchmarkProcess with a million live
// flows and every frame of a batch from a different random flow, so that
// each flow-table access misses the cache as on a busy balancer: it shows
// what the batch's two passes (prefetch, then decide) buy.
func BenchmarkProcessMillionFlows(b *testing.B) {
	h := newHarness(b, &Config{MaxFlows: 1 << 20}, web4(3))
	frameOf := func(flow int, flags uint8) []byte {
		src := netip.AddrFrom4([4]byte{198, 51, byte(flow >> 12), byte(flow >> 4)})
		return ft.Build(ft.Ethernet{Dst: lbMAC, Src: clientMAC}, ft.IPv4{Src: src, Dst: vip4, TTL: 57},
			ft.TCP{SrcPort: 1000 + uint16(flow&15), DstPort: 80, Flags: flags})
	}
	const flows = 1 << 20
	for i := range flows {
		h.send(frameOf(i, frame.FlagSYN))
	}
	if got := h.b.Stats().Flows; got < flows*9/10 {
		b.Fatalf("only %d flows in the table", got)
	}
	const pool = 1 << 16
	inputs := make([][]byte, pool)
	r := uint64(1)
	for i := range inputs {
		r = r*6364136223846793005 + 1442695040888963407
		inputs[i] = frameOf(int(r>>44)%flows, frame.FlagACK)
	}
	frames := make([]Frame, 64)
	for i := range frames {
		frames[i].Buf = make([]byte, 2048)
	}
	out := make([]Frame, 0, len(frames))
	b.ReportAllocs()
	b.ResetTimer()
	k := 0
	for n := 0; n < b.N; n += len(frames) {
		for i := range frames {
			frames[i].N = copy(frames[i].Buf, inputs[k&(pool-1)])
			k++
		}
		out = h.w.processBatch(frames, out[:0])
	}
}

// TestRoundRobinTurnsPerServiceAndWorker checks the balancer's turn
// counters: they are kept per service, so new flows interleaved over two
// rr services still rotate exactly within each (a counter shared by the
// services would send every other flow of each to the same backend), and
// per worker, so two workers rotate independently, each exactly.
func TestRoundRobinTurnsPerServiceAndWorker(t *testing.T) {
	a := Service{VIP: vip4, Protocol: TCP, Port: 80, Scheduler: "rr", Backends: backends(2, false)}
	b := Service{VIP: vip4, Protocol: TCP, Port: 443, Scheduler: "rr", Backends: backends(2, false)}
	h := newHarness(t, nil, a, b)
	second := &worker{b: h.b, mac: lbMAC, slot: 1, c: &h.b.workers[1%len(h.b.workers)]}
	count := map[string]map[int]int{}
	for _, w := range []*worker{h.w, second} {
		for port := range uint16(40) {
			for _, dport := range []uint16{80, 443} {
				in := ft.Build(ft.Ethernet{Dst: lbMAC, Src: clientMAC}, ft.IPv4{Src: client4, Dst: vip4}, ft.TCP{SrcPort: 1000 + port + 100*uint16(w.slot), DstPort: dport, Flags: frame.FlagSYN})
				f := []Frame{{Buf: make([]byte, MaxFrameSize)}}
				f[0].N = copy(f[0].Buf, in)
				out := w.processBatch(f, nil)
				require.Len(t, out, 1)
				be := expectForward(t, in, out[0].Bytes())
				key := fmt.Sprintf("worker%d/%d", w.slot, dport)
				if count[key] == nil {
					count[key] = map[int]int{}
				}
				count[key][be]++
			}
		}
	}
	for key, c := range count {
		assert.Equal(t, map[int]int{0: 20, 1: 20}, c, "%s: exact rotation", key)
	}
}

// TestSourceHashScheduler checks sh through the balancer (which hands it a
// precomputed source hash): every connection of one client reaches one
// backend, and clients spread.
func TestSourceHashScheduler(t *testing.T) {
	svc := Service{VIP: vip4, Protocol: TCP, Port: 80, Scheduler: "sh", Backends: backends(4, false)}
	h := newHarness(t, nil, svc)
	spread := map[int]bool{}
	for c := range 32 {
		client := netip.AddrFrom4([4]byte{198, 51, 100, byte(c)})
		first := -1
		for port := range uint16(8) {
			in := ft.Build(ft.Ethernet{Dst: lbMAC, Src: clientMAC}, ft.IPv4{Src: client, Dst: vip4}, ft.TCP{SrcPort: 2000 + port, DstPort: 80, Flags: frame.FlagSYN})
			be := expectForward(t, in, h.send(in))
			if first < 0 {
				first = be
			}
			require.Equal(t, first, be, "client %v: every connection to one backend", client)
		}
		spread[first] = true
	}
	assert.Len(t, spread, 4, "clients spread over every backend")
}

// TestReusedPortsLeaveDrainingBackend checks a new connection that reuses
// the ports of a closed one (a bare SYN on a flow in its closing state):
// it keeps its backend while that backend is active, but a draining
// backend takes no new connections, so there it is scheduled anew.
func TestReusedPortsLeaveDrainingBackend(t *testing.T) {
	svc := web4(3)
	h := newHarness(t, nil, svc)
	flows := h.open(60, 3000)
	closeFlow := func(sport uint16) {
		fin := tcp4(sport, frame.FlagFIN|frame.FlagACK)
		expectForward(t, fin, h.send(fin))
	}
	for sport := range flows {
		closeFlow(sport)
	}
	// Reused while every backend is active: same backend.
	for sport, be := range flows {
		syn := tcp4(sport, frame.FlagSYN)
		require.Equal(t, be, expectForward(t, syn, h.send(syn)), "port %d", sport)
		closeFlow(sport)
	}

	drained := svc.Backends[flows[3000]]
	require.NoError(t, h.b.DrainBackend(svc.Key(), drained.Addr))
	moved := 0
	for sport, be := range flows {
		syn := tcp4(sport, frame.FlagSYN)
		got := expectForward(t, syn, h.send(syn))
		if svc.Backends[be].Addr == drained.Addr {
			require.NotEqual(t, be, got, "port %d: a reused tuple must not open a connection on a draining backend", sport)
			moved++
		} else {
			require.Equal(t, be, got, "port %d: flows of active backends keep their backend", sport)
		}
		// The rest of the new connection follows it.
		ack := tcp4(sport, frame.FlagACK)
		require.Equal(t, got, expectForward(t, ack, h.send(ack)))
	}
	require.Positive(t, moved)
	st := h.b.Stats().Services[0]
	assert.Zero(t, st.Rescheduled, "a reused port is a new connection, not a rescheduled flow")
	for _, be := range st.Backends {
		if be.Addr == drained.Addr {
			assert.Zero(t, be.ActiveFlows, "the draining backend holds no flow any more")
		}
	}
}

// TestActiveFlowsWhenTableReplacesEntries checks that a flow the table
// gives up without a sweep still ends on its backend: a flow that expired
// and is replaced in place by a new connection on the same ports before
// the sweep came by, and an embryonic flow evicted from a full table.
// Otherwise the backend counts it as active for ever (and never drains).
func TestActiveFlowsWhenTableReplacesEntries(t *testing.T) {
	active := func(h *harness) (n int64) {
		for _, be := range h.b.Stats().Services[0].Backends {
			n += be.ActiveFlows
		}
		return n
	}
	t.Run("expired and replaced", func(t *testing.T) {
		h := newHarness(t, &Config{TCPClosingTimeout: time.Second}, web4(3))
		flows := h.open(30, 5000)
		for sport := range flows {
			fin := tcp4(sport, frame.FlagFIN|frame.FlagACK)
			expectForward(t, fin, h.send(fin))
		}
		require.Equal(t, int64(30), active(h))
		h.clock.Advance(2 * time.Second) // closing flows expired, not swept
		for sport := range flows {
			syn := tcp4(sport, frame.FlagSYN)
			expectForward(t, syn, h.send(syn))
		}
		assert.Equal(t, int64(30), active(h), "30 new connections replaced 30 expired ones")
		assert.Equal(t, 30, h.b.Stats().Flows)
		h.clock.Advance(time.Hour)
		h.b.ExpireFlows(1 << 30)
		assert.Zero(t, active(h))
	})
	t.Run("embryonic evicted", func(t *testing.T) {
		h := newHarness(t, &Config{MaxFlows: 4096}, web4(3))
		capacity := h.b.Stats().FlowCapacity
		for sport := uint16(1); int(sport) <= 3*capacity; sport++ {
			syn := tcp4(sport, frame.FlagSYN) // embryonic: evictable
			expectForward(t, syn, h.send(syn))
		}
		assert.Equal(t, int64(h.b.Stats().Flows), active(h), "active flows match the table")
	})
}

// TestBatchWithRelatedFrames checks the two passes over a batch when frames
// of one batch depend on each other: a new flow's SYN and its ACK, and a
// FIN and the SYN that reuses the ports, each in one batch. The decisions
// must be those of frames processed one by one.
func TestBatchWithRelatedFrames(t *testing.T) {
	h := newHarness(t, &Config{TCPClosingTimeout: time.Second}, web4(3))
	batch := func(ins ...[]byte) []int {
		f := make([]Frame, len(ins))
		for i, in := range ins {
			f[i].Buf = make([]byte, MaxFrameSize)
			f[i].N = copy(f[i].Buf, in)
		}
		out := h.w.processBatch(f, nil)
		require.Len(t, out, len(ins))
		got := make([]int, len(out))
		for i := range out {
			got[i] = expectForward(t, ins[i], out[i].Bytes())
		}
		return got
	}
	var ins [][]byte
	for sport := range uint16(20) {
		ins = append(ins, tcp4(7000+sport, frame.FlagSYN), tcp4(7000+sport, frame.FlagACK))
	}
	got := batch(ins...)
	for i := 0; i < len(got); i += 2 {
		assert.Equal(t, got[i], got[i+1], "a flow's SYN and ACK in one batch reach one backend")
	}
	assert.Equal(t, 20, h.b.Stats().Flows)
	assert.Equal(t, uint64(20), h.b.Stats().Services[0].Flows, "one flow each, not two")

	// Drain the first flow's backend; then close the flow and reopen its
	// ports in one batch: the reopened connection leaves it.
	svc := web4(3)
	require.NoError(t, h.b.DrainBackend(svc.Key(), svc.Backends[got[0]].Addr))
	again := batch(tcp4(7000, frame.FlagFIN|frame.FlagACK), tcp4(7000, frame.FlagSYN), tcp4(7000, frame.FlagACK))
	assert.Equal(t, got[0], again[0], "the FIN follows its flow")
	assert.NotEqual(t, got[0], again[1], "the new connection leaves the draining backend")
	assert.Equal(t, again[1], again[2])
}

func TestCheckThatCannotProbeIsRefused(t *testing.T) {
	b, err := New(nil)
	require.NoError(t, err)
	svc := Service{VIP: netip.MustParseAddr("2001:db8::100"), Protocol: TCP, Port: 80,
		Backends: []Backend{{Addr: netip.MustParseAddr("2001:db8::10")}},
		Checks:   []HealthCheck{{Checker: &health.TCPChecker{}}}}
	require.NoError(t, b.AddService(svc), "a tcp check on the service's port is fine on IPv6")

	allPorts := svc
	allPorts.VIP, allPorts.Port = netip.MustParseAddr("2001:db8::101"), 0
	err = b.AddService(allPorts)
	var ce *ConfigError
	require.ErrorAs(t, err, &ce)
	require.Equal(t, "services[1].checks[0]", ce.Field)
	require.ErrorIs(t, err, health.ErrUnsupportedTarget)
	require.ErrorContains(t, err, "needs a port")
	require.Len(t, b.Services(), 1, "the running configuration stays")

	allPorts.Checks = []HealthCheck{{Checker: &health.TCPChecker{}, Port: 8080}}
	require.NoError(t, b.AddService(allPorts), "a check port makes it work")
}

//go:build linux && (386 || amd64 || arm || arm64 || loong64 || mips64le || mipsle || ppc64le || riscv64)

package xdp

import (
	"fmt"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dsrlb/dsrlb/internal/flowtable"
	"github.com/dsrlb/dsrlb/internal/frame"
	ft "github.com/dsrlb/dsrlb/internal/frame/frametest"
	"github.com/dsrlb/dsrlb/scheduler"
)

var (
	ourMAC    = ft.MAC("02:00:00:00:00:01")
	clientMAC = ft.MAC("02:00:00:00:00:99")
	vip4      = netip.MustParseAddr("192.0.2.100")
	vip6      = netip.MustParseAddr("2001:db8::100")
	client4   = netip.MustParseAddr("203.0.113.7")
	client6   = netip.MustParseAddr("2001:db8:ffff::7")
	testSeed  = uint64(0x5eed_1234_abcd)
)

// testBackend is one backend of the test plan.
type testBackend struct {
	addr netip.Addr
	id   uint32
	mac  [6]byte
}

// plan is a program with hand-seeded maps and the Go-side view of them.
type plan struct {
	t        testing.TB
	p        *Program
	backends []testBackend
	// sched is the Go mh scheduler over the backends of the last
	// setService, and ids maps its indices to backend IDs.
	sched scheduler.Scheduler
	ids   []uint32
}

const embryonicTicks = 20 // TCPEmbryonicTimeout of newPlan: 2 s

func newPlan(t testing.TB) *plan {
	return newPlanSized(t, &Config{MaxFlows: 4096, MaxBackendSlots: 64, MaxServices: 8})
}

func newPlanSized(t testing.TB, cfg *Config) *plan {
	p := loadT(t, cfg)
	require.NoError(t, p.SetParams(Params{Seed: testSeed, MAC: net.HardwareAddr(ourMAC[:]),
		Flows: &flowtable.Config{TCPEmbryonicTimeout: 2 * time.Second, TCPClosingTimeout: 1 * time.Second}}))
	pl := &plan{t: t, p: p}
	for i := range 5 {
		slot := uint32(i + 1)
		be := testBackend{
			addr: netip.AddrFrom4([4]byte{198, 51, 100, byte(21 + i)}),
			id:   1<<IDSlotBits | slot,
			mac:  [6]byte{0x02, 0, 0, 0, 1, byte(i + 1)},
		}
		pl.backends = append(pl.backends, be)
		require.NoError(t, p.SetBackend(slot, Backend{ID: be.id, MAC: be.mac[:], Usable: true, Service: 0}))
	}
	pl.setService(0, pl.backends[:3]...)
	return pl
}

// setService builds the mh scheduler over bes and installs its table as
// services 0 (IPv4 TCP port 80, IPv4 UDP all ports) and 1 (IPv6 TCP 80).
func (pl *plan) setService(index uint32, bes ...testBackend) {
	t := pl.t
	sb := make([]scheduler.Backend, len(bes))
	pl.ids = make([]uint32, len(bes))
	for i, b := range bes {
		sb[i] = scheduler.Backend{Addr: b.addr, Weight: 1}
		pl.ids[i] = b.id
	}
	s, err := scheduler.New("mh", sb, scheduler.Config{Seed: testSeed})
	require.NoError(t, err)
	pl.sched = s
	tab, ok := scheduler.FlowTable(s)
	require.True(t, ok)
	ids := make([]uint32, len(tab))
	for i, x := range tab {
		ids[i] = pl.ids[x]
	}
	require.NoError(t, pl.p.SetService(ServiceKey{VIP: vip4, Port: 80, Proto: frame.ProtoTCP}, index, true, ids))
	require.NoError(t, pl.p.SetService(ServiceKey{VIP: vip4, Port: 0, Proto: frame.ProtoUDP}, index, true, ids))
	require.NoError(t, pl.p.SetService(ServiceKey{VIP: vip6, Port: 80, Proto: frame.ProtoTCP}, index+1, true, ids))
}

// pick is the Go mh scheduler's backend for a flow, as the balancer asks
// it (the flow hash with the configured seed).
func (pl *plan) pick(src, dst netip.Addr, sport, dport uint16, proto uint8) testBackend {
	k := flowtable.MakeKey(src, dst, sport, dport, proto)
	h, _ := k.Hashes(testSeed)
	idx, ok := pl.sched.Pick(&scheduler.Flow{Src: src, Dst: dst, SrcPort: sport, DstPort: dport, Proto: proto, Hash: h})
	require.True(pl.t, ok)
	return pl.byID(pl.ids[idx])
}

func (pl *plan) byID(id uint32) testBackend {
	for _, b := range pl.backends {
		if b.id&IDSlotMask == id&IDSlotMask {
			return b
		}
	}
	pl.t.Fatalf("no backend with ID %#x", id)
	return testBackend{}
}

func (pl *plan) counters() Counters {
	c, err := pl.p.Counters()
	require.NoError(pl.t, err)
	var sum uint64 = c.Forwarded
	for _, n := range c.Passed {
		sum += n
	}
	for _, n := range c.Dropped {
		sum += n
	}
	require.Equal(pl.t, c.Received, sum, "every frame counts once: received = forwarded + passed + dropped")
	return c
}

// tcp builds a client's TCP frame to dst:80.
func tcpFrame(src, dst netip.Addr, sport uint16, flags uint8) []byte {
	return ft.Build(ethTo(ourMAC), ipLayer(src, dst), ft.TCP{SrcPort: sport, DstPort: 80, Flags: flags, Window: 1024})
}

func udpFrame(src, dst netip.Addr, sport, dport uint16) []byte {
	return ft.Build(ethTo(ourMAC), ipLayer(src, dst), ft.UDP{SrcPort: sport, DstPort: dport}, ft.Raw("query"))
}

func ethTo(dst [6]byte) ft.Ethernet { return ft.Ethernet{Dst: dst, Src: clientMAC} }

func ipLayer(src, dst netip.Addr) ft.Layer {
	if src.Is4() {
		return ft.IPv4{Src: src, Dst: dst}
	}
	return ft.IPv6{Src: src, Dst: dst}
}

// forwarded runs in and requires it to be sent to be: the MACs rewritten,
// every other byte as it came.
func (pl *plan) forwarded(in []byte, be testBackend) {
	pl.t.Helper()
	v, out, err := pl.p.Run(in)
	require.NoError(pl.t, err)
	require.Equal(pl.t, TX, v)
	require.Len(pl.t, out, len(in))
	assert.Equal(pl.t, be.mac[:], out[0:6], "destination MAC: backend %v", be.addr)
	assert.Equal(pl.t, ourMAC[:], out[6:12], "source MAC: ours")
	assert.Equal(pl.t, in[12:], out[12:], "only the MACs change")
}

// passed runs in and requires it to go up unchanged, counted under r.
func (pl *plan) passed(in []byte, r PassReason) {
	pl.t.Helper()
	before := pl.counters()
	v, out, err := pl.p.Run(in)
	require.NoError(pl.t, err)
	require.Equal(pl.t, Pass, v)
	require.Equal(pl.t, in, out)
	after := pl.counters()
	for i := range NumPassReasons {
		want := before.Passed[i]
		if i == r {
			want++
		}
		assert.Equal(pl.t, want, after.Passed[i], "passed as %v", i)
	}
	assert.Equal(pl.t, before.Forwarded, after.Forwarded)
}

func (pl *plan) setNow(tick flowtable.Tick) { require.NoError(pl.t, pl.p.SetNow(tick)) }

func (pl *plan) flow(src, dst netip.Addr, sport, dport uint16, proto uint8) (Flow, bool) {
	f, ok, err := pl.p.LookupFlow(flowtable.MakeKey(src, dst, sport, dport, proto))
	require.NoError(pl.t, err)
	return f, ok
}

func TestIntegrationDecisionNewFlows(t *testing.T) {
	pl := newPlan(t)
	pl.setNow(7)
	perBackend := map[uint32]uint64{}
	type flowCase struct {
		src, dst netip.Addr
		sport    uint16
		dport    uint16
		proto    uint8
		svc      uint32
	}
	var cases []flowCase
	for i := range 300 {
		sport := uint16(40000 + i)
		cases = append(cases,
			flowCase{client4, vip4, sport, 80, frame.ProtoTCP, 0},
			flowCase{client6, vip6, sport, 80, frame.ProtoTCP, 1},
			flowCase{client4, vip4, sport, uint16(1000 + i), frame.ProtoUDP, 0}, // the all-ports service
		)
	}
	var bytes uint64
	for _, c := range cases {
		var in []byte
		if c.proto == frame.ProtoTCP {
			in = tcpFrame(c.src, c.dst, c.sport, frame.FlagSYN)
		} else {
			in = udpFrame(c.src, c.dst, c.sport, c.dport)
		}
		want := pl.pick(c.src, c.dst, c.sport, c.dport, c.proto)
		pl.forwarded(in, want)
		f, ok := pl.flow(c.src, c.dst, c.sport, c.dport, c.proto)
		require.True(t, ok, "a new flow is inserted")
		assert.Equal(t, Flow{Backend: want.id, State: flowtable.Embryonic, LastSeen: 7}, f)
		perBackend[want.id]++
		bytes += uint64(len(in))
	}
	c := pl.counters()
	assert.EqualValues(t, len(cases), c.Forwarded)
	assert.EqualValues(t, 2*300, c.Services[0].Flows)
	assert.EqualValues(t, 300, c.Services[1].Flows)
	var gotBytes uint64
	for _, b := range pl.backends[:3] {
		slot := b.id & IDSlotMask
		assert.Equal(t, perBackend[b.id], c.Backends[slot].Flows, "flows of %v", b.addr)
		assert.Equal(t, perBackend[b.id], c.Backends[slot].Packets, "packets of %v", b.addr)
		assert.NotZero(t, perBackend[b.id], "900 flows reach every backend of 3")
		gotBytes += c.Backends[slot].Bytes
	}
	assert.Equal(t, bytes, gotBytes)
	counts, err := pl.p.FlowsPerBackend(7)
	require.NoError(t, err)
	for id, n := range perBackend {
		assert.EqualValues(t, n, counts[id])
	}
}

func TestIntegrationDecisionHitKeepsBackend(t *testing.T) {
	pl := newPlan(t)
	first := pl.pick(client4, vip4, 40000, 80, frame.ProtoTCP)
	pl.forwarded(tcpFrame(client4, vip4, 40000, frame.FlagSYN), first)
	pl.forwarded(tcpFrame(client4, vip4, 40000, frame.FlagACK), first)
	f, _ := pl.flow(client4, vip4, 40000, 80, frame.ProtoTCP)
	assert.Equal(t, flowtable.Established, f.State)

	// A new table whose every entry names another backend: the
	// established flow stays, a new flow follows the table.
	var other testBackend
	for _, b := range pl.backends[:3] {
		if b.id != first.id {
			other = b
			break
		}
	}
	pl.setService(0, other)
	pl.setNow(3)
	pl.forwarded(tcpFrame(client4, vip4, 40000, frame.FlagACK|frame.FlagPSH), first)
	pl.forwarded(tcpFrame(client4, vip4, 40001, frame.FlagSYN), other)
	f, _ = pl.flow(client4, vip4, 40000, 80, frame.ProtoTCP)
	assert.Equal(t, Flow{Backend: first.id, State: flowtable.Established, LastSeen: 3}, f, "a hit refreshes last-seen")
	c := pl.counters()
	assert.EqualValues(t, 2, c.Services[0].Flows)
	assert.Zero(t, c.Services[0].Rescheduled)
}

func TestIntegrationDecisionLoneRST(t *testing.T) {
	pl := newPlan(t)
	want := pl.pick(client4, vip4, 40000, 80, frame.ProtoTCP)
	pl.forwarded(tcpFrame(client4, vip4, 40000, frame.FlagRST), want)
	_, ok := pl.flow(client4, vip4, 40000, 80, frame.ProtoTCP)
	assert.False(t, ok, "a lone RST creates no state")
	c := pl.counters()
	assert.Zero(t, c.Services[0].Flows)
	assert.Zero(t, c.Backends[want.id&IDSlotMask].Flows)
	assert.EqualValues(t, 1, c.Backends[want.id&IDSlotMask].Packets)
}

func TestIntegrationDecisionSYNRetransmit(t *testing.T) {
	pl := newPlan(t)
	want := pl.pick(client4, vip4, 40000, 80, frame.ProtoTCP)
	for range 3 {
		pl.forwarded(tcpFrame(client4, vip4, 40000, frame.FlagSYN), want)
	}
	// A SYN on an established flow is not a retransmit of the first.
	pl.forwarded(tcpFrame(client4, vip4, 40000, frame.FlagACK), want)
	pl.forwarded(tcpFrame(client4, vip4, 40000, frame.FlagSYN), want)
	c := pl.counters()
	assert.EqualValues(t, 2, c.Backends[want.id&IDSlotMask].SYNRetransmits)
	assert.EqualValues(t, 1, c.Backends[want.id&IDSlotMask].Flows)
}

func TestIntegrationDecisionPortReuseAfterClose(t *testing.T) {
	pl := newPlan(t)
	first := pl.pick(client4, vip4, 40000, 80, frame.ProtoTCP)
	pl.forwarded(tcpFrame(client4, vip4, 40000, frame.FlagSYN), first)
	pl.forwarded(tcpFrame(client4, vip4, 40000, frame.FlagACK), first)
	pl.forwarded(tcpFrame(client4, vip4, 40000, frame.FlagFIN|frame.FlagACK), first)
	f, _ := pl.flow(client4, vip4, 40000, 80, frame.ProtoTCP)
	require.Equal(t, flowtable.Closing, f.State)
	// Closing flows keep their backend for the rest of the close.
	pl.forwarded(tcpFrame(client4, vip4, 40000, frame.FlagACK), first)

	// The plan changes; a bare SYN on the closed flow's ports is a new
	// connection: it gets the current plan's pick.
	next := pl.backends[3]
	pl.setService(0, next)
	pl.forwarded(tcpFrame(client4, vip4, 40000, frame.FlagSYN), next)
	f, _ = pl.flow(client4, vip4, 40000, 80, frame.ProtoTCP)
	assert.Equal(t, next.id, f.Backend)
	assert.Equal(t, flowtable.Embryonic, f.State)
	c := pl.counters()
	assert.EqualValues(t, 2, c.Services[0].Flows, "the reopened connection counts as a new flow")
	assert.Zero(t, c.Services[0].Rescheduled)
	assert.EqualValues(t, 1, c.Backends[next.id&IDSlotMask].Flows)
	assert.Zero(t, c.Backends[first.id&IDSlotMask].SYNRetransmits)
}

func TestIntegrationDecisionExpiry(t *testing.T) {
	pl := newPlan(t)
	pl.setNow(100)
	first := pl.pick(client4, vip4, 40000, 80, frame.ProtoTCP)
	pl.forwarded(tcpFrame(client4, vip4, 40000, frame.FlagSYN), first)
	// Idle exactly the embryonic timeout: still alive; the SYN refreshes it.
	pl.setNow(100 + embryonicTicks)
	pl.forwarded(tcpFrame(client4, vip4, 40000, frame.FlagSYN), first)
	c := pl.counters()
	assert.EqualValues(t, 1, c.Services[0].Flows)
	assert.EqualValues(t, 1, c.Backends[first.id&IDSlotMask].SYNRetransmits)

	// One tick more: expired, so a new flow on the current plan.
	next := pl.backends[4]
	pl.setService(0, next)
	pl.setNow(100 + 2*embryonicTicks + 1)
	pl.forwarded(tcpFrame(client4, vip4, 40000, frame.FlagSYN), next)
	f, _ := pl.flow(client4, vip4, 40000, 80, frame.ProtoTCP)
	assert.Equal(t, Flow{Backend: next.id, State: flowtable.Embryonic, LastSeen: 100 + 2*embryonicTicks + 1}, f)
	c = pl.counters()
	assert.EqualValues(t, 2, c.Services[0].Flows)
	assert.EqualValues(t, 1, c.Backends[first.id&IDSlotMask].SYNRetransmits, "an expired flow's SYN is no retransmit")

	// Expired entries are not counted as active.
	counts, err := pl.p.FlowsPerBackend(100 + 4*embryonicTicks)
	require.NoError(t, err)
	assert.Empty(t, counts)
}

func TestIntegrationDecisionReschedule(t *testing.T) {
	for _, tc := range []struct {
		name   string
		break_ func(pl *plan, be testBackend)
	}{
		{"backend unusable", func(pl *plan, be testBackend) {
			require.NoError(t, pl.p.SetBackend(be.id&IDSlotMask, Backend{ID: be.id, MAC: be.mac[:], Usable: false}))
		}},
		{"generation changed", func(pl *plan, be testBackend) {
			require.NoError(t, pl.p.SetBackend(be.id&IDSlotMask, Backend{ID: be.id + 1<<IDSlotBits, MAC: be.mac[:], Usable: true}))
		}},
		{"slot cleared", func(pl *plan, be testBackend) {
			require.NoError(t, pl.p.ClearBackend(be.id&IDSlotMask))
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			pl := newPlan(t)
			first := pl.pick(client4, vip4, 40000, 80, frame.ProtoTCP)
			pl.forwarded(tcpFrame(client4, vip4, 40000, frame.FlagSYN), first)
			pl.forwarded(tcpFrame(client4, vip4, 40000, frame.FlagACK), first)
			var rest []testBackend
			for _, b := range pl.backends[:3] {
				if b.id != first.id {
					rest = append(rest, b)
				}
			}
			pl.setService(0, rest...)
			tc.break_(pl, first)
			want := pl.pick(client4, vip4, 40000, 80, frame.ProtoTCP)
			require.NotEqual(t, first.id, want.id)
			pl.forwarded(tcpFrame(client4, vip4, 40000, frame.FlagACK), want)
			f, _ := pl.flow(client4, vip4, 40000, 80, frame.ProtoTCP)
			assert.Equal(t, want.id, f.Backend)
			assert.Equal(t, flowtable.Established, f.State, "rescheduling keeps the state")
			pl.forwarded(tcpFrame(client4, vip4, 40000, frame.FlagACK), want)
			c := pl.counters()
			assert.EqualValues(t, 1, c.Services[0].Rescheduled)
			assert.EqualValues(t, 1, c.Services[0].Flows)
			assert.EqualValues(t, 1, c.Backends[want.id&IDSlotMask].Flows)
		})
	}
}

func TestIntegrationDecisionNoBackend(t *testing.T) {
	pl := newPlan(t)
	require.NoError(t, pl.p.SetService(ServiceKey{VIP: vip4, Port: 80, Proto: frame.ProtoTCP}, 0, true, nil))
	for i := range 3 {
		before := pl.counters()
		v, _, err := pl.p.Run(tcpFrame(client4, vip4, uint16(40000+i), frame.FlagSYN))
		require.NoError(t, err)
		require.Equal(t, Drop, v)
		assert.Equal(t, before.Dropped[DropNoBackend]+1, pl.counters().Dropped[DropNoBackend])
	}
	// A table naming only an unusable backend drops too.
	be := pl.backends[0]
	require.NoError(t, pl.p.SetService(ServiceKey{VIP: vip4, Port: 80, Proto: frame.ProtoTCP}, 0, true, []uint32{be.id, be.id, be.id}))
	require.NoError(t, pl.p.SetBackend(be.id&IDSlotMask, Backend{ID: be.id, MAC: be.mac[:], Usable: false}))
	v, _, err := pl.p.Run(tcpFrame(client4, vip4, 41000, frame.FlagSYN))
	require.NoError(t, err)
	require.Equal(t, Drop, v)
	// And a table of NoBackend entries.
	require.NoError(t, pl.p.SetService(ServiceKey{VIP: vip4, Port: 80, Proto: frame.ProtoTCP}, 0, true, []uint32{NoBackend, NoBackend}))
	v, _, err = pl.p.Run(tcpFrame(client4, vip4, 41001, frame.FlagSYN))
	require.NoError(t, err)
	require.Equal(t, Drop, v)
	c := pl.counters()
	assert.EqualValues(t, 5, c.Dropped[DropNoBackend])
	_, ok := pl.flow(client4, vip4, 41000, 80, frame.ProtoTCP)
	assert.False(t, ok)
}

func TestIntegrationDecisionICMPError(t *testing.T) {
	pl := newPlan(t)
	be4 := pl.pick(client4, vip4, 40000, 80, frame.ProtoTCP)
	pl.forwarded(tcpFrame(client4, vip4, 40000, frame.FlagSYN), be4)
	be6 := pl.pick(client6, vip6, 40000, 80, frame.ProtoTCP)
	pl.forwarded(tcpFrame(client6, vip6, 40000, frame.FlagSYN), be6)
	router4 := netip.MustParseAddr("198.51.100.254")
	router6 := netip.MustParseAddr("2001:db8:fe::1")

	// A router on the way back to the client quotes the backend's reply
	// (from the VIP to the client).
	frag4 := func(quotedSrc netip.Addr, sport uint16) []byte {
		return ft.Build(ethTo(ourMAC), ft.IPv4{Src: router4, Dst: quotedSrc},
			ft.ICMPv4{Type: frame.ICMPv4DestUnreachable, Code: 4, Rest: 1400, Truncate: 28},
			ft.IPv4{Src: quotedSrc, Dst: client4}, ft.TCP{SrcPort: 80, DstPort: sport, Flags: frame.FlagACK})
	}
	ptb6 := func(sport uint16) []byte {
		return ft.Build(ethTo(ourMAC), ft.IPv6{Src: router6, Dst: vip6},
			ft.ICMPv6{Type: frame.ICMPv6PacketTooBig, Rest: 1280},
			ft.IPv6{Src: vip6, Dst: client6}, ft.TCP{SrcPort: 80, DstPort: sport, Flags: frame.FlagACK})
	}
	pl.forwarded(frag4(vip4, 40000), be4)
	pl.forwarded(ptb6(40000), be6)
	// Time exceeded is an error the Go path follows too.
	pl.forwarded(ft.Build(ethTo(ourMAC), ft.IPv4{Src: router4, Dst: vip4},
		ft.ICMPv4{Type: frame.ICMPv4TimeExceeded, Truncate: 28},
		ft.IPv4{Src: vip4, Dst: client4}, ft.TCP{SrcPort: 80, DstPort: 40000}), be4)

	pl.passed(frag4(vip4, 40001), PassICMPNoFlow)
	pl.passed(ptb6(40001), PassICMPNoFlow)
	pl.passed(frag4(netip.MustParseAddr("192.0.2.200"), 40000), PassNotVIP)
	// An echo request is not an error.
	pl.passed(ft.Build(ethTo(ourMAC), ft.IPv4{Src: client4, Dst: vip4}, ft.ICMPv4{Type: 8}), PassOther)
	// The quote must carry the ports.
	pl.passed(ft.Build(ethTo(ourMAC), ft.IPv4{Src: router4, Dst: vip4},
		ft.ICMPv4{Type: frame.ICMPv4DestUnreachable, Code: 4, Truncate: 22},
		ft.IPv4{Src: vip4, Dst: client4}, ft.TCP{SrcPort: 80, DstPort: 40000}), PassICMPNoFlow)
	// A backend that went away: up to the Go path.
	require.NoError(t, pl.p.SetBackend(be4.id&IDSlotMask, Backend{ID: be4.id, MAC: be4.mac[:], Usable: false}))
	pl.passed(frag4(vip4, 40000), PassICMPNoFlow)
}

// A service matches the frames of its VLAN only (the tag's VLAN ID, of an
// 802.1Q or 802.1ad tag, priority bits aside; untagged and priority-tagged
// frames are VLAN 0), and a flow-table hit on another VLAN's backend is
// rescheduled.
func TestIntegrationDecisionVLAN(t *testing.T) {
	pl := newPlan(t)
	tagged := func(tci uint16, qinq bool, sport uint16, flags uint8) []byte {
		return ft.Build(ethTo(ourMAC), ft.VLAN{TCI: tci, QinQ: qinq}, ft.IPv4{Src: client4, Dst: vip4},
			ft.TCP{SrcPort: sport, DstPort: 80, Flags: flags})
	}
	// The plan's services are untagged: VLAN 100 has none.
	pl.passed(tagged(100, false, 40000, frame.FlagSYN), PassNoService)
	// Priority-tagged is untagged.
	pl.forwarded(tagged(5<<13, false, 40000, frame.FlagSYN), pl.pick(client4, vip4, 40000, 80, frame.ProtoTCP))

	// VLAN 100's service has backend 4 alone, of VLAN 100.
	be100 := pl.backends[4]
	require.NoError(t, pl.p.SetBackend(be100.id&IDSlotMask, Backend{ID: be100.id, MAC: be100.mac[:], Usable: true, Service: 2, VLAN: 100}))
	table := []uint32{be100.id, be100.id, be100.id, be100.id, be100.id, be100.id, be100.id}
	require.NoError(t, pl.p.SetService(ServiceKey{VIP: vip4, Port: 80, Proto: frame.ProtoTCP, VLAN: 100}, 2, true, table))
	for _, qinq := range []bool{false, true} {
		sport := uint16(40010)
		if qinq {
			sport++
		}
		pl.forwarded(tagged(3<<13|100, qinq, sport, frame.FlagSYN), be100) // the tag is among the bytes kept
		pl.passed(tagged(200, qinq, sport, frame.FlagACK), PassNoService)
	}
	// The same 5-tuple untagged is the untagged service's flow, not VLAN
	// 100's, and back.
	pl.forwarded(tagged(0, false, 40010, frame.FlagACK), pl.pick(client4, vip4, 40010, 80, frame.ProtoTCP))
	pl.forwarded(tagged(100, false, 40010, frame.FlagACK), be100)
	require.Error(t, pl.p.SetService(ServiceKey{VIP: vip4, Port: 80, Proto: frame.ProtoTCP, VLAN: 4095}, 3, true, table))
	// Two tags: the Go path decides.
	pl.passed(ft.Build(ethTo(ourMAC), ft.VLAN{TCI: 100, QinQ: true}, ft.VLAN{TCI: 200}, ft.IPv4{Src: client4, Dst: vip4},
		ft.TCP{SrcPort: 40002, DstPort: 80, Flags: frame.FlagSYN}), PassOther)
}

func TestIntegrationDecisionPass(t *testing.T) {
	pl := newPlan(t)
	require.NoError(t, pl.p.SetService(ServiceKey{VIP: vip4, Port: 443, Proto: frame.ProtoTCP}, 3, false, nil))
	eth := ethTo(ourMAC)
	syn := ft.TCP{SrcPort: 40000, DstPort: 80, Flags: frame.FlagSYN}
	ip4 := ft.IPv4{Src: client4, Dst: vip4}
	valid := ft.Build(eth, ip4, syn)
	truncated := func(n int) []byte { return valid[:n] }
	withByte := func(b []byte, at int, v byte) []byte {
		c := append([]byte(nil), b...)
		c[at] = v
		return c
	}
	for _, tc := range []struct {
		name   string
		frame  []byte
		reason PassReason
	}{
		{"another destination MAC", ft.Build(ethTo(ft.MAC("02:00:00:00:00:02")), ip4, syn), PassNotOurs},
		{"broadcast", ft.Build(ethTo(ft.MAC("ff:ff:ff:ff:ff:ff")), ip4, syn), PassNotOurs},
		{"our own source MAC", ft.Build(ft.Ethernet{Dst: ourMAC, Src: ourMAC}, ip4, syn), PassOther},
		{"ARP", ft.Build(eth, ft.ARP{SenderIP: client4, TargetIP: vip4}), PassOther},
		{"not a VIP", ft.Build(eth, ft.IPv4{Src: client4, Dst: netip.MustParseAddr("192.0.2.99")}, syn), PassNotVIP},
		{"not a VIP, IPv6", ft.Build(eth, ft.IPv6{Src: client6, Dst: netip.MustParseAddr("2001:db8::99")}, syn), PassNotVIP},
		{"VIP without the port's service", ft.Build(eth, ip4, ft.TCP{SrcPort: 40000, DstPort: 8080, Flags: frame.FlagSYN}), PassNoService},
		{"VIP without the protocol's service", ft.Build(eth, ft.IPv6{Src: client6, Dst: vip6}, ft.UDP{SrcPort: 1, DstPort: 80}), PassNoService},
		{"service not XDP-capable", ft.Build(eth, ip4, ft.TCP{SrcPort: 40000, DstPort: 443, Flags: frame.FlagSYN}), PassNotCapable},
		{"first fragment", ft.Build(eth, ft.IPv4{Src: client4, Dst: vip4, MF: true}, syn), PassFragment},
		{"later fragment", ft.Build(eth, ft.IPv4{Src: client4, Dst: vip4, FragOffset: 100, Protocol: frame.ProtoTCP}, ft.Raw(make([]byte, 24))), PassFragment},
		{"IPv6 hop-by-hop", ft.Build(eth, ft.IPv6{Src: client6, Dst: vip6}, ft.IPv6Ext{Header: 0}, syn), PassExtHeader},
		{"IPv6 fragment header", ft.Build(eth, ft.IPv6{Src: client6, Dst: vip6}, ft.IPv6Fragment{More: true}, syn), PassExtHeader},
		{"IPv6 destination options", ft.Build(eth, ft.IPv6{Src: client6, Dst: vip6}, ft.IPv6Ext{Header: 60}, syn), PassExtHeader},
		{"not TCP, UDP or ICMP", ft.Build(eth, ft.IPv4{Src: client4, Dst: vip4, Protocol: 132}, ft.Raw(make([]byte, 12))), PassOther},
		{"ICMPv6 in IPv4", ft.Build(eth, ft.IPv4{Src: client4, Dst: vip4, Protocol: frame.ProtoICMPv6}, ft.Raw(make([]byte, 8))), PassOther},
		{"short VLAN tag", ft.Build(eth, ft.VLAN{TCI: 1, EtherType: 0x0800})[:16], PassMalformed},
		{"short IPv4 header", truncated(14 + 19), PassMalformed},
		{"IPv4 packet cut short", truncated(14 + 39), PassMalformed},
		{"IHL below 5", withByte(valid, 14, 0x44), PassMalformed},
		{"IHL beyond the frame", ft.Build(eth, ft.IPv4{Src: client4, Dst: vip4, Protocol: frame.ProtoTCP}, ft.Raw([]byte{0}))[:14+20], PassMalformed},
		{"version 6 in an IPv4 frame", withByte(valid, 14, 0x65), PassMalformed},
		{"IPv4 total length beyond the frame", ft.Build(eth, ft.IPv4{Src: client4, Dst: vip4, Length: 100}, syn), PassMalformed},
		{"IPv4 total length below the header", ft.Build(eth, ft.IPv4{Src: client4, Dst: vip4, Length: 19}, syn), PassMalformed},
		{"TCP data offset below 5", ft.Build(eth, ip4, ft.TCP{SrcPort: 1, DstPort: 80, DataOffset: 4}), PassMalformed},
		{"TCP data offset beyond the packet", ft.Build(eth, ip4, ft.TCP{SrcPort: 1, DstPort: 80, DataOffset: 15}), PassMalformed},
		{"TCP header cut short", ft.Build(eth, ft.IPv4{Src: client4, Dst: vip4, Protocol: frame.ProtoTCP}, ft.Raw(make([]byte, 19))), PassMalformed},
		{"UDP length below 8", ft.Build(eth, ip4, ft.UDP{SrcPort: 1, DstPort: 53, Length: 7}), PassMalformed},
		{"UDP length beyond the packet", ft.Build(eth, ip4, ft.UDP{SrcPort: 1, DstPort: 53, Length: 9}), PassMalformed},
		{"short IPv6 header", ft.Build(eth, ft.IPv6{Src: client6, Dst: vip6}, syn)[:14+39], PassMalformed},
		{"IPv6 payload beyond the frame", ft.Build(eth, ft.IPv6{Src: client6, Dst: vip6, Length: 100}, syn), PassMalformed},
		{"ICMP header cut short", ft.Build(eth, ft.IPv4{Src: client4, Dst: vip4, Protocol: frame.ProtoICMP}, ft.Raw(make([]byte, 7))), PassMalformed},
	} {
		t.Run(tc.name, func(t *testing.T) {
			// The Go parser is the reference for what is malformed.
			var p frame.Packet
			err := frame.Parse(tc.frame, &p)
			if tc.reason == PassMalformed {
				require.Error(t, err, "the Go parser calls it malformed too")
			} else {
				require.NoError(t, err, fmt.Sprintf("a well-formed frame (%x)", tc.frame))
			}
			sub := *pl
			sub.t = t
			sub.passed(tc.frame, tc.reason)
		})
	}
	assert.Zero(t, pl.counters().Forwarded)
}

// TestIntegrationDecisionGSOLength: an IPv4 total length of 0 (a GSO
// super-frame as a local sender hands it over) and an IPv6 payload length
// of 0 are taken from the frame, as the Go parser does.
func TestIntegrationDecisionGSOLength(t *testing.T) {
	pl := newPlan(t)
	payload := ft.Raw(make([]byte, 3000))
	in4 := ft.Build(ethTo(ourMAC), ft.IPv4{Src: client4, Dst: vip4, Length: -1}, ft.TCP{SrcPort: 40000, DstPort: 80, Flags: frame.FlagACK}, payload)
	pl.forwarded(in4, pl.pick(client4, vip4, 40000, 80, frame.ProtoTCP))
	in6 := ft.Build(ethTo(ourMAC), ft.IPv6{Src: client6, Dst: vip6, Length: -1}, ft.TCP{SrcPort: 40000, DstPort: 80, Flags: frame.FlagACK}, payload)
	pl.forwarded(in6, pl.pick(client6, vip6, 40000, 80, frame.ProtoTCP))
}

package dsr

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dsrlb/dsrlb/health"
	"github.com/dsrlb/dsrlb/internal/frame"
	ft "github.com/dsrlb/dsrlb/internal/frame/frametest"
)

// dropCounts returns every drop counter.
func (h *harness) dropCounts() map[DropReason]uint64 { return h.b.Stats().Drops }

// backendByMAC maps a forwarded frame's destination MAC to the backend's
// address in the live configuration.
func (h *harness) backendByMAC(mac []byte) netip.Addr {
	for _, svc := range h.b.Stats().Services {
		for _, be := range svc.Backends {
			if string(be.MAC) == string(mac) {
				return be.Addr
			}
		}
	}
	return netip.Addr{}
}

// checkParity explains in, then forwards it, and asserts that both made
// the same decision.
func (h *harness) checkParity(t *testing.T, in []byte) Explanation {
	t.Helper()
	e := h.b.Explain(in)
	before := h.dropCounts()
	out := h.send(in)
	if out == nil {
		after := h.dropCounts()
		var counted []DropReason
		for r, n := range after {
			if n != before[r] {
				counted = append(counted, r)
			}
		}
		require.Len(t, counted, 1, "one drop reason counted")
		require.False(t, e.Forward, "Explain says forward, the worker dropped (%s):\n%s", counted[0], e.String())
		require.Equal(t, counted[0], e.Drop, "drop reason:\n%s", e.String())
		return e
	}
	require.True(t, e.Forward, "Explain says drop (%s), the worker forwarded:\n%s", e.Drop, e.String())
	got := h.backendByMAC(out[0:6])
	if e.Backend.IsValid() {
		require.Equal(t, got, e.Backend, "backend:\n%s", e.String())
		require.Equal(t, net.HardwareAddr(out[0:6]), e.BackendMAC)
	} else {
		require.Contains(t, e.Candidates, got, "the worker's pick is among the candidates:\n%s", e.String())
	}
	return e
}

func tcpTo(dst netip.Addr, dport, sport uint16, flags uint8) []byte {
	ip := ft.Layer(ft.IPv4{Src: client4, Dst: dst, TTL: 64})
	if dst.Is6() {
		ip = ft.IPv6{Src: client6, Dst: dst, HopLimit: 64}
	}
	return ft.Build(ft.Ethernet{Dst: lbMAC, Src: clientMAC}, ip, ft.TCP{SrcPort: sport, DstPort: dport, Flags: flags})
}

func udpTo(dst netip.Addr, dport, sport uint16) []byte {
	return ft.Build(ft.Ethernet{Dst: lbMAC, Src: clientMAC}, ft.IPv4{Src: client4, Dst: dst, TTL: 64}, ft.UDP{SrcPort: sport, DstPort: dport}, ft.Raw("q"))
}

// TestExplainAgreesWithWorker drives a random mix of packets — new flows,
// established flows, closes and port reuse, ICMP errors, fragments, frames
// for no service — through Explain and then through the worker, with
// configuration and health changes in between, and requires the same
// decision every time.
func TestExplainAgreesWithWorker(t *testing.T) {
	// Every backend has its own address and MAC, so a forwarded frame's
	// MAC names one backend.
	web := web4(4)
	web6 := Service{VIP: vip6, Protocol: TCP, Port: 443, Backends: distinctBackends(3, 10), Scheduler: "hrw"}
	dns := Service{VIP: vip4, Protocol: UDP, Port: 53, Backends: distinctBackends(3, 20), Scheduler: "sh"}
	rot := Service{VIP: netip.MustParseAddr("192.0.2.101"), Protocol: TCP, Port: 0, Backends: distinctBackends(3, 30), Scheduler: "rr"}
	for i := range web6.Backends {
		web6.Backends[i].Addr = netip.MustParseAddr(fmt.Sprintf("2001:db8::%d", 40+i))
	}
	h := newHarness(t, &Config{Fragments: FragmentsHash}, web, web6, dns, rot)
	rng := rand.New(rand.NewPCG(1, 2))
	flags := []uint8{frame.FlagSYN, frame.FlagACK, frame.FlagACK | frame.FlagPSH, frame.FlagFIN | frame.FlagACK, frame.FlagRST}
	whys := map[Why]int{}
	for i := range 4000 {
		var in []byte
		sport := uint16(20000 + rng.IntN(300))
		switch r := rng.IntN(100); {
		case r < 55:
			in = tcpTo(vip4, 80, sport, flags[rng.IntN(len(flags))])
		case r < 65:
			in = tcpTo(vip6, 443, sport, flags[rng.IntN(len(flags))])
		case r < 72:
			in = udpTo(vip4, 53, sport)
		case r < 78:
			in = tcpTo(rot.VIP, uint16(1+rng.IntN(3)), sport, frame.FlagSYN)
		case r < 84:
			// The server's packet to the client could not be forwarded.
			in = ft.Build(ft.Ethernet{Dst: lbMAC, Src: clientMAC}, ft.IPv4{Src: router4, Dst: vip4},
				ft.ICMPv4{Type: 3, Code: 4, Rest: 1400, Truncate: 28},
				ft.IPv4{Src: vip4, Dst: client4}, ft.TCP{SrcPort: 80, DstPort: sport, Flags: frame.FlagACK})
		case r < 88:
			in = ft.Build(ft.Ethernet{Dst: lbMAC, Src: clientMAC}, ft.IPv4{Src: client4, Dst: vip4, Protocol: 6, ID: uint16(i), FragOffset: 185},
				ft.Raw("tail of a datagram"))
		case r < 92:
			in = tcpTo(vip4, 81, sport, frame.FlagSYN) // a VIP, no service
		case r < 96:
			in = tcpTo(router4, 80, sport, frame.FlagSYN) // not a VIP
		default:
			in = in0(rng)
		}
		e := h.checkParity(t, in)
		whys[e.Why]++
		// Now and then, change what the plan is compiled from.
		switch i % 400 {
		case 100:
			require.NoError(t, h.b.DrainBackend(web.Key(), web.Backends[1].Addr))
		case 150:
			require.NoError(t, h.b.SetBackendState(web.Key(), web.Backends[2].Addr, BackendDown))
		case 200:
			require.NoError(t, h.b.RemoveBackend(web6.Key(), web6.Backends[0].Addr))
		case 250:
			h.b.onHealthEventForTest(web.Key(), web.Backends[3].Addr, errors.New("connection refused"))
		case 300:
			h.clock.Advance(20 * time.Second) // closed flows expire
		case 399:
			require.NoError(t, h.b.SetServices([]Service{web, web6, dns, rot}))
			h.b.onHealthEventForTest(web.Key(), web.Backends[3].Addr, nil)
		}
	}
	for _, w := range []Why{WhyFlowHit, WhyNewFlow, WhyRescheduled, WhyReopened, WhyICMPError, WhyFragment, WhyDropped} {
		assert.Positive(t, whys[w], "the mix reached %s", w)
	}
}

// distinctBackends returns n IPv4 backends whose addresses and MACs start
// at offset base.
func distinctBackends(n, base int) []Backend {
	out := make([]Backend, n)
	for i := range out {
		out[i] = Backend{Addr: netip.AddrFrom4([4]byte{192, 0, 2, byte(21 + base + i)}), MAC: backendMAC(base + i)}
	}
	return out
}

// in0 is a frame that is not IP, or not even Ethernet.
func in0(rng *rand.Rand) []byte {
	if rng.IntN(2) == 0 {
		return ft.Build(ft.Ethernet{Dst: lbMAC, Src: clientMAC, EtherType: 0x88cc}, ft.Raw("lldp"))
	}
	b := make([]byte, rng.IntN(30))
	for i := range b {
		b[i] = byte(rng.Uint32())
	}
	return b
}

func TestExplainSaysWhy(t *testing.T) {
	svc := web4(3)
	h := newHarness(t, nil, svc)
	tuple := Tuple{Src: netip.AddrPortFrom(client4, 40000), Dst: netip.AddrPortFrom(vip4, 80), Protocol: TCP}

	e, err := h.b.ExplainFlow(tuple)
	require.NoError(t, err)
	require.Equal(t, WhyNewFlow, e.Why)
	require.True(t, e.Forward)
	require.NotNil(t, e.Placement, "mh says which slot")
	assert.Equal(t, 65537, e.Placement.TableSize)
	assert.Contains(t, e.String(), "selects slot")
	assert.Equal(t, "mh", e.Scheduler)
	require.Zero(t, h.b.Stats().Flows, "explaining creates no flow")

	syn := tcp4(40000, frame.FlagSYN)
	be := expectForward(t, syn, h.send(syn))
	require.Equal(t, svc.Backends[be].Addr, e.Backend, "the flow went where Explain said")

	e, _ = h.b.ExplainFlow(tuple)
	require.Equal(t, WhyFlowHit, e.Why)
	require.NotNil(t, e.Flow)
	assert.Equal(t, "embryonic", e.Flow.State)

	h.b.onHealthEventForTest(svc.Key(), svc.Backends[be].Addr, errors.New("connection refused"))
	e, _ = h.b.ExplainFlow(tuple)
	require.Equal(t, WhyRescheduled, e.Why)
	assert.Contains(t, e.String(), "unhealthy: connection refused")
	assert.NotEqual(t, svc.Backends[be].Addr, e.Backend)
	assert.Greater(t, e.PlanGeneration, e.SchedulerGeneration-1)

	_, err = h.b.ExplainFlow(Tuple{Src: netip.AddrPortFrom(client6, 1), Dst: netip.AddrPortFrom(vip4, 80), Protocol: TCP})
	require.ErrorIs(t, err, ErrNotAFlow)

	e, _ = h.b.ExplainFlow(Tuple{Src: netip.AddrPortFrom(client4, 1), Dst: netip.AddrPortFrom(vip4, 81), Protocol: TCP})
	require.Equal(t, DropNoService, e.Drop)
}

// onHealthEventForTest marks a backend as failing a check (err) or passing
// again (nil), as a health monitor event would, and recompiles.
func (b *Balancer) onHealthEventForTest(key ServiceKey, addr netip.Addr, err error) {
	b.mu.Lock()
	defer b.unlockAndFlush()
	bs := b.services[key].backends[addr]
	if bs.failing == nil {
		bs.failing = map[health.Key]error{}
	}
	if err == nil {
		delete(bs.failing, health.Key{})
	} else {
		bs.failing[health.Key{}] = err
	}
	b.recompile()
}

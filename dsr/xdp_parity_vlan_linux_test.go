package dsr

import (
	"math/rand/v2"
	"net/netip"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dsrlb/dsrlb/internal/frame"
	ft "github.com/dsrlb/dsrlb/internal/frame/frametest"
	"github.com/dsrlb/dsrlb/internal/xdp"
)

// TestIntegrationXDPParityVLAN is the shared vector corpus of a trunk: one
// VIP:port on VLANs 100 and 200 with backends of the same addresses (other
// hosts on each VLAN), random TCP conversations whose 5-tuples recur on both
// VLANs, with priority bits, on a VLAN without services, untagged, and to an
// untagged service; backend changes and time between packets. The program
// decides the VLANs' flows itself, exactly as the Go path does, and leaves
// every untagged service to the Go path (on a trunk a tag hidden by VLAN
// offload would make a VLAN's frame look untagged to it).
func TestIntegrationXDPParityVLAN(t *testing.T) {
	vipT := netip.MustParseAddr("192.0.2.102")
	vlan100 := Service{VIP: vipT, Protocol: TCP, Port: 80, VLAN: 100, Backends: distinctBackends(3, 50)}
	vlan200 := Service{VIP: vipT, Protocol: TCP, Port: 80, VLAN: 200, Backends: distinctBackends(3, 60), Scheduler: "hrw"}
	for i := range vlan200.Backends {
		vlan200.Backends[i].Addr = vlan100.Backends[i].Addr
	}
	web := web4(3) // untagged
	h := newXDPHarness(t, nil, vlan100, vlan200, web)
	tagged := func(tci uint16, dst netip.Addr, sport uint16, flags uint8) []byte {
		return ft.Build(ft.Ethernet{Dst: lbMAC, Src: clientMAC}, ft.VLAN{TCI: tci}, ft.IPv4{Src: client4, Dst: dst, TTL: 64},
			ft.TCP{SrcPort: sport, DstPort: 80, Flags: flags}, ft.Raw("tagged"))
	}
	verdicts := map[xdp.Verdict]int{}
	tx := map[uint16]int{} // frames of each VLAN (0: untagged) the program forwarded
	rng := rand.New(rand.NewPCG(3, 5))
	flagSets := []uint8{frame.FlagSYN, frame.FlagACK, frame.FlagACK | frame.FlagPSH, frame.FlagFIN | frame.FlagACK, frame.FlagRST}
	for i := range 3000 {
		sport := uint16(30000 + rng.IntN(200))
		flags := flagSets[rng.IntN(len(flagSets))]
		var in []byte
		switch q := rng.IntN(20); {
		case q < 8:
			in = tagged(uint16(rng.IntN(8))<<13|100, vipT, sport, flags)
		case q < 15:
			in = tagged(200, vipT, sport, flags)
		case q < 16:
			in = tagged(300, vipT, sport, flags)
		case q < 17:
			in = tcpTo(vipT, 80, sport, flags) // untagged: no service
		case q < 19:
			in = tcpTo(vip4, 80, sport, flags) // the untagged service
		default:
			in = tagged(100, vip4, sport, flags) // its VIP, on a VLAN
		}
		v := h.checkXDPParity(t, in, "packet "+strconv.Itoa(i))
		verdicts[v]++
		if v == xdp.TX {
			var p frame.Packet
			require.NoError(t, frame.Parse(in, &p))
			tx[frameVLAN(&p)]++
		}
		switch i % 1000 {
		case 300:
			require.NoError(t, h.b.SetBackendState(vlan100.Key(), vlan100.Backends[1].Addr, BackendDown))
		case 500:
			require.NoError(t, h.b.DrainBackend(vlan200.Key(), vlan200.Backends[0].Addr))
		case 700:
			h.clock.Advance(20 * time.Second) // closed and embryonic flows expire
		case 999:
			require.NoError(t, h.b.SetServices([]Service{vlan100, vlan200, web}))
		}
	}
	t.Logf("verdicts %v; forwarded by the program per VLAN %v", verdicts, tx)
	assert.Positive(t, tx[100], "the program forwards VLAN 100 itself")
	assert.Positive(t, tx[200], "and VLAN 200")
	assert.Zero(t, tx[300], "nothing of a VLAN without services")
	assert.Zero(t, tx[0], "and no untagged frame: untagged services are the Go path's on a trunk")
	assert.Positive(t, h.b.Stats().XDP.Passed["not_capable"], "the untagged service's frames are passed up")
}

package dsr

import (
	"testing"

	"github.com/dsrlb/dsrlb/internal/frame"
	ft "github.com/dsrlb/dsrlb/internal/frame/frametest"
)

// FuzzProcess feeds arbitrary frames through the whole per-frame decision:
// it must never panic, and every frame must be either forwarded with only
// its MACs changed or counted under exactly one drop reason.
func FuzzProcess(f *testing.F) {
	seeds := [][]byte{
		tcp4(40000, frame.FlagSYN),
		tcp6(40000, frame.FlagSYN),
		ft.Build(ft.Ethernet{Dst: lbMAC, Src: clientMAC}, ft.IPv4{Src: router4, Dst: vip4}, ft.ICMPv4{Type: 3, Code: 4, Truncate: 28},
			ft.IPv4{Src: vip4, Dst: client4}, ft.TCP{SrcPort: 80, DstPort: 40000}),
		ft.Build(ft.Ethernet{Dst: lbMAC, Src: clientMAC}, ft.IPv4{Src: client4, Dst: vip4, MF: true}, ft.UDP{SrcPort: 1, DstPort: 53}),
		ft.Build(ft.Ethernet{Dst: lbMAC, Src: clientMAC}, ft.VLAN{TCI: 7}, ft.IPv6{Src: client6, Dst: vip6}, ft.IPv6Fragment{Offset: 8}, ft.Raw("x")),
		ft.Build(ft.Ethernet{Dst: [6]byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}, Src: clientMAC}, ft.ARP{SenderMAC: clientMAC, SenderIP: client4, TargetIP: vip4}),
		tcp4Tagged(40000, frame.FlagSYN, false, 3<<13|10), // the VLAN 10 service
		tcp4Tagged(40000, frame.FlagACK, true, 10),        // 802.1ad tag
		tcp4Tagged(40001, frame.FlagSYN, false, 5<<13),    // priority tag: untagged
		tcp4Tagged(40002, frame.FlagSYN, false, 20),       // a VLAN without service
		{},
	}
	for _, s := range seeds {
		f.Add(s)
	}
	udp := Service{VIP: vip4, Protocol: UDP, Port: 53, Backends: backends(2, false)}
	web6 := Service{VIP: vip6, Protocol: TCP, Port: 443, Backends: backends(2, true)}
	vlan10 := web4(2)
	vlan10.VLAN = 10
	for i := range vlan10.Backends {
		vlan10.Backends[i].MAC = backendMAC(10 + i)
	}
	h := newHarness(f, &Config{Fragments: FragmentsHash, MaxFlows: 4096}, web4(3), udp, web6, vlan10)
	f.Fuzz(func(t *testing.T, in []byte) {
		if len(in) > MaxFrameSize {
			return
		}
		h.t = t // the harness reports through the current input's T
		before := h.b.Stats()
		out := h.send(in)
		after := h.b.Stats()
		if out != nil {
			if len(out) != len(in) || string(out[12:]) != string(in[12:]) || [6]byte(out[6:12]) != lbMAC {
				t.Fatalf("forwarded frame changed beyond its MACs:\n in %x\nout %x", in, out)
			}
			return
		}
		var dropped uint64
		for r, n := range after.Drops {
			dropped += n - before.Drops[r]
		}
		if dropped != 1 {
			t.Fatalf("a frame that was not forwarded counted %d drops", dropped)
		}
	})
}

//go:build linux && (386 || amd64 || arm || arm64 || loong64 || mips64le || mipsle || ppc64le || riscv64)

package xdp

import (
	"bytes"
	"net/netip"
	"testing"

	"github.com/dsrlb/dsrlb/internal/frame"
	ft "github.com/dsrlb/dsrlb/internal/frame/frametest"
)

// FuzzRun feeds arbitrary frames to the program: it never fails to run,
// returns only PASS, DROP or TX, and a frame it sends out differs from the
// input only in its MAC addresses (the destination a backend's, the source
// ours) and, for a TCP or UDP frame whose checksum was partial, in that
// checksum; the L4 checksum of a frame it sends verifies whenever the
// input's did or the input's was partial.
func FuzzRun(f *testing.F) {
	eth := ethTo(ourMAC)
	for _, seed := range [][]byte{
		tcpFrame(client4, vip4, 40000, frame.FlagSYN),
		tcpFrame(client6, vip6, 40000, frame.FlagACK),
		udpFrame(client4, vip4, 5353, 53),
		ft.Build(eth, ft.VLAN{TCI: 7}, ft.IPv4{Src: client4, Dst: vip4}, ft.TCP{SrcPort: 1, DstPort: 80, Flags: frame.FlagRST}),
		ft.Build(eth, ft.IPv4{Src: netip.MustParseAddr("198.51.100.254"), Dst: vip4},
			ft.ICMPv4{Type: frame.ICMPv4DestUnreachable, Code: 4, Truncate: 28},
			ft.IPv4{Src: vip4, Dst: client4}, ft.TCP{SrcPort: 80, DstPort: 40000}),
		ft.Build(eth, ft.IPv6{Src: client6, Dst: vip6}, ft.ICMPv6{Type: frame.ICMPv6PacketTooBig},
			ft.IPv6{Src: vip6, Dst: client6}, ft.TCP{SrcPort: 80, DstPort: 40000}),
		ft.Build(eth, ft.IPv6{Src: client6, Dst: vip6}, ft.IPv6Ext{Header: 0}, ft.UDP{SrcPort: 1, DstPort: 80}),
		ft.Build(eth, ft.ARP{SenderIP: client4, TargetIP: vip4}),
		ft.Build(eth, ft.IPv4{Src: client4, Dst: vip4}, ft.TCP{SrcPort: 2, DstPort: 80, Flags: frame.FlagACK, Checksum: ft.ChecksumPartial}, ft.Raw("odd")),
		ft.Build(eth, ft.VLAN{TCI: 9}, ft.IPv4{Src: client4, Dst: vip4}, ft.UDP{SrcPort: 2, DstPort: 53, Checksum: ft.ChecksumPartial}, ft.Raw("even")),
		ft.Build(eth, ft.IPv6{Src: client6, Dst: vip6}, ft.TCP{SrcPort: 2, DstPort: 80, Flags: frame.FlagSYN, Checksum: ft.ChecksumPartial}, ft.Raw("x")),
		ft.Build(eth, ft.IPv4{Src: client4, Dst: vip4}, ft.UDP{SrcPort: 3, DstPort: 53, Checksum: ft.ChecksumZero}, ft.Raw("none")),
	} {
		f.Add(seed)
	}
	pl := newPlan(f)
	f.Fuzz(func(t *testing.T, in []byte) {
		if len(in) < 14 {
			return // the kernel runs XDP only on Ethernet-sized input
		}
		v, out, err := pl.p.Run(in)
		if err != nil {
			t.Fatalf("run: %v", err)
		}
		switch v {
		case Pass, Drop:
			if !bytes.Equal(in, out) {
				t.Fatalf("%v changed the frame:\nin  %x\nout %x", v, in, out)
			}
		case TX:
			partial := isPartial(in)
			// What may change: the MACs, and the checksum of a partial
			// frame, which the Go path's CompleteChecksum computes alike.
			want := append([]byte(nil), in...)
			if partial {
				want = completed(t, in, testBackend{mac: [6]byte(out[:6])})
			}
			if len(out) != len(in) || !bytes.Equal(want[12:], out[12:]) || !bytes.Equal(out[6:12], ourMAC[:]) {
				t.Fatalf("TX changed more than the MACs and a partial checksum (partial %v):\nin  %x\nout %x", partial, in, out)
			}
			var pin frame.Packet
			if frame.Parse(in, &pin) == nil && (pin.Proto == frame.ProtoTCP || pin.Proto == frame.ProtoUDP) &&
				(partial || frame.TransportChecksumOK(in, &pin)) && !checksumOK(t, out) {
				t.Fatalf("TX of a frame whose checksum does not verify (partial %v):\nin  %x\nout %x", partial, in, out)
			}
			var ok bool
			for _, b := range pl.backends {
				ok = ok || bytes.Equal(out[:6], b.mac[:])
			}
			if !ok {
				t.Fatalf("TX to %x, no backend's MAC", out[:6])
			}
			var p frame.Packet
			if err := frame.Parse(in, &p); err != nil {
				t.Fatalf("TX of a frame the Go parser rejects (%v): %x", err, in)
			}
		default:
			t.Fatalf("verdict %v", v)
		}
	})
}

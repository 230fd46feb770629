package frame_test

import (
	"errors"
	"fmt"
	"net/netip"

	"github.com/dsrlb/dsrlb/internal/frame"
	ft "github.com/dsrlb/dsrlb/internal/frame/frametest"
)

// A forwarding loop parses each frame into one reused Packet, counts
// malformed frames by reason and rewrites the MACs of the rest.
func ExampleParse() {
	frames := [][]byte{
		ft.Build(
			ft.Ethernet{Dst: ft.MAC("02:00:00:00:00:01"), Src: ft.MAC("02:00:00:00:00:02")},
			ft.IPv4{Src: netip.MustParseAddr("192.0.2.1"), Dst: netip.MustParseAddr("198.51.100.10")},
			ft.TCP{SrcPort: 40000, DstPort: 80, Flags: frame.FlagSYN},
		),
		make([]byte, 10), // runt
	}
	var drops [frame.NumErrors]uint64
	var p frame.Packet
	for _, b := range frames {
		if err := frame.Parse(b, &p); err != nil {
			var e frame.Error
			if errors.As(err, &e) {
				drops[e]++
			}
			continue
		}
		fmt.Printf("%v:%d -> %v:%d syn=%t\n", p.Src, p.SrcPort, p.Dst, p.DstPort, p.TCPFlags&frame.FlagSYN != 0)
		frame.SetMACs(b, ft.MAC("02:00:00:00:00:03"), ft.MAC("02:00:00:00:00:01"))
	}
	fmt.Println(frame.ErrTruncated.String(), drops[frame.ErrTruncated])
	// Output:
	// 192.0.2.1:40000 -> 198.51.100.10:80 syn=true
	// truncated 1
}

// An ICMP "fragmentation needed" from a router on the path is about the
// flow it quotes; Inner reversed is the client's flow to the VIP.
func ExampleParse_icmpError() {
	vip, client := netip.MustParseAddr("198.51.100.10"), netip.MustParseAddr("192.0.2.1")
	b := ft.Build(
		ft.Ethernet{},
		ft.IPv4{Src: netip.MustParseAddr("203.0.113.1"), Dst: vip},
		ft.ICMPv4{Type: frame.ICMPv4DestUnreachable, Code: 4, Rest: 1400, Truncate: 28},
		ft.IPv4{Src: vip, Dst: client},
		ft.TCP{SrcPort: 80, DstPort: 40000},
	)
	var p frame.Packet
	if err := frame.Parse(b, &p); err != nil {
		panic(err)
	}
	fmt.Println(p.ICMPError, p.Inner.Dst, p.Inner.DstPort, "->", p.Inner.Src, p.Inner.SrcPort)
	// Output: true 192.0.2.1 40000 -> 198.51.100.10 80
}

// A frame whose sender left the checksum to offload hardware holds only
// the pseudo-header sum; complete it before the frame leaves the host.
func ExampleCompleteChecksum() {
	b := ft.Build(
		ft.Ethernet{},
		ft.IPv6{Src: netip.MustParseAddr("2001:db8::1"), Dst: netip.MustParseAddr("2001:db8:1::10")},
		ft.UDP{SrcPort: 5353, DstPort: 53, Checksum: ft.ChecksumPartial},
		ft.Raw("query"),
	)
	var p frame.Packet
	if err := frame.Parse(b, &p); err != nil {
		panic(err)
	}
	fmt.Println("before:", frame.TransportChecksumOK(b, &p))
	if start, off, ok := p.ChecksumOffsets(); ok {
		if err := frame.CompleteChecksum(b[:p.Len], start, off); err != nil {
			panic(err)
		}
	}
	fmt.Println("after:", frame.TransportChecksumOK(b, &p))
	// Output:
	// before: false
	// after: true
}

func ExampleSetMACs() {
	b := ft.Build(ft.Ethernet{Dst: ft.MAC("02:00:00:00:00:01"), EtherType: 0x88b5}, ft.Raw("x"))
	frame.SetMACs(b, ft.MAC("02:00:00:00:00:03"), ft.MAC("02:00:00:00:00:01"))
	fmt.Printf("% x\n", b[:12])
	// Output: 02 00 00 00 00 03 02 00 00 00 00 01
}

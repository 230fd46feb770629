package frame_test

import (
	"net/netip"

	"github.com/dsrlb/dsrlb/internal/frame"
	ft "github.com/dsrlb/dsrlb/internal/frame/frametest"
)

var (
	macLB     = ft.MAC("02:00:00:00:00:01")
	macClient = ft.MAC("02:00:00:00:00:02")
	macServer = ft.MAC("02:00:00:00:00:03")

	client4 = netip.MustParseAddr("192.0.2.1")
	vip4    = netip.MustParseAddr("198.51.100.10")
	router4 = netip.MustParseAddr("203.0.113.1")
	client6 = netip.MustParseAddr("2001:db8::1")
	vip6    = netip.MustParseAddr("2001:db8:1::10")
	router6 = netip.MustParseAddr("2001:db8:2::1")
)

func eth() ft.Ethernet { return ft.Ethernet{Dst: macLB, Src: macClient} }

// named is one golden frame, used by the table tests, the allocation
// guards, the fuzz seeds and the benchmarks.
type named struct {
	name string
	b    []byte
}

// frameKinds returns one frame of every kind the parser distinguishes.
func frameKinds() []named {
	return []named{
		{"tcp4", ft.Build(eth(), ft.IPv4{Src: client4, Dst: vip4}, ft.TCP{SrcPort: 40000, DstPort: 80, Flags: frame.FlagSYN})},
		{"tcp4_padded", ft.Build(ft.Ethernet{Dst: macLB, Src: macClient, Trailer: ft.PadTo(54)}, ft.IPv4{Src: client4, Dst: vip4}, ft.TCP{SrcPort: 40000, DstPort: 80, Flags: frame.FlagACK})},
		{"tcp4_options", ft.Build(eth(), ft.IPv4{Src: client4, Dst: vip4, Options: []byte{1, 1, 1, 0}}, ft.TCP{SrcPort: 1, DstPort: 2, Options: []byte{2, 4, 5, 0xb4}})},
		{"udp4_vlan", ft.Build(eth(), ft.VLAN{TCI: 0x2064}, ft.IPv4{Src: client4, Dst: vip4}, ft.UDP{SrcPort: 5353, DstPort: 53}, ft.Raw("q"))},
		{"udp4_qinq", ft.Build(eth(), ft.VLAN{TCI: 7, QinQ: true}, ft.IPv4{Src: client4, Dst: vip4}, ft.UDP{SrcPort: 1, DstPort: 2})},
		{"udp4_first_fragment", ft.Build(eth(), ft.IPv4{Src: client4, Dst: vip4, ID: 77, MF: true}, ft.UDP{SrcPort: 1, DstPort: 2, Length: 3000}, ft.Raw(make([]byte, 64)))},
		{"udp4_later_fragment", ft.Build(eth(), ft.IPv4{Src: client4, Dst: vip4, ID: 77, FragOffset: 9, Protocol: frame.ProtoUDP}, ft.Raw(make([]byte, 64)))},
		{"tcp4_gso", ft.Build(eth(), ft.IPv4{Src: client4, Dst: vip4, Length: -1}, ft.TCP{SrcPort: 40000, DstPort: 80, Flags: frame.FlagACK}, ft.Raw(make([]byte, 3000)))},
		{"icmp4_echo", ft.Build(eth(), ft.IPv4{Src: client4, Dst: vip4}, ft.ICMPv4{Type: 8, Rest: 0x00010002}, ft.Raw("ping"))},
		{"icmp4_frag_needed", ft.Build(eth(), ft.IPv4{Src: router4, Dst: vip4}, ft.ICMPv4{Type: 3, Code: 4, Rest: 1400, Truncate: 28},
			ft.IPv4{Src: vip4, Dst: client4}, ft.TCP{SrcPort: 80, DstPort: 40000, Flags: frame.FlagACK}, ft.Raw(make([]byte, 1400)))},
		{"tcp6", ft.Build(eth(), ft.IPv6{Src: client6, Dst: vip6}, ft.TCP{SrcPort: 40000, DstPort: 443, Flags: frame.FlagSYN})},
		{"tcp6_ext", ft.Build(eth(), ft.IPv6{Src: client6, Dst: vip6}, ft.IPv6Ext{Header: 0}, ft.IPv6Ext{Header: 60, Data: make([]byte, 10)},
			ft.IPv6Ext{Header: 43, Data: make([]byte, 22)}, ft.IPv6Ext{Header: 51, Data: make([]byte, 18)}, ft.TCP{SrcPort: 3, DstPort: 4, Flags: frame.FlagFIN | frame.FlagACK})},
		{"udp6_first_fragment", ft.Build(eth(), ft.IPv6{Src: client6, Dst: vip6}, ft.IPv6Fragment{ID: 0xdeadbeef, More: true}, ft.UDP{SrcPort: 1, DstPort: 2, Length: 5000}, ft.Raw(make([]byte, 32)))},
		{"udp6_later_fragment", ft.Build(eth(), ft.IPv6{Src: client6, Dst: vip6}, ft.IPv6Fragment{ID: 0xdeadbeef, Offset: 5, NextHeader: frame.ProtoUDP}, ft.Raw(make([]byte, 32)))},
		{"tcp6_gso", ft.Build(eth(), ft.IPv6{Src: client6, Dst: vip6, Length: -1}, ft.TCP{SrcPort: 40000, DstPort: 443, Flags: frame.FlagACK}, ft.Raw(make([]byte, 3000)))},
		{"icmp6_packet_too_big", ft.Build(eth(), ft.IPv6{Src: router6, Dst: vip6}, ft.ICMPv6{Type: 2, Rest: 1280, Truncate: 40 + 8 + 20},
			ft.IPv6{Src: vip6, Dst: client6}, ft.IPv6Ext{Header: 60}, ft.TCP{SrcPort: 443, DstPort: 40000}, ft.Raw(make([]byte, 1400)))},
		{"icmp6_echo", ft.Build(eth(), ft.IPv6{Src: client6, Dst: vip6}, ft.ICMPv6{Type: 128, Rest: 0x00010001})},
		{"esp6", ft.Build(eth(), ft.IPv6{Src: client6, Dst: vip6, NextHeader: 50}, ft.Raw(make([]byte, 24)))},
		{"arp", ft.Build(ft.Ethernet{Dst: [6]byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}, Src: macServer, Trailer: ft.PadTo(42)}, ft.ARP{SenderMAC: macServer, SenderIP: router4, TargetIP: vip4})},
	}
}

// refChecksum is a plain byte-by-byte Internet checksum (RFC 1071), written
// independently of the package's optimised one so that each checks the
// other: the checksum of b starting from the partial sum initial.
func refChecksum(b []byte, initial uint32) uint16 {
	s := uint64(initial)
	for i := 0; i+1 < len(b); i += 2 {
		s += uint64(b[i])<<8 | uint64(b[i+1])
	}
	if len(b)%2 == 1 {
		s += uint64(b[len(b)-1]) << 8
	}
	for s > 0xffff {
		s = s>>16 + s&0xffff
	}
	return ^uint16(s)
}

package frame_test

import (
	"errors"
	"net/netip"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dsrlb/dsrlb/internal/frame"
	ft "github.com/dsrlb/dsrlb/internal/frame/frametest"
)

func kind(t testing.TB, name string) []byte {
	for _, k := range frameKinds() {
		if k.name == name {
			return k.b
		}
	}
	t.Fatalf("no frame kind %q", name)
	return nil
}

// base fills in what every test frame built with eth() parses to.
func base(p frame.Packet) frame.Packet {
	if p.EthDst == [6]byte{} {
		p.EthDst, p.EthSrc = macLB, macClient
	}
	if p.L3Off == 0 {
		p.L3Off = 14
	}
	if p.TTL == 0 && p.Version != 0 {
		p.TTL = 64
	}
	return p
}

func TestParse(t *testing.T) {
	mapped := netip.MustParseAddr("::ffff:192.0.2.1")
	tests := []struct {
		name string
		b    []byte
		want frame.Packet
	}{
		{"tcp4", kind(t, "tcp4"), frame.Packet{Len: 54, EtherType: 0x0800, L4Off: 34, Version: 4, Src: client4, Dst: vip4,
			Proto: 6, SrcPort: 40000, DstPort: 80, TCPFlags: frame.FlagSYN}},
		{"tcp4 padding trimmed", kind(t, "tcp4_padded"), frame.Packet{Len: 54, EtherType: 0x0800, L4Off: 34, Version: 4, Src: client4, Dst: vip4,
			Proto: 6, SrcPort: 40000, DstPort: 80, TCPFlags: frame.FlagACK}},
		{"tcp4 IP and TCP options", kind(t, "tcp4_options"), frame.Packet{Len: 62, EtherType: 0x0800, L4Off: 38, Version: 4, Src: client4, Dst: vip4,
			Proto: 6, SrcPort: 1, DstPort: 2}},
		{"udp4 802.1Q", kind(t, "udp4_vlan"), frame.Packet{Len: 47, EtherType: 0x0800, Tagged: true, VLAN: 0x2064, L3Off: 18, L4Off: 38,
			Version: 4, Src: client4, Dst: vip4, Proto: 17, SrcPort: 5353, DstPort: 53}},
		{"udp4 802.1ad", kind(t, "udp4_qinq"), frame.Packet{Len: 46, EtherType: 0x0800, Tagged: true, VLAN: 7, L3Off: 18, L4Off: 38,
			Version: 4, Src: client4, Dst: vip4, Proto: 17, SrcPort: 1, DstPort: 2}},
		{"udp4 first fragment", kind(t, "udp4_first_fragment"), frame.Packet{Len: 106, EtherType: 0x0800, L4Off: 34, Version: 4,
			Src: client4, Dst: vip4, Proto: 17, Fragment: frame.FirstFragment, FragID: 77, SrcPort: 1, DstPort: 2}},
		{"udp4 later fragment", kind(t, "udp4_later_fragment"), frame.Packet{Len: 98, EtherType: 0x0800, Version: 4,
			Src: client4, Dst: vip4, Proto: 17, Fragment: frame.LaterFragment, FragID: 77}},
		{"tcp4 GSO total length 0", kind(t, "tcp4_gso"), frame.Packet{Len: 3054, EtherType: 0x0800, L4Off: 34, Version: 4, Src: client4, Dst: vip4,
			Proto: 6, SrcPort: 40000, DstPort: 80, TCPFlags: frame.FlagACK}},
		{"udp4 GSO total length 0, UDP length 0", ft.Build(eth(), ft.IPv4{Src: client4, Dst: vip4, Length: -1}, ft.UDP{SrcPort: 1, DstPort: 2, Length: -1}, ft.Raw(make([]byte, 100))),
			frame.Packet{Len: 142, EtherType: 0x0800, L4Off: 34, Version: 4, Src: client4, Dst: vip4, Proto: 17, SrcPort: 1, DstPort: 2}},
		{"ipv4 unknown protocol", ft.Build(eth(), ft.IPv4{Src: client4, Dst: vip4, Protocol: 47, TTL: 3}, ft.Raw("gre!")),
			frame.Packet{Len: 38, EtherType: 0x0800, Version: 4, Src: client4, Dst: vip4, Proto: 47, TTL: 3}},
		{"icmp4 echo", kind(t, "icmp4_echo"), frame.Packet{Len: 46, EtherType: 0x0800, L4Off: 34, Version: 4, Src: client4, Dst: vip4,
			Proto: 1, ICMPType: 8}},
		{"icmp4 fragmentation needed", kind(t, "icmp4_frag_needed"), frame.Packet{Len: 70, EtherType: 0x0800, L4Off: 34, Version: 4,
			Src: router4, Dst: vip4, Proto: 1, ICMPType: 3, ICMPCode: 4, ICMPError: true,
			Inner: frame.Inner{Src: vip4, Dst: client4, Proto: 6, SrcPort: 80, DstPort: 40000, HasPorts: true}}},
		{"icmp4 time exceeded, inner options, whole packet quoted",
			ft.Build(eth(), ft.IPv4{Src: router4, Dst: vip4}, ft.ICMPv4{Type: 11}, ft.IPv4{Src: vip4, Dst: client4, Options: make([]byte, 8)}, ft.UDP{SrcPort: 53, DstPort: 5353}),
			frame.Packet{Len: 14 + 20 + 8 + 28 + 8, EtherType: 0x0800, L4Off: 34, Version: 4, Src: router4, Dst: vip4, Proto: 1, ICMPType: 11, ICMPError: true,
				Inner: frame.Inner{Src: vip4, Dst: client4, Proto: 17, SrcPort: 53, DstPort: 5353, HasPorts: true}}},
		{"icmp4 parameter problem quoting 2 transport bytes: no ports",
			ft.Build(eth(), ft.IPv4{Src: router4, Dst: vip4}, ft.ICMPv4{Type: 12, Truncate: 22}, ft.IPv4{Src: vip4, Dst: client4}, ft.TCP{SrcPort: 80, DstPort: 1}),
			frame.Packet{Len: 14 + 20 + 8 + 22, EtherType: 0x0800, L4Off: 34, Version: 4, Src: router4, Dst: vip4, Proto: 1, ICMPType: 12, ICMPError: true,
				Inner: frame.Inner{Src: vip4, Dst: client4, Proto: 6}}},
		{"icmp4 error quoting a later fragment: no ports",
			ft.Build(eth(), ft.IPv4{Src: router4, Dst: vip4}, ft.ICMPv4{Type: 3, Code: 1}, ft.IPv4{Src: vip4, Dst: client4, FragOffset: 100, Protocol: 6}, ft.Raw(make([]byte, 8))),
			frame.Packet{Len: 14 + 20 + 8 + 28, EtherType: 0x0800, L4Off: 34, Version: 4, Src: router4, Dst: vip4, Proto: 1, ICMPType: 3, ICMPCode: 1, ICMPError: true,
				Inner: frame.Inner{Src: vip4, Dst: client4, Proto: 6}}},
		{"icmp4 error quoting too little: not an ICMP error",
			ft.Build(eth(), ft.IPv4{Src: router4, Dst: vip4}, ft.ICMPv4{Type: 3, Truncate: 19}, ft.IPv4{Src: vip4, Dst: client4}, ft.TCP{}),
			frame.Packet{Len: 14 + 20 + 8 + 19, EtherType: 0x0800, L4Off: 34, Version: 4, Src: router4, Dst: vip4, Proto: 1, ICMPType: 3}},
		{"icmp4 error quoting IPv6: not an ICMP error",
			ft.Build(eth(), ft.IPv4{Src: router4, Dst: vip4}, ft.ICMPv4{Type: 3}, ft.IPv6{Src: vip6, Dst: client6}, ft.TCP{}),
			frame.Packet{Len: 14 + 20 + 8 + 60, EtherType: 0x0800, L4Off: 34, Version: 4, Src: router4, Dst: vip4, Proto: 1, ICMPType: 3}},
		{"icmp4 error quoting bad IHL: not an ICMP error",
			ft.Build(eth(), ft.IPv4{Src: router4, Dst: vip4}, ft.ICMPv4{Type: 11}, ft.Raw{0x44, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}),
			frame.Packet{Len: 14 + 20 + 8 + 20, EtherType: 0x0800, L4Off: 34, Version: 4, Src: router4, Dst: vip4, Proto: 1, ICMPType: 11}},
		{"tcp6", kind(t, "tcp6"), frame.Packet{Len: 74, EtherType: 0x86dd, L4Off: 54, Version: 6, Src: client6, Dst: vip6,
			Proto: 6, SrcPort: 40000, DstPort: 443, TCPFlags: frame.FlagSYN}},
		{"tcp6 padding trimmed", ft.Build(ft.Ethernet{Dst: macLB, Src: macClient, Trailer: []byte{1, 2, 3, 4}}, ft.IPv6{Src: client6, Dst: vip6, HopLimit: 1}, ft.TCP{SrcPort: 1, DstPort: 2}),
			frame.Packet{Len: 74, EtherType: 0x86dd, L4Off: 54, Version: 6, Src: client6, Dst: vip6, Proto: 6, TTL: 1, SrcPort: 1, DstPort: 2}},
		{"tcp6 HBH, DstOpts, Routing, AH", kind(t, "tcp6_ext"), frame.Packet{Len: 142, EtherType: 0x86dd, L4Off: 122, Version: 6, Src: client6, Dst: vip6,
			Proto: 6, SrcPort: 3, DstPort: 4, TCPFlags: frame.FlagFIN | frame.FlagACK}},
		{"udp6 eight extension headers",
			ft.Build(eth(), ft.IPv6{Src: client6, Dst: vip6}, ft.IPv6Ext{Header: 0}, ft.IPv6Ext{Header: 60}, ft.IPv6Ext{Header: 60}, ft.IPv6Ext{Header: 60},
				ft.IPv6Ext{Header: 60}, ft.IPv6Ext{Header: 60}, ft.IPv6Ext{Header: 60}, ft.IPv6Ext{Header: 60}, ft.UDP{SrcPort: 1, DstPort: 2}),
			frame.Packet{Len: 54 + 64 + 8, EtherType: 0x86dd, L4Off: 54 + 64, Version: 6, Src: client6, Dst: vip6, Proto: 17, SrcPort: 1, DstPort: 2}},
		{"udp6 first fragment", kind(t, "udp6_first_fragment"), frame.Packet{Len: 102, EtherType: 0x86dd, L4Off: 62, Version: 6, Src: client6, Dst: vip6,
			Proto: 17, Fragment: frame.FirstFragment, FragID: 0xdeadbeef, SrcPort: 1, DstPort: 2}},
		{"udp6 later fragment", kind(t, "udp6_later_fragment"), frame.Packet{Len: 94, EtherType: 0x86dd, Version: 6, Src: client6, Dst: vip6,
			Proto: 17, Fragment: frame.LaterFragment, FragID: 0xdeadbeef}},
		{"udp6 atomic fragment", ft.Build(eth(), ft.IPv6{Src: client6, Dst: vip6}, ft.IPv6Fragment{ID: 9}, ft.UDP{SrcPort: 1, DstPort: 2}),
			frame.Packet{Len: 70, EtherType: 0x86dd, L4Off: 62, Version: 6, Src: client6, Dst: vip6, Proto: 17, FragID: 9, SrcPort: 1, DstPort: 2}},
		{"tcp6 GSO payload length 0", kind(t, "tcp6_gso"), frame.Packet{Len: 3074, EtherType: 0x86dd, L4Off: 54, Version: 6, Src: client6, Dst: vip6,
			Proto: 6, SrcPort: 40000, DstPort: 443, TCPFlags: frame.FlagACK}},
		{"udp6 jumbogram with UDP length 0", ft.Build(eth(), ft.IPv6{Src: client6, Dst: vip6, Length: -1}, ft.UDP{SrcPort: 1, DstPort: 2, Length: -1}, ft.Raw(make([]byte, 10))),
			frame.Packet{Len: 72, EtherType: 0x86dd, L4Off: 54, Version: 6, Src: client6, Dst: vip6, Proto: 17, SrcPort: 1, DstPort: 2}},
		{"ipv6 no next header", ft.Build(eth(), ft.IPv6{Src: client6, Dst: vip6}),
			frame.Packet{Len: 54, EtherType: 0x86dd, Version: 6, Src: client6, Dst: vip6, Proto: 59}},
		{"ipv6 ESP", kind(t, "esp6"), frame.Packet{Len: 78, EtherType: 0x86dd, Version: 6, Src: client6, Dst: vip6, Proto: 50}},
		{"ipv6 with ICMPv4 inside: left undecoded", ft.Build(eth(), ft.IPv6{Src: client6, Dst: vip6}, ft.ICMPv4{Type: 3}),
			frame.Packet{Len: 62, EtherType: 0x86dd, Version: 6, Src: client6, Dst: vip6, Proto: 1}},
		{"ipv4-mapped IPv6 addresses stay mapped", ft.Build(eth(), ft.IPv6{Src: mapped, Dst: vip6}, ft.UDP{SrcPort: 1, DstPort: 2}),
			frame.Packet{Len: 62, EtherType: 0x86dd, L4Off: 54, Version: 6, Src: mapped, Dst: vip6, Proto: 17, SrcPort: 1, DstPort: 2}},
		{"icmp6 echo", kind(t, "icmp6_echo"), frame.Packet{Len: 62, EtherType: 0x86dd, L4Off: 54, Version: 6, Src: client6, Dst: vip6,
			Proto: 58, ICMPType: 128}},
		{"icmp6 packet too big", kind(t, "icmp6_packet_too_big"), frame.Packet{Len: 130, EtherType: 0x86dd, L4Off: 54, Version: 6,
			Src: router6, Dst: vip6, Proto: 58, ICMPType: 2, ICMPError: true,
			Inner: frame.Inner{Src: vip6, Dst: client6, Proto: 6, SrcPort: 443, DstPort: 40000, HasPorts: true}}},
		{"icmp6 time exceeded quoting a later fragment",
			ft.Build(eth(), ft.IPv6{Src: router6, Dst: vip6}, ft.ICMPv6{Type: 3}, ft.IPv6{Src: vip6, Dst: client6}, ft.IPv6Fragment{Offset: 10, NextHeader: 17}, ft.Raw(make([]byte, 8))),
			frame.Packet{Len: 54 + 8 + 56, EtherType: 0x86dd, L4Off: 54, Version: 6, Src: router6, Dst: vip6, Proto: 58, ICMPType: 3, ICMPError: true,
				Inner: frame.Inner{Src: vip6, Dst: client6, Proto: 17}}},
		{"icmp6 unreachable quoting a cut extension header: not an ICMP error",
			ft.Build(eth(), ft.IPv6{Src: router6, Dst: vip6}, ft.ICMPv6{Type: 1, Code: 4, Truncate: 44}, ft.IPv6{Src: vip6, Dst: client6}, ft.IPv6Ext{Header: 60}, ft.UDP{}),
			frame.Packet{Len: 54 + 8 + 44, EtherType: 0x86dd, L4Off: 54, Version: 6, Src: router6, Dst: vip6, Proto: 58, ICMPType: 1, ICMPCode: 4}},
		{"icmp6 parameter problem quoting IPv4: not an ICMP error",
			ft.Build(eth(), ft.IPv6{Src: router6, Dst: vip6}, ft.ICMPv6{Type: 4}, ft.IPv4{Src: vip4, Dst: client4}, ft.UDP{}),
			frame.Packet{Len: 54 + 8 + 28, EtherType: 0x86dd, L4Off: 54, Version: 6, Src: router6, Dst: vip6, Proto: 58, ICMPType: 4}},
		{"arp", kind(t, "arp"), frame.Packet{Len: 60, EthDst: [6]byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}, EthSrc: macServer, EtherType: 0x0806}},
		{"unknown EtherType", ft.Build(ft.Ethernet{Dst: macLB, Src: macClient, EtherType: 0x88cc}, ft.Raw("lldp")),
			frame.Packet{Len: 18, EtherType: 0x88cc}},
		{"double tag: inner tag not parsed", ft.Build(eth(), ft.VLAN{TCI: 10, QinQ: true}, ft.VLAN{TCI: 20}, ft.IPv4{Src: client4, Dst: vip4}),
			frame.Packet{Len: 42, EtherType: 0x8100, Tagged: true, VLAN: 10, L3Off: 18}},
		{"minimum frame", make([]byte, 14), frame.Packet{Len: 14, EthDst: [6]byte{}, EthSrc: [6]byte{}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			want := tt.want
			if tt.name != "minimum frame" {
				want = base(want)
			} else {
				want.L3Off = 14
			}
			// Start from garbage to prove that Parse resets every field.
			got := frame.Packet{Len: -1, L4Off: 99, ICMPError: true, Inner: frame.Inner{HasPorts: true, SrcPort: 1}, Fragment: frame.LaterFragment}
			require.NoError(t, frame.Parse(tt.b, &got))
			assert.Equal(t, want, got)
			assert.LessOrEqual(t, got.Len, len(tt.b))
		})
	}
}

func TestParseErrors(t *testing.T) {
	tcp4 := func() []byte { return kind(t, "tcp4") }
	tcp6 := func() []byte { return kind(t, "tcp6") }
	mut := func(b []byte, f func(b []byte)) []byte { f(b); return b }
	tests := []struct {
		name string
		b    []byte
		want frame.Error
	}{
		{"empty", nil, frame.ErrTruncated},
		{"13 bytes", make([]byte, 13), frame.ErrTruncated},
		{"cut VLAN tag", []byte{0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x81, 0, 0, 1, 8}, frame.ErrTruncated},
		{"IPv4 header cut", tcp4()[:14+19], frame.ErrTruncated},
		{"IPv4 version 6", mut(tcp4(), func(b []byte) { b[14] = 0x65 }), frame.ErrBadIPv4Header},
		{"IPv4 IHL 4", mut(tcp4(), func(b []byte) { b[14] = 0x44 }), frame.ErrBadIPv4Header},
		{"IPv4 options cut", mut(tcp4()[:14+30], func(b []byte) { b[14] = 0x4f }), frame.ErrTruncated},
		{"IPv4 total length < IHL", mut(tcp4(), func(b []byte) { b[17] = 19 }), frame.ErrBadIPv4Header},
		{"IPv4 total length > frame", tcp4()[:53], frame.ErrTruncated},
		{"IPv4 total length 0 with header only", ft.Build(eth(), ft.IPv4{Src: client4, Dst: vip4, Length: -1, Protocol: 6}), frame.ErrBadIPv4Header},
		{"IPv6 header cut", tcp6()[:14+39], frame.ErrTruncated},
		{"IPv6 version 4", mut(tcp6(), func(b []byte) { b[14] = 0x40 }), frame.ErrBadIPv6Header},
		{"IPv6 payload length > frame", tcp6()[:73], frame.ErrTruncated},
		{"IPv6 extension header past payload", ft.Build(eth(), ft.IPv6{Src: client6, Dst: vip6, NextHeader: 60}, ft.Raw{6, 1, 0, 0, 0, 0, 0, 0}), frame.ErrBadIPv6Header},
		{"IPv6 extension header cut below 8 bytes", ft.Build(eth(), ft.IPv6{Src: client6, Dst: vip6, NextHeader: 60}, ft.Raw{6, 0, 0, 0}), frame.ErrBadIPv6Header},
		{"IPv6 AH past payload", ft.Build(eth(), ft.IPv6{Src: client6, Dst: vip6, NextHeader: 51}, ft.Raw{6, 4, 0, 0, 0, 0, 0, 0}), frame.ErrBadIPv6Header},
		{"nine IPv6 extension headers", ft.Build(eth(), ft.IPv6{Src: client6, Dst: vip6}, ft.IPv6Ext{Header: 0}, ft.IPv6Ext{Header: 60}, ft.IPv6Ext{Header: 60},
			ft.IPv6Ext{Header: 60}, ft.IPv6Ext{Header: 60}, ft.IPv6Ext{Header: 60}, ft.IPv6Ext{Header: 60}, ft.IPv6Ext{Header: 60}, ft.IPv6Ext{Header: 60}, ft.UDP{}),
			frame.ErrTooManyExtensionHeaders},
		{"TCP header shorter than 20", ft.Build(eth(), ft.IPv4{Src: client4, Dst: vip4, Protocol: 6}, ft.Raw(make([]byte, 19))), frame.ErrBadTransportHeader},
		{"TCP data offset 4", ft.Build(eth(), ft.IPv4{Src: client4, Dst: vip4}, ft.TCP{DataOffset: 4}), frame.ErrBadTransportHeader},
		{"TCP data offset past packet", ft.Build(ft.Ethernet{Trailer: make([]byte, 40)}, ft.IPv6{Src: client6, Dst: vip6}, ft.TCP{DataOffset: 6}), frame.ErrBadTransportHeader},
		{"UDP header shorter than 8", ft.Build(eth(), ft.IPv6{Src: client6, Dst: vip6, NextHeader: 17}, ft.Raw(make([]byte, 7))), frame.ErrBadTransportHeader},
		{"UDP length 7", ft.Build(eth(), ft.IPv4{Src: client4, Dst: vip4}, ft.UDP{Length: 7}), frame.ErrBadTransportHeader},
		{"UDP length 0 without GSO", ft.Build(eth(), ft.IPv4{Src: client4, Dst: vip4}, ft.UDP{Length: -1}), frame.ErrBadTransportHeader},
		{"UDP length past packet", ft.Build(eth(), ft.IPv4{Src: client4, Dst: vip4}, ft.UDP{Length: 9}), frame.ErrBadTransportHeader},
		{"ICMP shorter than 8", ft.Build(eth(), ft.IPv4{Src: client4, Dst: vip4, Protocol: 1}, ft.Raw(make([]byte, 7))), frame.ErrBadTransportHeader},
		{"ICMPv6 shorter than 8", ft.Build(eth(), ft.IPv6{Src: client6, Dst: vip6, NextHeader: 58}, ft.Raw(make([]byte, 4))), frame.ErrBadTransportHeader},
		{"TCP in first fragment cut", ft.Build(eth(), ft.IPv4{Src: client4, Dst: vip4, MF: true, Protocol: 6}, ft.Raw(make([]byte, 8))), frame.ErrBadTransportHeader},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var p frame.Packet
			err := frame.Parse(tt.b, &p)
			require.Error(t, err)
			assert.Equal(t, tt.want, err)
			var e frame.Error
			require.True(t, errors.As(err, &e))
			assert.Equal(t, tt.want, e)
		})
	}
}

func TestErrorStrings(t *testing.T) {
	seen := map[string]bool{}
	for i := 0; i < frame.NumErrors; i++ {
		e := frame.Error(i)
		s := e.String()
		assert.Regexp(t, `^[a-z0-9_]+$`, s)
		assert.False(t, seen[s], "duplicate name %q", s)
		seen[s] = true
		assert.Regexp(t, `^frame: `, e.Error())
	}
	assert.Equal(t, "truncated", frame.ErrTruncated.String())
	assert.Equal(t, "unknown", frame.Error(frame.NumErrors).String())
	assert.Equal(t, "frame: unknown error", frame.Error(255).Error())
	assert.Equal(t, "first", frame.FirstFragment.String())
	assert.Equal(t, "later", frame.LaterFragment.String())
	assert.Equal(t, "none", frame.NotFragment.String())
	assert.Equal(t, "invalid", frame.Fragment(9).String())
}

func TestVLANID(t *testing.T) {
	var p frame.Packet
	require.NoError(t, frame.Parse(kind(t, "udp4_vlan"), &p))
	assert.Equal(t, uint16(0x064), p.VLANID())
}

func TestSetMACs(t *testing.T) {
	b := kind(t, "tcp4")
	orig := append([]byte(nil), b...)
	frame.SetMACs(b, macServer, macLB)
	assert.Equal(t, macServer[:], b[0:6])
	assert.Equal(t, macLB[:], b[6:12])
	assert.Equal(t, orig[12:], b[12:], "only the MACs change")

	short := []byte{1, 2, 3}
	frame.SetMACs(short, macServer, macLB)
	assert.Equal(t, []byte{1, 2, 3}, short)
}

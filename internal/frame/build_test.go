package frame_test

import (
	"encoding/binary"
	"math/rand/v2"
	"net/netip"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/net/ipv4"
	"golang.org/x/net/ipv6"

	"github.com/dsrlb/dsrlb/internal/frame"
)

func TestChecksumRFC1071Vector(t *testing.T) {
	// RFC 1071 section 3: the words 0001 f203 f4f5 f6f7 sum to 0xddf2.
	v := []byte{0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7}
	assert.Equal(t, ^uint16(0xddf2), frame.Checksum(v, 0))
	assert.Equal(t, ^uint16(0xddf2), refChecksum(v, 0), "the reference agrees")
	assert.Equal(t, ^uint16(0x0100), frame.Checksum([]byte{0x01}, 0), "odd byte is the high byte")
	assert.Equal(t, ^uint16(0x0002), frame.Checksum([]byte{0xff, 0xff}, 2), "end-around carry")
}

func TestChecksumMatchesReference(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	buf := make([]byte, 300)
	for n := 0; n <= len(buf); n++ {
		for i := range buf[:n] {
			buf[i] = byte(r.Uint32())
		}
		initial := r.Uint32N(0x10000)
		require.Equal(t, refChecksum(buf[:n], initial), frame.Checksum(buf[:n], initial), "n=%d", n)
	}
}

// refPseudo lays out the pseudo-header as the RFCs draw it.
func refPseudo(src, dst netip.Addr, proto uint8, n int) []byte {
	if src.Is4() {
		return append(append(src.AsSlice(), dst.AsSlice()...), 0, proto, byte(n>>8), byte(n))
	}
	return append(append(src.AsSlice(), dst.AsSlice()...), byte(n>>24), byte(n>>16), byte(n>>8), byte(n), 0, 0, 0, proto)
}

func TestPseudoHeaderSum(t *testing.T) {
	for _, tt := range []struct {
		src, dst netip.Addr
		proto    uint8
		n        int
	}{
		{client4, vip4, frame.ProtoTCP, 20},
		{client4, vip4, frame.ProtoUDP, 65535},
		{netip.MustParseAddr("255.255.255.255"), netip.MustParseAddr("255.255.255.255"), frame.ProtoUDP, 0xffff},
		{client6, vip6, frame.ProtoICMPv6, 32},
		{client6, vip6, frame.ProtoTCP, 70000}, // jumbogram-sized: the 32-bit length counts
		{netip.MustParseAddr("ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff"), netip.MustParseAddr("ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff"), 255, 0xffffff},
	} {
		want := ^refChecksum(refPseudo(tt.src, tt.dst, tt.proto, tt.n), 0)
		assert.Equal(t, want, uint16(frame.PseudoHeaderSum(tt.src, tt.dst, tt.proto, tt.n)), "%v %v %d %d", tt.src, tt.dst, tt.proto, tt.n)
	}
	// A zero Addr counts as zeros of the other address's family.
	assert.Equal(t, frame.PseudoHeaderSum(client4, netip.IPv4Unspecified(), 6, 20), frame.PseudoHeaderSum(client4, netip.Addr{}, 6, 20))
	assert.Equal(t, frame.PseudoHeaderSum(netip.IPv6Unspecified(), client6, 6, 20), frame.PseudoHeaderSum(netip.Addr{}, client6, 6, 20))
}

// built is one frame made with the builders, with the fields it was made
// from, as Parse should read them back.
type built struct {
	name string
	b    []byte
	want frame.Packet // the fields compared; offsets and Len are checked apart
	seg  int          // transport segment length
}

func buildFrames() []built {
	tcp := frame.TCPHeader{SrcPort: 40000, DstPort: 80, Seq: 0x01020304, Ack: 0xa0b0c0d0, Flags: frame.FlagSYN | frame.FlagACK, Window: 64240, Options: []byte{2, 4, 5, 0xb4, 1}}
	udp := frame.UDPHeader{SrcPort: 5353, DstPort: 53}
	icmp := frame.ICMPHeader{Type: 8, Code: 0, Rest: 0x00010002}
	icmp6 := frame.ICMPHeader{Type: 135, Rest: 0}
	pay := []byte("odd payload")
	eth := func(et uint16, tagged bool) frame.EthernetHeader {
		return frame.EthernetHeader{Dst: macServer, Src: macLB, EtherType: et, Tagged: tagged, VLAN: 0x2064}
	}
	v4 := func(proto uint8) frame.IPv4Header {
		return frame.IPv4Header{Src: client4, Dst: vip4, Proto: proto, TTL: 61, ID: 0x1234, DontFragment: true}
	}
	v6 := func(next uint8) frame.IPv6Header {
		return frame.IPv6Header{Src: client6, Dst: vip6, NextHeader: next, HopLimit: 255, FlowLabel: 0x12345}
	}
	var out []built
	for _, tagged := range []bool{false, true} {
		sfx := ""
		if tagged {
			sfx = "_vlan"
		}
		n := tcp.Len() + len(pay)
		b := frame.AppendEthernet(nil, eth(frame.EtherTypeIPv4, tagged))
		b = frame.AppendIPv4(b, v4(frame.ProtoTCP), n)
		b = frame.AppendTCP(b, client4, vip4, tcp, pay)
		out = append(out, built{"tcp4" + sfx, b, frame.Packet{Version: 4, Proto: frame.ProtoTCP, TTL: 61, FragID: 0x1234, SrcPort: 40000, DstPort: 80, TCPFlags: tcp.Flags}, n})

		n = frame.UDPHeaderLen + len(pay)
		b = frame.AppendEthernet(nil, eth(frame.EtherTypeIPv4, tagged))
		b = frame.AppendIPv4(b, frame.IPv4Header{Src: client4, Dst: vip4, Proto: frame.ProtoUDP, Options: []byte{1, 1, 1}}, n)
		b = frame.AppendUDP(b, client4, vip4, udp, pay)
		out = append(out, built{"udp4_options" + sfx, b, frame.Packet{Version: 4, Proto: frame.ProtoUDP, TTL: 64, SrcPort: 5353, DstPort: 53}, n})

		n = frame.ICMPHeaderLen + len(pay)
		b = frame.AppendEthernet(nil, eth(frame.EtherTypeIPv4, tagged))
		b = frame.AppendIPv4(b, v4(frame.ProtoICMP), n)
		b = frame.AppendICMPv4(b, icmp, pay)
		out = append(out, built{"icmp4" + sfx, b, frame.Packet{Version: 4, Proto: frame.ProtoICMP, TTL: 61, FragID: 0x1234, ICMPType: 8}, n})

		n = tcp.Len()
		b = frame.AppendEthernet(nil, eth(frame.EtherTypeIPv6, tagged))
		b = frame.AppendIPv6(b, v6(frame.ProtoTCP), n)
		b = frame.AppendTCP(b, client6, vip6, tcp, nil)
		out = append(out, built{"tcp6" + sfx, b, frame.Packet{Version: 6, Proto: frame.ProtoTCP, TTL: 255, SrcPort: 40000, DstPort: 80, TCPFlags: tcp.Flags}, n})

		n = frame.UDPHeaderLen + len(pay)
		b = frame.AppendEthernet(nil, eth(frame.EtherTypeIPv6, tagged))
		b = frame.AppendIPv6(b, v6(frame.ProtoUDP), n)
		b = frame.AppendUDP(b, client6, vip6, udp, pay)
		out = append(out, built{"udp6" + sfx, b, frame.Packet{Version: 6, Proto: frame.ProtoUDP, TTL: 255, SrcPort: 5353, DstPort: 53}, n})

		n = frame.ICMPHeaderLen + len(pay)
		b = frame.AppendEthernet(nil, eth(frame.EtherTypeIPv6, tagged))
		b = frame.AppendIPv6(b, v6(frame.ProtoICMPv6), n)
		b = frame.AppendICMPv6(b, client6, vip6, icmp6, pay)
		out = append(out, built{"icmp6" + sfx, b, frame.Packet{Version: 6, Proto: frame.ProtoICMPv6, TTL: 255, ICMPType: 135}, n})
	}
	return out
}

// TestBuildersParseBack builds a frame of every kind, parses it with Parse
// and with golang.org/x/net's header parsers, and verifies every checksum
// with the independent reference.
func TestBuildersParseBack(t *testing.T) {
	for _, f := range buildFrames() {
		t.Run(f.name, func(t *testing.T) {
			var p frame.Packet
			require.NoError(t, frame.Parse(f.b, &p))
			assert.Equal(t, len(f.b), p.Len, "lengths agree with the frame")
			assert.Equal(t, macServer, p.EthDst)
			assert.Equal(t, macLB, p.EthSrc)
			tagged := len(f.name) > 5 && f.name[len(f.name)-5:] == "_vlan"
			assert.Equal(t, tagged, p.Tagged)
			if tagged {
				assert.Equal(t, uint16(0x2064), p.VLAN)
			}
			assert.Equal(t, f.seg, p.Len-p.L4Off, "transport segment")
			got := frame.Packet{Version: p.Version, Proto: p.Proto, TTL: p.TTL, FragID: p.FragID, SrcPort: p.SrcPort, DstPort: p.DstPort, TCPFlags: p.TCPFlags, ICMPType: p.ICMPType, ICMPCode: p.ICMPCode}
			assert.Equal(t, f.want, got)
			src, dst := client4, vip4
			if p.Version == 6 {
				src, dst = client6, vip6
			}
			assert.Equal(t, src, p.Src)
			assert.Equal(t, dst, p.Dst)
			assert.True(t, frame.TransportChecksumOK(f.b, &p), "transport checksum")
			seg := f.b[p.L4Off:p.Len]
			var ph []byte
			if p.Proto != frame.ProtoICMP {
				ph = refPseudo(src, dst, p.Proto, len(seg))
			}
			assert.Equal(t, uint16(0), refChecksum(append(ph, seg...), 0), "reference checksum verifies")
			hdr := f.b[p.L3Off:]
			if p.Version == 4 {
				assert.True(t, frame.IPv4HeaderChecksumOK(f.b, &p))
				assert.Equal(t, uint16(0), refChecksum(hdr[:p.L4Off-p.L3Off], 0))
				h, err := ipv4.ParseHeader(hdr)
				require.NoError(t, err)
				assert.Equal(t, p.Len-p.L3Off, h.TotalLen)
				assert.Equal(t, p.L4Off-p.L3Off, h.Len)
				assert.Equal(t, int(f.want.Proto), h.Protocol)
				if f.want.FragID != 0 {
					assert.Equal(t, ipv4.DontFragment, h.Flags)
				}
			} else {
				assert.False(t, frame.IPv4HeaderChecksumOK(f.b, &p), "not IPv4")
				h, err := ipv6.ParseHeader(hdr)
				require.NoError(t, err)
				assert.Equal(t, p.Len-p.L3Off-ipv6.HeaderLen, h.PayloadLen)
				assert.Equal(t, 0x12345, h.FlowLabel)
			}
			if p.Proto == frame.ProtoTCP {
				tcp := f.b[p.L4Off:]
				assert.Equal(t, uint32(0x01020304), binary.BigEndian.Uint32(tcp[4:]), "seq")
				assert.Equal(t, uint32(0xa0b0c0d0), binary.BigEndian.Uint32(tcp[8:]), "ack")
				assert.Equal(t, []byte{2, 4, 5, 0xb4, 1, 0, 0, 0}, tcp[20:28], "options padded with zeros")
			}
		})
	}
}

func TestBuildersEdgeCases(t *testing.T) {
	t.Run("QinQ tag", func(t *testing.T) {
		b := frame.AppendEthernet(nil, frame.EthernetHeader{Tagged: true, TPID: frame.EtherTypeQinQ, VLAN: 7, EtherType: frame.EtherTypeARP})
		assert.Equal(t, []byte{0x88, 0xa8, 0, 7, 0x08, 0x06}, b[12:])
		assert.Equal(t, 18, frame.EthernetHeader{Tagged: true}.Len())
	})
	t.Run("wrong family writes zeros, never panics", func(t *testing.T) {
		b := frame.AppendIPv4(nil, frame.IPv4Header{Src: client6, Dst: netip.Addr{}}, 0)
		assert.Equal(t, make([]byte, 8), b[12:20])
		assert.Equal(t, uint16(0), refChecksum(b, 0))
		b = frame.AppendIPv4(nil, frame.IPv4Header{Src: netip.AddrFrom16(client4.As16())}, 0)
		assert.Equal(t, client4.AsSlice(), b[12:16], "IPv4-mapped is IPv4")
		b = frame.AppendIPv6(nil, frame.IPv6Header{}, 0)
		assert.Equal(t, make([]byte, 32), b[8:40])
	})
	t.Run("options capped at 40 bytes", func(t *testing.T) {
		h := frame.TCPHeader{Options: make([]byte, 50)}
		assert.Equal(t, 60, h.Len())
		assert.Len(t, frame.AppendTCP(nil, client4, vip4, h, nil), 60)
		ip := frame.IPv4Header{Options: make([]byte, 41)}
		assert.Len(t, frame.AppendIPv4(nil, ip, 0), 60)
	})
	t.Run("UDP without checksum", func(t *testing.T) {
		b := frame.AppendUDP(nil, client4, vip4, frame.UDPHeader{SrcPort: 1, DstPort: 2, NoChecksum: true}, []byte("x"))
		assert.Equal(t, []byte{0, 1, 0, 2, 0, 9, 0, 0, 'x'}, b)
	})
	t.Run("checksum 0 is sent as 0xffff", func(t *testing.T) {
		// Find a payload whose UDP checksum computes to 0.
		for i := range 0x10000 {
			pay := binary.BigEndian.AppendUint16(nil, uint16(i))
			b := frame.AppendUDP(nil, client4, vip4, frame.UDPHeader{}, pay)
			binary.BigEndian.PutUint16(b[6:], 0)
			if frame.Checksum(b, frame.PseudoHeaderSum(client4, vip4, frame.ProtoUDP, len(b))) != 0 {
				continue
			}
			b = frame.AppendUDP(nil, client4, vip4, frame.UDPHeader{}, pay)
			assert.Equal(t, []byte{0xff, 0xff}, b[6:8])
			return
		}
		t.Fatal("no payload of 2 bytes gives checksum 0")
	})
	t.Run("appends after existing bytes", func(t *testing.T) {
		prefix := []byte("keep")
		b := frame.AppendTCP(append([]byte{}, prefix...), client4, vip4, frame.TCPHeader{SrcPort: 9}, nil)
		assert.Equal(t, prefix, b[:4])
		assert.Equal(t, uint16(0), refChecksum(append(refPseudo(client4, vip4, 6, 20), b[4:]...), 0))
	})
}

func TestBuildersDoNotAllocate(t *testing.T) {
	buf := make([]byte, 0, 256)
	opts := []byte{2, 4, 5, 0xb4}
	allocs := testing.AllocsPerRun(100, func() {
		b := frame.AppendEthernet(buf[:0], frame.EthernetHeader{Dst: macServer, Src: macLB, EtherType: frame.EtherTypeIPv6, Tagged: true})
		b = frame.AppendIPv6(b, frame.IPv6Header{Src: client6, Dst: vip6, NextHeader: frame.ProtoTCP}, 24)
		_ = frame.AppendTCP(b, client6, vip6, frame.TCPHeader{SrcPort: 1, DstPort: 2, Flags: frame.FlagSYN, Options: opts}, nil)
	})
	assert.Zero(t, allocs, "IPv6 SYN")
	allocs = testing.AllocsPerRun(100, func() {
		b := frame.AppendEthernet(buf[:0], frame.EthernetHeader{EtherType: frame.EtherTypeIPv4})
		b = frame.AppendIPv4(b, frame.IPv4Header{Src: client4, Dst: vip4, Proto: frame.ProtoUDP}, 9)
		b = frame.AppendUDP(b, client4, vip4, frame.UDPHeader{}, opts[:1])
		_ = frame.AppendICMPv4(b, frame.ICMPHeader{}, nil)
		_ = frame.AppendICMPv6(b, client6, vip6, frame.ICMPHeader{}, nil)
	})
	assert.Zero(t, allocs, "IPv4 UDP, ICMP")
}

// FuzzBuildParse builds frames from arbitrary field values and requires
// Parse to read every field back and the checksums to verify.
func FuzzBuildParse(f *testing.F) {
	f.Add(true, uint16(5), uint8(frame.ProtoTCP), []byte{192, 0, 2, 1}, []byte{198, 51, 100, 1}, uint16(1), uint16(2), uint8(frame.FlagSYN), []byte{2, 4, 5, 0xb4}, []byte("data"))
	f.Add(false, uint16(0), uint8(frame.ProtoUDP), client6.AsSlice(), vip6.AsSlice(), uint16(53), uint16(5353), uint8(0), []byte{}, []byte{1})
	f.Add(false, uint16(0), uint8(frame.ProtoICMPv6), client6.AsSlice(), vip6.AsSlice(), uint16(0x8000), uint16(0), uint8(0), []byte(nil), []byte{})
	f.Add(true, uint16(0), uint8(frame.ProtoICMP), []byte{203, 0, 113, 9}, []byte{192, 0, 2, 1}, uint16(0x0300), uint16(1400), uint8(0), []byte(nil), make([]byte, 28))
	f.Fuzz(func(t *testing.T, tagged bool, vlan uint16, proto uint8, src, dst []byte, a, b uint16, flags uint8, opts, pay []byte) {
		s, ok1 := netip.AddrFromSlice(src)
		d, ok2 := netip.AddrFromSlice(dst)
		if !ok1 || !ok2 || s.Is4() != d.Is4() || len(pay) > 1400 {
			return
		}
		v6 := s.Is6()
		switch {
		case proto == frame.ProtoICMP && v6, proto == frame.ProtoICMPv6 && !v6:
			return
		case proto != frame.ProtoTCP && proto != frame.ProtoUDP && proto != frame.ProtoICMP && proto != frame.ProtoICMPv6:
			return
		}
		et := uint16(frame.EtherTypeIPv4)
		if v6 {
			et = frame.EtherTypeIPv6
		}
		tcp := frame.TCPHeader{SrcPort: a, DstPort: b, Flags: flags, Options: opts}
		icmp := frame.ICMPHeader{Type: uint8(a >> 8), Code: uint8(a)}
		var segLen int
		switch proto {
		case frame.ProtoTCP:
			segLen = tcp.Len() + len(pay)
		case frame.ProtoUDP:
			segLen = frame.UDPHeaderLen + len(pay)
		default:
			segLen = frame.ICMPHeaderLen + len(pay)
		}
		fr := frame.AppendEthernet(nil, frame.EthernetHeader{Dst: macServer, Src: macLB, Tagged: tagged, VLAN: vlan, EtherType: et})
		if v6 {
			fr = frame.AppendIPv6(fr, frame.IPv6Header{Src: s, Dst: d, NextHeader: proto}, segLen)
		} else {
			fr = frame.AppendIPv4(fr, frame.IPv4Header{Src: s, Dst: d, Proto: proto}, segLen)
		}
		switch proto {
		case frame.ProtoTCP:
			fr = frame.AppendTCP(fr, s, d, tcp, pay)
		case frame.ProtoUDP:
			fr = frame.AppendUDP(fr, s, d, frame.UDPHeader{SrcPort: a, DstPort: b}, pay)
		case frame.ProtoICMP:
			fr = frame.AppendICMPv4(fr, icmp, pay)
		default:
			fr = frame.AppendICMPv6(fr, s, d, icmp, pay)
		}
		var p frame.Packet
		require.NoError(t, frame.Parse(fr, &p))
		require.Equal(t, len(fr), p.Len)
		require.Equal(t, tagged, p.Tagged)
		require.Equal(t, s, p.Src)
		require.Equal(t, d, p.Dst)
		require.Equal(t, proto, p.Proto)
		require.Equal(t, segLen, p.Len-p.L4Off)
		require.True(t, frame.TransportChecksumOK(fr, &p))
		if !v6 {
			require.True(t, frame.IPv4HeaderChecksumOK(fr, &p))
		}
		switch proto {
		case frame.ProtoTCP:
			require.Equal(t, []uint16{a, b}, []uint16{p.SrcPort, p.DstPort})
			require.Equal(t, flags, p.TCPFlags)
		case frame.ProtoUDP:
			require.Equal(t, []uint16{a, b}, []uint16{p.SrcPort, p.DstPort})
		default:
			require.Equal(t, []uint8{icmp.Type, icmp.Code}, []uint8{p.ICMPType, p.ICMPCode})
		}
	})
}

func TestAppendND(t *testing.T) {
	target := netip.MustParseAddr("2001:db8::250")
	for _, m := range []frame.NDMessage{
		{Type: frame.ICMPv6NeighborAdvertisement, Flags: frame.NAFlagSolicited | frame.NAFlagOverride, Target: target, Option: frame.NDOptTargetLLA, LLA: macLB},
		{Type: frame.ICMPv6NeighborSolicitation, Flags: 0xff, Target: target},
	} {
		b := frame.AppendND(nil, macServer, macLB, client6, vip6, m)
		var p frame.Packet
		require.NoError(t, frame.Parse(b, &p))
		assert.Equal(t, len(b), p.Len)
		assert.Equal(t, uint8(255), p.TTL, "hop limit 255")
		assert.Equal(t, m.Type, p.ICMPType)
		assert.True(t, frame.TransportChecksumOK(b, &p))
		msg := b[p.L4Off:]
		assert.Equal(t, uint16(0), refChecksum(append(refPseudo(client6, vip6, frame.ProtoICMPv6, len(msg)), msg...), 0))
		assert.Equal(t, target.AsSlice(), msg[8:24])
		if m.Type == frame.ICMPv6NeighborAdvertisement {
			assert.Equal(t, m.Flags, msg[4])
			assert.Equal(t, append([]byte{frame.NDOptTargetLLA, 1}, macLB[:]...), msg[24:32])
		} else {
			assert.Equal(t, make([]byte, 4), msg[4:8], "a solicitation has no flags")
			assert.Len(t, msg, 24, "no option")
		}
	}
	buf := make([]byte, 0, 128)
	assert.Zero(t, testing.AllocsPerRun(100, func() {
		_ = frame.AppendND(buf[:0], macServer, macLB, client6, vip6, frame.NDMessage{Type: frame.ICMPv6NeighborAdvertisement, Target: target, Option: frame.NDOptTargetLLA})
	}))
}

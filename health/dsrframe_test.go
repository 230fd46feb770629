package health

import (
	"net/netip"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/net/icmp"
	"golang.org/x/net/ipv4"
	"golang.org/x/net/ipv6"

	"github.com/dsrlb/dsrlb/internal/frame"
	ft "github.com/dsrlb/dsrlb/internal/frame/frametest"
)

var (
	lbMAC   = [6]byte{0x02, 0, 0, 0, 0, 0x01}
	srvMAC  = [6]byte{0x02, 0, 0, 0, 0, 0x21}
	lb4     = netip.MustParseAddr("192.0.2.2")
	vip4    = netip.MustParseAddr("192.0.2.100")
	lb6     = netip.MustParseAddr("2001:db8::2")
	lbLL6   = netip.MustParseAddr("fe80::1")
	vip6    = netip.MustParseAddr("2001:db8::100")
	srv6    = netip.MustParseAddr("2001:db8::21")
	testP   = probe{srcMAC: lbMAC, dstMAC: srvMAC, src: lb4, dst: vip4, sport: 40000, dport: 80, seq: 0xfffffff0, ipID: 7}
	testP6  = probe{srcMAC: lbMAC, dstMAC: srvMAC, src: lb6, dst: vip6, sport: 40001, dport: 443, seq: 0x10, ipID: 7}
	testPLL = probe{srcMAC: lbMAC, dstMAC: srvMAC, src: lbLL6, dst: vip6, sport: 40002, dport: 443, seq: 0x20}
)

// TestProbeFrames parses the probe's frames with internal/frame and with
// golang.org/x/net (which shares no code with it) and checks what the
// backend will see: addressed to its MAC, from our source to the VIP, a SYN
// with an MSS for the family, then a RST at ISN+1; checksums verify.
func TestProbeFrames(t *testing.T) {
	for _, tc := range []struct {
		name string
		p    probe
		mss  uint16
	}{{"IPv4", testP, 1460}, {"IPv6", testP6, 1440}, {"IPv6 link-local source", testPLL, 1440}} {
		t.Run(tc.name, func(t *testing.T) {
			syn := tc.p.appendSYN(nil)
			var pk frame.Packet
			require.NoError(t, frame.Parse(syn, &pk))
			assert.Equal(t, srvMAC, pk.EthDst, "addressed to the backend's MAC")
			assert.Equal(t, lbMAC, pk.EthSrc)
			assert.Equal(t, tc.p.src, pk.Src)
			assert.Equal(t, tc.p.dst, pk.Dst, "to the VIP, unchanged")
			assert.Equal(t, []uint16{tc.p.sport, tc.p.dport}, []uint16{pk.SrcPort, pk.DstPort})
			assert.Equal(t, uint8(frame.FlagSYN), pk.TCPFlags)
			assert.True(t, frame.TransportChecksumOK(syn, &pk))
			tcp := syn[pk.L4Off:pk.Len]
			require.Len(t, tcp, 24)
			assert.Equal(t, []byte{2, 4, byte(tc.mss >> 8), byte(tc.mss)}, tcp[20:24], "MSS option")
			if tc.p.dst.Is4() {
				assert.True(t, frame.IPv4HeaderChecksumOK(syn, &pk))
				h, err := ipv4.ParseHeader(syn[pk.L3Off:])
				require.NoError(t, err)
				assert.Equal(t, ipv4.DontFragment, h.Flags)
				assert.Equal(t, 6, h.Protocol)
			} else {
				assert.Equal(t, uint16(frame.EtherTypeIPv6), pk.EtherType)
				h, err := ipv6.ParseHeader(syn[pk.L3Off:])
				require.NoError(t, err)
				assert.Equal(t, 6, h.NextHeader)
				assert.Equal(t, 24, h.PayloadLen)
			}
			s, err := parseSegment(syn)
			require.NoError(t, err)
			assert.Equal(t, segment{src: tc.p.src, dst: tc.p.dst, sport: tc.p.sport, dport: tc.p.dport, seq: tc.p.seq, flags: frame.FlagSYN}, s)

			rst := tc.p.appendRST(nil)
			require.NoError(t, frame.Parse(rst, &pk))
			assert.True(t, frame.TransportChecksumOK(rst, &pk))
			s, err = parseSegment(rst)
			require.NoError(t, err)
			assert.Equal(t, tc.p.seq+1, s.seq, "RST carries ISN+1, the sequence the backend expects")
			assert.Equal(t, uint8(frame.FlagRST), s.flags)
		})
	}
}

// synAck is the backend's answer to probe p as its kernel would send it.
func synAck(p probe, flags uint8) []byte {
	ip := ft.Layer(ft.IPv4{Src: p.dst, Dst: p.src})
	if p.dst.Is6() {
		ip = ft.IPv6{Src: p.dst, Dst: p.src}
	}
	return ft.Build(ft.Ethernet{Dst: p.srcMAC, Src: p.dstMAC}, ip,
		ft.TCP{SrcPort: p.dport, DstPort: p.sport, Seq: 777, Ack: p.seq + 1, Flags: flags, Checksum: ft.ChecksumPartial})
}

// TestReplyRecognition checks that the SYN-ACK and RST a backend sends back
// over either family are read as the probe expects them, even with the
// partial checksum a veth sender leaves.
func TestReplyRecognition(t *testing.T) {
	for _, p := range []probe{testP, testP6, testPLL} {
		for _, flags := range []uint8{frame.FlagSYN | frame.FlagACK, frame.FlagRST | frame.FlagACK} {
			s, err := parseSegment(synAck(p, flags))
			require.NoError(t, err)
			assert.Equal(t, segment{src: p.dst, dst: p.src, sport: p.dport, dport: p.sport, seq: 777, ack: p.seq + 1, flags: flags}, s)
		}
	}
}

func TestParseSegmentRejects(t *testing.T) {
	good := testP.appendSYN(nil)
	mut := func(f func(b []byte) []byte) []byte { return f(append([]byte(nil), good...)) }
	tests := []struct {
		name  string
		frame []byte
		want  error
	}{
		{"empty", nil, frame.ErrTruncated},
		{"truncated", good[:40], frame.ErrTruncated},
		{"ARP", mut(func(b []byte) []byte { b[12], b[13] = 0x08, 0x06; return b }), errNotTCP},
		{"IPv6 version", mut(func(b []byte) []byte { b[14] = 0x65; return b }), frame.ErrBadIPv4Header},
		{"UDP", ft.Build(ft.Ethernet{}, ft.IPv4{Src: vip4, Dst: lb4}, ft.UDP{}), errNotTCP},
		{"protocol byte says UDP", mut(func(b []byte) []byte { b[23] = 17; return b }), frame.ErrBadTransportHeader},
		{"fragment", mut(func(b []byte) []byte { b[20] |= 0x20; return b }), errNotTCP},
		{"IHL too small", mut(func(b []byte) []byte { b[14] = 0x44; return b }), frame.ErrBadIPv4Header},
		{"total length beyond frame", mut(func(b []byte) []byte { b[16] = 0xff; return b }), frame.ErrTruncated},
		{"bad IP checksum", mut(func(b []byte) []byte { b[24] ^= 0xff; return b }), errChecksum},
		{"TCP data offset beyond segment", mut(func(b []byte) []byte { b[46] = 0xf0; return b }), frame.ErrBadTransportHeader},
		{"IPv6 UDP", ft.Build(ft.Ethernet{}, ft.IPv6{Src: vip6, Dst: lb6}, ft.UDP{}), errNotTCP},
		{"IPv6 later fragment", ft.Build(ft.Ethernet{}, ft.IPv6{Src: vip6, Dst: lb6}, ft.IPv6Fragment{Offset: 8, NextHeader: 6}, ft.Raw(make([]byte, 24))), errNotTCP},
		{"IPv6 truncated TCP", testP6.appendSYN(nil)[:14+40+10], frame.ErrTruncated},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := parseSegment(tc.frame)
			assert.ErrorIs(t, err, tc.want)
		})
	}
}

func TestARPReply(t *testing.T) {
	req := ft.Build(ft.Ethernet{Dst: [6]byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}, Src: srvMAC},
		ft.ARP{SenderMAC: srvMAC, SenderIP: netip.MustParseAddr("192.0.2.21"), TargetIP: netip.MustParseAddr("192.0.2.250")})
	r, err := parseARPRequest(req)
	require.NoError(t, err)
	assert.Equal(t, netip.MustParseAddr("192.0.2.21"), r.senderIP)
	assert.Equal(t, netip.MustParseAddr("192.0.2.250"), r.targetIP)

	reply := appendARPReply(nil, r, r.targetIP, lbMAC)
	want := ft.Build(ft.Ethernet{Dst: srvMAC, Src: lbMAC},
		ft.ARP{Op: 2, SenderMAC: lbMAC, SenderIP: r.targetIP, TargetMAC: srvMAC, TargetIP: r.senderIP})
	assert.Equal(t, want, reply)

	_, err = parseARPRequest(reply)
	assert.ErrorIs(t, err, errNotARPReq, "a reply is not a request")
	_, err = parseARPRequest(req[:30])
	assert.ErrorIs(t, err, errShort)
	_, err = parseARPRequest(req[:10])
	assert.ErrorIs(t, err, errShort)
}

// ns builds a neighbour solicitation for target from src, with a source
// link-layer address option unless src is ::.
func ns(src, target netip.Addr) []byte {
	dst := netip.MustParseAddr("ff02::1:ff00:0")
	dst = netip.AddrFrom16([16]byte(append(dst.AsSlice()[:13], target.AsSlice()[13:]...)))
	m := frame.NDMessage{Type: frame.ICMPv6NeighborSolicitation, Target: target}
	if !src.IsUnspecified() {
		m.Option, m.LLA = frame.NDOptSourceLLA, srvMAC
	}
	return frame.AppendND(nil, [6]byte(solicitedNodeMAC(target)), srvMAC, src, dst, m)
}

// TestNeighborAdvertisement checks the IPv6 counterpart of the ARP reply:
// a solicitation for the probe source is answered with a solicited,
// overriding advertisement carrying our MAC, valid by golang.org/x/net's
// ICMPv6 parser; duplicate address detection is answered to all nodes.
func TestNeighborAdvertisement(t *testing.T) {
	src6 := netip.MustParseAddr("2001:db8::250")
	q, err := parseNeighborSolicitation(ns(srv6, src6))
	require.NoError(t, err)
	assert.Equal(t, neighborSolicitation{senderMAC: srvMAC, src: srv6, target: src6}, q)

	na := appendNeighborAdvertisement(nil, q, lbMAC)
	var pk frame.Packet
	require.NoError(t, frame.Parse(na, &pk))
	assert.Equal(t, srvMAC, pk.EthDst)
	assert.Equal(t, lbMAC, pk.EthSrc)
	assert.Equal(t, src6, pk.Src)
	assert.Equal(t, srv6, pk.Dst)
	assert.Equal(t, uint8(255), pk.TTL)
	assert.True(t, frame.TransportChecksumOK(na, &pk))
	msg, err := icmp.ParseMessage(frame.ProtoICMPv6, na[pk.L4Off:])
	require.NoError(t, err)
	assert.Equal(t, ipv6.ICMPTypeNeighborAdvertisement, msg.Type)
	body := msg.Body.(*icmp.RawBody).Data
	assert.Equal(t, byte(frame.NAFlagSolicited|frame.NAFlagOverride), body[0])
	assert.Equal(t, src6.AsSlice(), body[4:20])
	assert.Equal(t, append([]byte{frame.NDOptTargetLLA, 1}, lbMAC[:]...), body[20:28])
	_, err = parseNeighborSolicitation(na)
	assert.ErrorIs(t, err, errNotNS, "an advertisement is not a solicitation")

	dad, err := parseNeighborSolicitation(ns(netip.IPv6Unspecified(), src6))
	require.NoError(t, err)
	na = appendNeighborAdvertisement(nil, dad, lbMAC)
	require.NoError(t, frame.Parse(na, &pk))
	assert.Equal(t, allNodesMAC, pk.EthDst)
	assert.Equal(t, allNodes, pk.Dst)
	assert.Equal(t, byte(frame.NAFlagOverride), na[pk.L4Off+4], "not solicited")

	bad := ns(srv6, src6)
	bad[len(bad)-1] ^= 1
	_, err = parseNeighborSolicitation(bad)
	assert.ErrorIs(t, err, errNotNS, "bad checksum")
	hop := ns(srv6, src6)
	hop[14+7] = 64
	_, err = parseNeighborSolicitation(hop)
	assert.ErrorIs(t, err, errNotNS, "routed (hop limit not 255)")
	_, err = parseNeighborSolicitation(testP6.appendSYN(nil))
	assert.ErrorIs(t, err, errNotNS)
	assert.Equal(t, "33:33:ff:00:02:50", solicitedNodeMAC(src6).String())
}

// The probe runs per check, not per packet, but building frames into a
// reused buffer and parsing replies must still not allocate: the reader
// parses every SYN-ACK and RST the interface carries.
func TestProbeFramesAllocs(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector's instrumentation allocates")
	}
	buf := make([]byte, 0, 128)
	syn, syn6 := testP.appendSYN(nil), testP6.appendSYN(nil)
	nsf := ns(srv6, lb6)
	allocs := testing.AllocsPerRun(100, func() {
		buf = testP.appendSYN(buf[:0])
		buf = testP6.appendRST(buf[:0])
		if _, err := parseSegment(syn); err != nil {
			panic(err)
		}
		if _, err := parseSegment(syn6); err != nil {
			panic(err)
		}
		q, err := parseNeighborSolicitation(nsf)
		if err != nil {
			panic(err)
		}
		buf = appendNeighborAdvertisement(buf[:0], q, lbMAC)
	})
	assert.Zero(t, allocs)
}

func BenchmarkParseSegment(b *testing.B) {
	syn := testP.appendSYN(nil)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := parseSegment(syn); err != nil {
			b.Fatal(err)
		}
	}
}

func FuzzParseSegment(f *testing.F) {
	f.Add(testP.appendSYN(nil))
	f.Add(testP.appendRST(nil))
	f.Add(testP6.appendSYN(nil))
	f.Add(synAck(testPLL, frame.FlagSYN|frame.FlagACK))
	f.Fuzz(func(t *testing.T, b []byte) {
		s, err := parseSegment(b)
		if err != nil {
			return
		}
		// Whatever parses is TCP over IPv4 with a valid header checksum, or
		// over IPv6.
		var p frame.Packet
		require.NoError(t, frame.Parse(b, &p))
		require.Equal(t, uint8(frame.ProtoTCP), p.Proto)
		require.Equal(t, s.src.Is4(), p.Version == 4)
		if p.Version == 4 {
			require.True(t, frame.IPv4HeaderChecksumOK(b, &p))
		}
		require.Equal(t, s.flags, b[p.L4Off+13])
	})
}

func FuzzParseARPRequest(f *testing.F) {
	f.Add(ft.Build(ft.Ethernet{}, ft.ARP{}))
	f.Add(testP.appendSYN(nil))
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := parseARPRequest(b)
		if err != nil {
			return
		}
		reply := appendARPReply(nil, r, r.targetIP, lbMAC)
		require.Len(t, reply, frame.EthernetHeaderLen+28)
		_, err = parseARPRequest(reply)
		require.ErrorIs(t, err, errNotARPReq)
	})
}

func FuzzParseNeighborSolicitation(f *testing.F) {
	f.Add(ns(srv6, lb6))
	f.Add(ns(netip.IPv6Unspecified(), lb6))
	f.Add(testP6.appendSYN(nil))
	f.Fuzz(func(t *testing.T, b []byte) {
		q, err := parseNeighborSolicitation(b)
		if err != nil {
			return
		}
		require.False(t, q.target.IsMulticast())
		na := appendNeighborAdvertisement(nil, q, lbMAC)
		var p frame.Packet
		require.NoError(t, frame.Parse(na, &p))
		require.True(t, frame.TransportChecksumOK(na, &p), "the answer verifies")
		require.Equal(t, q.target, p.Src)
		_, err = parseNeighborSolicitation(na)
		require.ErrorIs(t, err, errNotNS)
	})
}

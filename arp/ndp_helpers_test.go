package arp

import (
	"encoding/binary"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/mdlayher/ethernet"
	"github.com/stretchr/testify/require"
	"golang.org/x/net/icmp"
	"golang.org/x/net/ipv6"
)

var (
	ourIP6    = netip.MustParseAddr("fe80::1")
	vip6      = netip.MustParseAddr("2001:db8:0:1::100")
	vip6b     = netip.MustParseAddr("2001:db8:0:1::101")
	clientIP6 = netip.MustParseAddr("2001:db8:0:1::10")
	srvIP6    = netip.MustParseAddr("2001:db8:0:1::20")
	srvIP6b   = netip.MustParseAddr("2001:db8:0:1::21")
	allNodesM = net.HardwareAddr{0x33, 0x33, 0, 0, 0, 1}
)

// ndSpec describes a neighbour discovery frame for tests. It is built with
// golang.org/x/net/icmp (checksum included), independently of the code
// under test.
type ndSpec struct {
	ethDst, ethSrc net.HardwareAddr
	src, dst       netip.Addr
	hop            int // 0 means 255
	next           int // IPv6 next header; 0 means ICMPv6
	typ            ipv6.ICMPType
	code           int
	flags          byte // NA flags
	target         netip.Addr
	opts           []byte
	badSum         bool
	pad            int  // Ethernet padding after the packet
	plenDelta      int  // added to the IPv6 payload length field
	version        byte // 0 means 6
}

func llaOpt(typ byte, mac net.HardwareAddr) []byte {
	return append([]byte{typ, 1}, mac...)
}

func (p ndSpec) frame(t testing.TB) []byte {
	t.Helper()
	body := make([]byte, 20, 20+len(p.opts))
	if p.typ == ipv6.ICMPTypeNeighborAdvertisement {
		body[0] = p.flags
	}
	tg := p.target.As16()
	copy(body[4:], tg[:])
	body = append(body, p.opts...)
	m := icmp.Message{Type: p.typ, Code: p.code, Body: &icmp.RawBody{Data: body}}
	msg, err := m.Marshal(icmp.IPv6PseudoHeader(p.src.AsSlice(), p.dst.AsSlice()))
	require.NoError(t, err)
	if p.badSum {
		msg[2] ^= 0x55
	}
	ip := make([]byte, 40, 40+len(msg)+p.pad)
	ver := p.version
	if ver == 0 {
		ver = 6
	}
	ip[0] = ver << 4
	binary.BigEndian.PutUint16(ip[4:], uint16(len(msg)+p.plenDelta))
	ip[6] = protoICMPv6
	if p.next != 0 {
		ip[6] = byte(p.next)
	}
	ip[7] = 255
	if p.hop != 0 {
		ip[7] = byte(p.hop)
	}
	s16, d16 := p.src.As16(), p.dst.As16()
	copy(ip[8:], s16[:])
	copy(ip[24:], d16[:])
	ip = append(ip, msg...)
	ip = append(ip, make([]byte, p.pad)...)
	f := ethernet.Frame{Destination: p.ethDst, Source: p.ethSrc, EtherType: ethernet.EtherTypeIPv6, Payload: ip}
	b, err := f.MarshalBinary()
	require.NoError(t, err)
	return b
}

func groupMAC(a netip.Addr) net.HardwareAddr {
	b := a.As16()
	return net.HardwareAddr{0x33, 0x33, b[12], b[13], b[14], b[15]}
}

func solNode(a netip.Addr) netip.Addr {
	b := a.As16()
	return netip.AddrFrom16([16]byte{0xff, 0x02, 11: 0x01, 12: 0xff, 13: b[13], 14: b[14], 15: b[15]})
}

// nsSpec is a multicast solicitation for target from mac/src with a source
// link-layer address option, as a kernel resolving target sends it.
func nsSpec(mac net.HardwareAddr, src, target netip.Addr) ndSpec {
	return ndSpec{ethDst: groupMAC(solNode(target)), ethSrc: mac, src: src, dst: solNode(target),
		typ: ipv6.ICMPTypeNeighborSolicitation, target: target, opts: llaOpt(ndOptSourceLLA, mac)}
}

// dadSpec is a duplicate address detection probe for target.
func dadSpec(mac net.HardwareAddr, target netip.Addr) ndSpec {
	return ndSpec{ethDst: groupMAC(solNode(target)), ethSrc: mac, src: netip.IPv6Unspecified(), dst: solNode(target),
		typ: ipv6.ICMPTypeNeighborSolicitation, target: target}
}

// naSpec is an advertisement of target by mac from src to dst/ethDst with a
// target link-layer address option.
func naSpec(mac net.HardwareAddr, src netip.Addr, ethDst net.HardwareAddr, dst netip.Addr, flags byte, target netip.Addr) ndSpec {
	return ndSpec{ethDst: ethDst, ethSrc: mac, src: src, dst: dst,
		typ: ipv6.ICMPTypeNeighborAdvertisement, flags: flags, target: target, opts: llaOpt(ndOptTargetLLA, mac)}
}

func ns(t testing.TB, mac net.HardwareAddr, src, target netip.Addr) []byte {
	return nsSpec(mac, src, target).frame(t)
}

// ndDecoded is a sent neighbour discovery frame, parsed back with
// golang.org/x/net and its checksum recomputed there.
type ndDecoded struct {
	eth      *ethernet.Frame
	src, dst netip.Addr
	hop      int
	typ      ipv6.ICMPType
	code     int
	flags    byte
	target   netip.Addr
	opts     []byte
}

func decodeND(t testing.TB, b []byte) ndDecoded {
	t.Helper()
	var f ethernet.Frame
	require.NoError(t, f.UnmarshalBinary(b))
	require.Equal(t, ethernet.EtherTypeIPv6, f.EtherType)
	ip := f.Payload
	require.GreaterOrEqual(t, len(ip), 40)
	h, err := ipv6.ParseHeader(ip)
	require.NoError(t, err)
	require.Equal(t, 6, h.Version)
	require.Equal(t, protoICMPv6, h.NextHeader)
	require.Equal(t, len(ip)-40, h.PayloadLen)
	msg := ip[40:]
	m, err := icmp.ParseMessage(protoICMPv6, msg)
	require.NoError(t, err)
	body := m.Body.(*icmp.RawBody).Data
	// Recompute the checksum with x/net and compare.
	again, err := (&icmp.Message{Type: m.Type, Code: m.Code, Body: &icmp.RawBody{Data: body}}).Marshal(icmp.IPv6PseudoHeader(h.Src, h.Dst))
	require.NoError(t, err)
	require.Equal(t, again[2:4], msg[2:4], "ICMPv6 checksum")
	src, _ := netip.AddrFromSlice(h.Src)
	dst, _ := netip.AddrFromSlice(h.Dst)
	require.GreaterOrEqual(t, len(body), 20)
	d := ndDecoded{eth: &f, src: src, dst: dst, hop: h.HopLimit, typ: m.Type.(ipv6.ICMPType), code: m.Code,
		target: netip.AddrFrom16([16]byte(body[4:20])), opts: body[20:]}
	if d.typ == ipv6.ICMPTypeNeighborAdvertisement {
		d.flags = body[0]
	}
	return d
}

// ndFrames decodes the IPv6 frames of b whose counter is ctr (any counter
// when nil), checking they go out on the NDP socket.
func ndFrames(t testing.TB, b batch, ctr any) []ndDecoded {
	t.Helper()
	var out []ndDecoded
	for _, f := range b.frames {
		if (ctr != nil && any(f.ctr) != ctr) || binary.BigEndian.Uint16(f.b[12:]) != uint16(ethernet.EtherTypeIPv6) {
			continue
		}
		require.True(t, f.nd, "IPv6 frame sent on the NDP socket")
		d := decodeND(t, f.b)
		require.Equal(t, net.HardwareAddr(f.dst[:]), d.eth.Destination, "socket address and Ethernet destination agree")
		require.Equal(t, ourMAC, d.eth.Source)
		require.Equal(t, 255, d.hop)
		require.Zero(t, d.code)
		out = append(out, d)
	}
	return out
}

// testSpeaker6 returns a Speaker with an NDP socket on fakeConns, with its
// clock at *now.
func testSpeaker6(t *testing.T, cfg *Config) (*Speaker, *fakeConn, *fakeConn, *time.Time) {
	t.Helper()
	c := Config{}
	if cfg != nil {
		c = *cfg
	}
	if c.HardwareAddr == nil {
		c.HardwareAddr = ourMAC
	}
	if !c.IP.IsValid() {
		c.IP = ourIP
	}
	if !c.IP6.IsValid() {
		c.IP6 = ourIP6
	}
	nd := newFakeConn()
	c.NDPConn = nd
	s, _, now := testSpeaker(t, &c)
	return s, s.conn.(*fakeConn), nd, now
}

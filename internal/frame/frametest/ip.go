package frametest

import (
	"encoding/binary"
	"net/netip"

	"github.com/dsrlb/dsrlb/internal/frame"
)

// IPv4 is an IPv4 header. Src and Dst must be IPv4 addresses; a zero Addr
// writes 0.0.0.0.
//
// Zero values: TTL 0 means 64; Protocol 0 is derived from the next layer;
// Length 0 computes the total length, -1 writes 0 (as in a GSO super-frame),
// any other value is written as is. FragOffset is in 8-byte units; MF and DF
// set the flags. Options must be a multiple of 4 bytes long.
type IPv4 struct {
	Src, Dst   netip.Addr
	TTL        uint8
	TOS        uint8
	Protocol   uint8
	ID         uint16
	DF, MF     bool
	FragOffset uint16
	Length     int
	Options    []byte
}

func (l IPv4) encode(c *context, payload []byte) []byte {
	proto := l.Protocol
	if proto == 0 {
		proto = protoOf(c.next)
	}
	b := frame.AppendIPv4(make([]byte, 0, 60+len(payload)), frame.IPv4Header{
		Src: netip.AddrFrom4(as4(l.Src)), Dst: netip.AddrFrom4(as4(l.Dst)), Proto: proto, TTL: l.TTL, TOS: l.TOS,
		ID: l.ID, DontFragment: l.DF, MoreFragments: l.MF, FragOffset: l.FragOffset, Options: l.Options,
	}, len(payload))
	if l.Length != 0 {
		total := max(l.Length, 0) // -1: 0, as in a GSO super-frame
		binary.BigEndian.PutUint16(b[2:], uint16(total))
		binary.BigEndian.PutUint16(b[10:], 0)
		binary.BigEndian.PutUint16(b[10:], frame.Checksum(b, 0))
	}
	return append(b, payload...)
}

// IPv6 is an IPv6 header. Src and Dst must be IPv6 addresses (IPv4-mapped
// ones are written as they are); a zero Addr writes ::.
//
// Zero values: HopLimit 0 means 64; NextHeader 0 is derived from the next
// layer (to send Hop-by-Hop Options put an IPv6Ext layer after it); Length 0
// computes the payload length, -1 writes 0 (jumbogram or GSO super-frame),
// any other value is written as is.
type IPv6 struct {
	Src, Dst     netip.Addr
	TrafficClass uint8
	FlowLabel    uint32
	HopLimit     uint8
	NextHeader   uint8
	Length       int
}

func (l IPv6) encode(c *context, payload []byte) []byte {
	next := l.NextHeader
	if next == 0 {
		next = protoOf(c.next)
	}
	b := frame.AppendIPv6(make([]byte, 0, 40+len(payload)), frame.IPv6Header{
		Src: netip.AddrFrom16(as16(l.Src)), Dst: netip.AddrFrom16(as16(l.Dst)), NextHeader: next, HopLimit: l.HopLimit,
		TrafficClass: l.TrafficClass, FlowLabel: l.FlowLabel,
	}, len(payload))
	if l.Length != 0 {
		binary.BigEndian.PutUint16(b[4:], uint16(max(l.Length, 0))) // -1: 0, a jumbogram or GSO super-frame
	}
	return append(b, payload...)
}

// IPv6Ext is a generic IPv6 extension header: Hop-by-Hop Options (0),
// Routing (43), Destination Options (60) or Authentication (51). Data is
// everything after the Next Header and length bytes; it is zero-padded to a
// valid length (a multiple of 8 bytes in total, of 4 bytes for AH).
// NextHeader 0 is derived from the next layer.
type IPv6Ext struct {
	Header     uint8
	NextHeader uint8
	Data       []byte
}

func (l IPv6Ext) encode(c *context, payload []byte) []byte {
	unit := 8
	if l.Header == 51 {
		unit = 4
	}
	n := 2 + len(l.Data)
	if n < 8 {
		n = 8
	}
	n = (n + unit - 1) / unit * unit
	b := make([]byte, n, n+len(payload))
	b[0] = l.NextHeader
	if b[0] == 0 {
		b[0] = protoOf(c.next)
	}
	if l.Header == 51 {
		b[1] = uint8(n/4 - 2)
	} else {
		b[1] = uint8(n/8 - 1)
	}
	copy(b[2:], l.Data)
	return append(b, payload...)
}

// IPv6Fragment is an IPv6 Fragment header. Offset is in 8-byte units; More
// is the M flag. NextHeader 0 is derived from the next layer.
type IPv6Fragment struct {
	NextHeader uint8
	Offset     uint16
	More       bool
	ID         uint32
}

func (l IPv6Fragment) encode(c *context, payload []byte) []byte {
	b := make([]byte, 8, 8+len(payload))
	b[0] = l.NextHeader
	if b[0] == 0 {
		b[0] = protoOf(c.next)
	}
	fo := l.Offset << 3
	if l.More {
		fo |= 1
	}
	binary.BigEndian.PutUint16(b[2:], fo)
	binary.BigEndian.PutUint32(b[4:], l.ID)
	return append(b, payload...)
}

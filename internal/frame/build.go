package frame

import (
	"encoding/binary"
	"net/netip"
)

// Builders. The control plane writes a few frames of its own (health probes,
// neighbour advertisements, benchmark templates, test frames); they are built
// here, with the one checksum implementation, so that what the parser reads
// and what the module writes cannot drift apart.
//
// Every builder appends to dst and returns the extended slice, like the
// append built-in: with enough capacity in dst nothing is allocated. A frame
// is built outermost first; an IP header needs the length of what follows it
// (payloadLen), and a transport builder appends its payload too, so that it
// can fill in the checksum over the pseudo-header. Builders never panic: an
// address of the wrong family is written as zeros, options are padded with
// zeros (End of Option List) to a multiple of 4 bytes, and lengths are
// written modulo 2^16 (the caller keeps packets within 65535 bytes).

// Header lengths without options or tags.
const (
	EthernetHeaderLen = 14
	VLANTagLen        = 4
	IPv4HeaderLen     = 20
	IPv6HeaderLen     = 40
	TCPHeaderLen      = 20
	UDPHeaderLen      = 8
	ICMPHeaderLen     = 8 // type, code, checksum and the 4-byte rest of header
)

// EthernetHeader is an Ethernet II header, optionally with one VLAN tag.
// The zero value is an untagged header with zero addresses and EtherType 0.
type EthernetHeader struct {
	Dst, Src [6]byte
	// Tagged adds one tag with Tag Control Information VLAN (priority, DEI
	// and VLAN ID) between the addresses and EtherType.
	Tagged bool
	VLAN   uint16
	// TPID is the tag's EtherType; 0 means EtherTypeVLAN (802.1Q). Set
	// EtherTypeQinQ for an 802.1ad service tag. Ignored when not Tagged.
	TPID uint16
	// EtherType is the type of the payload (EtherTypeIPv4, ...).
	EtherType uint16
}

// Len returns the header's length in bytes: 14, or 18 when Tagged.
func (h EthernetHeader) Len() int {
	if h.Tagged {
		return EthernetHeaderLen + VLANTagLen
	}
	return EthernetHeaderLen
}

// AppendEthernet appends the Ethernet header h to dst.
func AppendEthernet(dst []byte, h EthernetHeader) []byte {
	dst = append(dst, h.Dst[:]...)
	dst = append(dst, h.Src[:]...)
	if h.Tagged {
		tpid := h.TPID
		if tpid == 0 {
			tpid = EtherTypeVLAN
		}
		dst = binary.BigEndian.AppendUint16(dst, tpid)
		dst = binary.BigEndian.AppendUint16(dst, h.VLAN)
	}
	return binary.BigEndian.AppendUint16(dst, h.EtherType)
}

// IPv4Header is an IPv4 header. The zero value is a header from 0.0.0.0 to
// 0.0.0.0 with protocol 0, TTL 64 and no flags.
type IPv4Header struct {
	// Src and Dst are IPv4 (or IPv4-mapped) addresses; anything else is
	// written as 0.0.0.0.
	Src, Dst netip.Addr
	// Proto is the payload's protocol (ProtoTCP, ...).
	Proto uint8
	// TTL 0 means 64.
	TTL uint8
	TOS uint8
	// ID is the Identification field.
	ID uint16
	// DontFragment and MoreFragments set the DF and MF flags; FragOffset is
	// the fragment offset in 8-byte units (13 bits).
	DontFragment, MoreFragments bool
	FragOffset                  uint16
	// Options are the header options, zero-padded to a multiple of 4 bytes;
	// at most 40 bytes are written.
	Options []byte
}

// Len returns the header's length in bytes, options and padding included.
func (h IPv4Header) Len() int {
	n := min(len(h.Options), 40)
	return IPv4HeaderLen + (n+3)&^3
}

// AppendIPv4 appends the IPv4 header h of a packet carrying payloadLen bytes
// after the header to dst, with the total length and the header checksum
// filled in.
func AppendIPv4(dst []byte, h IPv4Header, payloadLen int) []byte {
	hl := h.Len()
	start := len(dst)
	dst = append(dst, 0x40|uint8(hl/4), h.TOS)
	dst = binary.BigEndian.AppendUint16(dst, uint16(hl+payloadLen))
	dst = binary.BigEndian.AppendUint16(dst, h.ID)
	ff := h.FragOffset & 0x1fff
	if h.DontFragment {
		ff |= 0x4000
	}
	if h.MoreFragments {
		ff |= 0x2000
	}
	dst = binary.BigEndian.AppendUint16(dst, ff)
	ttl := h.TTL
	if ttl == 0 {
		ttl = 64
	}
	dst = append(dst, ttl, h.Proto, 0, 0)
	s, d := as4(h.Src), as4(h.Dst)
	dst = append(dst, s[:]...)
	dst = append(dst, d[:]...)
	dst = appendPadded(dst, h.Options[:min(len(h.Options), 40)])
	binary.BigEndian.PutUint16(dst[start+10:], Checksum(dst[start:start+hl], 0))
	return dst
}

// IPv6Header is an IPv6 fixed header. The zero value is a header from :: to
// :: with Next Header 0 and hop limit 64.
type IPv6Header struct {
	// Src and Dst are written as their 16-byte form (IPv4 addresses as
	// IPv4-mapped ones).
	Src, Dst netip.Addr
	// NextHeader is the payload's protocol (ProtoTCP, ...).
	NextHeader uint8
	// HopLimit 0 means 64. Neighbour discovery needs 255.
	HopLimit     uint8
	TrafficClass uint8
	// FlowLabel is the 20-bit flow label; higher bits are ignored.
	FlowLabel uint32
}

// AppendIPv6 appends the IPv6 header h of a packet carrying payloadLen bytes
// after the header to dst, with the payload length filled in.
func AppendIPv6(dst []byte, h IPv6Header, payloadLen int) []byte {
	dst = binary.BigEndian.AppendUint32(dst, 6<<28|uint32(h.TrafficClass)<<20|h.FlowLabel&0xfffff)
	dst = binary.BigEndian.AppendUint16(dst, uint16(payloadLen))
	hop := h.HopLimit
	if hop == 0 {
		hop = 64
	}
	dst = append(dst, h.NextHeader, hop)
	s, d := h.Src.As16(), h.Dst.As16()
	dst = append(dst, s[:]...)
	return append(dst, d[:]...)
}

// TCPHeader is a TCP header. The zero value has ports 0, no flags and a zero
// window.
type TCPHeader struct {
	SrcPort, DstPort uint16
	Seq, Ack         uint32
	// Flags is the flag byte (FlagSYN | FlagACK, ...).
	Flags  uint8
	Window uint16
	// Options are the TCP options, zero-padded to a multiple of 4 bytes; at
	// most 40 bytes are written.
	Options []byte
}

// Len returns the header's length in bytes, options and padding included.
func (h TCPHeader) Len() int {
	n := min(len(h.Options), 40)
	return TCPHeaderLen + (n+3)&^3
}

// AppendTCP appends the TCP header h and payload to dst, with the checksum
// computed over the pseudo-header of a packet from src to dst (see
// PseudoHeaderSum for the family).
func AppendTCP(dst []byte, src, dstAddr netip.Addr, h TCPHeader, payload []byte) []byte {
	start := len(dst)
	dst = binary.BigEndian.AppendUint16(dst, h.SrcPort)
	dst = binary.BigEndian.AppendUint16(dst, h.DstPort)
	dst = binary.BigEndian.AppendUint32(dst, h.Seq)
	dst = binary.BigEndian.AppendUint32(dst, h.Ack)
	dst = append(dst, uint8(h.Len()/4)<<4, h.Flags)
	dst = binary.BigEndian.AppendUint16(dst, h.Window)
	dst = append(dst, 0, 0, 0, 0) // checksum, urgent pointer
	dst = appendPadded(dst, h.Options[:min(len(h.Options), 40)])
	dst = append(dst, payload...)
	return finishChecksum(dst, start, 16, PseudoHeaderSum(src, dstAddr, ProtoTCP, len(dst)-start))
}

// UDPHeader is a UDP header. The zero value has ports 0 and a checksum.
type UDPHeader struct {
	SrcPort, DstPort uint16
	// NoChecksum sends checksum 0, which over IPv4 means "none" (RFC 768):
	// for a template whose addresses are rewritten later without touching
	// the payload. IPv6 receivers drop such datagrams (RFC 8200).
	NoChecksum bool
}

// AppendUDP appends the UDP header h and payload to dst, with the length and
// (unless h.NoChecksum) the checksum over the pseudo-header of a packet from
// src to dst filled in. A computed checksum of 0 is sent as 0xFFFF.
func AppendUDP(dst []byte, src, dstAddr netip.Addr, h UDPHeader, payload []byte) []byte {
	start := len(dst)
	dst = binary.BigEndian.AppendUint16(dst, h.SrcPort)
	dst = binary.BigEndian.AppendUint16(dst, h.DstPort)
	dst = binary.BigEndian.AppendUint16(dst, uint16(UDPHeaderLen+len(payload)))
	dst = append(dst, 0, 0)
	dst = append(dst, payload...)
	if h.NoChecksum {
		return dst
	}
	return finishChecksum(dst, start, 6, PseudoHeaderSum(src, dstAddr, ProtoUDP, len(dst)-start))
}

// ICMPHeader is the 8-byte header of an ICMP or ICMPv6 message. Rest is the
// 4 bytes after the checksum: identifier and sequence of an echo, the MTU of
// "fragmentation needed" or "packet too big", the flags of a neighbour
// advertisement.
type ICMPHeader struct {
	Type, Code uint8
	Rest       uint32
}

// AppendICMPv4 appends the ICMP header h and payload to dst, with the
// checksum (which has no pseudo-header) filled in.
func AppendICMPv4(dst []byte, h ICMPHeader, payload []byte) []byte {
	start := len(dst)
	dst = appendICMP(dst, h, payload)
	return finishChecksum(dst, start, 2, 0)
}

// AppendICMPv6 appends the ICMPv6 header h and payload to dst, with the
// checksum over the IPv6 pseudo-header of a packet from src to dst.
func AppendICMPv6(dst []byte, src, dstAddr netip.Addr, h ICMPHeader, payload []byte) []byte {
	start := len(dst)
	dst = appendICMP(dst, h, payload)
	return finishChecksum(dst, start, 2, PseudoHeaderSum(src, dstAddr, ProtoICMPv6, len(dst)-start))
}

func appendICMP(dst []byte, h ICMPHeader, payload []byte) []byte {
	dst = append(dst, h.Type, h.Code, 0, 0)
	dst = binary.BigEndian.AppendUint32(dst, h.Rest)
	return append(dst, payload...)
}

// finishChecksum stores the checksum of dst[start:] (whose checksum field at
// start+at is zero) started from pseudo. 0 is stored as 0xFFFF, as
// CompleteChecksum does: the same ones' complement value, and the only form
// UDP allows.
func finishChecksum(dst []byte, start, at int, pseudo uint32) []byte {
	c := Checksum(dst[start:], pseudo)
	if c == 0 {
		c = 0xffff
	}
	binary.BigEndian.PutUint16(dst[start+at:], c)
	return dst
}

// appendPadded appends b and zeros up to a multiple of 4 bytes.
func appendPadded(dst, b []byte) []byte {
	dst = append(dst, b...)
	for n := len(b); n&3 != 0; n++ {
		dst = append(dst, 0)
	}
	return dst
}

// Package frame parses and rewrites Ethernet frames on the forwarding hot
// path of an L2 Direct Server Return balancer.
//
// Every received frame goes through [Parse], so the package is built around
// three promises: it allocates nothing (a [Packet] is filled in place and
// reused), it copies nothing but the two MAC addresses (offsets point into the
// caller's buffer), and it never panics: every read is bounds-checked and
// malformed input comes back as an [Error] value that callers count by reason.
//
// DSR forwarding changes only the Ethernet addresses ([SetMACs]); the IP
// header, TTL and transport checksum stay as the client sent them. The one
// exception is a frame whose sender left the transport checksum to offload
// hardware: [CompleteChecksum] finishes it before the frame leaves the host.
//
// The package is also the module's one codec for the frames the control
// plane writes itself (health probes, neighbour advertisements, benchmark
// templates, test frames): append-style builders for Ethernet (with one
// optional VLAN tag), IPv4, IPv6, TCP, UDP, ICMP and ICMPv6 ([AppendEthernet],
// [AppendIPv4], [AppendTCP], ...), and the one Internet checksum
// ([Checksum], [PseudoHeaderSum]). Builders allocate nothing when the
// destination has room, and whatever they build parses back with [Parse].
package frame

import (
	"encoding/binary"
	"net/netip"
)

// EtherType values the parser understands. Frames with any other EtherType
// are not an error: they parse with Version 0 so that the caller can hand
// them to whoever wants them (ARP responder) or ignore them.
const (
	EtherTypeIPv4 = 0x0800
	EtherTypeARP  = 0x0806
	EtherTypeVLAN = 0x8100 // IEEE 802.1Q customer tag
	EtherTypeQinQ = 0x88A8 // IEEE 802.1ad service tag, accepted as a single outer tag
	EtherTypeIPv6 = 0x86DD
)

// IP protocol numbers of the upper layers the parser decodes.
const (
	ProtoICMP   = 1
	ProtoTCP    = 6
	ProtoUDP    = 17
	ProtoICMPv6 = 58
)

// IPv6 extension header numbers walked by the parser. ESP and No Next Header
// end the walk: nothing after them can be read.
const (
	protoHopByHop = 0
	protoRouting  = 43
	protoFragment = 44
	protoESP      = 50
	protoAH       = 51
	protoNoNext   = 59
	protoDstOpts  = 60
)

// MaxExtensionHeaders bounds the IPv6 extension header walk. Real traffic
// carries one or two; a long chain is either an attack on parsers or junk,
// and a bound keeps the per-frame cost constant.
const MaxExtensionHeaders = 8

// TCP flag bits, as they sit in byte 13 of the TCP header, so that
// Packet.TCPFlags&FlagSYN != 0 tests a flag without shifting.
const (
	FlagFIN = 0x01
	FlagSYN = 0x02
	FlagRST = 0x04
	FlagPSH = 0x08
	FlagACK = 0x10
	FlagURG = 0x20
	FlagECE = 0x40
	FlagCWR = 0x80
)

// ICMP and ICMPv6 message types that report an error about an earlier packet.
// The balancer must route these to the backend of the flow they are about
// (Path MTU discovery breaks otherwise), so the parser decodes the embedded
// header for exactly these types.
const (
	ICMPv4DestUnreachable  = 3 // code 4 is "fragmentation needed" (PMTUD)
	ICMPv4TimeExceeded     = 11
	ICMPv4ParameterProblem = 12
	ICMPv6DestUnreachable  = 1
	ICMPv6PacketTooBig     = 2 // IPv6 PMTUD
	ICMPv6TimeExceeded     = 3
	ICMPv6ParamProblem     = 4
)

// Fragment tells whether an IP packet is a fragment and which one. Only the
// first fragment carries the transport header, so the balancer can pick a
// backend by ports for NotFragment and FirstFragment packets only.
type Fragment uint8

// Fragment values. The zero value is an unfragmented packet (also an IPv6
// "atomic fragment", which has a Fragment header with offset 0 and M clear).
const (
	NotFragment   Fragment = iota // a whole packet
	FirstFragment                 // offset 0, more fragments follow; transport header parsed
	LaterFragment                 // offset != 0; no transport header
)

// String returns "none", "first" or "later", for logs and metric labels.
func (f Fragment) String() string {
	switch f {
	case NotFragment:
		return "none"
	case FirstFragment:
		return "first"
	case LaterFragment:
		return "later"
	}
	return "invalid"
}

// Inner is the IP header embedded in an ICMP or ICMPv6 error message: the
// packet the error is about. For an error about traffic to a VIP, Inner.Src is
// the VIP and Inner.Dst the client, i.e. the flow is Inner reversed.
type Inner struct {
	Src, Dst netip.Addr
	// Proto is the embedded packet's upper-layer protocol, after any IPv6
	// extension headers.
	Proto uint8
	// SrcPort and DstPort are the embedded TCP/UDP ports when HasPorts.
	SrcPort, DstPort uint16
	// HasPorts is true when the embedded packet is TCP or UDP, not a later
	// fragment, and the error quoted at least the 4 bytes holding the ports.
	HasPorts bool
}

// Packet is the parsed view of one frame. All offsets index the frame passed
// to Parse; nothing in Packet points into it, so a Packet may outlive the
// buffer (the offsets then mean nothing, of course).
type Packet struct {
	// Len is the number of frame bytes that belong to the packet: for IP,
	// the end of the IP packet as its length field says, which trims
	// Ethernet padding (frames shorter than 60 bytes are padded on the wire)
	// and any trailer. For other frames it is len(frame).
	Len int
	// EthDst and EthSrc are the Ethernet destination and source addresses,
	// copied (12 bytes) so that a rewrite of the frame does not change them.
	EthDst, EthSrc [6]byte
	// EtherType is the type after any VLAN tag.
	EtherType uint16
	// Tagged reports one 802.1Q (or 802.1ad) tag; VLAN is its full Tag
	// Control Information (priority, DEI and VLAN ID; see VLANID).
	Tagged bool
	VLAN   uint16
	// L3Off is the offset of the header after Ethernet and VLAN tag (the IP
	// header for IP, the ARP packet for ARP).
	L3Off int
	// L4Off is the offset of the transport header (TCP, UDP, ICMP, ICMPv6),
	// or 0 when there is none to read: not IP, a later fragment, ESP, or a
	// protocol the parser does not decode.
	L4Off int
	// Version is 4 or 6 for IP packets and 0 for everything else.
	Version uint8
	// Src and Dst are the IP addresses. IPv4-mapped IPv6 addresses are kept
	// as they are on the wire (not unmapped).
	Src, Dst netip.Addr
	// Proto is the upper-layer protocol: for IPv6 the Next Header after the
	// extension headers (for a later fragment, the fragment header's Next
	// Header; for ESP, 50).
	Proto uint8
	// TTL is the IPv4 TTL or IPv6 hop limit. It is informational: DSR
	// forwarding is a layer-2 hop and never decrements it.
	TTL uint8
	// Fragment and FragID describe IP fragmentation; FragID is the IPv4
	// Identification or the IPv6 Fragment header's Identification (0 when
	// an IPv6 packet has no Fragment header).
	Fragment Fragment
	FragID   uint32
	// SrcPort and DstPort are the TCP or UDP ports, 0 otherwise.
	SrcPort, DstPort uint16
	// TCPFlags holds the TCP flag byte (FlagSYN, ...); 0 when not TCP.
	TCPFlags uint8
	// ICMPType and ICMPCode are set for ICMP over IPv4 and ICMPv6 over IPv6.
	ICMPType, ICMPCode uint8
	// ICMPError is true when the packet is an ICMP destination unreachable
	// (including fragmentation needed), time exceeded or parameter problem,
	// or an ICMPv6 destination unreachable, packet too big, time exceeded
	// or parameter problem, AND the embedded header parsed into Inner.
	// When the embedded header is unreadable the packet still parses (it is
	// a valid ICMP message), ICMPError is false and Inner is zero.
	ICMPError bool
	Inner     Inner
}

// VLANID returns the 12-bit VLAN identifier of the tag, 0 when untagged.
func (p *Packet) VLANID() uint16 { return p.VLAN & 0x0fff }

// SetMACs rewrites the Ethernet destination and source addresses of frame b
// in place. These are the only bytes L2 DSR changes: the IP header and the
// transport checksum stay valid because they do not cover the Ethernet
// header. A frame shorter than 12 bytes (which Parse rejects) is left as is.
func SetMACs(b []byte, dst, src [6]byte) {
	if len(b) < 12 {
		return
	}
	copy(b[0:6], dst[:])
	copy(b[6:12], src[:])
}

func be16(b []byte) uint16 { return binary.BigEndian.Uint16(b) }
func be32(b []byte) uint32 { return binary.BigEndian.Uint32(b) }

package frame

import "net/netip"

// Neighbour discovery (RFC 4861) message types, option types and
// advertisement flags, for AppendND and for readers of parsed ICMPv6.
const (
	ICMPv6NeighborSolicitation  = 135
	ICMPv6NeighborAdvertisement = 136

	NDOptSourceLLA = 1 // source link-layer address, in a solicitation
	NDOptTargetLLA = 2 // target link-layer address, in an advertisement

	NAFlagRouter    = 0x80
	NAFlagSolicited = 0x40
	NAFlagOverride  = 0x20

	// NDHopLimit is the hop limit every neighbour discovery packet carries,
	// which proves it was not routed.
	NDHopLimit = 255
)

// NDMessage is a Neighbor Solicitation or Advertisement. The zero value is
// not a valid message: set Type.
type NDMessage struct {
	// Type is ICMPv6NeighborSolicitation or ICMPv6NeighborAdvertisement.
	Type uint8
	// Flags are the advertisement's flags (NAFlagSolicited, ...); ignored
	// for a solicitation.
	Flags uint8
	// Target is the address asked about or advertised.
	Target netip.Addr
	// Option, when not 0, appends a link-layer address option of that type
	// (NDOptSourceLLA or NDOptTargetLLA) holding LLA.
	Option uint8
	LLA    [6]byte
}

// AppendND appends a whole Ethernet frame from ethSrc to ethDst carrying m
// in an IPv6 packet from src to dst with hop limit 255, its ICMPv6 checksum
// filled in.
func AppendND(b []byte, ethDst, ethSrc [6]byte, src, dst netip.Addr, m NDMessage) []byte {
	var body [16 + 8]byte
	t := m.Target.As16()
	n := copy(body[:], t[:])
	if m.Option != 0 {
		body[16], body[17] = m.Option, 1 // length in units of 8 bytes
		copy(body[18:], m.LLA[:])
		n += 8
	}
	var rest uint32
	if m.Type == ICMPv6NeighborAdvertisement {
		rest = uint32(m.Flags) << 24
	}
	b = AppendEthernet(b, EthernetHeader{Dst: ethDst, Src: ethSrc, EtherType: EtherTypeIPv6})
	b = AppendIPv6(b, IPv6Header{Src: src, Dst: dst, NextHeader: ProtoICMPv6, HopLimit: NDHopLimit}, ICMPHeaderLen+n)
	return AppendICMPv6(b, src, dst, ICMPHeader{Type: m.Type, Rest: rest}, body[:n])
}

package arp

import (
	"encoding/binary"
	"net/netip"

	"github.com/mdlayher/ethernet"

	"github.com/dsrlb/dsrlb/internal/frame"
)

// Neighbour discovery (RFC 4861) is the IPv6 counterpart of ARP: a Neighbor
// Solicitation (NS) asks who holds a target address, a Neighbor
// Advertisement (NA) answers or announces it. Both are ICMPv6 messages that
// must come from the link itself (hop limit 255), so they are parsed here
// straight from the Ethernet frame, without allocation, like ARP.

// Sizes and protocol numbers of the neighbour discovery packets.
const (
	ipv6HeaderLen  = 40
	ndMinLen       = 24 // ICMPv6 header, flags/reserved and target
	ndOptLLALen    = 8  // a link-layer address option for Ethernet
	protoICMPv6    = 58
	ndHopLimit     = 255
	icmpTypeNS     = 135
	icmpTypeNA     = 136
	ndOptSourceLLA = 1
	ndOptTargetLLA = 2

	// Neighbor Advertisement flags (RFC 4861 section 4.4).
	naRouter    = 0x80
	naSolicited = 0x40
	naOverride  = 0x20
)

// allNodes is ff02::1, where unsolicited advertisements and answers to
// duplicate address detection go.
var allNodes = netip.AddrFrom16([16]byte{0: 0xff, 1: 0x02, 15: 1})

// ndView is a validated Neighbor Solicitation or Advertisement. Like view it
// holds copies, so parsing allocates nothing.
type ndView struct {
	ethDst, ethSrc [6]byte
	src, dst       netip.Addr
	typ            uint8 // icmpTypeNS or icmpTypeNA
	flags          uint8 // NA flags; 0 for NS
	target         netip.Addr
	lla            [6]byte // the source (NS) or target (NA) link-layer address option
	hasLLA         bool
}

// sender is the hardware address the message speaks for: its link-layer
// address option, else the Ethernet source (a unicast NS or NA may omit the
// option, RFC 4861 sections 4.3 and 4.4).
func (v *ndView) sender() [6]byte {
	if v.hasLLA {
		return v.lla
	}
	return v.ethSrc
}

// parseND validates an Ethernet frame carrying an ICMPv6 Neighbor
// Solicitation or Advertisement and fills v. It returns 0 for a message we
// may act on, or the reason to drop it. The checks are those of RFC 4861
// sections 7.1.1 and 7.1.2, plus the ones that keep us from answering or
// believing impossible senders. An ICMPv6 header after IPv6 extension
// headers is not accepted: neighbour discovery never needs them, and the
// kernel filter does not look past them either. It never panics and never
// allocates, whatever b holds.
func parseND(b []byte, v *ndView) DropReason {
	et, off, r := etherHeader(b)
	if r != 0 {
		return r
	}
	if et != ethernet.EtherTypeIPv6 {
		return DropNotND
	}
	copy(v.ethDst[:], b[0:6])
	copy(v.ethSrc[:], b[6:12])
	p := b[off:]
	if len(p) < ipv6HeaderLen {
		return DropMalformed
	}
	if p[0]>>4 != 6 {
		return DropMalformed
	}
	if p[6] != protoICMPv6 {
		return DropNotND
	}
	plen := int(binary.BigEndian.Uint16(p[4:6]))
	if len(p) < ipv6HeaderLen+plen {
		return DropMalformed
	}
	m := p[ipv6HeaderLen : ipv6HeaderLen+plen] // Ethernet padding cut off
	if len(m) < 1 {
		return DropNotND
	}
	v.typ = m[0]
	if v.typ != icmpTypeNS && v.typ != icmpTypeNA {
		return DropNotND
	}
	if p[7] != ndHopLimit {
		return DropHopLimit
	}
	if len(m) < ndMinLen {
		return DropNDLength
	}
	v.src = netip.AddrFrom16([16]byte(p[8:24]))
	v.dst = netip.AddrFrom16([16]byte(p[24:40]))
	if frame.Checksum(m, frame.PseudoHeaderSum(v.src, v.dst, protoICMPv6, len(m))) != 0 {
		return DropChecksum
	}
	if m[1] != 0 {
		return DropICMPCode
	}
	v.target = netip.AddrFrom16([16]byte(m[8:24]))
	if v.target.IsMulticast() {
		return DropTargetAddr
	}
	want := uint8(ndOptSourceLLA)
	v.flags = 0
	if v.typ == icmpTypeNA {
		want = ndOptTargetLLA
		v.flags = m[4]
	}
	v.hasLLA = false
	for opts := m[ndMinLen:]; len(opts) > 0; {
		if len(opts) < 2 || opts[1] == 0 || int(opts[1])*8 > len(opts) {
			return DropNDOption
		}
		n := int(opts[1]) * 8
		if opts[0] == want {
			if n != ndOptLLALen || v.hasLLA {
				return DropNDOption
			}
			copy(v.lla[:], opts[2:8])
			v.hasLLA = true
		}
		opts = opts[n:]
	}
	if !unicastMAC(v.ethSrc) || (v.hasLLA && !unicastMAC(v.lla)) || v.src.IsMulticast() {
		return DropSenderAddr
	}
	switch v.typ {
	case icmpTypeNS:
		if v.src.IsUnspecified() && (!isSolicitedNode(v.dst) || v.hasLLA) {
			return DropDADForm
		}
	case icmpTypeNA:
		if v.src.IsUnspecified() {
			return DropSenderAddr
		}
		if v.dst.IsMulticast() && v.flags&naSolicited != 0 {
			return DropNDFlags
		}
	}
	return 0
}

// isSolicitedNode reports whether a is a solicited-node multicast address,
// ff02::1:ffXX:XXXX.
func isSolicitedNode(a netip.Addr) bool {
	if !a.Is6() {
		return false
	}
	b := a.As16()
	return b[0] == 0xff && b[1] == 0x02 && [9]byte(b[2:11]) == [9]byte{} && b[11] == 1 && b[12] == 0xff
}

// solicitedNode returns the solicited-node multicast address of a (RFC 4291
// section 2.7.1): where a Neighbor Solicitation for a is sent, so that only
// the few hosts listening for addresses ending like a's see it.
func solicitedNode(a netip.Addr) netip.Addr {
	t := a.As16()
	return netip.AddrFrom16([16]byte{0: 0xff, 1: 0x02, 11: 1, 12: 0xff, 13: t[13], 14: t[14], 15: t[15]})
}

// multicastMAC returns the Ethernet group address of an IPv6 multicast
// address (RFC 2464 section 7): 33:33 and its last 32 bits.
func multicastMAC(a netip.Addr) [6]byte {
	b := a.As16()
	return [6]byte{0x33, 0x33, b[12], b[13], b[14], b[15]}
}

// ndMessage builds an Ethernet frame from our MAC carrying an IPv6 packet
// (hop limit 255) with an NS or NA for target. flags are the NA flags; a
// non-zero optType appends a link-layer address option of that type holding
// our MAC. The checksum is computed over the pseudo-header.
func ndMessage(ourMAC, ethDst [6]byte, src, dst netip.Addr, typ, flags uint8, target netip.Addr, optType uint8) []byte {
	b := make([]byte, 0, ethHeaderLen+ipv6HeaderLen+ndMinLen+ndOptLLALen)
	return frame.AppendND(b, ethDst, ourMAC, src, dst, frame.NDMessage{Type: typ, Flags: flags, Target: target, Option: optType, LLA: ourMAC})
}

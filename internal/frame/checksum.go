package frame

import (
	"encoding/binary"
	"math/bits"
	"net/netip"
)

// Checksum returns the Internet checksum (RFC 1071) of b, starting from the
// partial sum initial (0, or PseudoHeaderSum for a transport segment): the
// value to store in a checksum field that was zero while summing. Summed over
// data whose checksum field is already correct, it returns 0, which is how a
// header is verified.
//
// This is the one checksum implementation of the module; every builder in
// this package and every package that writes frames uses it.
func Checksum(b []byte, initial uint32) uint16 {
	return ^fold(sum(b, uint64(initial)))
}

// PseudoHeaderSum returns the folded ones' complement sum of the pseudo-header
// that the TCP, UDP and ICMPv6 checksums cover, for a transport segment of
// length bytes with protocol proto from src to dst: the IPv4 form (RFC 9293,
// RFC 768) when src is an IPv4 address, else the IPv6 form (RFC 8200 section
// 8.1). Pass it as Checksum's initial value. A zero Addr counts as all
// zeros. Stored uncomplemented in the checksum field, it is the "partial"
// checksum an offloading sender leaves for CompleteChecksum.
func PseudoHeaderSum(src, dst netip.Addr, proto uint8, length int) uint32 {
	if src.Is4() {
		s, d := src.As4(), as4(dst)
		return uint32(fold(uint64(binary.BigEndian.Uint32(s[:])) + uint64(binary.BigEndian.Uint32(d[:])) +
			uint64(proto) + uint64(uint32(length))))
	}
	s, d := src.As16(), dst.As16()
	acc := sum(s[:], 0)
	acc = sum(d[:], acc)
	return uint32(fold(addCarry(acc, uint64(uint32(length))+uint64(proto))))
}

// as4 returns the IPv4 form of a, or zeros when a is not an IPv4 (or
// IPv4-mapped) address: builders never panic on a wrong family.
func as4(a netip.Addr) [4]byte {
	if a.Is4() || a.Is4In6() {
		return a.Unmap().As4()
	}
	return [4]byte{}
}

// CompleteChecksum finishes a transport checksum that the sender left to
// offload hardware. A frame marked CHECKSUM_PARTIAL by the Linux kernel
// (TP_STATUS_CSUMNOTREADY on a packet socket, VIRTIO_NET_HDR_F_NEEDS_CSUM
// with a vnet header) carries, in its checksum field, only the sum of the
// pseudo-header; the rest is normally done by the NIC. A frame that is
// forwarded to another host must be completed first or the receiver drops
// it as corrupt.
//
// CompleteChecksum computes the internet checksum (RFC 1071) over b[start:],
// the field at b[start+offset:] included, and stores its complement there.
// start is the offset of the transport header in the frame and offset that
// of the checksum field inside it (16 for TCP, 6 for UDP, 2 for ICMPv6); see
// Packet.ChecksumOffsets. A result of 0 is stored as 0xFFFF, as the kernel
// does, because 0 means "no checksum" to UDP over IPv4 and both encode the
// same ones' complement value.
//
// Pass the frame cut at Packet.Len: Ethernet padding after the IP packet is
// not covered by the checksum. It returns ErrBadChecksumPosition if the field
// is not inside b or offset is odd (every transport checksum field is
// 16-bit aligned within its header, and a misaligned one would be computed
// wrongly rather than rejected by the receiver).
func CompleteChecksum(b []byte, start, offset int) error {
	if start < 0 || offset < 0 || offset&1 != 0 || start > len(b) || offset > len(b)-start-2 {
		return ErrBadChecksumPosition
	}
	c := ^fold(sum(b[start:], 0))
	if c == 0 {
		c = 0xffff
	}
	binary.BigEndian.PutUint16(b[start+offset:], c)
	return nil
}

// ChecksumOffsets returns the start and offset arguments CompleteChecksum
// needs for the parsed packet's transport checksum. ok is false when the
// packet has no transport header with a checksum the parser knows (not
// TCP, UDP, ICMP or ICMPv6, or a fragment).
func (p *Packet) ChecksumOffsets() (start, offset int, ok bool) {
	if p.L4Off == 0 || p.Fragment != NotFragment {
		return 0, 0, false
	}
	switch p.Proto {
	case ProtoTCP:
		return p.L4Off, 16, true
	case ProtoUDP:
		return p.L4Off, 6, true
	case ProtoICMP, ProtoICMPv6:
		return p.L4Off, 2, true
	}
	return 0, 0, false
}

// TransportChecksumOK verifies the TCP, UDP, ICMP or ICMPv6 checksum of the
// packet p that Parse produced from b, including the IPv4 or IPv6
// pseudo-header. It is meant for tests and diagnostic tools; the forwarding
// path never verifies checksums (the receiving server does).
//
// It returns false for fragments, for other protocols and when p does not
// fit b. A UDP over IPv4 checksum of 0 (none sent) is OK. For IPv6 with a
// Routing header the pseudo-header would need the final destination; that
// case is not handled and reports false unless the addresses agree.
func TransportChecksumOK(b []byte, p *Packet) bool {
	if p.L4Off == 0 || p.Fragment != NotFragment || p.Len > len(b) || p.L4Off > p.Len {
		return false
	}
	seg := b[p.L4Off:p.Len]
	var acc uint64
	switch {
	case p.Proto == ProtoICMP && p.Version == 4:
		// ICMPv4 has no pseudo-header.
	case p.Proto == ProtoTCP || p.Proto == ProtoUDP || (p.Proto == ProtoICMPv6 && p.Version == 6):
		if p.Proto == ProtoUDP && p.Version == 4 && len(seg) >= 8 && seg[6] == 0 && seg[7] == 0 {
			return true
		}
		acc = uint64(PseudoHeaderSum(p.Src, p.Dst, p.Proto, len(seg)))
	default:
		return false
	}
	return fold(sum(seg, acc)) == 0xffff
}

// IPv4HeaderChecksumOK verifies the IPv4 header checksum of the packet p that
// Parse produced from b. It returns false for packets that are not IPv4 and
// when p does not fit b. Like TransportChecksumOK it is for diagnostic and
// control-plane readers (health probes); forwarding never verifies.
func IPv4HeaderChecksumOK(b []byte, p *Packet) bool {
	if p.Version != 4 || p.L3Off+20 > len(b) {
		return false
	}
	ihl := int(b[p.L3Off]&0x0f) << 2
	if ihl < 20 || p.L3Off+ihl > len(b) {
		return false
	}
	return Checksum(b[p.L3Off:p.L3Off+ihl], 0) == 0
}

func addCarry(a, b uint64) uint64 {
	s, c := bits.Add64(a, b, 0)
	return s + c // cannot overflow: if the add wrapped, s < b
}

// sum adds b as a sequence of big-endian 16-bit words to the ones'
// complement accumulator acc (an odd last byte is padded with zero). It adds
// 64-bit words with end-around carry, which is the same sum modulo 0xFFFF
// (RFC 1071) and four times fewer additions.
func sum(b []byte, acc uint64) uint64 {
	var c uint64
	for len(b) >= 32 {
		acc, c = bits.Add64(acc, binary.BigEndian.Uint64(b[0:8]), c)
		acc, c = bits.Add64(acc, binary.BigEndian.Uint64(b[8:16]), c)
		acc, c = bits.Add64(acc, binary.BigEndian.Uint64(b[16:24]), c)
		acc, c = bits.Add64(acc, binary.BigEndian.Uint64(b[24:32]), c)
		b = b[32:]
	}
	for len(b) >= 8 {
		acc, c = bits.Add64(acc, binary.BigEndian.Uint64(b[0:8]), c)
		b = b[8:]
	}
	if len(b) >= 4 {
		acc, c = bits.Add64(acc, uint64(binary.BigEndian.Uint32(b[0:4])), c)
		b = b[4:]
	}
	if len(b) >= 2 {
		acc, c = bits.Add64(acc, uint64(binary.BigEndian.Uint16(b[0:2])), c)
		b = b[2:]
	}
	if len(b) == 1 {
		acc, c = bits.Add64(acc, uint64(b[0])<<8, c)
	}
	return addCarry(acc, c)
}

// fold reduces a ones' complement accumulator to 16 bits.
func fold(acc uint64) uint16 {
	for acc>>16 != 0 {
		acc = acc>>16 + acc&0xffff
	}
	return uint16(acc)
}

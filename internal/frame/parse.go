package frame

import "net/netip"

// Parse fills p from the Ethernet frame b. Every field of p is reset first,
// so one Packet can be reused for every frame of a batch. Parse keeps no
// reference to b and allocates nothing.
//
// Frames that are not IPv4 or IPv6 (ARP, LLDP, ...) are not an error: they
// parse with Version 0, EtherType set and L3Off pointing after the Ethernet
// header and VLAN tag. One VLAN tag (0x8100 or 0x88A8) is understood; a
// second tag shows up as EtherType 0x8100 with Version 0.
//
// Length fields are honoured: bytes after the end of the IP packet (Ethernet
// padding of short frames) are not part of it, and Packet.Len marks its end.
// An IP length of 0 is accepted when the frame carries more than the IP
// header, and then the packet extends to the end of the frame: a local
// sender using TCP segmentation offload hands a packet socket a GSO
// super-frame larger than 64 KiB whose IPv4 total length the kernel leaves at
// 0, and IPv6 jumbograms and large GSO frames carry payload length 0 too.
//
// For ICMP and ICMPv6 errors Parse also decodes the embedded header (the
// packet the error is about) into p.Inner; see Packet.ICMPError.
//
// On error p holds whatever was parsed before the fault and must not be
// trusted beyond the Ethernet fields.
func Parse(b []byte, p *Packet) error {
	*p = Packet{}
	if len(b) < 14 {
		return ErrTruncated
	}
	p.Len = len(b)
	p.EthDst = [6]byte(b[0:6])
	p.EthSrc = [6]byte(b[6:12])
	et := be16(b[12:14])
	off := 14
	if et == EtherTypeVLAN || et == EtherTypeQinQ {
		if len(b) < 18 {
			return ErrTruncated
		}
		p.Tagged = true
		p.VLAN = be16(b[14:16])
		et = be16(b[16:18])
		off = 18
	}
	p.EtherType = et
	p.L3Off = off
	var e Error
	switch et {
	case EtherTypeIPv4:
		e = parseIPv4(b, off, p)
	case EtherTypeIPv6:
		e = parseIPv6(b, off, p)
	}
	if e != 0 {
		return e
	}
	return nil
}

func parseIPv4(b []byte, off int, p *Packet) Error {
	h := b[off:]
	if len(h) < 20 {
		return ErrTruncated
	}
	if h[0]>>4 != 4 {
		return ErrBadIPv4Header
	}
	ihl := int(h[0]&0x0f) << 2
	if ihl < 20 {
		return ErrBadIPv4Header
	}
	if ihl > len(h) {
		return ErrTruncated
	}
	total := int(be16(h[2:4]))
	fromFrame := false
	if total == 0 && len(h) > ihl {
		// GSO super-frame: the length does not fit in 16 bits, or the
		// kernel did not fill it in; the frame itself is the packet.
		total = len(h)
		fromFrame = true
	}
	if total < ihl {
		return ErrBadIPv4Header
	}
	if total > len(h) {
		return ErrTruncated
	}
	h = h[:total]
	p.Len = off + total
	p.Version = 4
	p.TTL = h[8]
	p.Proto = h[9]
	p.FragID = uint32(be16(h[4:6]))
	if ff := be16(h[6:8]); ff&0x1fff != 0 {
		p.Fragment = LaterFragment
	} else if ff&0x2000 != 0 {
		p.Fragment = FirstFragment
	}
	p.Src = netip.AddrFrom4([4]byte(h[12:16]))
	p.Dst = netip.AddrFrom4([4]byte(h[16:20]))
	if p.Fragment == LaterFragment {
		return 0
	}
	return parseTransport(b[:p.Len], off+ihl, p, fromFrame)
}

func parseIPv6(b []byte, off int, p *Packet) Error {
	h := b[off:]
	if len(h) < 40 {
		return ErrTruncated
	}
	if h[0]>>4 != 6 {
		return ErrBadIPv6Header
	}
	end := off + 40 + int(be16(h[4:6]))
	fromFrame := false
	if end == off+40 && len(b) > end {
		// Payload length 0 with bytes following: a jumbogram (RFC 2675)
		// or a GSO super-frame. The frame is the packet.
		end = len(b)
		fromFrame = true
	}
	if end > len(b) {
		return ErrTruncated
	}
	b = b[:end]
	p.Len = end
	p.Version = 6
	p.TTL = h[7]
	p.Src = netip.AddrFrom16([16]byte(h[8:24]))
	p.Dst = netip.AddrFrom16([16]byte(h[24:40]))
	proto, l4, frag, id, e := walkIPv6(b, off+40, h[6])
	if e != 0 {
		return e
	}
	p.Proto = proto
	p.Fragment = frag
	p.FragID = id
	if l4 == 0 {
		return 0
	}
	return parseTransport(b, l4, p, fromFrame)
}

// walkIPv6 follows the IPv6 extension header chain in b starting at pos with
// Next Header next. It returns the upper-layer protocol and its offset, or
// offset 0 when no upper-layer header follows (later fragment, ESP, No Next
// Header). A header running past b is ErrBadIPv6Header: b ends where the
// IPv6 payload length says.
func walkIPv6(b []byte, pos int, next uint8) (proto uint8, l4 int, frag Fragment, id uint32, e Error) {
	for n := 0; ; n++ {
		switch next {
		case protoHopByHop, protoRouting, protoDstOpts, protoFragment, protoAH:
		case protoESP, protoNoNext:
			return next, 0, frag, id, 0
		default:
			return next, pos, frag, id, 0
		}
		if n == MaxExtensionHeaders {
			return next, 0, frag, id, ErrTooManyExtensionHeaders
		}
		if pos > len(b)-8 {
			return next, 0, frag, id, ErrBadIPv6Header
		}
		h := b[pos:]
		var hl int
		switch next {
		case protoFragment:
			hl = 8
			fo := be16(h[2:4])
			id = be32(h[4:8])
			if fo>>3 != 0 {
				frag = LaterFragment
			} else if fo&1 != 0 {
				frag = FirstFragment
			}
		case protoAH:
			hl = (int(h[1]) + 2) << 2 // 4-octet units, minus 2
		default:
			hl = (int(h[1]) + 1) << 3 // 8-octet units, not counting the first 8
		}
		if hl > len(h) {
			return next, 0, frag, id, ErrBadIPv6Header
		}
		next = h[0]
		pos += hl
		if frag == LaterFragment {
			// What follows is the middle of the fragmentable part.
			return next, 0, frag, id, 0
		}
	}
}

// parseTransport decodes the transport header at b[l4:]; b ends with the IP
// packet. fromFrame says the IP length came from the frame size (GSO,
// jumbogram), in which case the UDP length may be 0 or disagree.
func parseTransport(b []byte, l4 int, p *Packet, fromFrame bool) Error {
	t := b[l4:]
	switch p.Proto {
	case ProtoTCP:
		if len(t) < 20 {
			return ErrBadTransportHeader
		}
		doff := int(t[12]>>4) << 2
		if doff < 20 || doff > len(t) {
			return ErrBadTransportHeader
		}
		p.SrcPort = be16(t[0:2])
		p.DstPort = be16(t[2:4])
		p.TCPFlags = t[13]
	case ProtoUDP:
		if len(t) < 8 {
			return ErrBadTransportHeader
		}
		if !fromFrame {
			ul := int(be16(t[4:6]))
			// A first fragment holds only the start of the datagram,
			// so its UDP length may exceed what is here.
			if ul < 8 || (ul > len(t) && p.Fragment == NotFragment) {
				return ErrBadTransportHeader
			}
		}
		p.SrcPort = be16(t[0:2])
		p.DstPort = be16(t[2:4])
	case ProtoICMP, ProtoICMPv6:
		if (p.Proto == ProtoICMP) != (p.Version == 4) {
			// ICMPv4 in IPv6 or ICMPv6 in IPv4: not a message anyone
			// acts on; leave it undecoded.
			return 0
		}
		if len(t) < 8 {
			return ErrBadTransportHeader
		}
		p.ICMPType = t[0]
		p.ICMPCode = t[1]
		if isICMPError(p.Version, t[0]) {
			p.ICMPError = parseInner(t[8:], p.Version, &p.Inner)
		}
	default:
		return 0
	}
	p.L4Off = l4
	return 0
}

func isICMPError(version, typ uint8) bool {
	if version == 4 {
		return typ == ICMPv4DestUnreachable || typ == ICMPv4TimeExceeded || typ == ICMPv4ParameterProblem
	}
	return typ >= ICMPv6DestUnreachable && typ <= ICMPv6ParamProblem
}

// parseInner decodes the IP header quoted by an ICMP error, which must be of
// the same IP version as the error itself. The quote is usually truncated
// (RFC 792 guarantees only 8 bytes past the IP header), so the embedded
// length fields are not checked against it. On failure in is left zero.
func parseInner(b []byte, version uint8, in *Inner) bool {
	var r Inner
	var t []byte
	if version == 4 {
		if len(b) < 20 || b[0]>>4 != 4 {
			return false
		}
		ihl := int(b[0]&0x0f) << 2
		if ihl < 20 || ihl > len(b) {
			return false
		}
		r.Proto = b[9]
		r.Src = netip.AddrFrom4([4]byte(b[12:16]))
		r.Dst = netip.AddrFrom4([4]byte(b[16:20]))
		if be16(b[6:8])&0x1fff == 0 {
			t = b[ihl:]
		}
	} else {
		if len(b) < 40 || b[0]>>4 != 6 {
			return false
		}
		proto, l4, _, _, e := walkIPv6(b, 40, b[6])
		if e != 0 {
			return false
		}
		r.Proto = proto
		r.Src = netip.AddrFrom16([16]byte(b[8:24]))
		r.Dst = netip.AddrFrom16([16]byte(b[24:40]))
		if l4 != 0 {
			t = b[l4:]
		}
	}
	if (r.Proto == ProtoTCP || r.Proto == ProtoUDP) && len(t) >= 4 {
		r.SrcPort = be16(t[0:2])
		r.DstPort = be16(t[2:4])
		r.HasPorts = true
	}
	*in = r
	return true
}

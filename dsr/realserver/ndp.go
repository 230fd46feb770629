package realserver

import (
	"net"
	"net/netip"
)

// Neighbour discovery (RFC 4861) messages for the probe, as ICMPv6 bodies:
// the kernel adds the IPv6 header and the checksum on a raw ICMPv6 socket.
const (
	icmpNS         = 135
	icmpNA         = 136
	ndOptSourceLL  = 1
	ndOptTargetLL  = 2
	ndHeaderLen    = 24 // type, code, checksum, flags/reserved, target
	ndOptLLLen     = 8  // type, length (in 8-byte units), 6-byte MAC
	ndpRequiredHop = 255
)

// solicitedNode returns the solicited-node multicast group of ip
// (ff02::1:ffXX:XXXX), where a neighbour solicitation for ip is sent.
func solicitedNode(ip netip.Addr) netip.Addr {
	a := ip.As16()
	return netip.AddrFrom16([16]byte{0xff, 0x02, 11: 0x01, 12: 0xff, 13: a[13], 14: a[14], 15: a[15]})
}

// buildNS returns a neighbour solicitation for target carrying mac as the
// source link-layer address, so the owner can answer without asking back.
func buildNS(target netip.Addr, mac net.HardwareAddr) []byte {
	b := make([]byte, ndHeaderLen+ndOptLLLen)
	b[0] = icmpNS
	t := target.As16()
	copy(b[8:24], t[:])
	b[24], b[25] = ndOptSourceLL, 1
	copy(b[26:32], mac)
	return b
}

// parseNA reads a neighbour advertisement (an ICMPv6 body) and returns its
// target and the target link-layer address it announces. ok is false for
// anything else, anything malformed, and advertisements without the option:
// RFC 4861 §7.2.4 requires it in answers to multicast solicitations, which
// the probe sends. It never panics.
func parseNA(b []byte) (target netip.Addr, mac net.HardwareAddr, ok bool) {
	if len(b) < ndHeaderLen || b[0] != icmpNA || b[1] != 0 {
		return netip.Addr{}, nil, false
	}
	target = netip.AddrFrom16([16]byte(b[8:24]))
	if target.IsMulticast() {
		return netip.Addr{}, nil, false // §7.1.2: invalid
	}
	for opts := b[ndHeaderLen:]; len(opts) > 0; {
		if len(opts) < 2 || opts[1] == 0 || int(opts[1])*8 > len(opts) {
			return netip.Addr{}, nil, false // §7.1.2: bad option length
		}
		n := int(opts[1]) * 8
		if opts[0] == ndOptTargetLL && n >= ndOptLLLen && mac == nil {
			mac = net.HardwareAddr(append([]byte(nil), opts[2:8]...))
		}
		opts = opts[n:]
	}
	if mac == nil {
		return netip.Addr{}, nil, false
	}
	return target.Unmap(), mac, true
}

package health

import (
	"encoding/binary"
	"errors"
	"net"
	"net/netip"
)

// The DSR-path probe builds and parses its few frames itself: it needs only
// Ethernet + IPv4 + TCP, and keeping this private keeps the health package
// independent of the forwarding code's frame library.

const (
	ethHdrLen  = 14
	ipv4HdrLen = 20
	tcpHdrLen  = 20
	etherIPv4  = 0x0800
	etherARP   = 0x0806

	tcpFIN = 0x01
	tcpSYN = 0x02
	tcpRST = 0x04
	tcpACK = 0x10
)

// probe describes one DSR-path probe's TCP flow, from the balancer's side.
type probe struct {
	srcMAC, dstMAC net.HardwareAddr
	src, dst       netip.Addr // probe source, VIP
	sport, dport   uint16
	seq            uint32 // our initial sequence number
	ipID           uint16
}

// appendSYN appends the probe's SYN frame (with an MSS option) to b.
func (p *probe) appendSYN(b []byte) []byte {
	return p.appendTCP(b, tcpSYN, p.seq, 0, []byte{2, 4, 0x05, 0xb4}) // MSS 1460
}

// appendRST appends the RST that aborts the server's half-open connection:
// its sequence number is the one the server expects next (our ISN + 1),
// so the server accepts it (RFC 5961 in-window check).
func (p *probe) appendRST(b []byte) []byte {
	return p.appendTCP(b, tcpRST, p.seq+1, 0, nil)
}

func (p *probe) appendTCP(b []byte, flags uint8, seq, ack uint32, opts []byte) []byte {
	tcpLen := tcpHdrLen + len(opts)
	total := ipv4HdrLen + tcpLen
	start := len(b)
	b = append(b, make([]byte, ethHdrLen+total)...)
	f := b[start:]
	copy(f[0:6], p.dstMAC)
	copy(f[6:12], p.srcMAC)
	binary.BigEndian.PutUint16(f[12:], etherIPv4)

	ip := f[ethHdrLen:]
	ip[0] = 0x45
	binary.BigEndian.PutUint16(ip[2:], uint16(total))
	binary.BigEndian.PutUint16(ip[4:], p.ipID)
	binary.BigEndian.PutUint16(ip[6:], 0x4000) // DF
	ip[8] = 64
	ip[9] = 6
	s4, d4 := p.src.As4(), p.dst.As4()
	copy(ip[12:16], s4[:])
	copy(ip[16:20], d4[:])
	binary.BigEndian.PutUint16(ip[10:], ^fold(sum(0, ip[:ipv4HdrLen])))

	tcp := ip[ipv4HdrLen:]
	binary.BigEndian.PutUint16(tcp[0:], p.sport)
	binary.BigEndian.PutUint16(tcp[2:], p.dport)
	binary.BigEndian.PutUint32(tcp[4:], seq)
	binary.BigEndian.PutUint32(tcp[8:], ack)
	tcp[12] = uint8(tcpLen/4) << 4
	tcp[13] = flags
	binary.BigEndian.PutUint16(tcp[14:], 64240)
	copy(tcp[tcpHdrLen:], opts)
	binary.BigEndian.PutUint16(tcp[16:], ^fold(pseudoSum(ip[12:16], ip[16:20], tcpLen)+sum(0, tcp[:tcpLen])))
	return b
}

// sum adds b as big-endian 16-bit words to acc (one's complement, unfolded).
func sum(acc uint32, b []byte) uint32 {
	for len(b) >= 2 {
		acc += uint32(binary.BigEndian.Uint16(b))
		b = b[2:]
	}
	if len(b) == 1 {
		acc += uint32(b[0]) << 8
	}
	return acc
}

func pseudoSum(src, dst []byte, l4len int) uint32 {
	return sum(sum(0, src), dst) + 6 + uint32(l4len)
}

func fold(acc uint32) uint16 {
	for acc > 0xffff {
		acc = acc>>16 + acc&0xffff
	}
	return uint16(acc)
}

// segment is what the probe needs to know about a received TCP/IPv4 frame.
type segment struct {
	src, dst     netip.Addr
	sport, dport uint16
	seq, ack     uint32
	flags        uint8
}

// arpRequest is a received ARP request for IPv4 over Ethernet.
type arpRequest struct {
	senderMAC net.HardwareAddr // aliases the frame
	senderIP  netip.Addr
	targetIP  netip.Addr
}

var (
	errShort     = errors.New("frame too short")
	errNotTCP4   = errors.New("not TCP over IPv4")
	errBadHeader = errors.New("malformed header")
	errChecksum  = errors.New("bad checksum")
	errNotARPReq = errors.New("not an IPv4-over-Ethernet ARP request")
)

// parseSegment parses an Ethernet frame carrying TCP over IPv4. It verifies
// the IPv4 header checksum but not the TCP checksum: frames a packet socket
// receives on veth may carry a partial (offloaded) TCP checksum, and the
// probe matches on addresses, ports and acknowledgment number anyway.
func parseSegment(f []byte) (segment, error) {
	var s segment
	if len(f) < ethHdrLen+ipv4HdrLen+tcpHdrLen {
		return s, errShort
	}
	if binary.BigEndian.Uint16(f[12:]) != etherIPv4 {
		return s, errNotTCP4
	}
	ip := f[ethHdrLen:]
	if ip[0]>>4 != 4 {
		return s, errNotTCP4
	}
	ihl := int(ip[0]&0x0f) * 4
	total := int(binary.BigEndian.Uint16(ip[2:]))
	if ihl < ipv4HdrLen || total < ihl || total > len(ip) {
		return s, errBadHeader
	}
	if ip[9] != 6 {
		return s, errNotTCP4
	}
	if binary.BigEndian.Uint16(ip[6:])&0x3fff != 0 { // fragment
		return s, errNotTCP4
	}
	if fold(sum(0, ip[:ihl])) != 0xffff {
		return s, errChecksum
	}
	tcp := ip[ihl:total]
	if len(tcp) < tcpHdrLen || int(tcp[12]>>4)*4 < tcpHdrLen || int(tcp[12]>>4)*4 > len(tcp) {
		return s, errBadHeader
	}
	s.src = netip.AddrFrom4([4]byte(ip[12:16]))
	s.dst = netip.AddrFrom4([4]byte(ip[16:20]))
	s.sport = binary.BigEndian.Uint16(tcp[0:])
	s.dport = binary.BigEndian.Uint16(tcp[2:])
	s.seq = binary.BigEndian.Uint32(tcp[4:])
	s.ack = binary.BigEndian.Uint32(tcp[8:])
	s.flags = tcp[13]
	return s, nil
}

// parseARPRequest parses an Ethernet frame carrying an ARP request for an
// IPv4 address.
func parseARPRequest(f []byte) (arpRequest, error) {
	var r arpRequest
	if len(f) < ethHdrLen+28 {
		return r, errShort
	}
	if binary.BigEndian.Uint16(f[12:]) != etherARP {
		return r, errNotARPReq
	}
	a := f[ethHdrLen:]
	if binary.BigEndian.Uint16(a[0:]) != 1 || binary.BigEndian.Uint16(a[2:]) != etherIPv4 ||
		a[4] != 6 || a[5] != 4 || binary.BigEndian.Uint16(a[6:]) != 1 {
		return r, errNotARPReq
	}
	r.senderMAC = net.HardwareAddr(a[8:14])
	r.senderIP = netip.AddrFrom4([4]byte(a[14:18]))
	r.targetIP = netip.AddrFrom4([4]byte(a[24:28]))
	return r, nil
}

// appendARPReply appends the reply to req claiming ip at mac.
func appendARPReply(b []byte, req arpRequest, ip netip.Addr, mac net.HardwareAddr) []byte {
	start := len(b)
	b = append(b, make([]byte, ethHdrLen+28)...)
	f := b[start:]
	copy(f[0:6], req.senderMAC)
	copy(f[6:12], mac)
	binary.BigEndian.PutUint16(f[12:], etherARP)
	a := f[ethHdrLen:]
	binary.BigEndian.PutUint16(a[0:], 1)
	binary.BigEndian.PutUint16(a[2:], etherIPv4)
	a[4], a[5] = 6, 4
	binary.BigEndian.PutUint16(a[6:], 2)
	copy(a[8:14], mac)
	ip4, s4 := ip.As4(), req.senderIP.As4()
	copy(a[14:18], ip4[:])
	copy(a[18:24], req.senderMAC)
	copy(a[24:28], s4[:])
	return b
}

package health

import (
	"encoding/binary"
	"errors"
	"net"
	"net/netip"

	"github.com/dsrlb/dsrlb/internal/frame"
)

// The DSR-path probe writes and reads its few frames with internal/frame,
// the module's one codec: the SYN and RST it sends (IPv4 or IPv6), the
// SYN-ACK or RST it waits for, and, when its source address is not the
// host's, the ARP replies and neighbour advertisements that let the backend
// reach that address.

// MSS options of the probe's SYN: what a 1500-byte Ethernet MTU leaves after
// the IPv4 or IPv6 and TCP headers.
var (
	mss4 = []byte{2, 4, 0x05, 0xb4} // 1460
	mss6 = []byte{2, 4, 0x05, 0xa0} // 1440
)

// probe describes one DSR-path probe's TCP flow, from the balancer's side.
// src and dst are of the same family, which decides the frames' IP version.
type probe struct {
	srcMAC, dstMAC [6]byte
	src, dst       netip.Addr // probe source, VIP
	sport, dport   uint16
	seq            uint32 // our initial sequence number
	ipID           uint16
	tun            Tunnel // L3 DSR: the encapsulation; zero for L2
	vlan           uint16 // the backend's VLAN: the frames are tagged unless 0
}

// appendSYN appends the probe's SYN frame (with an MSS option) to b.
func (p *probe) appendSYN(b []byte) []byte {
	if p.dst.Is4() {
		return p.appendTCP(b, frame.FlagSYN, p.seq, mss4)
	}
	return p.appendTCP(b, frame.FlagSYN, p.seq, mss6)
}

// appendRST appends the RST that aborts the server's half-open connection:
// its sequence number is the one the server expects next (our ISN + 1),
// so the server accepts it (RFC 5961 in-window check).
func (p *probe) appendRST(b []byte) []byte {
	return p.appendTCP(b, frame.FlagRST, p.seq+1, nil)
}

func (p *probe) appendTCP(b []byte, flags uint8, seq uint32, opts []byte) []byte {
	l3 := len(b) + frame.EthernetHeaderLen // where the IP header starts
	if p.vlan != 0 {
		l3 += frame.VLANTagLen
	}
	return p.tun.encapsulate(p.appendBareTCP(b, flags, seq, opts), l3, p.sport)
}

func (p *probe) appendBareTCP(b []byte, flags uint8, seq uint32, opts []byte) []byte {
	tcp := frame.TCPHeader{SrcPort: p.sport, DstPort: p.dport, Seq: seq, Flags: flags, Window: 64240, Options: opts}
	eth := frame.EthernetHeader{Dst: p.dstMAC, Src: p.srcMAC, EtherType: frame.EtherTypeIPv4, Tagged: p.vlan != 0, VLAN: p.vlan}
	if p.dst.Is4() {
		b = frame.AppendEthernet(b, eth)
		b = frame.AppendIPv4(b, frame.IPv4Header{Src: p.src, Dst: p.dst, Proto: frame.ProtoTCP, ID: p.ipID, DontFragment: true}, tcp.Len())
	} else {
		eth.EtherType = frame.EtherTypeIPv6
		b = frame.AppendEthernet(b, eth)
		b = frame.AppendIPv6(b, frame.IPv6Header{Src: p.src, Dst: p.dst, NextHeader: frame.ProtoTCP}, tcp.Len())
	}
	return frame.AppendTCP(b, p.src, p.dst, tcp, nil)
}

// segment is what the probe needs to know about a received TCP segment.
type segment struct {
	src, dst     netip.Addr
	sport, dport uint16
	seq, ack     uint32
	flags        uint8
}

var (
	errNotTCP   = errors.New("not a whole TCP segment over IPv4 or IPv6")
	errChecksum = errors.New("bad IPv4 header checksum")
	errNotNS    = errors.New("not a neighbour solicitation")
)

// parseSegment reads the TCP segment of an Ethernet frame carrying TCP over
// IPv4 or IPv6, parsed with frame.Parse. It verifies the IPv4 header
// checksum but not the TCP checksum: frames a packet socket receives on veth
// may carry a partial (offloaded) TCP checksum, and the probe matches on
// addresses, ports and acknowledgment number anyway. Malformed frames return
// the frame.Error reason.
func parseSegment(f []byte) (segment, error) {
	var p frame.Packet
	if err := frame.Parse(f, &p); err != nil {
		return segment{}, err
	}
	if p.Version == 0 || p.Proto != frame.ProtoTCP || p.L4Off == 0 || p.Fragment != frame.NotFragment {
		return segment{}, errNotTCP
	}
	if p.Version == 4 && !frame.IPv4HeaderChecksumOK(f, &p) {
		return segment{}, errChecksum
	}
	tcp := f[p.L4Off:] // Parse checked that a whole TCP header is there
	return segment{
		src: p.Src, dst: p.Dst, sport: p.SrcPort, dport: p.DstPort,
		seq: binary.BigEndian.Uint32(tcp[4:]), ack: binary.BigEndian.Uint32(tcp[8:]), flags: p.TCPFlags,
	}, nil
}

// arpRequest is a received ARP request for IPv4 over Ethernet.
type arpRequest struct {
	senderMAC [6]byte
	senderIP  netip.Addr
	targetIP  netip.Addr
}

var (
	errShort     = errors.New("frame too short")
	errNotARPReq = errors.New("not an IPv4-over-Ethernet ARP request")
)

// parseARPRequest parses an Ethernet frame carrying an ARP request for an
// IPv4 address.
func parseARPRequest(f []byte) (arpRequest, error) {
	var r arpRequest
	var p frame.Packet
	if err := frame.Parse(f, &p); err != nil {
		return r, errShort
	}
	if p.EtherType != frame.EtherTypeARP {
		return r, errNotARPReq
	}
	a := f[p.L3Off:]
	if len(a) < 28 {
		return r, errShort
	}
	if binary.BigEndian.Uint16(a[0:]) != 1 || binary.BigEndian.Uint16(a[2:]) != frame.EtherTypeIPv4 ||
		a[4] != 6 || a[5] != 4 || binary.BigEndian.Uint16(a[6:]) != 1 {
		return r, errNotARPReq
	}
	r.senderMAC = [6]byte(a[8:14])
	r.senderIP = netip.AddrFrom4([4]byte(a[14:18]))
	r.targetIP = netip.AddrFrom4([4]byte(a[24:28]))
	return r, nil
}

// appendARPReply appends the reply to req claiming ip at mac.
func appendARPReply(b []byte, req arpRequest, ip netip.Addr, mac [6]byte) []byte {
	b = frame.AppendEthernet(b, frame.EthernetHeader{Dst: req.senderMAC, Src: mac, EtherType: frame.EtherTypeARP})
	b = binary.BigEndian.AppendUint16(b, 1) // Ethernet
	b = binary.BigEndian.AppendUint16(b, frame.EtherTypeIPv4)
	b = append(b, 6, 4)
	b = binary.BigEndian.AppendUint16(b, 2) // reply
	ip4, s4 := ip.As4(), req.senderIP.As4()
	b = append(b, mac[:]...)
	b = append(b, ip4[:]...)
	b = append(b, req.senderMAC[:]...)
	return append(b, s4[:]...)
}

// neighborSolicitation is a received Neighbor Solicitation: the IPv6
// counterpart of an ARP request.
type neighborSolicitation struct {
	senderMAC [6]byte    // its source link-layer address option, else the Ethernet source
	src       netip.Addr // :: for duplicate address detection
	target    netip.Addr
}

// allNodes is ff02::1, where the answer to a duplicate address detection
// probe goes, and its Ethernet group.
var (
	allNodes    = netip.AddrFrom16([16]byte{0: 0xff, 1: 0x02, 15: 1})
	allNodesMAC = [6]byte{0x33, 0x33, 0, 0, 0, 1}
)

// parseNeighborSolicitation parses an Ethernet frame carrying an ICMPv6
// Neighbor Solicitation: hop limit 255, code 0, a valid checksum and a
// unicast target (RFC 4861 section 7.1.1).
func parseNeighborSolicitation(f []byte) (neighborSolicitation, error) {
	var ns neighborSolicitation
	var p frame.Packet
	if err := frame.Parse(f, &p); err != nil {
		return ns, err
	}
	if p.Version != 6 || p.Proto != frame.ProtoICMPv6 || p.L4Off == 0 || p.ICMPType != frame.ICMPv6NeighborSolicitation ||
		p.ICMPCode != 0 || p.TTL != frame.NDHopLimit || p.Len-p.L4Off < 24 || !frame.TransportChecksumOK(f, &p) {
		return ns, errNotNS
	}
	m := f[p.L4Off:p.Len]
	ns.target = netip.AddrFrom16([16]byte(m[8:24]))
	if ns.target.IsMulticast() {
		return ns, errNotNS
	}
	ns.src = p.Src
	ns.senderMAC = p.EthSrc
	for opts := m[24:]; len(opts) >= 8; {
		n := int(opts[1]) * 8
		if n == 0 || n > len(opts) {
			return ns, errNotNS
		}
		if opts[0] == frame.NDOptSourceLLA && n == 8 {
			ns.senderMAC = [6]byte(opts[2:8])
		}
		opts = opts[n:]
	}
	return ns, nil
}

// appendNeighborAdvertisement appends the answer to ns claiming its target at
// mac: solicited and overriding to the solicitor, or, for duplicate address
// detection (source ::), unsolicited to all nodes (RFC 4861 section 7.2.4).
func appendNeighborAdvertisement(b []byte, ns neighborSolicitation, mac [6]byte) []byte {
	dst, ethDst, flags := ns.src, ns.senderMAC, uint8(frame.NAFlagSolicited|frame.NAFlagOverride)
	if ns.src.IsUnspecified() {
		dst, ethDst, flags = allNodes, allNodesMAC, frame.NAFlagOverride
	}
	return frame.AppendND(b, ethDst, mac, ns.target, dst, frame.NDMessage{
		Type: frame.ICMPv6NeighborAdvertisement, Flags: flags, Target: ns.target, Option: frame.NDOptTargetLLA, LLA: mac,
	})
}

// solicitedNodeMAC returns the Ethernet group of a's solicited-node
// multicast address (RFC 4291 section 2.7.1, RFC 2464 section 7): where
// neighbours send their solicitations for a.
func solicitedNodeMAC(a netip.Addr) net.HardwareAddr {
	b := a.As16()
	return net.HardwareAddr{0x33, 0x33, 0xff, b[13], b[14], b[15]}
}

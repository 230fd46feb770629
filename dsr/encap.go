package dsr

import (
	"encoding/binary"
	"fmt"
	"net"
	"net/netip"
	"strings"

	"github.com/dsrlb/dsrlb/health"
	"github.com/dsrlb/dsrlb/internal/flowtable"
	"github.com/dsrlb/dsrlb/internal/frame"
)

// L3 DSR. A backend in another subnet cannot be reached by rewriting MACs:
// the balancer wraps the client's unchanged IP packet in an outer IP header
// (ModeIPIP) or in outer IP + UDP + GUE headers (ModeGUE) addressed from the
// balancer's own address (Service.TunnelSource) to the backend's, and sends
// it to the next hop (Service.Gateway, or the backend when it is on the
// segment). The backend strips the outer headers (see dsr/realserver) and
// answers the client directly from the VIP.
//
// The encapsulated packet is larger than the client's by the outer headers,
// so a full-size client packet no longer fits the MTU. The balancer then
// answers the client with ICMP "fragmentation needed" (IPv4 with DF) or
// ICMPv6 "packet too big" from the VIP, naming the MTU minus the overhead,
// so that the client's path MTU discovery shrinks its packets; an IPv4
// packet without DF is dropped and counted (the balancer does not fragment).
// Real servers prepared with realserver's L3 modes also advertise a smaller
// TCP MSS, so that most connections never send a packet too big.

// Mode says how a service's frames reach its backends.
type Mode uint8

const (
	// ModeDefault is the zero value: L2 for a Service, the service's mode
	// for a Backend.
	ModeDefault Mode = iota
	// ModeL2 rewrites the Ethernet addresses only: the backend is on the
	// balancer's segment.
	ModeL2
	// ModeIPIP encapsulates IPv4 in IPv4 (IP protocol 4) and IPv6 in IPv6
	// (IP protocol 41).
	ModeIPIP
	// ModeGUE encapsulates in UDP with a 4-byte GUE header (variant 0, no
	// extension fields, protocol 4 or 41) to Service.GUEPort. The UDP
	// source port is derived from the flow hash, so a server's NIC spreads
	// flows over its queues.
	ModeGUE
)

var modeNames = [...]string{ModeDefault: "", ModeL2: "l2", ModeIPIP: "ipip", ModeGUE: "gue"}

// String returns "l2", "ipip" or "gue" ("" for ModeDefault).
func (m Mode) String() string {
	if int(m) < len(modeNames) {
		return modeNames[m]
	}
	return fmt.Sprintf("Mode(%d)", uint8(m))
}

// ParseMode parses "l2", "ipip" or "gue" (any case); "" is ModeDefault.
func ParseMode(s string) (Mode, error) {
	for m, n := range modeNames {
		if strings.EqualFold(s, n) {
			return Mode(m), nil
		}
	}
	return ModeDefault, fmt.Errorf("unknown mode %q (want l2, ipip or gue)", s)
}

// L3 reports whether m encapsulates (ModeIPIP or ModeGUE).
func (m Mode) L3() bool { return m == ModeIPIP || m == ModeGUE }

// DefaultGUEPort is the UDP port of GUE packets when Service.GUEPort is
// zero. The server side (realserver) listens on the same default.
const DefaultGUEPort = 6080

// GUE header fields (draft-ietf-intarea-gue): variant 0, no control
// message, no extension words; the protocol byte names the inner packet.
const (
	gueHeaderLen = 4
	protoIPIP    = 4  // IPv4 inside
	protoIPv6    = 41 // IPv6 inside
)

// Overhead returns the bytes m adds to a packet of the given IP version:
// 20 (IPv4) or 40 (IPv6) for ModeIPIP, plus 12 (UDP and GUE) for ModeGUE,
// and 0 for L2.
func (m Mode) Overhead(version int) int {
	ip := frame.IPv4HeaderLen
	if version == 6 {
		ip = frame.IPv6HeaderLen
	}
	switch m {
	case ModeIPIP:
		return ip
	case ModeGUE:
		return ip + frame.UDPHeaderLen + gueHeaderLen
	}
	return 0
}

// modeOf is the effective mode of backend be in service s: ModeL2,
// ModeIPIP or ModeGUE.
func modeOf(s *Service, be *Backend) Mode {
	m := be.Mode
	if m == ModeDefault {
		m = s.Mode
	}
	if m == ModeDefault {
		m = ModeL2
	}
	return m
}

// nextHopOf is the address whose MAC the frames of backend be go to: the
// backend itself in L2 mode or without a gateway, else the gateway.
func nextHopOf(s *Service, be *Backend) netip.Addr {
	if modeOf(s, be).L3() && s.Gateway.IsValid() {
		return s.Gateway.Unmap()
	}
	return be.Addr
}

// validateL3 checks the L3 fields of a service: an L3 mode needs a tunnel
// source, and every address involved must be of the VIP's family (no IPv4
// in IPv6 or the other way round).
func validateL3(field string, s *Service) error {
	if s.Mode > ModeGUE {
		return fieldErr(field+".mode", "unknown mode %d", s.Mode)
	}
	vip := s.VIP.Unmap()
	anyL3 := s.Mode.L3()
	for i := range s.Backends {
		be := &s.Backends[i]
		if be.Mode > ModeGUE {
			return fieldErr(fmt.Sprintf("%s.backends[%d].mode", field, i), "unknown mode %d", be.Mode)
		}
		if !modeOf(s, be).L3() {
			continue
		}
		anyL3 = true
		if a := be.Addr.Unmap(); a.IsValid() && a.Is4() != vip.Is4() {
			return fieldErr(fmt.Sprintf("%s.backends[%d].addr", field, i),
				"%s mode encapsulates in the VIP's family: backend %s and VIP %s differ (IPv4 in IPv6 and IPv6 in IPv4 are not supported)", modeOf(s, be), a, vip)
		}
	}
	if !anyL3 {
		return nil
	}
	src := s.TunnelSource.Unmap()
	if !src.IsValid() {
		return fieldErr(field+".source", "an L3 mode needs the balancer's own address as the outer source")
	}
	if src.Is4() != vip.Is4() || src.IsUnspecified() || src.IsMulticast() || src == vip {
		return fieldErr(field+".source", "%s is not a unicast address of the VIP's family (VIP %s)", src, vip)
	}
	if gw := s.Gateway.Unmap(); gw.IsValid() && (gw.Is4() != vip.Is4() || gw.IsUnspecified() || gw.IsMulticast()) {
		return fieldErr(field+".gateway", "%s is not a unicast address of the VIP's family (VIP %s)", gw, vip)
	}
	return nil
}

// encapInfo is the compiled tunnel of one L3 backend.
type encapInfo struct {
	mode     Mode
	v6       bool
	src, dst netip.Addr
	nextHop  netip.Addr
	port     uint16 // GUE destination port
	overhead int
}

// compileEncap returns the tunnel of backend be of service s, or nil in L2.
func compileEncap(s *Service, be *Backend) *encapInfo {
	m := modeOf(s, be)
	if !m.L3() {
		return nil
	}
	e := &encapInfo{mode: m, v6: s.VIP.Unmap().Is6(), src: s.TunnelSource.Unmap(), dst: be.Addr.Unmap(),
		nextHop: nextHopOf(s, be), port: s.GUEPort}
	if e.port == 0 {
		e.port = DefaultGUEPort
	}
	v := 4
	if e.v6 {
		v = 6
	}
	e.overhead = m.Overhead(v)
	return e
}

// hopMAC is the MAC forwarded frames of backend be go to: its configured
// MAC, else the resolved MAC of its next hop.
func hopMAC(s *Service, be *Backend, resolved map[nbKey]net.HardwareAddr) net.HardwareAddr {
	if !modeOf(s, be).L3() {
		return macOf(be, s.VLAN, resolved)
	}
	if be.MAC != nil {
		return be.MAC
	}
	return resolved[nbKey{addr: nextHopOf(s, be), vlan: s.VLAN}]
}

// defaultMTU is the IP MTU assumed when neither Config.MTU nor the
// forwarder names one.
const defaultMTU = 1500

// mtuReporter is implemented by forwarders that know their interface's MTU
// (PacketForwarder).
type mtuReporter interface{ MTU() int }

// flowHash is the hash that picks an encapsulated packet's GUE source port
// and IPv6 flow label: the flow's hash with the configured seed, so a flow
// keeps its outer port on every balancer that shares the seed. ICMP errors
// hash as the flow they quote; fragments by addresses and protocol.
func (w *worker) flowHash(ps *parsed) uint64 {
	p := &ps.pkt
	var k flowtable.Key
	switch {
	case ps.flow:
		k = ps.key
	case p.ICMPError && p.Inner.HasPorts:
		in := &p.Inner
		k = flowtable.MakeKey(in.Dst, in.Src, in.DstPort, in.SrcPort, in.Proto)
	default:
		k = flowtable.MakeKey(p.Src, p.Dst, 0, 0, p.Proto)
	}
	h, _ := k.Hashes(w.b.cfg.Seed)
	return h
}

// trafficClass returns the inner packet's IPv4 TOS or IPv6 traffic class,
// which the outer header copies (DSCP and ECN, RFC 2983 and RFC 6040's
// normal mode).
func trafficClass(b []byte, l3 int, v6 bool) uint8 {
	if v6 {
		return uint8(binary.BigEndian.Uint16(b[l3:]) >> 4)
	}
	return b[l3+1]
}

// encapsulate forwards one frame to an L3 backend: in place for an
// ordinary frame, as segments for a GSO super-frame, or answered with a
// too-big error. It returns true when f itself is to be transmitted.
func (w *worker) encapsulate(f *Frame, ps *parsed, be *beEntry) bool {
	p := &ps.pkt
	e := be.encap
	if (p.Version == 6) != e.v6 || p.Len > f.N || p.L3Off < frame.EthernetHeaderLen {
		return w.drop(DropEncap)
	}
	mtu := w.mtu
	if mtu <= 0 {
		mtu = defaultMTU
	}
	if f.Offload.GSOType&^GSOECN != GSONone {
		return w.segment(f, ps, be, mtu)
	}
	l3, inner := p.L3Off, p.Len-p.L3Off
	if inner+e.overhead > mtu {
		return w.tooBig(f, p, mtu-e.overhead)
	}
	n := l3 + e.overhead + inner
	if n > len(f.Buf) {
		return w.drop(DropEncap)
	}
	data := f.Buf[:n]
	if f.Offload.Flags&OffloadChecksumPartial != 0 {
		// The outer packet leaves with no offload state: finish the
		// sender's checksum now, while it is where the sender put it.
		// The kernel reports the transport header as its start; any
		// other start would have the checksum written over headers.
		if p.L4Off == 0 || int(f.Offload.ChecksumStart) < p.L4Off {
			return w.drop(DropEncap)
		}
		if err := frame.CompleteChecksum(data[:p.Len], int(f.Offload.ChecksumStart), int(f.Offload.ChecksumOffset)); err != nil {
			return w.drop(DropEncap)
		}
	}
	f.Offload = Offload{}
	copy(data[l3+e.overhead:], data[l3:p.Len])
	w.writeOuter(data, l3, e, inner, w.flowHash(ps), trafficClass(data, l3+e.overhead, e.v6))
	frame.SetMACs(data, be.mac, w.mac)
	f.N = n
	w.c.encapsulated.Add(1)
	w.count(be, n)
	return true
}

// writeOuter writes the outer headers of e at b[l3:] for an inner packet
// of innerLen bytes that already sits at b[l3+e.overhead:].
func (w *worker) writeOuter(b []byte, l3 int, e *encapInfo, innerLen int, h uint64, tc uint8) {
	payload := innerLen
	proto := uint8(protoIPIP)
	if e.v6 {
		proto = protoIPv6
	}
	inner := proto
	if e.mode == ModeGUE {
		payload += frame.UDPHeaderLen + gueHeaderLen
		proto = frame.ProtoUDP
	}
	o := b[l3:l3]
	if e.v6 {
		o = frame.AppendIPv6(o, frame.IPv6Header{Src: e.src, Dst: e.dst, NextHeader: proto, HopLimit: 64,
			TrafficClass: tc, FlowLabel: uint32(h)}, payload)
	} else {
		w.ipID++
		o = frame.AppendIPv4(o, frame.IPv4Header{Src: e.src, Dst: e.dst, Proto: proto, TTL: 64, TOS: tc,
			ID: w.ipID, DontFragment: true}, payload)
	}
	if e.mode != ModeGUE {
		return
	}
	u := l3 + len(o)
	udpLen := innerLen + frame.UDPHeaderLen + gueHeaderLen
	binary.BigEndian.PutUint16(b[u:], guePort(h))
	binary.BigEndian.PutUint16(b[u+2:], e.port)
	binary.BigEndian.PutUint16(b[u+4:], uint16(udpLen))
	binary.BigEndian.PutUint16(b[u+6:], 0)
	b[u+8], b[u+9], b[u+10], b[u+11] = 0, inner, 0, 0
	if e.v6 {
		// IPv6 receivers drop UDP without a checksum (RFC 8200) unless
		// told otherwise; over IPv4 zero means none (RFC 768), which
		// tunnel receivers accept.
		c := frame.Checksum(b[u:u+udpLen], frame.PseudoHeaderSum(e.src, e.dst, frame.ProtoUDP, udpLen))
		if c == 0 {
			c = 0xffff
		}
		binary.BigEndian.PutUint16(b[u+6:], c)
	}
}

// guePort maps a flow hash into the dynamic port range 49152–65535, as
// RFC 8086 suggests for tunnel source ports.
func guePort(h uint64) uint16 { return 49152 | uint16(h>>32)&0x3fff }

// healthTunnel is the encapsulation the DSR-path health check applies to
// its probes of backend be, so they travel as its forwarded frames do.
func healthTunnel(s *Service, be *Backend) health.Tunnel {
	e := compileEncap(s, be)
	if e == nil {
		return health.Tunnel{}
	}
	kind := health.TunnelIPIP
	if e.mode == ModeGUE {
		kind = health.TunnelGUE
	}
	return health.Tunnel{Kind: kind, Src: e.src, Dst: e.dst, Port: e.port}
}

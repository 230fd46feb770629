package health

import (
	"fmt"
	"net/netip"

	"github.com/dsrlb/dsrlb/internal/frame"
)

// TunnelKind is the encapsulation of a backend reached by L3 DSR.
type TunnelKind uint8

const (
	// TunnelNone is the zero value: the backend is on the segment (L2
	// DSR), probes go to its MAC unencapsulated.
	TunnelNone TunnelKind = iota
	// TunnelIPIP wraps the probe in IPv4 (protocol 4) or IPv6 (protocol
	// 41).
	TunnelIPIP
	// TunnelGUE wraps it in IP, UDP to Tunnel.Port, and a 4-byte GUE
	// header (variant 0).
	TunnelGUE
)

// Tunnel is how the balancer's data path encapsulates packets to a backend
// (dsr.ModeIPIP, dsr.ModeGUE). The DSR-path checker sends its probe with
// the same outer headers, so the probe travels as client packets do and
// fails when the backend cannot decapsulate them. The zero value means no
// encapsulation. Target.MAC is then the next hop's MAC.
type Tunnel struct {
	Kind TunnelKind
	// Src is the outer source (the balancer's address), Dst the outer
	// destination (the backend's address), of the VIP's family.
	Src, Dst netip.Addr
	// Port is the GUE UDP destination port.
	Port uint16
}

func (t Tunnel) String() string {
	switch t.Kind {
	case TunnelIPIP:
		return fmt.Sprintf("ipip %s→%s", t.Src, t.Dst)
	case TunnelGUE:
		return fmt.Sprintf("gue %s→%s:%d", t.Src, t.Dst, t.Port)
	}
	return ""
}

// encapsulate wraps the IP packet that starts at b[l3:] (after the
// Ethernet header and any VLAN tag) in t's outer headers, using sport to pick the outer
// UDP source port as a flow hash would.
func (t Tunnel) encapsulate(b []byte, l3 int, sport uint16) []byte {
	if t.Kind == TunnelNone {
		return b
	}
	inner := append([]byte(nil), b[l3:]...)
	b = b[:l3]
	v6 := t.Src.Is6()
	proto, innerProto := uint8(4), uint8(4)
	if v6 {
		proto, innerProto = 41, 41
	}
	payload := len(inner)
	if t.Kind == TunnelGUE {
		proto = frame.ProtoUDP
		payload += frame.UDPHeaderLen + 4
	}
	if v6 {
		b = frame.AppendIPv6(b, frame.IPv6Header{Src: t.Src, Dst: t.Dst, NextHeader: proto, HopLimit: 64}, payload)
	} else {
		b = frame.AppendIPv4(b, frame.IPv4Header{Src: t.Src, Dst: t.Dst, Proto: proto, TTL: 64, DontFragment: true}, payload)
	}
	if t.Kind != TunnelGUE {
		return append(b, inner...)
	}
	gue := append([]byte{0, innerProto, 0, 0}, inner...)
	return frame.AppendUDP(b, t.Src, t.Dst, frame.UDPHeader{SrcPort: 49152 | sport&0x3fff, DstPort: t.Port, NoChecksum: !v6}, gue)
}

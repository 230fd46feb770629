package health

import (
	"net"
	"net/netip"
	"strconv"
)

// Target is what a Checker probes: one backend, described with everything the
// built-in checkers may need. Checkers ignore the fields they do not use.
type Target struct {
	// Addr is the backend's own address, which the TCP, HTTP, UDP, DNS and
	// ICMP checkers connect to. It is unmapped by Key and the checkers, so
	// an IPv4-mapped IPv6 form and the plain IPv4 form are the same target.
	Addr netip.Addr
	// Port is the port to probe. Zero means the checker's default (80 for
	// HTTP, 443 for HTTPS, 53 for DNS); the TCP and UDP checkers reject it.
	Port uint16
	// VIP is the service address the backend must accept on its loopback.
	// Only the DSR-path checker uses it; the invalid zero value makes that
	// checker fail with ErrTargetIncomplete.
	VIP netip.Addr
	// MAC is the backend's hardware address on the balancer's segment. Only
	// the DSR-path checker uses it: it addresses the probe frame to this MAC,
	// as the balancer's data path does. Nil makes that checker fail.
	MAC net.HardwareAddr
	// Tunnel is the encapsulation of an L3 DSR backend, which the DSR-path
	// checker applies to its probe; MAC is then the next hop's. The zero
	// value means none (L2 DSR).
	Tunnel Tunnel
	// VLAN is the 802.1Q VLAN ID the backend is on, seen from the
	// balancer's trunk; zero means untagged. The DSR-path checker tags its
	// probe frames with it; checkers that use the host's IP stack cannot
	// reach a non-zero VLAN (see Support.HostStack).
	VLAN uint16
}

// AddrPort returns the backend's address and Port, or def when Port is zero.
func (t Target) AddrPort(def uint16) netip.AddrPort {
	p := t.Port
	if p == 0 {
		p = def
	}
	return netip.AddrPortFrom(t.Addr.Unmap(), p)
}

// TargetKey identifies a Target by value. Unlike Target it is comparable,
// so it can key maps; equal keys mean the same probe.
type TargetKey struct {
	Addr netip.Addr
	Port uint16
	VIP  netip.Addr
	// MAC holds the hardware address bytes (string for comparability).
	MAC string
	// Tunnel is the encapsulation.
	Tunnel Tunnel
	// VLAN is Target.VLAN.
	VLAN uint16
}

// Key returns the comparable identity of t, used by the Monitor to check a
// backend only once when several services register it.
func (t Target) Key() TargetKey {
	return TargetKey{Addr: t.Addr.Unmap(), Port: t.Port, VIP: t.VIP.Unmap(), MAC: string(t.MAC), Tunnel: t.Tunnel, VLAN: t.VLAN}
}

// String formats t for logs and errors: "addr:port", plus "vip=… mac=…"
// when those are set.
func (t Target) String() string {
	s := t.Addr.Unmap().String()
	if t.Port != 0 {
		s = netip.AddrPortFrom(t.Addr.Unmap(), t.Port).String()
	}
	if t.VIP.IsValid() {
		s += " vip=" + t.VIP.Unmap().String()
	}
	if len(t.MAC) > 0 {
		s += " mac=" + t.MAC.String()
	}
	if t.Tunnel.Kind != TunnelNone {
		s += " tunnel=" + t.Tunnel.String()
	}
	if t.VLAN != 0 {
		s += " vlan=" + strconv.Itoa(int(t.VLAN))
	}
	return s
}

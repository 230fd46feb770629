package arp

import (
	"fmt"
	"net"
	"net/netip"
	"slices"
)

// Listen opens an AF_PACKET socket for ARP on ifi and returns a Speaker on
// it. The socket sees ARP of every VLAN on ifi, tagged as on the wire (see
// SetVLANVIPs). A nil cfg.HardwareAddr is taken from ifi, a zero cfg.IP from ifi's
// first IPv4 address and a zero cfg.IP6 from ifi's link-local address. The
// socket sees only ARP frames of ifi (and, through PACKET_IGNORE_OUTGOING,
// not our own transmissions). Unless cfg.NDPConn is set, Listen also opens
// a second socket for IPv6 neighbour discovery, filtered in the kernel to
// Neighbor Solicitations and Advertisements, which joins the solicited-node
// multicast groups of the IPv6 VIPs as SetVIPs changes them. It needs
// CAP_NET_RAW, and it must be called in the network namespace of ifi: the
// sockets stay there even if used from other threads.
func Listen(ifi *net.Interface, cfg *Config) (*Speaker, error) {
	if ifi == nil {
		return nil, fmt.Errorf("%w: nil interface", ErrInvalidConfig)
	}
	var c Config
	if cfg != nil {
		c = *cfg
	}
	if c.HardwareAddr == nil {
		c.HardwareAddr = slices.Clone(ifi.HardwareAddr)
	}
	if !c.IP.IsValid() {
		c.IP = firstIPv4(ifi)
	}
	if !c.IP6.IsValid() {
		c.IP6 = ifaceIPv6(ifi)
	}
	// Check the configuration before opening a socket we would close again.
	if _, err := c.settings(); err != nil {
		return nil, fmt.Errorf("arp: listen on %s: %w", ifi.Name, err)
	}
	conn, err := listenVLAN(ifi, arpFilter)
	if err != nil {
		return nil, fmt.Errorf("arp: listen on %s: %w", ifi.Name, err)
	}
	var nd *vlanConn
	if c.NDPConn == nil {
		if nd, err = listenND(ifi); err != nil {
			conn.Close()
			return nil, fmt.Errorf("arp: listen for neighbour discovery on %s: %w", ifi.Name, err)
		}
		c.NDPConn = nd
	}
	s, err := New(conn, &c)
	if err != nil {
		conn.Close()
		if nd != nil {
			nd.Close()
		}
		return nil, fmt.Errorf("arp: listen on %s: %w", ifi.Name, err)
	}
	if nd != nil {
		m := &memberships{conn: nd.Conn, ifindex: ifi.Index, joined: make(map[[6]byte]bool)}
		s.joinGroups = m.set
	}
	return s, nil
}

func firstIPv4(ifi *net.Interface) netip.Addr {
	addrs, err := ifi.Addrs()
	if err != nil {
		return netip.Addr{}
	}
	for _, a := range addrs {
		if n, ok := a.(*net.IPNet); ok {
			if ip, ok := netip.AddrFromSlice(n.IP); ok && ip.Unmap().Is4() {
				return ip.Unmap()
			}
		}
	}
	return netip.Addr{}
}

package arp

import (
	"fmt"
	"net"
	"net/netip"
	"slices"

	"github.com/mdlayher/packet"
	"golang.org/x/sys/unix"
)

// Listen opens an AF_PACKET socket for ARP on ifi and returns a Speaker on
// it. A nil cfg.HardwareAddr is taken from ifi and a zero cfg.IP from ifi's
// first IPv4 address. The socket sees only ARP frames of ifi (and, through
// PACKET_IGNORE_OUTGOING, not our own transmissions). It needs CAP_NET_RAW,
// and it must be called in the network namespace of ifi: the socket stays
// there even if used from other threads.
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
	// Check the configuration before opening a socket we would close again.
	if _, err := c.settings(); err != nil {
		return nil, fmt.Errorf("arp: listen on %s: %w", ifi.Name, err)
	}
	conn, err := packet.Listen(ifi, packet.Raw, unix.ETH_P_ARP, nil)
	if err != nil {
		return nil, fmt.Errorf("arp: listen on %s: %w", ifi.Name, err)
	}
	// Best effort: kernels before 4.20 lack the option, and the Speaker
	// also drops frames from its own MAC.
	if rc, err := conn.SyscallConn(); err == nil {
		_ = rc.Control(func(fd uintptr) {
			_ = unix.SetsockoptInt(int(fd), unix.SOL_PACKET, unix.PACKET_IGNORE_OUTGOING, 1)
		})
	}
	s, err := New(conn, &c)
	if err != nil {
		conn.Close()
		return nil, fmt.Errorf("arp: listen on %s: %w", ifi.Name, err)
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

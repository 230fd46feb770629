package vrrp

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"syscall"
	"time"

	"golang.org/x/net/ipv4"
	"golang.org/x/sys/unix"
)

// New validates cfg and opens the router's socket: a raw IPv4 socket for
// protocol 112 bound to cfg.Interface, joined to 224.0.0.18, sending with
// TTL 255. The socket is opened in the calling thread's network namespace.
// It needs CAP_NET_RAW. The Router owns the socket; Close closes it.
func New(cfg *Config) (*Router, error) {
	s, err := cfg.settings()
	if err != nil {
		return nil, err
	}
	ifi, err := net.InterfaceByName(s.ifname)
	if err != nil {
		return nil, fmt.Errorf("%w: Interface: %w", ErrInvalidConfig, err)
	}
	if !s.addr.IsValid() {
		if s.addr, err = firstIPv4(ifi); err != nil {
			return nil, err
		}
	}
	tr, err := listen(ifi)
	if err != nil {
		return nil, err
	}
	return newRouter(s, tr), nil
}

func firstIPv4(ifi *net.Interface) (netip.Addr, error) {
	addrs, err := ifi.Addrs()
	if err != nil {
		return netip.Addr{}, fmt.Errorf("vrrp: addresses of %s: %w", ifi.Name, err)
	}
	for _, a := range addrs {
		if ipn, ok := a.(*net.IPNet); ok {
			if ip, ok := netip.AddrFromSlice(ipn.IP); ok && ip.Unmap().Is4() {
				return ip.Unmap(), nil
			}
		}
	}
	return netip.Addr{}, fmt.Errorf("%w: Addr: %s has no IPv4 address to send advertisements from", ErrInvalidConfig, ifi.Name)
}

type rawTransport struct {
	p     *ipv4.PacketConn
	ifi   *net.Interface
	group *net.IPAddr
}

func listen(ifi *net.Interface) (*rawTransport, error) {
	lc := net.ListenConfig{Control: func(_, _ string, c syscall.RawConn) error {
		var serr error
		err := c.Control(func(fd uintptr) {
			serr = unix.SetsockoptString(int(fd), unix.SOL_SOCKET, unix.SO_BINDTODEVICE, ifi.Name)
		})
		if err != nil {
			return err
		}
		return serr
	}}
	c, err := lc.ListenPacket(context.Background(), fmt.Sprintf("ip4:%d", IPProtocol), "0.0.0.0")
	if err != nil {
		return nil, fmt.Errorf("vrrp: raw socket for protocol %d on %s (needs CAP_NET_RAW): %w", IPProtocol, ifi.Name, err)
	}
	p := ipv4.NewPacketConn(c)
	group := &net.IPAddr{IP: Group4.AsSlice()}
	setup := []func() error{
		func() error { return p.SetControlMessage(ipv4.FlagTTL|ipv4.FlagDst|ipv4.FlagInterface, true) },
		func() error { return p.JoinGroup(ifi, group) },
		func() error { return p.SetMulticastInterface(ifi) },
		func() error { return p.SetMulticastTTL(TTL) },
		func() error { return p.SetMulticastLoopback(false) },
		func() error { return p.SetTOS(0xc0) }, // network control, as routers send it
	}
	for _, f := range setup {
		if err := f(); err != nil {
			_ = p.Close()
			return nil, fmt.Errorf("vrrp: setting up the socket on %s: %w", ifi.Name, err)
		}
	}
	return &rawTransport{p: p, ifi: ifi, group: group}, nil
}

func (t *rawTransport) read(buf []byte) (int, netip.Addr, netip.Addr, int, error) {
	for {
		n, cm, src, err := t.p.ReadFrom(buf)
		if err != nil {
			return 0, netip.Addr{}, netip.Addr{}, 0, err
		}
		if cm == nil || (cm.IfIndex != 0 && cm.IfIndex != t.ifi.Index) {
			continue
		}
		ipa, ok := src.(*net.IPAddr)
		if !ok {
			continue
		}
		s, _ := netip.AddrFromSlice(ipa.IP)
		d, _ := netip.AddrFromSlice(cm.Dst)
		return n, s.Unmap(), d.Unmap(), cm.TTL, nil
	}
}

func (t *rawTransport) write(b []byte, src netip.Addr) error {
	_, err := t.p.WriteTo(b, &ipv4.ControlMessage{IfIndex: t.ifi.Index, Src: src.AsSlice()}, t.group)
	return err
}

func (t *rawTransport) setReadDeadline(d time.Time) error { return t.p.SetReadDeadline(d) }
func (t *rawTransport) close() error                      { return t.p.Close() }

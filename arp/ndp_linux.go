package arp

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"sync"

	"github.com/mdlayher/packet"
	"golang.org/x/sys/unix"
)

// listenND opens the neighbour discovery socket on ifi: an AF_PACKET socket
// (ETH_P_ALL, for the VLAN tags: see vlanConn) whose kernel filter passes only Neighbor Solicitations and
// Advertisements (see ndFilter), so the IPv6 traffic the balancer forwards
// is never copied to it. The filter is attached before the socket is bound,
// so no other frame is ever queued.
func listenND(ifi *net.Interface) (*vlanConn, error) {
	return listenVLAN(ifi, ndFilter)
}

// ignoreOutgoing asks the kernel not to show the socket the frames sent on
// the interface. Best effort: kernels before 4.20 lack the option, and the
// Speaker also drops frames from its own MAC.
func ignoreOutgoing(conn *packet.Conn) {
	if rc, err := conn.SyscallConn(); err == nil {
		_ = rc.Control(func(fd uintptr) {
			_ = unix.SetsockoptInt(int(fd), unix.SOL_PACKET, unix.PACKET_IGNORE_OUTGOING, 1)
		})
	}
}

// memberships keeps a packet socket's multicast memberships equal to a
// wanted set. A NIC with a multicast filter delivers a solicited-node
// group's frames only while someone has joined it; packet socket
// memberships are dropped by the kernel when the socket closes.
type memberships struct {
	conn    *packet.Conn
	ifindex int

	mu     sync.Mutex
	joined map[[6]byte]bool
}

// set joins the groups in want not joined yet and leaves the joined ones
// not in want.
func (m *memberships) set(want [][6]byte) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	rc, err := m.conn.SyscallConn()
	if err != nil {
		return err
	}
	keep := make(map[[6]byte]bool, len(want))
	var errs []error
	change := func(mac [6]byte, opt int, verb string) bool {
		mreq := unix.PacketMreq{Ifindex: int32(m.ifindex), Type: unix.PACKET_MR_MULTICAST, Alen: 6}
		copy(mreq.Address[:], mac[:])
		var serr error
		if err := rc.Control(func(fd uintptr) {
			serr = unix.SetsockoptPacketMreq(int(fd), unix.SOL_PACKET, opt, &mreq)
		}); err != nil {
			serr = err
		}
		if serr != nil {
			errs = append(errs, fmt.Errorf("%s %s: %w", verb, net.HardwareAddr(mac[:]), serr))
			return false
		}
		return true
	}
	for _, mac := range want {
		keep[mac] = true
		if !m.joined[mac] && change(mac, unix.PACKET_ADD_MEMBERSHIP, "join") {
			m.joined[mac] = true
		}
	}
	for mac := range m.joined {
		if !keep[mac] && change(mac, unix.PACKET_DROP_MEMBERSHIP, "leave") {
			delete(m.joined, mac)
		}
	}
	return errors.Join(errs...)
}

// ifaceIPv6 returns the address the Speaker's solicitations come from: the
// interface's link-local address (always on-link, so every neighbour can
// answer it), else its first other IPv6 address, else the zero Addr.
func ifaceIPv6(ifi *net.Interface) netip.Addr {
	addrs, err := ifi.Addrs()
	if err != nil {
		return netip.Addr{}
	}
	var other netip.Addr
	for _, a := range addrs {
		n, ok := a.(*net.IPNet)
		if !ok {
			continue
		}
		ip, ok := netip.AddrFromSlice(n.IP)
		if !ok || !ip.Is6() || ip.Is4In6() {
			continue
		}
		if ip.IsLinkLocalUnicast() {
			return ip
		}
		if !other.IsValid() {
			other = ip
		}
	}
	return other
}

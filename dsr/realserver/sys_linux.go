package realserver

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"slices"
	"strings"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/dsrlb/dsrlb/internal/sysctl"
)

// readSysctlInt reads a kernel parameter of the calling thread's namespace.
func readSysctlInt(k sysctl.Key) (int, error) {
	v, err := sysctl.ReadInt(k)
	if err != nil {
		return 0, fmt.Errorf("realserver: %w", err)
	}
	return v, nil
}

// link is a snapshot of one interface and its addresses.
type link struct {
	name  string
	index int
	up    bool
	arp   bool // answers ARP: not loopback, not NOARP
	dummy bool
	addrs []netip.Prefix
	// flags are the IFA_F_* flags of each address (IPv6: tentative,
	// dadfailed, nodad).
	flags map[netip.Addr]int
}

// addrFlags returns the IFA_F_* flags of ip on l.
func (l *link) addrFlags(ip netip.Addr) int { return l.flags[ip] }

// sourceIPv6 returns the address of l to send neighbour solicitations from:
// its link-local address if usable, else another usable IPv6 address that is
// not one of skip; invalid if none.
func (l *link) sourceIPv6(skip []netip.Addr) netip.Addr {
	var other netip.Addr
	for _, p := range l.addrs {
		a := p.Addr()
		if !a.Is6() || slices.Contains(skip, a) || l.flags[a]&(unix.IFA_F_TENTATIVE|unix.IFA_F_DADFAILED) != 0 {
			continue
		}
		if a.IsLinkLocalUnicast() {
			return a
		}
		if !other.IsValid() {
			other = a
		}
	}
	return other
}

func (l *link) has(ip netip.Addr) (netip.Prefix, bool) {
	for _, p := range l.addrs {
		if p.Addr() == ip {
			return p, true
		}
	}
	return netip.Prefix{}, false
}

// firstIPv4 returns the first IPv4 address of l that is not one of skip.
func (l *link) firstIPv4(skip []netip.Addr) netip.Addr {
	for _, p := range l.addrs {
		if p.Addr().Is4() && !slices.Contains(skip, p.Addr()) {
			return p.Addr()
		}
	}
	return netip.Addr{}
}

// hasOwnAddr reports whether l has an IPv4 address, or an IPv6 address
// that is not link-local, other than the VIPs.
func (l *link) hasOwnAddr(vips []netip.Addr) bool {
	for _, p := range l.addrs {
		a := p.Addr()
		if !slices.Contains(vips, a) && (a.Is4() || !a.IsLinkLocalUnicast()) {
			return true
		}
	}
	return false
}

// listLinks returns every interface of the calling thread's namespace,
// sorted by name so reports are stable.
func listLinks() ([]*link, error) {
	ls, err := netlink.LinkList()
	if err != nil {
		return nil, fmt.Errorf("realserver: list interfaces: %w", err)
	}
	out := make([]*link, 0, len(ls))
	for _, nl := range ls {
		a := nl.Attrs()
		l := &link{
			name:  a.Name,
			index: a.Index,
			up:    a.Flags&net.FlagUp != 0,
			arp:   a.Flags&net.FlagLoopback == 0 && a.RawFlags&unix.IFF_NOARP == 0,
			dummy: nl.Type() == "dummy",
			flags: map[netip.Addr]int{},
		}
		as, err := netlink.AddrList(nl, netlink.FAMILY_ALL)
		if err != nil {
			return nil, fmt.Errorf("realserver: addresses of %s: %w", a.Name, err)
		}
		for _, ad := range as {
			ip, ok := netip.AddrFromSlice(ad.IP)
			if !ok {
				continue
			}
			ones, _ := ad.Mask.Size()
			l.addrs = append(l.addrs, netip.PrefixFrom(ip.Unmap(), ones))
			l.flags[ip.Unmap()] = ad.Flags
		}
		out = append(out, l)
	}
	slices.SortFunc(out, func(a, b *link) int { return strings.Compare(a.name, b.name) })
	return out, nil
}

func findLink(ls []*link, name string) *link {
	for _, l := range ls {
		if l.name == name {
			return l
		}
	}
	return nil
}

// segmentLinks returns the interfaces facing the balancer's segment: the
// configured ones, or every up ARP interface with an IPv4 address or an IPv6
// address that is not link-local (VIPs do not count).
func segmentLinks(c *config, ls []*link) ([]*link, error) {
	var out []*link
	if len(c.Segment) > 0 {
		for _, name := range c.Segment {
			l := findLink(ls, name)
			if l == nil {
				return nil, fmt.Errorf("realserver: segment interface %s: %w", name, errNoSuchLink)
			}
			out = append(out, l)
		}
		return out, nil
	}
	for _, l := range ls {
		if l.name == c.holder || !l.up || !l.arp || !l.hasOwnAddr(c.VIPs) {
			continue
		}
		out = append(out, l)
	}
	return out, nil
}

var errNoSuchLink = errors.New("no such interface")

func ipNet(p netip.Prefix) *net.IPNet {
	return &net.IPNet{IP: p.Addr().AsSlice(), Mask: net.CIDRMask(p.Bits(), p.Addr().BitLen())}
}

// addAddr adds p to the interface; nodad (IPv6 only) skips duplicate
// address detection, so the address is usable at once and never
// "dadfailed".
func addAddr(name string, p netip.Prefix, nodad bool) error {
	nl, err := netlink.LinkByName(name)
	if err != nil {
		return fmt.Errorf("realserver: %s: %w", name, err)
	}
	a := &netlink.Addr{IPNet: ipNet(p)}
	if nodad && p.Addr().Is6() {
		a.Flags = unix.IFA_F_NODAD
	}
	if err := netlink.AddrAdd(nl, a); err != nil {
		return fmt.Errorf("realserver: add %v to %s: %w", p, name, err)
	}
	return nil
}

func delAddr(name string, p netip.Prefix) error {
	nl, err := netlink.LinkByName(name)
	if err != nil {
		return fmt.Errorf("realserver: %s: %w", name, err)
	}
	if err := netlink.AddrDel(nl, &netlink.Addr{IPNet: ipNet(p)}); err != nil {
		return fmt.Errorf("realserver: delete %v from %s: %w", p, name, err)
	}
	return nil
}

// readSockets reads the socket tables of proto for both families from
// /proc/thread-self/net: /proc/net would show the namespace of the
// thread-group leader, not the one of the calling thread.
func readSockets(proto Protocol) ([]socketEntry, error) {
	var out []socketEntry
	for _, f := range []string{string(proto), string(proto) + "6"} {
		b, err := os.ReadFile("/proc/thread-self/net/" + f)
		if errors.Is(err, os.ErrNotExist) {
			continue // no IPv6 in this kernel
		}
		if err != nil {
			return nil, fmt.Errorf("realserver: %w", err)
		}
		es, err := parseProcNet(b)
		if err != nil {
			return nil, fmt.Errorf("%w (%s)", err, f)
		}
		out = append(out, es...)
	}
	return out, nil
}

// proxy is a proxy neighbour entry (ip -6 neigh add proxy ADDR dev IFACE).
type proxy struct {
	addr netip.Addr
	dev  string
}

// listProxies returns the IPv6 proxy neighbour entries of the calling
// thread's namespace.
func listProxies(ls []*link) ([]proxy, error) {
	ns, err := netlink.NeighProxyList(0, netlink.FAMILY_V6)
	if err != nil {
		return nil, fmt.Errorf("realserver: list proxy neighbours: %w", err)
	}
	var out []proxy
	for _, n := range ns {
		a, ok := netip.AddrFromSlice(n.IP)
		if !ok {
			continue
		}
		dev := ""
		for _, l := range ls {
			if l.index == n.LinkIndex {
				dev = l.name
			}
		}
		out = append(out, proxy{addr: a.Unmap(), dev: dev})
	}
	slices.SortFunc(out, func(a, b proxy) int { return strings.Compare(a.dev, b.dev) })
	return out, nil
}

func proxyNeigh(name string, ip netip.Addr) (*netlink.Neigh, error) {
	nl, err := netlink.LinkByName(name)
	if err != nil {
		return nil, fmt.Errorf("realserver: %s: %w", name, err)
	}
	return &netlink.Neigh{LinkIndex: nl.Attrs().Index, Family: netlink.FAMILY_V6, Flags: netlink.NTF_PROXY, IP: ip.AsSlice()}, nil
}

func addProxy(name string, ip netip.Addr) error {
	n, err := proxyNeigh(name, ip)
	if err != nil {
		return err
	}
	if err := netlink.NeighAdd(n); err != nil {
		return fmt.Errorf("realserver: add proxy neighbour %v on %s: %w", ip, name, err)
	}
	return nil
}

func delProxy(name string, ip netip.Addr) error {
	n, err := proxyNeigh(name, ip)
	if err != nil {
		return err
	}
	if err := netlink.NeighDel(n); err != nil {
		return fmt.Errorf("realserver: delete proxy neighbour %v on %s: %w", ip, name, err)
	}
	return nil
}

// ipv6Available reports whether the kernel has IPv6 at all (not booted
// with ipv6.disable=1), which shows as the absence of /proc/sys/net/ipv6.
func ipv6Available() (bool, error) {
	k, err := sysctl.Conf(sysctl.IPv6, sysctl.All, "disable_ipv6")
	if err != nil {
		return false, err
	}
	if _, err := sysctl.Read(k); err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return false, nil
		}
		return false, fmt.Errorf("realserver: %w", err)
	}
	return true, nil
}

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
// configured ones, or every up ARP interface with an IPv4 address.
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
		if l.name == c.holder || !l.up || !l.arp || !l.firstIPv4(c.VIPs).IsValid() {
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

func addAddr(name string, p netip.Prefix) error {
	nl, err := netlink.LinkByName(name)
	if err != nil {
		return fmt.Errorf("realserver: %s: %w", name, err)
	}
	a := &netlink.Addr{IPNet: ipNet(p)}
	if p.Addr().Is6() {
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

func hostPrefix(ip netip.Addr) netip.Prefix { return netip.PrefixFrom(ip, ip.BitLen()) }

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

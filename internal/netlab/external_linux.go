package netlab

import (
	"fmt"
	"net/netip"
	"strconv"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
)

// documentation4 are the IPv4 documentation ranges an external link may
// use (the segment itself is Prefix4).
var documentation4 = []netip.Prefix{
	netip.MustParsePrefix("198.51.100.0/24"),
	netip.MustParsePrefix("203.0.113.0/24"),
}

// AddExternal creates a host off the segment: a namespace of its own
// ("x0", "x1"...) joined to gw, a host of the lab, by a point-to-point
// veth link numbered from link. gw gets link's first host address on an
// interface named after the new host ("x0"...) and forwards IPv4 from then
// on, so it acts as a router between the segment and the new host; the new
// host gets the second address on its eth0 and a default route via gw. The
// link must be an IPv4 prefix of at most /30 inside 198.51.100.0/24 or
// 203.0.113.0/24. Close removes the host with the rest of the lab.
//
// Hosts on the segment reach the new host only through a route via gw's
// segment address (see Host.AddRoute).
func (l *Lab) AddExternal(gw *Host, link netip.Prefix) (*Host, error) {
	link = link.Masked()
	inDoc := false
	for _, d := range documentation4 {
		inDoc = inDoc || (d.Bits() <= link.Bits() && d.Contains(link.Addr()))
	}
	if !link.Addr().Is4() || link.Bits() > 30 || !inDoc {
		return nil, fmt.Errorf("netlab: external link %v must be an IPv4 prefix of at most /30 in 198.51.100.0/24 or 203.0.113.0/24", link)
	}
	if gw == nil || gw.lab != l || gw == l.Switch {
		return nil, fmt.Errorf("netlab: the gateway of an external host must be a host of this lab on the segment")
	}
	gwAddr := link.Addr().Next()
	hostAddr := gwAddr.Next()

	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return nil, ErrClosed
	}
	role := "x" + strconv.Itoa(len(l.external))
	h := &Host{Name: role, NS: nsName(l.ID, role), Link: "eth0", IP: hostAddr, lab: l}
	l.external = append(l.external, h)
	l.mu.Unlock()

	if err := createNamedNS(h.NS); err != nil {
		return nil, fmt.Errorf("netlab: create namespace %s: %w", h.NS, err)
	}
	l.mu.Lock()
	l.made = append(l.made, h.NS)
	l.mu.Unlock()

	target, err := netns.GetFromName(h.NS)
	if err != nil {
		return nil, fmt.Errorf("netlab: open namespace %s: %w", h.NS, err)
	}
	defer target.Close()
	err = gw.Do(func() error {
		v := &netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: role}, PeerName: "eth0", PeerNamespace: netlink.NsFd(target)}
		if err := netlink.LinkAdd(v); err != nil {
			return fmt.Errorf("add veth: %w", err)
		}
		if err := writeSysctl("net.ipv4.ip_forward", "1"); err != nil {
			return err
		}
		dev, err := netlink.LinkByName(role)
		if err != nil {
			return err
		}
		if err := addAddr(dev, netip.PrefixFrom(gwAddr, link.Bits())); err != nil {
			return err
		}
		return netlink.LinkSetUp(dev)
	})
	if err != nil {
		return nil, fmt.Errorf("netlab: link %s to %s: %w", gw.Name, role, err)
	}
	err = h.Do(func() error {
		for _, k := range []string{"all", "default"} {
			if err := writeSysctl("net.ipv6.conf."+k+".disable_ipv6", "1"); err != nil {
				return err
			}
		}
		if err := linkUp("lo"); err != nil {
			return err
		}
		eth, err := netlink.LinkByName("eth0")
		if err != nil {
			return err
		}
		if err := netlink.LinkSetUp(eth); err != nil {
			return fmt.Errorf("eth0 up: %w", err)
		}
		h.MAC = append(h.MAC[:0], eth.Attrs().HardwareAddr...)
		if err := addAddr(eth, netip.PrefixFrom(hostAddr, link.Bits())); err != nil {
			return err
		}
		return netlink.RouteAdd(&netlink.Route{LinkIndex: eth.Attrs().Index, Gw: gwAddr.AsSlice()})
	})
	if err != nil {
		return nil, fmt.Errorf("netlab: configure %s: %w", role, err)
	}
	l.log.Info("netlab: external host ready", "host", role, "ip", hostAddr, "via", gw.Name)
	return h, nil
}

// AddRoute adds a route to dst via the gateway via (on h's segment link,
// or any link that reaches via) in h's namespace.
func (h *Host) AddRoute(dst netip.Prefix, via netip.Addr) error {
	dst = dst.Masked()
	if !dst.IsValid() || !via.IsValid() || dst.Addr().Is4() != via.Is4() {
		return fmt.Errorf("netlab: route to %v via %v: invalid or mixed families", dst, via)
	}
	return h.Do(func() error {
		if err := netlink.RouteAdd(&netlink.Route{Dst: prefixNet(dst), Gw: via.AsSlice()}); err != nil {
			return fmt.Errorf("netlab: route to %v via %v on %s: %w", dst, via, h.Name, err)
		}
		return nil
	})
}

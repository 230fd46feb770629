package realserver

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"time"

	"golang.org/x/net/ipv6"
)

// checkNDP asks, on each segment interface where IPv6 is on, who has each
// IPv6 VIP: the neighbour-discovery counterpart of checkARP.
func checkNDP(ctx context.Context, c *config, segs []*link, r *Report) {
	if c.NDPWindow < 0 {
		for _, vip := range c.v6 {
			r.add(Finding{Severity: Info, Code: CodeNDPUnchecked, VIP: vip, Message: "neighbour-discovery probe disabled"})
		}
		return
	}
	for _, s := range segs {
		src := s.sourceIPv6(c.VIPs)
		if !src.IsValid() {
			for _, vip := range c.v6 {
				r.add(Finding{Severity: Warning, Code: CodeNDPUnchecked, VIP: vip, Interface: s.name,
					Message: fmt.Sprintf("%s has no usable IPv6 address of its own (not even link-local) to send neighbour solicitations from", s.name),
					Fix:     []string{fmt.Sprintf("sysctl -w net.ipv6.conf.%s.addr_gen_mode=0, or add an address of the segment to %s", s.name, s.name)}})
			}
			continue
		}
		seen, err := probeNDP(ctx, s.name, src, c.v6, c.NDPWindow)
		if err != nil {
			for _, vip := range c.v6 {
				r.add(Finding{Severity: Warning, Code: CodeNDPUnchecked, VIP: vip, Interface: s.name,
					Message: fmt.Sprintf("neighbour-discovery probe failed: %v", err)})
			}
			continue
		}
		for _, vip := range c.v6 {
			judgeOwners(r, vip, s.name, c.BalancerMAC, seen[vip])
		}
	}
}

// probeNDP sends a neighbour solicitation for each vip from src on dev, to
// the VIP's solicited-node group, and returns the distinct MACs that
// advertised each vip (answers or unsolicited advertisements) within
// window. A raw ICMPv6 socket lets the kernel build the IPv6 header and the
// checksum; its own loopback of the multicast is off, so the server never
// sees its own kernel answer. The socket is made on the calling thread, so
// in its namespace.
func probeNDP(ctx context.Context, dev string, src netip.Addr, vips []netip.Addr, window time.Duration) (map[netip.Addr][]net.HardwareAddr, error) {
	ifi, err := net.InterfaceByName(dev)
	if err != nil {
		return nil, err
	}
	if len(ifi.HardwareAddr) != 6 {
		return nil, fmt.Errorf("%s has no Ethernet address", dev)
	}
	c, err := net.ListenPacket("ip6:ipv6-icmp", "::")
	if err != nil {
		return nil, err
	}
	defer c.Close()
	p := ipv6.NewPacketConn(c)
	var filter ipv6.ICMPFilter
	filter.SetAll(true)
	filter.Accept(ipv6.ICMPTypeNeighborAdvertisement)
	for _, set := range []func() error{
		func() error { return p.SetICMPFilter(&filter) },
		func() error { return p.SetControlMessage(ipv6.FlagHopLimit|ipv6.FlagInterface, true) },
		func() error { return p.SetMulticastHopLimit(ndpRequiredHop) },
		func() error { return p.SetMulticastLoopback(false) },
		func() error { return p.SetMulticastInterface(ifi) },
	} {
		if err := set(); err != nil {
			return nil, err
		}
	}
	deadline := time.Now().Add(window)
	if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
		deadline = d
	}
	if err := p.SetDeadline(deadline); err != nil {
		return nil, err
	}
	stop := context.AfterFunc(ctx, func() { _ = p.SetDeadline(time.Now()) })
	defer stop()

	for _, vip := range vips {
		cm := &ipv6.ControlMessage{HopLimit: ndpRequiredHop, Src: src.AsSlice(), IfIndex: ifi.Index}
		dst := &net.IPAddr{IP: solicitedNode(vip).AsSlice(), Zone: dev}
		if _, err := p.WriteTo(buildNS(vip, ifi.HardwareAddr), cm, dst); err != nil {
			return nil, err
		}
	}

	seen := map[netip.Addr][]net.HardwareAddr{}
	buf := make([]byte, 1500)
	for {
		n, cm, _, err := p.ReadFrom(buf)
		if err != nil {
			if ne, ok := err.(net.Error); ok && ne.Timeout() {
				return seen, nil
			}
			return nil, err
		}
		// RFC 4861 §7.1.2: a hop limit below 255 means the message
		// crossed a router and is not from this link.
		if cm == nil || cm.IfIndex != ifi.Index || cm.HopLimit != ndpRequiredHop {
			continue
		}
		vip, mac, ok := parseNA(buf[:n])
		if !ok || !containsAddr(vips, vip) || mac.String() == ifi.HardwareAddr.String() {
			continue
		}
		if !containsMAC(seen[vip], mac) {
			seen[vip] = append(seen[vip], mac)
		}
	}
}

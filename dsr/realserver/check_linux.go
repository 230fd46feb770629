package realserver

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"time"

	"github.com/mdlayher/arp"
	"github.com/mdlayher/ethernet"
	"github.com/mdlayher/packet"
)

// Check inspects the calling thread's network namespace and reports every
// DSR misconfiguration it can observe for cfg. The error is non-nil only
// when the inspection itself failed (bad configuration, no permission);
// problems of the server are Findings. The ARP probe sends one who-has per
// IPv4 VIP on each segment interface, from the server's own address there,
// and listens for Config.ARPWindow or until ctx is done.
func Check(ctx context.Context, cfg *Config) (*Report, error) {
	c, err := cfg.resolve(true)
	if err != nil {
		return nil, err
	}
	r := &Report{Findings: []Finding{}}
	links, err := listLinks()
	if err != nil {
		return nil, err
	}
	holder := findLink(links, c.holder)

	// 1. The VIPs on the VIP interface.
	switch {
	case holder == nil:
		for _, vip := range c.VIPs {
			p := hostPrefix(vip).String()
			r.add(Finding{Severity: Error, Code: CodeVIPMissing, VIP: vip, Interface: c.holder,
				Message: fmt.Sprintf("interface %s does not exist, so %v is not local and requests for it are dropped", c.holder, vip),
				Fix:     []string{fixDummyAdd(c.holder), fixLinkUp(c.holder), fixAddrAdd(p, c.holder)}})
		}
	default:
		if !holder.up {
			r.add(Finding{Severity: Error, Code: CodeInterfaceDown, Interface: holder.name,
				Message: fmt.Sprintf("VIP interface %s is down, so its addresses are not local and requests are dropped", holder.name),
				Fix:     []string{fixLinkUp(holder.name)}})
		}
		for _, vip := range c.VIPs {
			if _, ok := holder.has(vip); !ok {
				r.add(Finding{Severity: Error, Code: CodeVIPMissing, VIP: vip, Interface: holder.name,
					Message: fmt.Sprintf("%v is not on %s, so the kernel drops the requests the balancer forwards", vip, holder.name),
					Fix:     []string{fixAddrAdd(hostPrefix(vip).String(), holder.name)}})
			}
		}
	}

	// 2. The VIPs anywhere they make the server answer ARP.
	for _, vip := range c.VIPs {
		for _, l := range links {
			p, ok := l.has(vip)
			if !ok || l == holder || !l.arp {
				continue
			}
			r.add(Finding{Severity: Error, Code: CodeVIPOnARPInterface, VIP: vip, Interface: l.name,
				Message: fmt.Sprintf("%v is on %s, which does ARP: the server answers for the VIP and steals it from the balancer", vip, l.name),
				Fix:     []string{fixAddrDel(p.String(), l.name)}})
		}
	}

	// 3. Kernel parameters on the interfaces facing the segment.
	segs, err := segmentLinks(&c, links)
	if err != nil {
		return nil, err
	}
	if len(segs) == 0 {
		r.add(Finding{Severity: Warning, Code: CodeNoSegment,
			Message: "no interface facing the segment (up, ARP, with an IPv4 address) was found, so ARP settings were not checked; name it with Segment"})
	}
	for _, s := range segs {
		for _, p := range []param{paramARPIgnore, paramARPAnnounce, paramRPFilter} {
			f, err := checkParam(p, s.name)
			if err != nil {
				return nil, err
			}
			if f != nil {
				r.add(*f)
			}
		}
	}

	// 4. Something must receive the traffic.
	if c.Port != 0 {
		socks, err := readSockets(c.Protocol)
		if err != nil {
			return nil, err
		}
		for _, vip := range c.VIPs {
			if serves(socks, c.Protocol, vip, c.Port) {
				continue
			}
			ap := netip.AddrPortFrom(vip, c.Port)
			wild := "0.0.0.0"
			if vip.Is6() {
				wild = "[::]"
			}
			r.add(Finding{Severity: Error, Code: CodeNotListening, VIP: vip,
				Message: fmt.Sprintf("nothing listens on %s %v (nor on a wildcard address): the server resets or drops every request", c.Protocol, ap),
				Fix:     []string{fmt.Sprintf("start the service bound to %v or %s:%d", ap, wild, c.Port)}})
		}
	}

	// 5. Who owns the VIPs on the segment.
	checkARP(ctx, &c, segs, r)
	return r, nil
}

// checkParam judges one kernel parameter on one segment interface; the fix
// is exactly what Prepare would write.
func checkParam(p param, dev string) (*Finding, error) {
	allKey, devKey, err := p.keys(dev)
	if err != nil {
		return nil, err
	}
	all, err := readSysctlInt(allKey)
	if err != nil {
		return nil, err
	}
	d, err := readSysctlInt(devKey)
	if err != nil {
		return nil, err
	}
	setAll, setDev := p.plan(all, d)
	if !setAll && !setDev {
		return nil, nil
	}
	f := &Finding{Severity: Error, Code: CodeARPIgnore, Interface: dev}
	eff := effective(all, d)
	switch p.name {
	case paramARPIgnore.name:
		f.Message = fmt.Sprintf("effective arp_ignore on %s is %d (all=%d, %s=%d): the server answers ARP for the VIPs on lo and steals them from the balancer; need 1, 2 or 8", dev, eff, all, dev, d)
	case paramARPAnnounce.name:
		f.Code = CodeARPAnnounce
		f.Message = fmt.Sprintf("effective arp_announce on %s is %d (all=%d, %s=%d): the server may use a VIP as the source of its ARP requests and teach neighbours its MAC for it; need 2", dev, eff, all, dev, d)
	case paramRPFilter.name:
		f.Severity, f.Code = Warning, CodeRPFilterStrict
		f.Message = fmt.Sprintf("rp_filter on %s is strict (all=%d, %s=%d): requests from clients routed back through another interface are dropped; loose (2) is safe for DSR", dev, all, dev, d)
	}
	if setAll {
		f.Fix = append(f.Fix, fixSysctl(allKey, p.target))
	}
	if setDev {
		f.Fix = append(f.Fix, fixSysctl(devKey, p.target))
	}
	return f, nil
}

// checkARP asks, on each segment interface, who has each IPv4 VIP.
func checkARP(ctx context.Context, c *config, segs []*link, r *Report) {
	var v4 []netip.Addr
	for _, vip := range c.VIPs {
		if vip.Is6() {
			r.add(Finding{Severity: Info, Code: CodeARPUnchecked, VIP: vip,
				Message: fmt.Sprintf("%v is IPv6: the neighbour-discovery counterparts of the ARP checks are not implemented", vip)})
			continue
		}
		v4 = append(v4, vip)
	}
	if len(v4) == 0 {
		return
	}
	if c.ARPWindow < 0 {
		for _, vip := range v4 {
			r.add(Finding{Severity: Info, Code: CodeARPUnchecked, VIP: vip, Message: "ARP probe disabled"})
		}
		return
	}
	for _, s := range segs {
		src := s.firstIPv4(c.VIPs)
		if !src.IsValid() {
			for _, vip := range v4 {
				r.add(Finding{Severity: Info, Code: CodeARPUnchecked, VIP: vip, Interface: s.name,
					Message: fmt.Sprintf("%s has no IPv4 address of its own to ask ARP from", s.name)})
			}
			continue
		}
		seen, err := probeARP(ctx, s.name, src, v4, c.ARPWindow)
		if err != nil {
			for _, vip := range v4 {
				r.add(Finding{Severity: Warning, Code: CodeARPUnchecked, VIP: vip, Interface: s.name,
					Message: fmt.Sprintf("ARP probe failed: %v", err)})
			}
			continue
		}
		for _, vip := range v4 {
			judgeARP(r, vip, s.name, c.BalancerMAC, seen[vip])
		}
	}
}

// probeARP broadcasts who-has for each vip from src on dev and returns the
// distinct MACs that claimed each vip (in replies or announcements) within
// window. The socket is made on the calling thread, so in its namespace.
func probeARP(ctx context.Context, dev string, src netip.Addr, vips []netip.Addr, window time.Duration) (map[netip.Addr][]net.HardwareAddr, error) {
	ifi, err := net.InterfaceByName(dev)
	if err != nil {
		return nil, err
	}
	conn, err := packet.Listen(ifi, packet.Raw, int(ethernet.EtherTypeARP), nil)
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	deadline := time.Now().Add(window)
	if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
		deadline = d
	}
	if err := conn.SetDeadline(deadline); err != nil {
		return nil, err
	}
	stop := context.AfterFunc(ctx, func() { _ = conn.SetDeadline(time.Now()) })
	defer stop()

	for _, vip := range vips {
		req, err := arp.NewPacket(arp.OperationRequest, ifi.HardwareAddr, src, ethernet.Broadcast, vip)
		if err != nil {
			return nil, err
		}
		pb, err := req.MarshalBinary()
		if err != nil {
			return nil, err
		}
		fb, err := (&ethernet.Frame{Destination: ethernet.Broadcast, Source: ifi.HardwareAddr, EtherType: ethernet.EtherTypeARP, Payload: pb}).MarshalBinary()
		if err != nil {
			return nil, err
		}
		if _, err := conn.WriteTo(fb, &packet.Addr{HardwareAddr: ethernet.Broadcast}); err != nil {
			return nil, err
		}
	}

	seen := map[netip.Addr][]net.HardwareAddr{}
	buf := make([]byte, 1514)
	for {
		n, _, err := conn.ReadFrom(buf)
		if err != nil {
			if ne, ok := err.(net.Error); ok && ne.Timeout() {
				return seen, nil
			}
			return nil, err
		}
		vip, mac, ok := claim(buf[:n], ifi.HardwareAddr)
		if !ok || !containsAddr(vips, vip) {
			continue
		}
		if !containsMAC(seen[vip], mac) {
			seen[vip] = append(seen[vip], mac)
		}
	}
}

// claim reports the IPv4 address and MAC that an ARP frame claims as its
// sender, ignoring our own frames and anything malformed.
func claim(frame []byte, own net.HardwareAddr) (netip.Addr, net.HardwareAddr, bool) {
	var f ethernet.Frame
	if err := f.UnmarshalBinary(frame); err != nil || f.EtherType != ethernet.EtherTypeARP {
		return netip.Addr{}, nil, false
	}
	var p arp.Packet
	if err := p.UnmarshalBinary(f.Payload); err != nil {
		return netip.Addr{}, nil, false
	}
	if p.SenderHardwareAddr.String() == own.String() || !p.SenderIP.Is4() {
		return netip.Addr{}, nil, false
	}
	return p.SenderIP, p.SenderHardwareAddr, true
}

func containsAddr(l []netip.Addr, a netip.Addr) bool {
	for _, x := range l {
		if x == a {
			return true
		}
	}
	return false
}

func containsMAC(l []net.HardwareAddr, m net.HardwareAddr) bool {
	for _, x := range l {
		if x.String() == m.String() {
			return true
		}
	}
	return false
}

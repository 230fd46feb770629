package realserver

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"time"

	"github.com/mdlayher/arp"
	"github.com/mdlayher/ethernet"
	"github.com/mdlayher/packet"
	"golang.org/x/sys/unix"

	"github.com/dsrlb/dsrlb/internal/sysctl"
)

// Check inspects the calling thread's network namespace and reports every
// DSR misconfiguration it can observe for cfg. The error is non-nil only
// when the inspection itself failed (bad configuration, no permission);
// problems of the server are Findings. A family of VIPs that cannot be
// checked at all (IPv6 VIPs on a kernel without IPv6) is an Error finding,
// never a silent pass.
//
// The ARP probe sends one who-has per IPv4 VIP on each segment interface,
// from the server's own address there, and listens for Config.ARPWindow.
// The neighbour-discovery probe sends one neighbour solicitation per IPv6
// VIP on each segment interface, from the server's link-local address
// there, and listens for Config.NDPWindow. Both stop early when ctx is done.
func Check(ctx context.Context, cfg *Config) (*Report, error) {
	c, err := cfg.resolve(true)
	if err != nil {
		return nil, err
	}
	r := &Report{Findings: []Finding{}}
	if len(c.v6) > 0 {
		ok, err := ipv6Available()
		if err != nil {
			return nil, err
		}
		if !ok {
			for _, vip := range c.v6 {
				r.add(Finding{Severity: Error, Code: CodeIPv6Unavailable, VIP: vip,
					Message: fmt.Sprintf("this kernel has no IPv6 (/proc/sys/net/ipv6 is absent): %v cannot be served and nothing about it was checked", vip),
					Fix:     []string{"remove ipv6.disable=1 from the kernel command line and reboot"}})
			}
			c.VIPs, c.v6 = c.v4, nil
		}
	}
	links, err := listLinks()
	if err != nil {
		return nil, err
	}
	holder := findLink(links, c.holder)

	// 1. The VIPs on the VIP interface.
	switch {
	case holder == nil:
		for _, vip := range c.VIPs {
			r.add(Finding{Severity: Error, Code: CodeVIPMissing, VIP: vip, Interface: c.holder,
				Message: fmt.Sprintf("interface %s does not exist, so %v is not local and requests for it are dropped", c.holder, vip),
				Fix:     []string{fixDummyAdd(c.holder), fixLinkUp(c.holder), fixVIPAdd(vip, c.holder)}})
		}
	default:
		if !holder.up {
			r.add(Finding{Severity: Error, Code: CodeInterfaceDown, Interface: holder.name,
				Message: fmt.Sprintf("VIP interface %s is down, so its addresses are not local and requests are dropped", holder.name),
				Fix:     []string{fixLinkUp(holder.name)}})
		}
		if len(c.v6) > 0 {
			f, err := checkParam(paramDisableIPv6, holder.name)
			if err != nil {
				return nil, err
			}
			if f != nil {
				f.Message = fmt.Sprintf("IPv6 is disabled on the VIP interface %s (disable_ipv6=1), so it cannot hold the IPv6 VIPs", holder.name)
				r.add(*f)
			}
		}
		for _, vip := range c.VIPs {
			p, ok := holder.has(vip)
			if !ok {
				r.add(Finding{Severity: Error, Code: CodeVIPMissing, VIP: vip, Interface: holder.name,
					Message: fmt.Sprintf("%v is not on %s, so the kernel drops the requests the balancer forwards", vip, holder.name),
					Fix:     []string{fixVIPAdd(vip, holder.name)}})
				continue
			}
			if !vip.Is6() {
				continue
			}
			fix := []string{fixAddrDel(p.String(), holder.name), fixAddrAddNoDAD(p.String(), holder.name)}
			switch fl := holder.addrFlags(vip); {
			case fl&unix.IFA_F_DADFAILED != 0:
				r.add(Finding{Severity: Error, Code: CodeVIPDADFailed, VIP: vip, Interface: holder.name,
					Message: fmt.Sprintf("duplicate address detection failed for %v on %s (another host has it, as the balancer does): the kernel never uses it and drops the requests", vip, holder.name),
					Fix:     fix})
			case fl&unix.IFA_F_TENTATIVE != 0:
				r.add(Finding{Severity: Error, Code: CodeVIPTentative, VIP: vip, Interface: holder.name,
					Message: fmt.Sprintf("%v on %s is tentative (duplicate address detection has not finished): the kernel drops the requests until it does, and fails it if the balancer answers", vip, holder.name),
					Fix:     fix})
			}
		}
	}

	// 2. The VIPs anywhere they make the server answer ARP or neighbour
	// solicitations.
	for _, vip := range c.VIPs {
		for _, l := range links {
			p, ok := l.has(vip)
			if !ok || l == holder || !l.arp {
				continue
			}
			f := Finding{Severity: Error, Code: CodeVIPOnARPInterface, VIP: vip, Interface: l.name,
				Message: fmt.Sprintf("%v is on %s, which does ARP: the server answers for the VIP and steals it from the balancer", vip, l.name),
				Fix:     []string{fixAddrDel(p.String(), l.name)}}
			if vip.Is6() {
				f.Code = CodeVIPOnNDPInterface
				f.Message = fmt.Sprintf("%v is on %s, which does neighbour discovery: the server answers neighbour solicitations for the VIP and steals it from the balancer", vip, l.name)
			}
			r.add(f)
		}
	}

	// 3. Kernel parameters on the interfaces facing the segment.
	segs, err := segmentLinks(&c, links)
	if err != nil {
		return nil, err
	}
	if len(segs) == 0 {
		r.add(Finding{Severity: Warning, Code: CodeNoSegment,
			Message: "no interface facing the segment (up, doing ARP, with an address of its own) was found, so the per-interface settings were not checked and no probe ran; name it with Segment"})
	}
	if len(c.v4) > 0 {
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
	}
	var ndpSegs []*link
	if len(c.v6) > 0 {
		ndpSegs, err = checkIPv6Segments(&c, links, segs, r)
		if err != nil {
			return nil, err
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
	if len(c.v4) > 0 {
		checkARP(ctx, &c, segs, r)
	}
	if len(c.v6) > 0 {
		checkNDP(ctx, &c, ndpSegs, r)
	}

	// 6. L3 modes: decapsulation and the advertised MSS.
	if err := checkL3(ctx, &c, r); err != nil {
		return nil, err
	}
	return r, nil
}

// checkIPv6Segments judges what makes a segment interface drop IPv6 or
// answer neighbour solicitations for a VIP: disable_ipv6, proxy_ndp, and
// proxy neighbour entries for the VIPs (on any interface). It returns the
// segment interfaces where IPv6 is on, for the probe.
func checkIPv6Segments(c *config, links, segs []*link, r *Report) ([]*link, error) {
	proxies, err := listProxies(links)
	if err != nil {
		return nil, err
	}
	// answering reports whether dev proxies neighbour discovery now:
	// the kernel answers for a proxy entry only with forwarding and
	// proxy_ndp (all or dev) on.
	answering := func(dev string) (bool, error) {
		fwd, err := sysctl.Conf(sysctl.IPv6, dev, "forwarding")
		if err != nil {
			return false, fmt.Errorf("realserver: %w", err)
		}
		on, err := readSysctlInt(fwd)
		if err != nil || on == 0 {
			return false, err
		}
		allKey, devKey, err := paramProxyNDP.keys(dev)
		if err != nil {
			return false, err
		}
		a, err := readSysctlInt(allKey)
		if err != nil {
			return false, err
		}
		d, err := readSysctlInt(devKey)
		return err == nil && !paramProxyNDP.ok(paramProxyNDP.eff(a, d)), err
	}
	vipProxy := func(dev string) bool {
		for _, p := range proxies {
			if p.dev == dev && slices.Contains(c.v6, p.addr) {
				return true
			}
		}
		return false
	}
	var on []*link
	for _, s := range segs {
		f, err := checkParam(paramDisableIPv6, s.name)
		if err != nil {
			return nil, err
		}
		if f != nil {
			f.Message = fmt.Sprintf("IPv6 is disabled on the segment interface %s (disable_ipv6=1): it drops the IPv6 requests the balancer forwards", s.name)
			r.add(*f)
		} else {
			on = append(on, s)
		}
		if f, err = checkParam(paramProxyNDP, s.name); err != nil {
			return nil, err
		}
		if f != nil {
			ans, err := answering(s.name)
			if err != nil {
				return nil, err
			}
			if ans && vipProxy(s.name) {
				f.Severity = Error
				f.Message += ": with forwarding on and a proxy entry for a VIP, the server answers for the VIP now and steals it from the balancer"
			}
			r.add(*f)
		}
	}
	for _, vip := range c.v6 {
		for _, p := range proxies {
			if p.addr != vip || p.dev == "" {
				continue
			}
			ans, err := answering(p.dev)
			if err != nil {
				return nil, err
			}
			f := Finding{Severity: Warning, Code: CodeProxyNeighbour, VIP: vip, Interface: p.dev,
				Message: fmt.Sprintf("a proxy neighbour entry for %v exists on %s: with proxy_ndp and forwarding on, the server answers neighbour solicitations for the VIP and steals it from the balancer", vip, p.dev),
				Fix:     []string{fixProxyDel(vip, p.dev)}}
			if ans {
				f.Severity = Error
				f.Message = fmt.Sprintf("a proxy neighbour entry for %v on %s, with proxy_ndp and forwarding on: the server answers neighbour solicitations for the VIP and steals it from the balancer", vip, p.dev)
			}
			r.add(f)
		}
	}
	return on, nil
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
	case paramProxyNDP.name:
		f.Severity, f.Code = Warning, CodeProxyNDP
		f.Message = fmt.Sprintf("proxy_ndp is on for %s (all=%d, %s=%d): any proxy neighbour entry for a VIP makes the server answer for it", dev, all, dev, d)
	case paramDisableIPv6.name:
		f.Code = CodeIPv6Disabled
		f.Message = fmt.Sprintf("IPv6 is disabled on %s (disable_ipv6=%d)", dev, d)
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
	v4 := c.v4
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
			judgeOwners(r, vip, s.name, c.BalancerMAC, seen[vip])
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

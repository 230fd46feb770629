//go:build linux

package dsr

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"strings"

	"github.com/vishvananda/netlink"
)

// CheckHost reports what on this host would make its kernel handle VIP
// traffic next to the balancer: with the VIP on one of its interfaces the
// kernel accepts VIP packets itself (and answers them, typically with
// resets); with IP forwarding on it routes a second copy of each VIP
// packet. Either way clients see duplicates or broken connections.
//
// ifname is the interface the balancer forwards on. CheckHost inspects the
// network namespace of the calling thread, so run it where the balancer
// runs. A nil result means nothing was found.
func CheckHost(ifname string, vips []netip.Addr) ([]HostProblem, error) {
	if _, err := net.InterfaceByName(ifname); err != nil {
		return nil, fmt.Errorf("dsr: host check: %w", err)
	}
	want := make(map[netip.Addr]bool, len(vips))
	var has4, has6 bool
	for _, v := range vips {
		v = v.Unmap()
		want[v] = true
		has4 = has4 || v.Is4()
		has6 = has6 || v.Is6()
	}

	var problems []HostProblem
	addrs, err := netlink.AddrList(nil, netlink.FAMILY_ALL)
	if err != nil {
		return nil, fmt.Errorf("dsr: host check: listing addresses: %w", err)
	}
	for _, a := range addrs {
		ip, ok := netip.AddrFromSlice(a.IP)
		if !ok || !want[ip.Unmap()] {
			continue
		}
		ip = ip.Unmap()
		dev := fmt.Sprintf("interface %d", a.LinkIndex)
		if l, err := netlink.LinkByIndex(a.LinkIndex); err == nil {
			dev = l.Attrs().Name
		}
		bits, _ := a.Mask.Size()
		problems = append(problems, HostProblem{
			Severity: HostError,
			Problem: fmt.Sprintf("VIP %s is configured on %s of the balancer's host: its kernel would accept "+
				"and answer VIP traffic itself instead of leaving it to the balancer", ip, dev),
			Fix: fmt.Sprintf("ip addr del %s/%d dev %s", ip, bits, dev),
		})
	}

	if has4 {
		p, err := forwardingProblem("net.ipv4.ip_forward", "net/ipv4/ip_forward", "IPv4")
		if err != nil {
			return nil, err
		}
		if p == nil {
			p, err = forwardingProblem("net.ipv4.conf."+sysctlIfname(ifname)+".forwarding",
				"net/ipv4/conf/"+ifname+"/forwarding", "IPv4")
			if err != nil {
				return nil, err
			}
		}
		if p != nil {
			problems = append(problems, *p)
		}
	}
	if has6 {
		p, err := forwardingProblem("net.ipv6.conf.all.forwarding", "net/ipv6/conf/all/forwarding", "IPv6")
		if err != nil {
			return nil, err
		}
		if p != nil {
			problems = append(problems, *p)
		}
	}
	return problems, nil
}

// forwardingProblem reads a forwarding sysctl (name as sysctl(8) spells it,
// path below /proc/sys); a missing one (IPv6 disabled) is no problem.
func forwardingProblem(name, path, family string) (*HostProblem, error) {
	b, err := os.ReadFile("/proc/sys/" + path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("dsr: host check: reading %s: %w", name, err)
	}
	if strings.TrimSpace(string(b)) == "0" {
		return nil, nil
	}
	return &HostProblem{
		Severity: HostError,
		Problem: fmt.Sprintf("%s forwarding is on (%s=%s): the balancer's kernel would route its own copy of "+
			"every VIP packet it receives", family, name, strings.TrimSpace(string(b))),
		Fix: fmt.Sprintf("sysctl -w %s=0", name),
	}, nil
}

// sysctlIfname writes an interface name as a sysctl path component: dots
// (VLAN interfaces such as eth0.42) become slashes.
func sysctlIfname(ifname string) string { return strings.ReplaceAll(ifname, ".", "/") }

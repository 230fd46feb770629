package main

import (
	"fmt"
	"net"
	"net/netip"

	"github.com/dsrlb/dsrlb/dsr"
)

// L3 DSR in the daemon's YAML: a service (or one of its backends) with
// mode ipip or gue is encapsulated to the backends' addresses,
//
//	services:
//	  - vip: 192.0.2.100
//	    protocol: tcp
//	    port: 80
//	    mode: gue          # l2 (default), ipip or gue
//	    gue_port: 6080     # default 6080
//	    gateway: 203.0.113.1   # next hop toward the servers; default: the backends are on the segment
//	    source: 203.0.113.2    # outer source; default: the interface's first address of the VIP's family
//	    backends:
//	      - addr: 198.51.100.21
//	      - addr: 198.51.100.22
//	        mode: ipip     # per backend
//
// and the servers run `realserver prepare --mode gue --balancer 203.0.113.2`.

// parseL3 reads the L3 fields of service sc into svc (field f names the
// service in errors); backend modes are read by parseBackendMode.
func parseL3(sc *ServiceConfig, svc *dsr.Service, f string, fail func(string, string, ...any) error) error {
	m, err := dsr.ParseMode(sc.Mode)
	if err != nil {
		return fail(f+".mode", "%q: want l2, ipip or gue", sc.Mode)
	}
	svc.Mode, svc.GUEPort = m, sc.GUEPort
	if sc.Gateway != "" {
		gw, err := netip.ParseAddr(sc.Gateway)
		if err != nil {
			return fail(f+".gateway", "%q is not an IP address", sc.Gateway)
		}
		svc.Gateway = gw.Unmap()
	}
	if sc.Source != "" {
		src, err := netip.ParseAddr(sc.Source)
		if err != nil {
			return fail(f+".source", "%q is not an IP address", sc.Source)
		}
		svc.TunnelSource = src.Unmap()
	}
	return nil
}

func parseBackendMode(s string, be *dsr.Backend, bf string, fail func(string, string, ...any) error) error {
	m, err := dsr.ParseMode(s)
	if err != nil {
		return fail(bf+".mode", "%q: want l2, ipip or gue", s)
	}
	be.Mode = m
	return nil
}

// needsSource reports whether svc encapsulates (for some backend) without
// a configured outer source.
func needsSource(svc *dsr.Service) bool {
	if svc.TunnelSource.IsValid() {
		return false
	}
	if svc.Mode.L3() {
		return true
	}
	for _, be := range svc.Backends {
		if be.Mode.L3() {
			return true
		}
	}
	return false
}

// placeholderSource stands in for the interface's address while a file is
// only validated (the interface may not exist where it is checked).
func placeholderSource(vip netip.Addr) netip.Addr {
	if vip.Is6() {
		return netip.MustParseAddr("2001:db8::1")
	}
	return netip.MustParseAddr("192.0.2.1")
}

// interfaceSource returns the first global unicast address of the VIP's
// family on the interface ifname: the default outer source.
func interfaceSource(ifname string, vip netip.Addr) (netip.Addr, error) {
	ifi, err := net.InterfaceByName(ifname)
	if err != nil {
		return netip.Addr{}, err
	}
	addrs, err := ifi.Addrs()
	if err != nil {
		return netip.Addr{}, err
	}
	for _, a := range addrs {
		n, ok := a.(*net.IPNet)
		if !ok {
			continue
		}
		ip, ok := netip.AddrFromSlice(n.IP)
		if ok && ip.Unmap().Is4() == vip.Is4() && ip.Unmap().IsGlobalUnicast() {
			return ip.Unmap(), nil
		}
	}
	return netip.Addr{}, fmt.Errorf("interface %s has no global address of the VIP's family: set source", ifname)
}

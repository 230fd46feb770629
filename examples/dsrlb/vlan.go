package main

import (
	"errors"
	"fmt"
	"maps"
	"net/netip"
	"slices"

	"github.com/dsrlb/dsrlb/dsr"
)

// parseVLANSources reads health.vlan_sources into l.VLANSources.
func (l *Loaded) parseVLANSources() error {
	src := l.File.Health.VLANSources
	if len(src) == 0 {
		return nil
	}
	l.VLANSources = make(map[uint16][]netip.Addr, len(src))
	for i, vs := range src {
		f := fmt.Sprintf("health.vlan_sources[%d]", i)
		if vs.VLAN == 0 || vs.VLAN > dsr.MaxVLAN {
			return l.errorAt(f+".vlan", fmt.Errorf("%d out of range 1..%d", vs.VLAN, dsr.MaxVLAN))
		}
		if _, dup := l.VLANSources[vs.VLAN]; dup {
			return l.errorAt(f+".vlan", fmt.Errorf("VLAN %d is listed twice", vs.VLAN))
		}
		var v4, v6 bool
		l.VLANSources[vs.VLAN] = nil
		for j, s := range vs.Addrs {
			af := fmt.Sprintf("%s.addrs[%d]", f, j)
			a, err := netip.ParseAddr(s)
			if err != nil || a.IsUnspecified() || a.IsMulticast() || a.IsLoopback() {
				return l.errorAt(af, fmt.Errorf("%q is not a unicast IP address", s))
			}
			a = a.Unmap()
			if (a.Is4() && v4) || (a.Is6() && v6) {
				return l.errorAt(af, fmt.Errorf("a second address of %s's family", a))
			}
			v4, v6 = v4 || a.Is4(), v6 || a.Is6()
			l.VLANSources[vs.VLAN] = append(l.VLANSources[vs.VLAN], a)
		}
	}
	return nil
}

// checkVLANSource refuses a dsr check of a service on a VLAN without a
// probe source of its VIP's family there: the probe's answer could not
// come back.
func (l *Loaded) checkVLANSource(field string, cc CheckConfig, svc dsr.Service) error {
	if cc.Type != "dsr" || svc.VLAN == 0 {
		return nil
	}
	for _, a := range l.VLANSources[svc.VLAN] {
		if a.Is4() == svc.VIP.Unmap().Is4() {
			return nil
		}
	}
	family := "IPv4"
	if !svc.VIP.Unmap().Is4() {
		family = "IPv6"
	}
	return l.errorAt(field, fmt.Errorf("a dsr check on VLAN %d needs an %s probe source address on that VLAN: add one to health.vlan_sources (an unused address of the backends' subnet on VLAN %d)", svc.VLAN, family, svc.VLAN))
}

// uniqueName refuses a service name already taken: names label the
// services' metrics, and two services (the same VIP on two VLANs, say)
// under one name would be one series.
func (l *Loaded) uniqueName(field, name string) error {
	for k, n := range l.Names {
		if n == name {
			return l.errorAt(field+".name", fmt.Errorf("%q already names service %s: names must be unique", name, k))
		}
	}
	return nil
}

// checkVLANsWithHA refuses services on VLANs together with an ha section:
// the VRRP router and its gate serve the untagged VLAN only.
func (l *Loaded) checkVLANsWithHA() error {
	if l.File.HA == nil {
		return nil
	}
	for i, s := range l.Services {
		if s.VLAN != 0 {
			return l.errorAt(fmt.Sprintf("services[%d].vlan", i), fmt.Errorf("services on VLANs cannot be combined with ha: VRRP runs on the untagged VLAN only"))
		}
	}
	return nil
}

// errVLANSourcesChanged refuses a reload that changes health.vlan_sources
// once the dsr check runs: its socket keeps the sources it was opened with.
var errVLANSourcesChanged = errors.New("changed since the dsr check started: its probe sources are fixed while it runs; restart the daemon to apply")

// sameVLANSources reports whether two parsed vlan_sources are equal.
func sameVLANSources(a, b map[uint16][]netip.Addr) bool {
	return maps.EqualFunc(a, b, slices.Equal[[]netip.Addr])
}

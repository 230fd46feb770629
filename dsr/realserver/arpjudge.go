package realserver

import (
	"fmt"
	"net"
	"net/netip"
	"strings"
)

// judgeOwners turns the MACs that claimed vip on dev (ARP replies for IPv4,
// neighbour advertisements for IPv6) into findings.
func judgeOwners(r *Report, vip netip.Addr, dev string, balancer net.HardwareAddr, macs []net.HardwareAddr) {
	proto, conflict, noOwner := "ARP", CodeARPConflict, CodeARPNoOwner
	steal := "remove %v from its ARP interfaces and set arp_ignore=1"
	if vip.Is6() {
		proto, conflict, noOwner = "neighbour solicitations", CodeNDPConflict, CodeNDPNoOwner
		steal = "remove %v from its segment interfaces, delete proxy neighbour entries for it and set proxy_ndp=0"
	}
	list := func(ms []net.HardwareAddr) string {
		s := make([]string, len(ms))
		for i, m := range ms {
			s[i] = m.String()
		}
		return strings.Join(s, ", ")
	}
	if balancer != nil {
		var others []net.HardwareAddr
		found := false
		for _, m := range macs {
			if m.String() == balancer.String() {
				found = true
			} else {
				others = append(others, m)
			}
		}
		if len(others) > 0 {
			r.add(Finding{Severity: Error, Code: conflict, VIP: vip, Interface: dev,
				Message: fmt.Sprintf("%s answer %s for %v besides the balancer %v: they steal the VIP", list(others), proto, vip, balancer),
				Fix:     []string{fmt.Sprintf("on the host with %s: run this check there, or "+steal, list(others), vip)}})
		}
		if !found {
			r.add(Finding{Severity: Warning, Code: CodeBalancerSilent, VIP: vip, Interface: dev,
				Message: fmt.Sprintf("the balancer %v does not answer %s for %v on %s: is it announcing the VIP?", balancer, proto, vip, dev),
				Fix:     []string{"start the balancer with " + vip.String() + " as a service VIP on this segment"}})
		}
		return
	}
	switch len(macs) {
	case 0:
		r.add(Finding{Severity: Warning, Code: noOwner, VIP: vip, Interface: dev,
			Message: fmt.Sprintf("nobody owns %v on the segment of %s: is the balancer announcing it?", vip, dev),
			Fix:     []string{"start the balancer with " + vip.String() + " as a service VIP on this segment"}})
	case 1:
	default:
		r.add(Finding{Severity: Error, Code: conflict, VIP: vip, Interface: dev,
			Message: fmt.Sprintf("%d hosts answer %s for %v (%s): all but the balancer steal the VIP", len(macs), proto, vip, list(macs)),
			Fix:     []string{"run this check with the balancer's MAC to name the thieves, then fix them with prepare"}})
	}
}

package realserver

import (
	"fmt"
	"net"
	"net/netip"
)

// judgeARP turns the MACs that answered for vip into findings.
func judgeARP(r *Report, vip netip.Addr, dev string, balancer net.HardwareAddr, macs []net.HardwareAddr) {
	list := func(ms []net.HardwareAddr) string {
		s := ""
		for i, m := range ms {
			if i > 0 {
				s += ", "
			}
			s += m.String()
		}
		return s
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
			r.add(Finding{Severity: Error, Code: CodeARPConflict, VIP: vip, Interface: dev,
				Message: fmt.Sprintf("%s answer ARP for %v besides the balancer %v: they steal the VIP", list(others), vip, balancer),
				Fix:     []string{fmt.Sprintf("on the host with %s: run this check there, or remove %v from its ARP interfaces and set arp_ignore=1", list(others), vip)}})
		}
		if !found {
			r.add(Finding{Severity: Warning, Code: CodeBalancerSilent, VIP: vip, Interface: dev,
				Message: fmt.Sprintf("the balancer %v does not answer ARP for %v on %s: is it announcing the VIP?", balancer, vip, dev),
				Fix:     []string{"start the balancer with " + vip.String() + " as a service VIP on this segment"}})
		}
		return
	}
	switch len(macs) {
	case 0:
		r.add(Finding{Severity: Warning, Code: CodeARPNoOwner, VIP: vip, Interface: dev,
			Message: fmt.Sprintf("nobody owns %v on the segment of %s: is the balancer announcing it?", vip, dev),
			Fix:     []string{"start the balancer with " + vip.String() + " as a service VIP on this segment"}})
	case 1:
	default:
		r.add(Finding{Severity: Error, Code: CodeARPConflict, VIP: vip, Interface: dev,
			Message: fmt.Sprintf("%d hosts answer ARP for %v (%s): all but the balancer steal the VIP", len(macs), vip, list(macs)),
			Fix:     []string{"run this check with the balancer's MAC to name the thieves, then fix them with prepare"}})
	}
}

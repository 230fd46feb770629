package dsr

import (
	"fmt"
	"net/netip"
	"strconv"

	"github.com/dsrlb/dsrlb/arp"
	"github.com/dsrlb/dsrlb/internal/frame"
)

// VLAN trunks.
//
// A Balancer on a trunk port sees the frames of several VLANs on one
// interface. Every Service names its VLAN (Service.VLAN); the VLAN is part
// of the service's key, so the same VIP and port can be one service per
// VLAN, each with its own backends.
//
// Matching: a frame's VLAN is the VLAN ID of its (one) 802.1Q or 802.1ad
// tag. Untagged frames and priority-tagged frames (VLAN ID 0, which 802.1Q
// defines as "no VLAN, only a priority") are VLAN 0, the native VLAN. A
// frame matches only the services of its VLAN: a tagged frame never reaches
// an untagged service and an untagged frame never reaches a tagged one, as
// a trunk user expects (VLANs are separate networks that merely share the
// cable). A tag the kernel stripped on receive (VLAN offload) is put back
// by the packet socket from its PACKET_AUXDATA before the decision.
//
// Forwarding rewrites only the MAC addresses: the tag, priority and DEI
// bits included, stays as the client sent it, so the frame leaves on the
// VLAN it came from, where the service's backends are.
//
// Flows: the flow table is keyed by the 5-tuple. A flow-table entry whose
// backend belongs to another VLAN than the packet's (the same 5-tuple on
// two VLANs) is not followed: the packet is scheduled by its own VLAN's
// service, as the XDP program does too.

// MaxVLAN is the largest VLAN ID a Service may name. 4095 is reserved by
// 802.1Q.
const MaxVLAN = 4094

// frameVLAN is the VLAN a parsed frame belongs to: its tag's VLAN ID, 0 when
// untagged or priority-tagged.
func frameVLAN(p *frame.Packet) uint16 {
	if !p.Tagged {
		return 0
	}
	return p.VLANID()
}

// vlanSuffix is how names show a VLAN: "" for the untagged VLAN, else
// "@vlanN".
func vlanSuffix(vlan uint16) string {
	if vlan == 0 {
		return ""
	}
	return "@vlan" + strconv.Itoa(int(vlan))
}

// nbKey names a neighbour: an address on a VLAN. The same address on two
// VLANs is two hosts.
type nbKey struct {
	addr netip.Addr
	vlan uint16
}

// onVLAN is how messages name a VLAN: "" for the untagged VLAN, else
// " on VLAN N".
func onVLAN(vlan uint16) string {
	if vlan == 0 {
		return ""
	}
	return " on VLAN " + strconv.Itoa(int(vlan))
}

// vlanVIPs lists every VIP with its VLAN, once each, in configuration
// order. Called with b.mu held.
func (b *Balancer) vlanVIPs() []arp.VIP {
	seen := map[arp.VIP]bool{}
	var out []arp.VIP
	for _, key := range b.order {
		v := arp.VIP{Addr: key.VIP, VLAN: key.VLAN}
		if !seen[v] {
			seen[v] = true
			out = append(out, v)
		}
	}
	return out
}

// validateVLANs refuses services on a VLAN when the configured Neighbours
// cannot serve VLANs: their VIPs would go unanswered and their backends
// unresolved.
func (b *Balancer) validateVLANs(next []Service) error {
	if b.cfg.ARP == nil {
		return nil
	}
	if _, ok := b.cfg.ARP.(VLANNeighbours); ok {
		return nil
	}
	for i := range next {
		if next[i].VLAN != 0 {
			return fieldErr(fmt.Sprintf("services[%d].vlan", i), "VLAN %d needs a Config.ARP that serves VLANs (a dsr.VLANNeighbours such as *arp.Speaker); %T does not", next[i].VLAN, b.cfg.ARP)
		}
	}
	return nil
}

// hasVLANs reports whether a service of the snapshot is on a VLAN.
func hasVLANs(s *snapshot) bool {
	for lk := range s.services {
		if lk.vlan != 0 {
			return true
		}
	}
	return false
}

package dsr

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"slices"

	"github.com/dsrlb/dsrlb/arp"
)

// Neighbours is what a Balancer needs of the component that owns its VIPs
// on the segment and resolves its backends' MACs: ARP for IPv4 and
// neighbour discovery for IPv6. *arp.Speaker implements it; an application
// can wrap one (to withdraw the VIPs on a standby, say) or bring its own.
type Neighbours interface {
	// SetVIPs replaces the addresses to answer for and announce.
	SetVIPs(vips []netip.Addr)
	// SetBackends replaces the addresses to resolve (a backend with a
	// configured MAC is not resolved).
	SetBackends(backends []arp.Backend)
	// AddEventHandler subscribes fn to resolutions, MAC changes and
	// conflicts until remove is called.
	AddEventHandler(fn func(arp.Event)) (remove func())
	// Run serves until ctx is done.
	Run(ctx context.Context) error
}

// VLANNeighbours is a Neighbours that serves VIPs on VLANs of a trunk
// (*arp.Speaker does). A Balancer whose Config.ARP implements it hands it
// every VIP with its service's VLAN and every backend with its VLAN
// (arp.Backend.VLAN), and expects the VLAN of each event in arp.Event.VLAN.
// With a Neighbours that does not implement it, services on a VLAN are
// refused.
type VLANNeighbours interface {
	Neighbours
	// SetVLANVIPs replaces the VIPs to answer for and announce, each on
	// its VLAN (0: untagged). It replaces what SetVIPs set.
	SetVLANVIPs(vips []arp.VIP)
}

var (
	_ Neighbours     = (*arp.Speaker)(nil)
	_ VLANNeighbours = (*arp.Speaker)(nil)
)

func (b *Balancer) onARPEvent(e arp.Event) {
	vlan := e.VLAN
	if _, ok := b.cfg.ARP.(VLANNeighbours); !ok {
		vlan = 0 // a speaker without VLANs says nothing of them
	}
	switch e.Kind {
	case arp.Resolved, arp.MACChanged:
		if err := b.SetVLANBackendMAC(vlan, e.Addr, e.MAC); err != nil && !errors.Is(err, ErrNotFound) {
			b.log.Error("applying a resolved MAC failed", "backend", e.Addr, "vlan", vlan, "err", err)
		}
	case arp.Unresolved:
		_ = b.SetVLANBackendMAC(vlan, e.Addr, nil)
		b.mu.Lock()
		b.emit(Event{Kind: EventUnresolved, Backend: e.Addr, VLAN: vlan, MAC: e.OldMAC, At: e.At,
			Reason: fmt.Errorf("no answer to address resolution for %s%s: the backend takes no new flows", e.Addr, onVLAN(vlan))})
		b.unlockAndFlush()
	case arp.Conflict:
		b.mu.Lock()
		b.emit(Event{Kind: EventVIPConflict, VIP: e.Addr, VLAN: vlan, MAC: e.MAC, Backend: e.Backend, At: e.At,
			Reason: conflictReason(e, vlan)})
		b.unlockAndFlush()
	}
}

func conflictReason(e arp.Event, vlan uint16) error {
	on := onVLAN(vlan)
	if e.Backend.IsValid() {
		if e.Addr.Is6() {
			return fmt.Errorf("backend %s (%s) answers neighbour solicitations for VIP %s%s: the VIP must be on its loopback, not on the interface facing the segment (see dsr/realserver)", e.Backend, e.MAC, e.Addr, on)
		}
		return fmt.Errorf("backend %s (%s) answers ARP for VIP %s%s: set arp_ignore=1 and arp_announce=2 on it (see dsr/realserver)", e.Backend, e.MAC, e.Addr, on)
	}
	return fmt.Errorf("host %s claims VIP %s%s: another balancer, or a host with the VIP on a non-loopback interface", e.MAC, e.Addr, on)
}

// syncARP gives the ARP speaker the current VIPs and backends (IPv4 ones
// are served with ARP, IPv6 ones with neighbour discovery). Called with b.mu
// held.
func (b *Balancer) syncARP() {
	sp := b.cfg.ARP
	if sp == nil {
		return
	}
	if vsp, ok := sp.(VLANNeighbours); ok {
		vsp.SetVLANVIPs(b.vlanVIPs())
	} else {
		sp.SetVIPs(b.snap.Load().vipList)
	}
	seen := map[nbKey]bool{}
	var bes []arp.Backend
	for _, key := range b.order {
		svc := &b.services[key].svc
		for _, be := range svc.Backends {
			// An L3 backend's frames go to its next hop: that is the
			// address to resolve.
			hop := nextHopOf(svc, &be)
			k := nbKey{addr: hop, vlan: svc.VLAN}
			if seen[k] {
				continue
			}
			seen[k] = true
			// The configured MAC only: a resolved one is the speaker's own.
			bes = append(bes, arp.Backend{Addr: hop, MAC: slices.Clone(be.MAC), VLAN: svc.VLAN})
		}
	}
	sp.SetBackends(bes)
}

// SetBackendMAC records the hardware address of the backend addr on the
// untagged VLAN (in every untagged service that has it), or of the next hop
// addr of L3 backends (their gateway, or themselves when on the segment),
// as learned by an address resolver. A MAC configured in the Service takes
// precedence. Nil forgets the address: a backend with no MAC takes no new
// flows. Backends of services on a VLAN are set with SetVLANBackendMAC.
func (b *Balancer) SetBackendMAC(addr netip.Addr, mac net.HardwareAddr) error {
	return b.SetVLANBackendMAC(0, addr, mac)
}

// SetVLANBackendMAC is SetBackendMAC for the backend addr of the services
// on vlan: the same address on two VLANs is two hosts.
func (b *Balancer) SetVLANBackendMAC(vlan uint16, addr netip.Addr, mac net.HardwareAddr) error {
	addr = addr.Unmap()
	if mac != nil && (len(mac) != 6 || mac[0]&1 != 0) {
		return &ConfigError{Field: "mac", Err: fmt.Errorf("%s is not a unicast Ethernet address", mac)}
	}
	b.mu.Lock()
	defer b.unlockAndFlush()
	found := false
	for _, key := range b.order {
		if key.VLAN != vlan {
			continue
		}
		svc := &b.services[key].svc
		for _, be := range svc.Backends {
			if be.Addr == addr || nextHopOf(svc, &be) == addr {
				found = true
			}
		}
	}
	if !found {
		return fmt.Errorf("%w: backend %s%s", ErrNotFound, addr, onVLAN(vlan))
	}
	k := nbKey{addr: addr, vlan: vlan}
	old := b.resolved[k]
	if string(old) == string(mac) {
		return nil
	}
	if mac == nil {
		delete(b.resolved, k)
	} else {
		b.resolved[k] = append(net.HardwareAddr(nil), mac...)
		b.emit(Event{Kind: EventMACResolved, Backend: addr, VLAN: vlan, MAC: b.resolved[k], At: b.cfg.Clock()})
	}
	b.recompile()
	b.reconcileHealth()
	return nil
}

package dsr

import (
	"errors"
	"fmt"
	"net"
	"net/netip"

	"github.com/dsrlb/dsrlb/arp"
)

// attachARP makes the Balancer follow sp's events: resolved and changed MACs
// feed forwarding, unresolved backends lose their MAC, conflicts become
// EventVIPConflict.
func (b *Balancer) attachARP(sp *arp.Speaker) {
	sp.AddEventHandler(b.onARPEvent)
}

func (b *Balancer) onARPEvent(e arp.Event) {
	switch e.Kind {
	case arp.Resolved, arp.MACChanged:
		if err := b.SetBackendMAC(e.Addr, e.MAC); err != nil && !errors.Is(err, ErrNotFound) {
			b.log.Error("applying a resolved MAC failed", "backend", e.Addr, "err", err)
		}
	case arp.Unresolved:
		_ = b.SetBackendMAC(e.Addr, nil)
		b.mu.Lock()
		b.emit(Event{Kind: EventUnresolved, Backend: e.Addr, MAC: e.OldMAC, At: e.At,
			Reason: fmt.Errorf("no answer to address resolution for %s: the backend takes no new flows", e.Addr)})
		b.unlockAndFlush()
	case arp.Conflict:
		b.mu.Lock()
		b.emit(Event{Kind: EventVIPConflict, VIP: e.Addr, MAC: e.MAC, Backend: e.Backend, At: e.At,
			Reason: conflictReason(e)})
		b.unlockAndFlush()
	}
}

func conflictReason(e arp.Event) error {
	if e.Backend.IsValid() {
		if e.Addr.Is6() {
			return fmt.Errorf("backend %s (%s) answers neighbour solicitations for VIP %s: the VIP must be on its loopback, not on the interface facing the segment (see dsr/realserver)", e.Backend, e.MAC, e.Addr)
		}
		return fmt.Errorf("backend %s (%s) answers ARP for VIP %s: set arp_ignore=1 and arp_announce=2 on it (see dsr/realserver)", e.Backend, e.MAC, e.Addr)
	}
	return fmt.Errorf("host %s claims VIP %s: another balancer, or a host with the VIP on a non-loopback interface", e.MAC, e.Addr)
}

// syncARP gives the ARP speaker the current VIPs and backends (IPv4 ones
// are served with ARP, IPv6 ones with neighbour discovery). Called with b.mu
// held.
func (b *Balancer) syncARP() {
	sp := b.cfg.ARP
	if sp == nil {
		return
	}
	sp.SetVIPs(b.snap.Load().vipList)
	seen := map[netip.Addr]bool{}
	var bes []arp.Backend
	for _, key := range b.order {
		for _, be := range b.services[key].svc.Backends {
			if seen[be.Addr] {
				continue
			}
			seen[be.Addr] = true
			bes = append(bes, arp.Backend{Addr: be.Addr, MAC: append(net.HardwareAddr(nil), be.MAC...)})
			if be.MAC == nil {
				bes[len(bes)-1].MAC = nil
			}
		}
	}
	sp.SetBackends(bes)
}

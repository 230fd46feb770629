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

var _ Neighbours = (*arp.Speaker)(nil)

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
		svc := &b.services[key].svc
		for _, be := range svc.Backends {
			// An L3 backend's frames go to its next hop: that is the
			// address to resolve.
			hop := nextHopOf(svc, &be)
			if seen[hop] {
				continue
			}
			seen[hop] = true
			// The configured MAC only: a resolved one is the speaker's own.
			bes = append(bes, arp.Backend{Addr: hop, MAC: slices.Clone(be.MAC)})
		}
	}
	sp.SetBackends(bes)
}

// SetBackendMAC records the hardware address of the backend addr (in every
// service that has it), or of the next hop addr of L3 backends (their
// gateway, or themselves when on the segment), as learned by an address
// resolver. A MAC configured
// in the Service takes precedence. Nil forgets the address: a backend with
// no MAC takes no new flows.
func (b *Balancer) SetBackendMAC(addr netip.Addr, mac net.HardwareAddr) error {
	addr = addr.Unmap()
	if mac != nil && (len(mac) != 6 || mac[0]&1 != 0) {
		return &ConfigError{Field: "mac", Err: fmt.Errorf("%s is not a unicast Ethernet address", mac)}
	}
	b.mu.Lock()
	defer b.unlockAndFlush()
	found := false
	for _, key := range b.order {
		svc := &b.services[key].svc
		for _, be := range svc.Backends {
			if be.Addr == addr || nextHopOf(svc, &be) == addr {
				found = true
			}
		}
	}
	if !found {
		return fmt.Errorf("%w: backend %s", ErrNotFound, addr)
	}
	old := b.resolved[addr]
	if string(old) == string(mac) {
		return nil
	}
	if mac == nil {
		delete(b.resolved, addr)
	} else {
		b.resolved[addr] = append(net.HardwareAddr(nil), mac...)
		b.emit(Event{Kind: EventMACResolved, Backend: addr, MAC: b.resolved[addr], At: b.cfg.Clock()})
	}
	b.recompile()
	b.reconcileHealth()
	return nil
}

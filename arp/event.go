package arp

import (
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"time"
)

// EventKind says what an Event reports. The zero value is invalid, so an
// Event that was never filled in is recognisable.
type EventKind uint8

// Event kinds.
const (
	// Conflict: a host other than us claimed a VIP we serve (it answered
	// our probe or a client's request, or announced the VIP). Event.Addr is
	// the VIP, Event.MAC the claimant, Event.Backend the backend owning
	// that MAC if it is known. Traffic for the VIP is (partly) going there.
	Conflict EventKind = iota + 1
	// Resolved: a backend answered our ARP request (or Neighbor
	// Solicitation) for the first time, or
	// again after being Unresolved. Event.Addr is the backend, Event.MAC
	// its hardware address (Event.OldMAC the previous one, if any).
	Resolved
	// MACChanged: a resolved backend now answers with another MAC.
	// Event.MAC is the new address, Event.OldMAC the old one; forwarding
	// must follow.
	MACChanged
	// Unresolved: a backend did not answer ResolveAttempts requests in a
	// row. It should get no new flows until it is Resolved again.
	// Event.OldMAC is the last MAC it had, if any.
	Unresolved
)

// String returns the kind's name, for logs and metrics labels.
func (k EventKind) String() string {
	switch k {
	case Conflict:
		return "conflict"
	case Resolved:
		return "resolved"
	case MACChanged:
		return "mac-changed"
	case Unresolved:
		return "unresolved"
	}
	return fmt.Sprintf("EventKind(%d)", uint8(k))
}

// Event is something the Speaker observed that its owner must act on. The
// hardware addresses are copies the receiver may keep.
type Event struct {
	// Kind is what happened.
	Kind EventKind
	// Addr is the VIP (Conflict) or the backend (all other kinds).
	Addr netip.Addr
	// VLAN is the VLAN ID Addr is on (the tag of the frames that told);
	// zero means untagged.
	VLAN uint16
	// MAC is the claimant (Conflict) or the backend's current address.
	MAC net.HardwareAddr
	// OldMAC is the backend's previous address, nil if none was known.
	OldMAC net.HardwareAddr
	// Backend is, for Conflict, the backend whose MAC claimed the VIP;
	// invalid when the MAC belongs to no known backend (a second balancer,
	// a stray host).
	Backend netip.Addr
	// At is when the Speaker observed it.
	At time.Time
}

// String formats the event for logs; an event on a VLAN ends in
// " on VLAN N".
func (e Event) String() string {
	if e.VLAN != 0 {
		return e.describe() + fmt.Sprintf(" on VLAN %d", e.VLAN)
	}
	return e.describe()
}

func (e Event) describe() string {
	switch e.Kind {
	case Conflict:
		if e.Backend.IsValid() {
			return fmt.Sprintf("conflict: VIP %s claimed by %s (backend %s)", e.Addr, e.MAC, e.Backend)
		}
		return fmt.Sprintf("conflict: VIP %s claimed by %s (not a known backend)", e.Addr, e.MAC)
	case MACChanged:
		return fmt.Sprintf("mac-changed: backend %s moved from %s to %s", e.Addr, e.OldMAC, e.MAC)
	case Resolved:
		return fmt.Sprintf("resolved: backend %s is at %s", e.Addr, e.MAC)
	case Unresolved:
		if e.Addr.Is6() {
			return fmt.Sprintf("unresolved: backend %s does not answer neighbour solicitations", e.Addr)
		}
		return fmt.Sprintf("unresolved: backend %s does not answer ARP", e.Addr)
	}
	return e.Kind.String()
}

// LogAttrs returns the event's facts as separate attributes for structured
// logs: "event" names the kind ("arp-" or "ndp-" and EventKind.String, by
// the address family), then "vip" (Conflict) or "backend" (the other
// kinds), "mac", "old_mac", "claimed_by_backend" and "vlan", each present
// only when set. The Speaker logs every event with them. The slice is new
// on each call.
func (e Event) LogAttrs() []slog.Attr {
	proto := "arp-"
	if e.Addr.Is6() {
		proto = "ndp-"
	}
	attrs := make([]slog.Attr, 0, 6)
	attrs = append(attrs, slog.String("event", proto+e.Kind.String()))
	if e.Addr.IsValid() {
		key := "backend"
		if e.Kind == Conflict {
			key = "vip"
		}
		attrs = append(attrs, slog.String(key, e.Addr.String()))
	}
	if e.MAC != nil {
		attrs = append(attrs, slog.String("mac", e.MAC.String()))
	}
	if e.OldMAC != nil {
		attrs = append(attrs, slog.String("old_mac", e.OldMAC.String()))
	}
	if e.Backend.IsValid() {
		attrs = append(attrs, slog.String("claimed_by_backend", e.Backend.String()))
	}
	if e.VLAN != 0 {
		attrs = append(attrs, slog.Int("vlan", int(e.VLAN)))
	}
	return attrs
}

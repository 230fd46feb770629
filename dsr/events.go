package dsr

import (
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"time"
)

// EventKind says what an Event reports.
type EventKind uint8

const (
	// EventBackendDown: a backend's health checks failed; it takes no new
	// flows and its established flows are rescheduled. Reason says why.
	EventBackendDown EventKind = iota + 1
	// EventBackendUp: a backend's health checks pass again.
	EventBackendUp
	// EventBackendDrained: a draining backend has no flows left, or its
	// drain deadline passed (Reason is then set).
	EventBackendDrained
	// EventBelowMinHealthy: fewer backends of a service are healthy than its
	// MinHealthy: the application should withdraw the VIP (for example stop
	// announcing it so a peer balancer takes over).
	EventBelowMinHealthy
	// EventMinHealthyRestored: the service has MinHealthy healthy backends
	// again.
	EventMinHealthyRestored
	// EventFailOpen: every backend of a FailOpen service is unhealthy; the
	// service keeps using the last healthy set rather than dropping.
	EventFailOpen
	// EventSYNRetransmits: clients retransmit SYNs on many flows of this
	// backend — the passive sign of a DSR black hole (the server does not
	// answer, or its answers do not reach the clients). Count is the number
	// of retransmitted SYNs in the last interval.
	EventSYNRetransmits
	// EventMACResolved: a backend's MAC address was learned (or changed);
	// MAC holds it.
	EventMACResolved
	// EventUnresolved: a backend's MAC address could not be resolved: it
	// takes no new flows.
	EventUnresolved
	// EventVIPConflict: another host claims a VIP on the segment. MAC is the
	// other host's; Backend is set when that MAC belongs to a known backend
	// (a real server answering ARP for the VIP: arp_ignore is wrong there).
	EventVIPConflict
)

var eventNames = map[EventKind]string{
	EventBackendDown:        "backend-down",
	EventBackendUp:          "backend-up",
	EventBackendDrained:     "backend-drained",
	EventBelowMinHealthy:    "below-min-healthy",
	EventMinHealthyRestored: "min-healthy-restored",
	EventFailOpen:           "fail-open",
	EventSYNRetransmits:     "syn-retransmits",
	EventMACResolved:        "mac-resolved",
	EventUnresolved:         "unresolved",
	EventVIPConflict:        "vip-conflict",
}

func (k EventKind) String() string {
	if n, ok := eventNames[k]; ok {
		return n
	}
	return fmt.Sprintf("EventKind(%d)", uint8(k))
}

// Event is something the control plane noticed that an operator or the
// application may act on. Fields that do not apply to the Kind are zero.
type Event struct {
	Kind    EventKind
	At      time.Time
	Service ServiceKey
	Backend netip.Addr
	VIP     netip.Addr
	MAC     net.HardwareAddr
	// VLAN is the VLAN ID of VIP (EventVIPConflict) or Backend
	// (EventMACResolved, EventUnresolved) for events of address
	// resolution; zero means untagged. Events about a service carry its
	// VLAN in Service.VLAN.
	VLAN   uint16
	Reason error
	Count  int
}

func (e Event) String() string {
	s := e.Kind.String()
	if e.Service.VIP.IsValid() {
		s += " service=" + e.Service.String()
	}
	if e.Backend.IsValid() {
		s += " backend=" + e.Backend.String()
	}
	if e.VIP.IsValid() {
		s += " vip=" + e.VIP.String()
	}
	if e.MAC != nil {
		s += " mac=" + e.MAC.String()
	}
	if e.VLAN != 0 {
		s += fmt.Sprintf(" vlan=%d", e.VLAN)
	}
	if e.Count != 0 {
		s += fmt.Sprintf(" count=%d", e.Count)
	}
	if e.Reason != nil {
		s += " reason=" + e.Reason.Error()
	}
	return s
}

// LogAttrs returns the event's facts as separate log attributes, for
// structured logs a pipeline can index: "event" names the kind (the stable
// key, with the values of EventKind.String), then "service", "backend",
// "vip", "mac", "count", "vlan" and "reason", each present only when the
// kind sets it. Embedders log it with slog.Logger.LogAttrs; the Balancer logs every
// event this way. The slice is new on each call.
func (e Event) LogAttrs() []slog.Attr {
	attrs := make([]slog.Attr, 0, 8)
	attrs = append(attrs, slog.String("event", e.Kind.String()))
	if e.Service.VIP.IsValid() {
		attrs = append(attrs, slog.String("service", e.Service.String()))
	}
	if e.Backend.IsValid() {
		attrs = append(attrs, slog.String("backend", e.Backend.String()))
	}
	if e.VIP.IsValid() {
		attrs = append(attrs, slog.String("vip", e.VIP.String()))
	}
	if e.MAC != nil {
		attrs = append(attrs, slog.String("mac", e.MAC.String()))
	}
	if e.Count != 0 {
		attrs = append(attrs, slog.Int("count", e.Count))
	}
	if e.VLAN != 0 {
		attrs = append(attrs, slog.Int("vlan", int(e.VLAN)))
	}
	if e.Reason != nil {
		attrs = append(attrs, slog.String("reason", e.Reason.Error()))
	}
	return attrs
}

// LogLevel is the level the Balancer logs the event at: Warn for the kinds
// that mean traffic is (or may be) lost or misdirected, Info for the rest.
func (e Event) LogLevel() slog.Level {
	switch e.Kind {
	case EventBackendDown, EventBelowMinHealthy, EventFailOpen, EventSYNRetransmits, EventUnresolved, EventVIPConflict:
		return slog.LevelWarn
	}
	return slog.LevelInfo
}

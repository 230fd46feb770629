package main

import (
	"net/netip"
	"strconv"
	"time"

	"github.com/dsrlb/dsrlb/dsr"
	buildinfo "github.com/dsrlb/dsrlb/internal/version"
)

// maxEvents bounds the recent-events list of the status page: enough for
// the story of an incident, small enough that a flapping backend cannot
// grow memory.
const maxEvents = 200

// recentEvent is one line of the status page's event list.
type recentEvent struct {
	At       time.Time
	Kind     string
	Service  dsr.ServiceKey // zero when the event is not about one service
	Backend  netip.Addr
	VIP      netip.Addr
	Detail   string
	Severity string // "ok", "warn" or "bad": the row's colour
}

// eventRing keeps the last maxEvents events, oldest overwritten first. Its
// owner locks it.
type eventRing struct {
	buf  []recentEvent
	next int
	full bool
}

func (r *eventRing) add(e recentEvent) {
	if r.buf == nil {
		r.buf = make([]recentEvent, maxEvents)
	}
	r.buf[r.next] = e
	r.next = (r.next + 1) % len(r.buf)
	if r.next == 0 {
		r.full = true
	}
}

// newestFirst returns a copy of the events, newest first.
func (r *eventRing) newestFirst() []recentEvent {
	n := r.next
	if r.full {
		n = len(r.buf)
	}
	out := make([]recentEvent, 0, n)
	for i := 1; i <= n; i++ {
		out = append(out, r.buf[(r.next-i+len(r.buf))%len(r.buf)])
	}
	return out
}

// backendKey names a backend within a service: a backend can belong to
// several services, each with its own health and state.
type backendKey struct {
	svc  dsr.ServiceKey
	addr netip.Addr
}

// stateMark is when a backend entered its current condition (state and
// health) and why.
type stateMark struct {
	state   dsr.BackendState
	healthy bool
	since   time.Time
	reason  string
}

// conflictInfo is what the daemon knows about other hosts claiming a VIP.
type conflictInfo struct {
	count   uint64
	lastAt  time.Time
	lastMAC string
	backend netip.Addr // the backend owning that MAC, if any
}

// reloadResult is the outcome of the last reload.
type reloadResult struct {
	At  time.Time
	OK  bool
	Err string
}

// eventFromDSR turns a Balancer event into a status-page line.
func eventFromDSR(e dsr.Event) recentEvent {
	r := recentEvent{At: e.At, Kind: e.Kind.String(), Service: e.Service, Backend: e.Backend, VIP: e.VIP, Severity: "warn"}
	if r.At.IsZero() {
		r.At = time.Now()
	}
	if e.Reason != nil {
		r.Detail = e.Reason.Error()
	}
	switch e.Kind {
	case dsr.EventBackendUp, dsr.EventMinHealthyRestored, dsr.EventMACResolved:
		r.Severity = "ok"
	case dsr.EventBackendDown, dsr.EventBelowMinHealthy, dsr.EventVIPConflict, dsr.EventUnresolved, dsr.EventFailOpen:
		r.Severity = "bad"
	}
	switch e.Kind {
	case dsr.EventVIPConflict:
		r.Detail = "claimed by " + e.MAC.String()
		if e.Backend.IsValid() {
			r.Detail += " (backend " + e.Backend.String() + ": its arp_ignore/arp_announce are wrong)"
		}
	case dsr.EventMACResolved:
		r.Detail = "MAC " + e.MAC.String()
	case dsr.EventBelowMinHealthy, dsr.EventMinHealthyRestored:
		r.Detail = plural(e.Count, "healthy backend")
	case dsr.EventSYNRetransmits:
		r.Detail = plural(e.Count, "retransmitted SYN") + " in the last interval: a possible DSR black hole"
	case dsr.EventBackendDrained:
		if r.Detail == "" {
			r.Detail = "no flows left"
		} else {
			r.Detail = "drain deadline passed: " + r.Detail
		}
	}
	if e.VLAN != 0 {
		// Address resolution and conflicts are per VLAN: the same address
		// may be another host on another VLAN.
		r.Detail += " on VLAN " + strconv.Itoa(int(e.VLAN))
	}
	return r
}

// buildVersion returns the module version and VCS revision the binary was
// built from (internal/version): "(devel)" for the version when the build
// recorded none.
func buildVersion() (version, revision string) {
	v := buildinfo.Get()
	return v.Version, v.Revision
}

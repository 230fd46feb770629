package dsr

import (
	"fmt"
	"net"
	"net/netip"
	"slices"
	"sync/atomic"

	"github.com/dsrlb/dsrlb/internal/frame"
)

// DropReason says why the Balancer did not forward a frame. Every frame that
// is not forwarded is counted under exactly one reason.
type DropReason uint8

const (
	// DropMalformed: the frame failed to parse; Stats.Malformed breaks it
	// down by parser error.
	DropMalformed DropReason = iota
	// DropOwnSource: the frame carries our own source MAC (our own
	// transmission seen again).
	DropOwnSource
	// DropForeignMAC: an IP frame whose destination MAC is not ours; some
	// other host on the segment owns it.
	DropForeignMAC
	// DropNotIP: neither IPv4, IPv6 nor ARP.
	DropNotIP
	// DropARP: an ARP frame. The forwarding path does not answer ARP: the
	// ARP speaker (Config.ARP) does, on its own socket.
	DropARP
	// DropNotVIP: the destination address is not a VIP.
	DropNotVIP
	// DropNoService: a VIP, but no service for the protocol and port (ICMP
	// echo to a VIP lands here too).
	DropNoService
	// DropFragment: an IP fragment dropped by the fragment policy, or one
	// that the hash policy could not assign to a single service.
	DropFragment
	// DropICMPNoFlow: an ICMP error about a flow the flow table does not
	// hold (or whose backend is gone).
	DropICMPNoFlow
	// DropNoBackend: the service has no backend that can take the flow.
	DropNoBackend
	// DropTransmit: the forwarder failed to transmit the frame.
	DropTransmit
	// DropTooBig: the packet would exceed the MTU once encapsulated for
	// an L3 backend. L3Stats says whether the client was answered.
	DropTooBig
	// DropEncap: the frame cannot be encapsulated for its L3 backend: a
	// super-frame other than TCP, a family other than the service's, no
	// room in the buffer.
	DropEncap
	numDropReasons
)

var dropNames = [numDropReasons]string{
	DropMalformed:  "malformed",
	DropOwnSource:  "own_source",
	DropForeignMAC: "foreign_dst_mac",
	DropNotIP:      "not_ip",
	DropARP:        "arp",
	DropNotVIP:     "not_vip",
	DropNoService:  "no_service",
	DropFragment:   "fragment",
	DropICMPNoFlow: "icmp_no_flow",
	DropNoBackend:  "no_backend",
	DropTransmit:   "transmit",
	DropTooBig:     "too_big",
	DropEncap:      "encap",
}

// String returns the reason's metric label, e.g. "no_backend".
func (r DropReason) String() string {
	if r < numDropReasons {
		return dropNames[r]
	}
	return fmt.Sprintf("DropReason(%d)", uint8(r))
}

// DropReasons lists every reason, for exporters that pre-declare labels.
func DropReasons() []DropReason {
	rs := make([]DropReason, numDropReasons)
	for i := range rs {
		rs[i] = DropReason(i)
	}
	return rs
}

// MalformedReasons returns every label Stats.Malformed may hold (the
// parser's errors), so that a metrics exporter can publish each from the
// start.
func MalformedReasons() []string {
	out := make([]string, 0, frame.NumErrors-1)
	for e := 1; e < frame.NumErrors; e++ {
		out = append(out, frame.Error(e).String())
	}
	return out
}

// Stats is a point-in-time copy of the Balancer's counters. Counters are
// monotonic from the moment the service or backend was added.
type Stats struct {
	// Received counts frames handed to the Balancer by its forwarders;
	// Forwarded those it sent on. Received = Forwarded + sum(Drops).
	Received, Forwarded uint64
	// Drops counts frames not forwarded, by reason.
	Drops map[DropReason]uint64
	// Malformed breaks DropMalformed down by parser error (its label).
	Malformed map[string]uint64
	// Flows is the number of flows in the flow table; FlowCapacity its
	// bound.
	Flows, FlowCapacity int
	// Stateless counts new flows forwarded without affinity state because
	// the flow table was full of established flows.
	Stateless uint64
	// L3 counts the work of L3 modes (encapsulation, path MTU).
	L3 L3Stats
	// Services holds one entry per configured service, in configuration
	// order.
	Services []ServiceStats
	// XDP holds the counters of the XDP programs of the XDPForwarders the
	// Balancer serves; nil without one. Their forwarded frames and drops
	// are also counted in Received, Forwarded and Drops, and their share in
	// every service and backend; the frames they pass up are counted by the
	// Go path when it handles them.
	XDP *XDPStats
}

// L3Stats are the counters of L3 (ModeIPIP, ModeGUE) forwarding.
type L3Stats struct {
	// Encapsulated counts frames forwarded encapsulated; a GSO super-frame
	// counts once, however many segments it was cut into.
	Encapsulated uint64
	// Segmented counts GSO super-frames cut into segments.
	Segmented uint64
	// TooBigAnswered counts packets too big once encapsulated that were
	// answered with ICMP fragmentation needed or ICMPv6 packet too big.
	TooBigAnswered uint64
	// TooBigLimited counts those not answered because the rate limit
	// (Config.TooBigRate) was reached.
	TooBigLimited uint64
	// TooBigUnanswered counts those never answered: IPv4 without DF
	// (the balancer does not fragment) and ICMP errors.
	TooBigUnanswered uint64
}

// ServiceStats are one service's counters.
type ServiceStats struct {
	Key            ServiceKey
	Packets, Bytes uint64
	Flows          uint64 // flows created
	Rescheduled    uint64 // flows moved because their backend went down or away, or reopened (a new connection on a closed flow's ports) while it drains
	Backends       []BackendStats
}

// BackendStats are one backend's counters within a service.
type BackendStats struct {
	Addr           netip.Addr
	MAC            net.HardwareAddr // configured or resolved (an L3 backend's next hop's); nil if unknown
	State          BackendState
	Healthy        bool   // all health checks pass (true without checks)
	HealthError    string // why a failing check fails
	Packets, Bytes uint64
	Flows          uint64 // flows created on (or moved to) this backend
	ActiveFlows    int64  // flows currently held in the flow table
	SYNRetransmits uint64 // SYNs seen again on flows it already holds
}

// trafficSlot is one worker's packet and byte counters, padded to a cache
// line so that two workers never write the same line.
type trafficSlot struct {
	packets, bytes atomic.Uint64
	_              [48]byte
}

type traffic struct{ slots []trafficSlot }

func newTraffic(workers int) traffic { return traffic{slots: make([]trafficSlot, workers)} }

func (t *traffic) addN(worker int, packets, bytes uint64) {
	s := &t.slots[worker]
	s.packets.Add(packets)
	s.bytes.Add(bytes)
}

func (t *traffic) sum() (packets, bytes uint64) {
	for i := range t.slots {
		packets += t.slots[i].packets.Load()
		bytes += t.slots[i].bytes.Load()
	}
	return
}

type serviceStats struct {
	traffic     traffic
	flows       atomic.Uint64
	rescheduled atomic.Uint64
	// Totals of the kernel data plane (XDP), stored by the control loop.
	dpFlows, dpRescheduled atomic.Uint64
}

type backendStats struct {
	traffic    traffic
	flows      atomic.Uint64
	active     atomic.Int64
	synRetrans atomic.Uint64
	dp         dpBackend // the kernel data plane's share
}

// dpBackend holds a backend's totals in the kernel data plane (XDP), stored
// by the control loop from the program's counters.
type dpBackend struct {
	packets, bytes, flows, synRetrans atomic.Uint64
	active                            atomic.Int64 // flows live there at the last count
}

func (d *dpBackend) store(packets, bytes, flows, syn uint64) {
	d.packets.Store(packets)
	d.bytes.Store(bytes)
	d.flows.Store(flows)
	d.synRetrans.Store(syn)
}

// totalFlows, totalActive and totalSYN add the kernel data plane's share
// to the Go path's.
func (s *backendStats) totalFlows() uint64 { return s.flows.Load() + s.dp.flows.Load() }
func (s *backendStats) totalActive() int64 { return s.active.Load() + s.dp.active.Load() }
func (s *backendStats) totalSYN() uint64   { return s.synRetrans.Load() + s.dp.synRetrans.Load() }

// workerCounters are the per-worker frame counters (drops by reason, parser
// errors, totals). Each worker slot is written by one worker at a time.
type workerCounters struct {
	received  atomic.Uint64
	forwarded atomic.Uint64
	stateless atomic.Uint64
	// L3 modes.
	encapsulated, segmented                         atomic.Uint64
	tooBigAnswered, tooBigLimited, tooBigUnanswered atomic.Uint64
	drops                                           [numDropReasons]atomic.Uint64
	malformed                                       [frame.NumErrors]atomic.Uint64
	_                                               [64]byte
}

// Stats returns a copy of all counters. It never pauses forwarding.
func (b *Balancer) Stats() Stats {
	// Live flows in a kernel data plane are counted by the control loop
	// once a second (a walk of its flow table), not on every call.
	xs := b.collectDataPlanes(b.snap.Load(), false)
	st := Stats{
		XDP:          xs,
		Drops:        make(map[DropReason]uint64, numDropReasons),
		Malformed:    map[string]uint64{},
		Flows:        b.flows.Len(),
		FlowCapacity: b.flows.Cap(),
	}
	for i := range b.workers {
		c := &b.workers[i]
		st.Received += c.received.Load()
		st.Forwarded += c.forwarded.Load()
		st.Stateless += c.stateless.Load()
		st.L3.Encapsulated += c.encapsulated.Load()
		st.L3.Segmented += c.segmented.Load()
		st.L3.TooBigAnswered += c.tooBigAnswered.Load()
		st.L3.TooBigLimited += c.tooBigLimited.Load()
		st.L3.TooBigUnanswered += c.tooBigUnanswered.Load()
		for r := range c.drops {
			st.Drops[DropReason(r)] += c.drops[r].Load()
		}
		for e := range c.malformed {
			if v := c.malformed[e].Load(); v > 0 {
				st.Malformed[frame.Error(e).String()] += v
			}
		}
	}
	if xs != nil {
		var dropped uint64
		for _, n := range xs.Dropped {
			dropped += n
		}
		st.Received += xs.Forwarded + dropped
		st.Forwarded += xs.Forwarded
		st.Drops[DropNoBackend] += xs.Dropped["no_backend"]
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, key := range b.order {
		ss := b.services[key]
		svc := ServiceStats{Key: key, Flows: ss.stats.flows.Load() + ss.stats.dpFlows.Load(),
			Rescheduled: ss.stats.rescheduled.Load() + ss.stats.dpRescheduled.Load()}
		svc.Packets, svc.Bytes = ss.stats.traffic.sum()
		for _, be := range ss.svc.Backends {
			bs := ss.backends[be.Addr]
			out := BackendStats{Addr: be.Addr, State: be.State, Flows: bs.stats.totalFlows(), ActiveFlows: bs.stats.totalActive(),
				Healthy: bs.healthy(), SYNRetransmits: bs.stats.totalSYN(), MAC: slices.Clone(hopMAC(&ss.svc, &be, b.resolved))}
			if err := bs.healthError(); err != nil {
				out.HealthError = err.Error()
			}
			out.Packets, out.Bytes = bs.stats.traffic.sum()
			out.Packets += bs.stats.dp.packets.Load()
			out.Bytes += bs.stats.dp.bytes.Load()
			svc.Packets += bs.stats.dp.packets.Load()
			svc.Bytes += bs.stats.dp.bytes.Load()
			svc.Backends = append(svc.Backends, out)
		}
		st.Services = append(st.Services, svc)
	}
	return st
}

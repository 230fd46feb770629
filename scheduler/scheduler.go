// Package scheduler defines how a load balancer picks a backend for a new
// flow, and ships the built-in schedulers operators know from IPVS.
//
// A Scheduler is built off the hot path from an immutable backend set (see
// New and Register) and then only answers Pick. Pick runs once per new flow on
// the forwarding path: it must be safe for concurrent use and must not
// allocate. Established flows never reach the scheduler; the balancer's flow
// table keeps them on their backend, so replacing a service's scheduler (or
// its backend set) never moves an established flow.
//
// # Built-in schedulers
//
// Names follow IPVS where IPVS has the algorithm. Weight zero always means
// draining: no new flows.
//
//   - "rr": round robin over the non-draining backends, in slice order.
//     Weights only mark draining.
//   - "wrr": smooth weighted round robin. Over every full cycle each backend
//     gets exactly its weight's share, and turns are interleaved (weights
//     5,1,1 give a a a b c a a).
//   - "lc", "wlc": least connections, plain or per unit of weight, fed by
//     FlowObserver. Exact for up to 8 active backends; above that, the less
//     loaded of two candidates drawn from the flow hash, so Pick stays O(1):
//     a backend more loaded than every other is then never picked, and the
//     busiest backend stays within O(log log N) flows of the mean.
//   - "sh": source hashing: every flow from one client address (with
//     Config.HashPorts, address and port) goes to one backend.
//   - "mh" (the Default): Maglev consistent hashing with weights. Balanced to
//     one table entry, deterministic across balancers with the same Config,
//     and removing one of N backends moves well under 1% of flows beyond the
//     removed backend's own when the table has at least 100 entries per
//     backend.
//   - "hrw": rendezvous (highest random weight) hashing with weights over a
//     precomputed bucket table. Minimal disruption (removing a backend moves
//     only its own flows) at the price of coarser balance than mh.
//
// rr and wrr rotate by the caller's Flow.Turn. The balancer keeps one turn
// counter per forwarding worker and service, so each worker rotates exactly
// and, with W workers, every backend stays within W new flows of its exact
// share, while no worker writes memory another one reads. A caller without
// turns gets one rotation shared exactly by all callers.
//
// rr and wrr read one entry of a precomputed rotation; lc and wlc read two
// (or up to eight) atomic counters; mh, sh and hrw read one table entry,
// keyed by the hashes the balancer computes once per new flow (Flow.Hash,
// Flow.SrcHash). All are lock-free and allocation-free.
//
// # Plugins
//
// A plugin implements Scheduler (and FlowObserver if it needs flow events),
// registers a Factory with Register, and proves itself with the conformance
// suite in package schedulertest.
package scheduler

import (
	"errors"
	"net/netip"
)

// Backend is what a scheduler knows of one backend.
type Backend struct {
	// Addr is the backend's IP address. Hashing schedulers use it to place
	// the backend, so the same set yields the same picks on every balancer.
	Addr netip.Addr
	// Weight is the backend's relative share of new flows. Zero means the
	// backend is draining: it must receive no new flows.
	Weight uint32
}

// Flow is the identity of a new flow offered to Pick. Addresses are unmapped
// (an IPv4 flow carries 4-byte addresses).
type Flow struct {
	Src, Dst         netip.Addr
	SrcPort, DstPort uint16
	// Proto is the IP protocol number (6 TCP, 17 UDP, ...). For fragments
	// under the hash policy the ports are zero.
	Proto uint8
	// Hash is a well-mixed 64-bit hash of the 5-tuple, computed once by the
	// balancer with its configured seed. Schedulers may use it instead of
	// hashing the fields themselves.
	Hash uint64
	// SrcHash, when nonzero, is a well-mixed 64-bit hash of Src alone,
	// computed once by the balancer with its configured seed (it never
	// sets zero). Source-hashing schedulers (sh) use it instead of reading
	// the address out of Src. Zero means unset: sh then hashes Src itself.
	// A caller must fill it for every flow or for none, or one client's
	// flows would be placed by two different hashes.
	SrcHash uint64
	// Turn, when nonzero, numbers this flow among the new flows that one
	// caller offers to one service: the balancer keeps a counter per
	// forwarding worker and service, never shared between workers, and
	// increments it before every Pick. Rotating schedulers (rr, wrr) take
	// their turn from it, so they need no counter written by every worker:
	// each worker walks the rotation exactly, and with W workers every
	// backend's count of new flows stays within W of its exact share. Zero
	// means unset: rr and wrr then take turns from one atomic counter shared
	// by all callers, which is exact across callers but costs an atomic
	// read-modify-write per Pick.
	Turn uint64
}

// Scheduler picks a backend for a new flow.
type Scheduler interface {
	// Pick returns the index, into the backend slice the scheduler was
	// built from, of the backend for f. ok is false when no backend can take
	// a new flow (empty set, or every weight zero). Pick is called
	// concurrently from forwarding workers and must not allocate.
	Pick(f *Flow) (index int, ok bool)
}

// FlowObserver is implemented by schedulers that need to know when flows
// start and end on a backend (least-connection family). The balancer calls
// FlowStarted after it commits a pick to its flow table, and FlowEnded when
// that flow expires or moves away. Both are called concurrently and must not
// allocate; indices outside the set must be ignored, not panic.
//
// A new scheduler starts from no flows. When the balancer replaces one (the
// set or the scheduler changed), it should call FlowStarted on the new one
// for every flow still in its flow table, or the least-connection schedulers
// will see established backends as idle until those flows end. The built-ins
// never let a count go below zero, so FlowEnded for a flow the scheduler
// never saw is harmless.
type FlowObserver interface {
	FlowStarted(index int)
	FlowEnded(index int)
}

// Config carries the options shared by the built-in schedulers. The zero
// value is valid; each field documents its default.
type Config struct {
	// Seed perturbs hashing schedulers. Two balancers with the same Seed
	// and the same backend set pick the same backend for the same flow.
	// Zero is a valid seed.
	Seed uint64
	// TableSize is the lookup table size of the table-based hashing
	// schedulers. For mh and sh it must be a prime at least as large as the
	// number of backends with a nonzero weight; for hrw it is the bucket
	// count and any value at least that large works. It is capped at 2^26.
	//
	// Zero picks a default from a fixed ladder of sizes: for mh and sh the
	// smallest prime at or above a power of two (65537, 131101, 262147, ...)
	// that is at least 100 times the number of active backends, for hrw the
	// smallest power of two (at least 2^14) that is at least 64 times that
	// number. Because the ladder is fixed, adding or removing a backend
	// changes the size only when the count crosses a rung, which reshuffles
	// every flow's hash placement; set TableSize explicitly to keep it
	// stable as the set grows.
	TableSize uint32
	// HashPorts makes the source-hash scheduler (sh) include the source
	// port, spreading one client's flows over backends. False (the default)
	// keeps every flow of a client address on one backend, as IPVS sh does.
	HashPorts bool
}

// Factory builds a Scheduler for a backend set. It is called off the hot
// path whenever the set or its weights change. The slice must not be
// retained past the call if the caller may modify it; built-ins copy.
type Factory func(backends []Backend, cfg Config) (Scheduler, error)

// ErrUnknown is returned by New for a name that is not registered.
var ErrUnknown = errors.New("scheduler: unknown scheduler")

// ErrInvalid is returned (wrapped) for a configuration a factory rejects.
var ErrInvalid = errors.New("scheduler: invalid configuration")

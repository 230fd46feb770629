// Package scheduler defines how a load balancer picks a backend for a new
// flow, and ships the built-in schedulers operators know from IPVS.
//
// A Scheduler is built off the hot path from an immutable backend set (see
// New and Register) and then only answers Pick. Pick runs once per new flow on
// the forwarding path: it must be safe for concurrent use and must not
// allocate. Established flows never reach the scheduler; the balancer's flow
// table keeps them on their backend.
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
// allocate.
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
	// TableSize is the lookup table size for table-based consistent hashing
	// (mh). It must be prime. Zero picks the smallest listed prime that is at
	// least 100 times the number of backends (and at least 65537).
	TableSize uint32
	// HashPorts makes the source-hash scheduler (sh) include the source port.
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

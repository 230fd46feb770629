package scheduler

// FlowKeyed is implemented by schedulers whose picks depend only on the
// flow — its addresses, ports and protocol, and the hashes the balancer
// computes from them — and on the backend set: never on Flow.Turn, on load,
// or on earlier picks. Offered the same flow twice, such a scheduler picks
// the same backend. A balancer relies on it to place fragments (every
// fragment of a datagram, offered with the same addresses and protocol, must
// reach one backend) and to say where a flow would go without offering it.
//
// mh, sh and hrw are flow-keyed; rr, wrr, lc and wlc are not. A plugin that
// does not implement the interface is taken not to be.
type FlowKeyed interface {
	// FollowsFlow reports whether the scheduler is flow-keyed. A wrapper
	// can answer for what it wraps.
	FollowsFlow() bool
}

// FollowsFlow reports whether s declares itself flow-keyed (see FlowKeyed).
func FollowsFlow(s Scheduler) bool {
	fk, ok := s.(FlowKeyed)
	return ok && fk.FollowsFlow()
}

// Placement says how a scheduler placed one flow, for people reading an
// explanation of a forwarding decision.
type Placement struct {
	// Index and OK are what Pick returns for the flow.
	Index int
	OK    bool
	// Slot is the lookup-table entry the flow hashed to, and TableSize the
	// table's size; both zero for schedulers without a table.
	Slot, TableSize int
	// Hash is the hash that selected the slot (the flow hash, or the source
	// hash for sh).
	Hash uint64
}

// Explainer is implemented by schedulers that can say how they place a
// flow. Explain must return the Index and OK that Pick would, and must not
// change the scheduler's state. The built-in hashing schedulers implement
// it.
type Explainer interface {
	Explain(f *Flow) Placement
}

// FollowsFlow implements FlowKeyed.
func (s *maglevHash) FollowsFlow() bool { return true }

// FollowsFlow implements FlowKeyed.
func (s *sourceHash) FollowsFlow() bool { return true }

// FollowsFlow implements FlowKeyed.
func (s *rendezvous) FollowsFlow() bool { return true }

// Explain implements Explainer.
func (s *maglevHash) Explain(f *Flow) Placement {
	return tablePlacement(s.table, f.Hash)
}

// Explain implements Explainer.
func (s *rendezvous) Explain(f *Flow) Placement {
	return tablePlacement(s.table, f.Hash)
}

// Explain implements Explainer.
func (s *sourceHash) Explain(f *Flow) Placement {
	return tablePlacement(s.table, s.hash(f))
}

func tablePlacement(table []int32, h uint64) Placement {
	if len(table) == 0 {
		return Placement{Hash: h}
	}
	slot := int(reduce(h, uint64(len(table))))
	return Placement{Index: int(table[slot]), OK: true, Slot: slot, TableSize: len(table), Hash: h}
}

// Tabled is implemented by schedulers whose pick is a lookup of the flow
// hash in a table: for every flow f, Pick(f) returns
// LookupTable()[Reduce(f.Hash, len(table))] (an entry below zero: no
// backend). A data plane that runs outside Go, such as an XDP program, can
// run such a scheduler from a copy of its table and the same hash. mh and
// hrw implement it. The table must not be modified.
type Tabled interface {
	LookupTable() []int32
}

// Reduce maps a 64-bit hash onto [0, n) by the high half of the 128-bit
// product h × n: the range reduction every hashing scheduler uses to pick
// a table slot.
func Reduce(h, n uint64) uint64 { return reduce(h, n) }

// LookupTable implements Tabled.
func (s *maglevHash) LookupTable() []int32 { return s.table }

// LookupTable implements Tabled.
func (s *rendezvous) LookupTable() []int32 { return s.table }

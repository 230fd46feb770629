package scheduler

import (
	"fmt"
	"sync/atomic"
)

func init() {
	Register("rr", newRoundRobin)
	Register("wrr", newWeightedRoundRobin)
}

// maxSequence bounds the precomputed wrr sequence. Weights whose reduced sum
// exceeds it (say 1 and 1,000,000) are served by the first maxSequence turns
// of the infinite smooth sequence: each backend's share is then still within
// 1/maxSequence of its weight share.
const maxSequence = 1 << 16

// sequence serves a precomputed cyclic order of backend indices. The
// caller's Flow.Turn indexes it when set: each caller (each forwarding
// worker) then walks the order exactly on its own and no memory is written
// by two workers, so Pick costs no more than a hash lookup. Without a turn
// a single shared atomic counter indexes it, and concurrent callers together
// walk the order exactly: no backend gets a second turn before the others
// had theirs, whatever the interleaving.
//
// Turns are taken modulo 2^32. When the sequence length does not divide
// 2^32, the cycle restarts early once every 4 billion picks: a single
// uneven round, which no operator can observe.
type sequence struct {
	next atomic.Uint32
	_    [60]byte // keep the hot counter off the read-only fields' cache line
	seq  []int32
	n    uint32
	m    uint64 // fastModM(n)
}

func newSequence(seq []int32) *sequence {
	s := &sequence{seq: seq, n: uint32(len(seq))}
	if s.n > 0 {
		s.m = fastModM(s.n)
	}
	return s
}

// Pick returns the next backend of the cycle: the one at the caller's
// Flow.Turn when it keeps turns (the balancer does, per worker), else the
// one at the shared counter. Only the turn is read from the flow.
func (s *sequence) Pick(f *Flow) (int, bool) {
	if s.n == 0 {
		return 0, false
	}
	var i uint32
	if f.Turn != 0 {
		i = uint32(f.Turn)
	} else {
		i = s.next.Add(1) - 1
	}
	return int(s.seq[fastMod(i, s.m, s.n)]), true
}

// newRoundRobin builds "rr": every backend with a nonzero weight in turn,
// in slice order. As in IPVS, weights only decide draining (zero) or not.
func newRoundRobin(backends []Backend, _ Config) (Scheduler, error) {
	if err := checkCount(backends); err != nil {
		return nil, fmt.Errorf("rr: %w", err)
	}
	seq := make([]int32, 0, len(backends))
	for i, b := range backends {
		if b.Weight > 0 {
			seq = append(seq, int32(i))
		}
	}
	return newSequence(seq), nil
}

// newWeightedRoundRobin builds "wrr": smooth weighted round robin. Over
// every full cycle each backend gets exactly its weight's share (weights are
// first divided by their greatest common divisor), and turns are spread out
// rather than bunched: weights 5,1,1 give a a a b c a a, not a a a a a b c.
func newWeightedRoundRobin(backends []Backend, _ Config) (Scheduler, error) {
	if err := checkCount(backends); err != nil {
		return nil, fmt.Errorf("wrr: %w", err)
	}
	var idx []int32
	var weight []uint64
	g := uint64(0)
	for i, b := range backends {
		if b.Weight > 0 {
			idx = append(idx, int32(i))
			weight = append(weight, uint64(b.Weight))
			g = gcd(g, uint64(b.Weight))
		}
	}
	if len(idx) == 0 {
		return newSequence(nil), nil
	}
	// At most 2^31 weights below 2^32 each: the sum fits in 64 bits.
	total := uint64(0)
	for p := range weight {
		weight[p] /= g
		total += weight[p]
	}
	length := max(maxSequence, len(idx))
	if total < uint64(length) {
		length = int(total)
	}
	seq := turnOrder(weight, uint64(length))
	for k, p := range seq {
		seq[k] = idx[p]
	}
	return newSequence(seq), nil
}

// checkCount rejects sets whose indices do not fit the int32 tables.
func checkCount(backends []Backend) error {
	if uint64(len(backends)) > 1<<31-1 {
		return fmt.Errorf("%w: %d backends", ErrInvalid, len(backends))
	}
	return nil
}

func gcd(a, b uint64) uint64 {
	for b != 0 {
		a, b = b, a%b
	}
	return a
}

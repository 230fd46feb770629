package scheduler

import (
	"fmt"
	"sync/atomic"
)

func init() {
	Register("lc", newLeastConn)
	Register("wlc", newWeightedLeastConn)
}

// exactScanMax is the largest active set that lc and wlc scan in full. A
// scan of up to eight counters costs about as much as two random cache
// misses, so small sets get the exact IPVS semantics for free.
const exactScanMax = 8

// leastConn implements "lc" and "wlc". It counts active flows per backend
// with atomics fed by the balancer through FlowObserver, and picks:
//
//   - with at most 8 active backends: exactly a least-loaded one (load is
//     active flows, divided by weight for wlc); ties are broken by the flow
//     hash so that a burst of new flows does not pile onto one backend
//     before its counter moves;
//   - with more: the less loaded of two distinct candidates drawn from the
//     flow hash ("power of two choices", Azar et al. 1994). Pick is then
//     O(1) instead of O(N). It never picks a backend more loaded than both
//     candidates, so a backend strictly more loaded than every other one
//     is never picked. In the balanced-allocations model the most loaded
//     backend then exceeds the mean by O(log log N), against
//     O(log N / log log N) for a random pick.
//
// Counters start at zero whenever the scheduler is rebuilt; FlowEnded never
// takes a counter below zero, so flows that started under a previous
// scheduler and end under this one cannot make a backend look lighter than
// idle.
type leastConn struct {
	active []int32        // backends with nonzero weight
	weight []uint64       // by backend index; all 1 for lc
	count  []atomic.Int64 // active flows, by backend index
}

func newLeastConn(backends []Backend, _ Config) (Scheduler, error) {
	s, err := buildLeastConn(backends, false)
	if err != nil {
		return nil, fmt.Errorf("lc: %w", err)
	}
	return s, nil
}

func newWeightedLeastConn(backends []Backend, _ Config) (Scheduler, error) {
	s, err := buildLeastConn(backends, true)
	if err != nil {
		return nil, fmt.Errorf("wlc: %w", err)
	}
	return s, nil
}

func buildLeastConn(backends []Backend, weighted bool) (*leastConn, error) {
	if err := checkCount(backends); err != nil {
		return nil, err
	}
	s := &leastConn{
		weight: make([]uint64, len(backends)),
		count:  make([]atomic.Int64, len(backends)),
	}
	for i, b := range backends {
		if b.Weight == 0 {
			continue
		}
		s.active = append(s.active, int32(i))
		s.weight[i] = 1
		if weighted {
			s.weight[i] = uint64(b.Weight)
		}
	}
	return s, nil
}

// load returns backend i's active flows, never negative.
func (s *leastConn) load(i int32) uint64 {
	return uint64(max(s.count[i].Load(), 0))
}

// lighter reports whether backend a carries less load per unit of weight
// than backend b: a/wa < b/wb, compared as a*wb < b*wa. Counts stay far
// below 2^31 and weights below 2^32, so the products fit.
func (s *leastConn) lighter(a, b int32) bool {
	return s.load(a)*s.weight[b] < s.load(b)*s.weight[a]
}

// Pick returns a least-loaded backend; see the type documentation for the
// exact guarantee.
func (s *leastConn) Pick(f *Flow) (int, bool) {
	n := uint64(len(s.active))
	switch {
	case n == 0:
		return 0, false
	case n <= exactScanMax:
		start := reduce(f.Hash, n)
		best := s.active[start]
		for k := uint64(1); k < n; k++ {
			p := start + k
			if p >= n {
				p -= n
			}
			if c := s.active[p]; s.lighter(c, best) {
				best = c
			}
		}
		return int(best), true
	default:
		pa := reduce(f.Hash, n)
		pb := reduce(mix64(f.Hash), n-1)
		if pb >= pa {
			pb++ // distinct from pa, still uniform over the others
		}
		a, b := s.active[pa], s.active[pb]
		if s.lighter(b, a) {
			return int(b), true
		}
		return int(a), true
	}
}

// FlowStarted counts a new flow on backend index. Indices outside the set
// are ignored.
func (s *leastConn) FlowStarted(index int) {
	if uint(index) < uint(len(s.count)) {
		s.count[index].Add(1)
	}
}

// FlowEnded uncounts a flow on backend index, never below zero. Indices
// outside the set are ignored.
func (s *leastConn) FlowEnded(index int) {
	if uint(index) >= uint(len(s.count)) {
		return
	}
	c := &s.count[index]
	for {
		v := c.Load()
		if v <= 0 || c.CompareAndSwap(v, v-1) {
			return
		}
	}
}

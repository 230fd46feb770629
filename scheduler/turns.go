package scheduler

import (
	"cmp"
	"slices"
)

// turnOrder returns the first m turns of a smooth weighted sequence over
// participants with the given nonzero weights. The k-th turn (from 0) of
// participant p is due at virtual time (k+1/2)/w_p; turns are taken in
// order of due time, ties in participant order. Consequences:
//
//   - every prefix is proportional to within one turn: when t turns have
//     been taken, p has had round(T*w_p) of them for a common T;
//   - heavy participants' turns are spread between light ones' (weights
//     5,1,1 give a a a b c a a, as nginx's smooth weighted round robin);
//     equal weights give plain rounds in participant order;
//   - a participant's due times depend only on its own weight, so adding
//     or removing another participant changes the order only by inserting
//     or deleting that participant's turns. Maglev relies on this to keep
//     disruption low.
//
// Due times are float64 quotients of exactly representable integers and
// IEEE 754 division is correctly rounded, so every platform computes the
// same order.
//
// Participants of equal weight have identical due times, so the work is
// done per distinct weight: O(m + n + E log E) where E is about
// m*(distinct weights)/n, which is small for the usual few weight classes.
func turnOrder(weight []uint64, m uint64) []int32 {
	n := uint64(len(weight))
	out := make([]int32, 0, m)
	if n == 0 || m == 0 {
		return out
	}
	sum := uint64(0)
	for _, w := range weight {
		sum += w // at most 2^31 weights below 2^32 each
	}

	// Classes of equal weight, each with its members in participant order.
	type class struct {
		w       uint64
		members []int32
	}
	byWeight := map[uint64]int{}
	var classes []class
	for p, w := range weight {
		c, ok := byWeight[w]
		if !ok {
			c = len(classes)
			byWeight[w] = c
			classes = append(classes, class{w: w})
		}
		classes[c].members = append(classes[c].members, int32(p))
	}
	if len(classes) == 1 {
		// Equal weights: rounds in participant order.
		for uint64(len(out)) < m {
			for p := range weight {
				if uint64(len(out)) == m {
					break
				}
				out = append(out, int32(p))
			}
		}
		return out
	}

	// One event per class and turn number. The m-th turn overall is due
	// by (m + n/2)/sum, and a class of weight w has at most
	// floor((m+n)*w/sum)+1 turns due by then: generate those. The product
	// stays below 2^64 while m+n < 2^32.
	type event struct {
		due float64
		c   int32
	}
	var events []event
	for c, cl := range classes {
		k := min((m+n)*cl.w/sum+1, m)
		fw := float64(cl.w)
		for j := uint64(0); j < k; j++ {
			events = append(events, event{(float64(j) + 0.5) / fw, int32(c)})
		}
	}
	slices.SortFunc(events, func(x, y event) int {
		if c := cmp.Compare(x.due, y.due); c != 0 {
			return c
		}
		return cmp.Compare(x.c, y.c)
	})
	var tied []int32
	for i := 0; i < len(events) && uint64(len(out)) < m; {
		j := i + 1
		for j < len(events) && events[j].due == events[i].due {
			j++
		}
		if j == i+1 {
			out = append(out, classes[events[i].c].members...)
		} else {
			// Classes due at the same time: their members interleave in
			// participant order.
			tied = tied[:0]
			for _, e := range events[i:j] {
				tied = append(tied, classes[e.c].members...)
			}
			slices.Sort(tied)
			out = append(out, tied...)
		}
		i = j
	}
	return out[:m]
}

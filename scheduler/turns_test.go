package scheduler

import (
	"fmt"
	"math/big"
	"math/rand/v2"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// referenceTurns is the definition of turnOrder, executed literally: at
// each step take the participant with the smallest (k+1/2)/w, compared as
// exact rationals, lowest participant on ties.
func referenceTurns(weight []uint64, m int) []int32 {
	turns := make([]int64, len(weight))
	out := make([]int32, 0, m)
	for len(out) < m {
		best := -1
		var bestDue *big.Rat
		for p, w := range weight {
			due := big.NewRat(2*turns[p]+1, 2*int64(w))
			if best < 0 || due.Cmp(bestDue) < 0 {
				best, bestDue = p, due
			}
		}
		out = append(out, int32(best))
		turns[best]++
	}
	return out
}

func TestTurnOrderMatchesDefinition(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 7))
	cases := [][]uint64{{1}, {5, 1, 1}, {1, 3}, {2, 1}, {3, 3, 1}, {1, 2, 3, 4, 5, 6}}
	for range 40 {
		w := make([]uint64, 1+r.IntN(12))
		for p := range w {
			w[p] = 1 + r.Uint64N(uint64(1+r.IntN(20)))
		}
		cases = append(cases, w)
	}
	for _, w := range cases {
		for _, m := range []int{1, 7, 100, 997} {
			t.Run(fmt.Sprint(w, m), func(t *testing.T) {
				got := turnOrder(w, uint64(m))
				require.Len(t, got, m)
				require.Equal(t, referenceTurns(w, m), got)
			})
		}
	}
}

func TestTurnOrderProportional(t *testing.T) {
	w := []uint64{1<<32 - 1, 1, 1 << 20, 7, 7, 7}
	const m = 65537
	got := turnOrder(w, m)
	require.Len(t, got, m)
	c := make([]float64, len(w))
	for _, p := range got {
		c[p]++
	}
	sum := 0.0
	for _, x := range w {
		sum += float64(x)
	}
	for p := range w {
		assert.InDelta(t, m*float64(w[p])/sum, c[p], 1, "participant %d", p)
	}
}

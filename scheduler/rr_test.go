package scheduler

import (
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func picks(t *testing.T, s Scheduler, n int) []int {
	t.Helper()
	out := make([]int, n)
	for k := range out {
		i, ok := s.Pick(&Flow{})
		require.True(t, ok)
		out[k] = i
	}
	return out
}

func TestRoundRobinOrder(t *testing.T) {
	s, err := newRoundRobin(testBackends(4, 1, 0, 5, 2), Config{})
	require.NoError(t, err)
	assert.Equal(t, []int{0, 2, 3, 0, 2, 3, 0}, picks(t, s, 7))
}

func TestWeightedRoundRobinSequence(t *testing.T) {
	cases := []struct {
		name    string
		weights []uint32
		want    []int
	}{
		{"smooth", []uint32{5, 1, 1}, []int{0, 0, 0, 1, 2, 0, 0}},
		{"gcd", []uint32{20, 10}, []int{0, 1, 0}},
		{"draining", []uint32{0, 3, 0, 1}, []int{1, 1, 3, 1}},
		{"equal", []uint32{4, 4, 4}, []int{0, 1, 2}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			bs := testBackends(len(tc.weights), tc.weights...)
			s, err := newWeightedRoundRobin(bs, Config{})
			require.NoError(t, err)
			assert.Len(t, s.(*sequence).seq, len(tc.want), "one period")
			assert.Equal(t, append(tc.want, tc.want...), picks(t, s, 2*len(tc.want)))
		})
	}
}

func TestWeightedRoundRobinLongPeriod(t *testing.T) {
	// The reduced period 1+1000003 exceeds maxSequence: the sequence is
	// truncated and the light backend still gets its (tiny) share.
	bs := testBackends(2, 1, 1000003)
	s, err := newWeightedRoundRobin(bs, Config{})
	require.NoError(t, err)
	seq := s.(*sequence).seq
	require.Len(t, seq, maxSequence)
	c := [2]int{}
	for _, i := range seq {
		c[i]++
	}
	assert.InDelta(t, float64(maxSequence)/1000004, c[0], 1)
}

func TestSequenceConcurrentExact(t *testing.T) {
	// Concurrent workers together walk the cycle exactly: after k full
	// cycles every backend had exactly k times its weight.
	bs := testBackends(4, 1, 2, 3, 4)
	s, err := newWeightedRoundRobin(bs, Config{})
	require.NoError(t, err)
	const workers, cycles = 4, 500
	var mu sync.Mutex
	got := make([]int, len(bs))
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			local := make([]int, len(bs))
			for range cycles * 10 / workers {
				i, _ := s.Pick(&Flow{})
				local[i]++
			}
			mu.Lock()
			defer mu.Unlock()
			for i, v := range local {
				got[i] += v
			}
		})
	}
	wg.Wait()
	assert.Equal(t, []int{cycles, 2 * cycles, 3 * cycles, 4 * cycles}, got)
}

func TestSequenceCounterWrap(t *testing.T) {
	s, err := newRoundRobin(testBackends(3, 1), Config{})
	require.NoError(t, err)
	seq := s.(*sequence)
	seq.next.Store(1<<32 - 2)
	// 2^32-2 = 2 mod 3, 2^32-1 = 0 mod 3, then the counter wraps to 0.
	assert.Equal(t, []int{2, 0, 0, 1}, picks(t, s, 4))
}

// TestSequenceTurns checks the per-caller path: a Flow.Turn indexes the
// rotation directly, the shared counter is neither read nor advanced, and
// several callers, each walking its own turns from its own start, together
// stay within one turn per caller of every backend's exact share.
func TestSequenceTurns(t *testing.T) {
	bs := testBackends(5, 5, 1, 0, 3, 1)
	for _, name := range []string{"rr", "wrr"} {
		t.Run(name, func(t *testing.T) {
			s, err := New(name, bs, Config{})
			require.NoError(t, err)
			seq := s.(*sequence)
			n := len(seq.seq)
			for turn := uint64(1); turn <= uint64(3*n); turn++ {
				i, ok := s.Pick(&Flow{Turn: turn})
				require.True(t, ok)
				require.Equal(t, int(seq.seq[turn%uint64(n)]), i, "turn %d", turn)
			}
			assert.Zero(t, seq.next.Load(), "turns leave the shared counter alone")

			// Four workers with scattered starts and unequal amounts of work.
			const workers = 4
			got := make([]int, len(bs))
			total := 0
			for w := range workers {
				turn := uint64(w+1) * 0x9e3779b97f4a7c15
				for range 1000 + 377*w {
					turn++
					i, _ := s.Pick(&Flow{Turn: turn})
					got[i]++
					total++
				}
			}
			var sum float64
			for _, b := range bs {
				if name == "rr" {
					sum += float64(min(b.Weight, 1))
				} else {
					sum += float64(b.Weight)
				}
			}
			for i, b := range bs {
				w := float64(b.Weight)
				if name == "rr" {
					w = float64(min(b.Weight, 1))
				}
				want := float64(total) * w / sum
				// One partial cycle per worker: at most one turn each
				// (wrr's smooth order keeps every prefix within one turn
				// of its share, rr's trivially).
				assert.InDelta(t, want, float64(got[i]), workers, "backend %d (weight %d)", i, b.Weight)
			}
		})
	}
}

// TestSequenceTurnsConcurrent picks with per-goroutine turns from many
// goroutines at once (run with -race): nothing is shared but the immutable
// order.
func TestSequenceTurnsConcurrent(t *testing.T) {
	s, err := New("wrr", testBackends(7, 1, 2, 3), Config{})
	require.NoError(t, err)
	var wg sync.WaitGroup
	counts := make([][]int, 4)
	for w := range counts {
		counts[w] = make([]int, 7)
		wg.Go(func() {
			for turn := uint64(1); turn <= 1200; turn++ {
				i, ok := s.Pick(&Flow{Turn: turn})
				if ok {
					counts[w][i]++
				}
			}
		})
	}
	wg.Wait()
	for w := 1; w < len(counts); w++ {
		assert.Equal(t, counts[0], counts[w], "equal turns give equal picks")
	}
}

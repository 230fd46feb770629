package scheduler

import (
	"math/rand/v2"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func newLC(t *testing.T, name string, bs []Backend) *leastConn {
	t.Helper()
	s, err := New(name, bs, Config{})
	require.NoError(t, err)
	return s.(*leastConn)
}

func start(s *leastConn, i, n int) {
	for range n {
		s.FlowStarted(i)
	}
}

func TestLeastConnExactSmallSets(t *testing.T) {
	cases := []struct {
		name    string
		sched   string
		weights []uint32
		load    []int
		want    []int // acceptable picks
	}{
		{"lc least", "lc", []uint32{1, 1, 1}, []int{5, 2, 9}, []int{1}},
		{"lc ignores weight", "lc", []uint32{1, 100, 1}, []int{5, 6, 9}, []int{0}},
		{"lc skips draining", "lc", []uint32{1, 0, 1}, []int{5, 0, 9}, []int{0}},
		{"lc tie", "lc", []uint32{1, 1, 1, 1}, []int{3, 1, 1, 4}, []int{1, 2}},
		{"wlc ratio", "wlc", []uint32{1, 4, 2}, []int{2, 7, 5}, []int{1}},    // 2, 1.75, 2.5
		{"wlc idle", "wlc", []uint32{1, 4, 2}, []int{0, 7, 5}, []int{0}},     // 0 beats all
		{"wlc draining", "wlc", []uint32{1, 0, 2}, []int{9, 0, 5}, []int{2}}, // 9, -, 2.5
	}
	flows := make([]Flow, 200)
	r := rand.New(rand.NewPCG(3, 3))
	for k := range flows {
		flows[k].Hash = r.Uint64()
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s := newLC(t, tc.sched, testBackends(len(tc.weights), tc.weights...))
			for i, n := range tc.load {
				start(s, i, n)
			}
			seen := map[int]bool{}
			for k := range flows {
				i, ok := s.Pick(&flows[k])
				require.True(t, ok)
				require.Contains(t, tc.want, i)
				seen[i] = true
			}
			assert.Len(t, seen, len(tc.want), "ties are broken by the flow hash, not always the same way")
		})
	}
}

func TestLeastConnCountsNeverNegative(t *testing.T) {
	s := newLC(t, "lc", testBackends(2, 1))
	s.FlowEnded(0) // a flow from before a rebuild
	s.FlowEnded(0)
	s.FlowStarted(1)
	assert.Equal(t, int64(0), s.count[0].Load())
	i, _ := s.Pick(&Flow{})
	assert.Equal(t, 0, i)
	// Out-of-range indices are ignored, not a panic.
	for _, i := range []int{-1, 2, 1 << 40} {
		s.FlowStarted(i)
		s.FlowEnded(i)
	}
}

func TestLeastConnLargeSetNeverPicksHeaviest(t *testing.T) {
	s := newLC(t, "wlc", testBackends(1000, 1, 2, 3))
	heavy := 500
	start(s, heavy, 100)
	r := rand.New(rand.NewPCG(4, 4))
	for range 20000 {
		i, ok := s.Pick(&Flow{Hash: r.Uint64()})
		require.True(t, ok)
		require.NotEqual(t, heavy, i)
	}
}

// TestLeastConnLargeSetBalance checks the stated power-of-two-choices
// bound: picking and starting 100 flows per backend, with a third of them
// ending at random, leaves the busiest backend within a few flows of the
// mean (a random pick leaves it about 30 above).
func TestLeastConnLargeSetBalance(t *testing.T) {
	const n, perBackend = 1000, 100
	s := newLC(t, "lc", testBackends(n, 1))
	r := rand.New(rand.NewPCG(5, 5))
	var live []int
	for range n * perBackend {
		i, ok := s.Pick(&Flow{Hash: r.Uint64()})
		require.True(t, ok)
		s.FlowStarted(i)
		live = append(live, i)
		if r.IntN(3) == 0 {
			k := r.IntN(len(live))
			s.FlowEnded(live[k])
			live[k] = live[len(live)-1]
			live = live[:len(live)-1]
		}
	}
	hi := int64(0)
	for i := range s.count {
		hi = max(hi, s.count[i].Load())
	}
	mean := float64(len(live)) / n
	t.Logf("busiest backend %d flows, mean %.1f", hi, mean)
	assert.LessOrEqual(t, float64(hi)-mean, 4.0, "max %d, mean %.1f", hi, mean)
}

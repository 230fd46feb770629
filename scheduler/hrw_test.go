package scheduler

import (
	"fmt"
	"math"
	"net/netip"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func hrwAddrs(t *testing.T, bs []Backend, cfg Config) []netip.Addr {
	t.Helper()
	s, err := newRendezvous(bs, cfg)
	require.NoError(t, err)
	tab := s.(*rendezvous).table
	out := make([]netip.Addr, len(tab))
	for j, i := range tab {
		out[j] = bs[i].Addr
	}
	return out
}

func TestRendezvousMinimalDisruption(t *testing.T) {
	for _, weights := range [][]uint32{{1}, {1, 3, 2, 8}} {
		t.Run(fmt.Sprint(weights), func(t *testing.T) {
			all := testBackends(101, weights...)
			cfg := Config{Seed: 11}
			before := hrwAddrs(t, all, cfg)
			for _, k := range []int{0, 37, 100} {
				without := append(append([]Backend(nil), all[:k]...), all[k+1:]...)
				after := hrwAddrs(t, without, cfg)
				require.Len(t, after, len(before), "bucket count is stable")
				for j := range before {
					if before[j] != all[k].Addr {
						require.Equal(t, before[j], after[j], "bucket %d moved off a remaining backend", j)
					} else {
						require.NotEqual(t, all[k].Addr, after[j])
					}
				}
			}
		})
	}
}

func TestRendezvousWeightIncreaseOnlyGains(t *testing.T) {
	bs := testBackends(20, 2)
	before := hrwAddrs(t, bs, Config{})
	bs[7].Weight = 5
	after := hrwAddrs(t, bs, Config{})
	gained := 0
	for j := range before {
		if before[j] != after[j] {
			require.Equal(t, bs[7].Addr, after[j], "bucket %d moved to a backend whose weight did not change", j)
			gained++
		}
	}
	assert.Positive(t, gained)
}

func TestRendezvousBalance(t *testing.T) {
	for _, weights := range [][]uint32{{1}, {1, 2, 3, 4}} {
		t.Run(fmt.Sprint(weights), func(t *testing.T) {
			bs := testBackends(100, weights...)
			s, err := newRendezvous(bs, Config{Seed: 2})
			require.NoError(t, err)
			tab := s.(*rendezvous).table
			c := make([]float64, len(bs))
			for _, i := range tab {
				c[i]++
			}
			total := 0.0
			for _, b := range bs {
				total += float64(b.Weight)
			}
			for i, b := range bs {
				want := float64(len(tab)) * float64(b.Weight) / total
				// Buckets won are binomial: allow five standard deviations.
				assert.InDelta(t, want, c[i], 5*math.Sqrt(want), "backend %d weight %d", i, b.Weight)
			}
		})
	}
}

func TestRendezvousBuckets(t *testing.T) {
	cases := []struct {
		n    int
		size uint32
		want int
		err  bool
	}{
		{1, 0, 1 << 14, false},
		{256, 0, 1 << 14, false},
		{257, 0, 1 << 15, false},
		{1000, 0, 1 << 16, false},
		{3, 10, 10, false},
		{3, 2, 0, true},
		{3, 1<<26 + 1, 0, true},
	}
	for _, tc := range cases {
		s, err := newRendezvous(testBackends(tc.n, 1), Config{TableSize: tc.size})
		if tc.err {
			assert.ErrorIs(t, err, ErrInvalid)
			continue
		}
		require.NoError(t, err)
		assert.Len(t, s.(*rendezvous).table, tc.want, "n=%d size=%d", tc.n, tc.size)
	}
}

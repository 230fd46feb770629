package scheduler

import (
	"fmt"
	"math/rand/v2"
	"net/netip"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// testBackends returns n backends with distinct addresses in 2001:db8::/32
// and the given weights, cycled.
func testBackends(n int, weights ...uint32) []Backend {
	bs := make([]Backend, n)
	for i := range bs {
		a := netip.AddrFrom16([16]byte{0x20, 0x01, 0x0d, 0xb8, 8: 0xbe, 12: byte(i >> 24), 13: byte(i >> 16), 14: byte(i >> 8), 15: byte(i)})
		bs[i] = Backend{Addr: a, Weight: weights[i%len(weights)]}
	}
	return bs
}

// addrTable builds an mh table and reads it as addresses, so tables of
// different sets can be compared entry by entry.
func addrTable(t *testing.T, bs []Backend, cfg Config) []netip.Addr {
	t.Helper()
	tab, err := maglevTable(bs, cfg)
	require.NoError(t, err)
	out := make([]netip.Addr, len(tab))
	for j, i := range tab {
		if i < 0 {
			t.Fatalf("entry %d left empty", j)
		}
		out[j] = bs[i].Addr
	}
	return out
}

func counts(t *testing.T, bs []Backend, cfg Config) ([]int, int) {
	t.Helper()
	tab, err := maglevTable(bs, cfg)
	require.NoError(t, err)
	c := make([]int, len(bs))
	for _, i := range tab {
		c[i]++
	}
	return c, len(tab)
}

func TestMaglevBalanceEqualWeights(t *testing.T) {
	for _, n := range []int{1, 2, 3, 10, 100, 1000} {
		for _, seed := range []uint64{0, 1, 0xdeadbeef} {
			t.Run(fmt.Sprintf("N=%d/seed=%d", n, seed), func(t *testing.T) {
				c, m := counts(t, testBackends(n, 7), Config{Seed: seed})
				assert.GreaterOrEqual(t, m, 100*n)
				lo, hi := c[0], c[0]
				for _, v := range c {
					lo, hi = min(lo, v), max(hi, v)
				}
				assert.LessOrEqual(t, hi-lo, 1, "per-backend entries range over [%d, %d]", lo, hi)
			})
		}
	}
}

func TestMaglevBalanceWeighted(t *testing.T) {
	cases := []struct {
		name    string
		n       int
		weights []uint32
	}{
		{"1to4", 10, []uint32{1, 2, 3, 4}},
		{"1to4x100", 100, []uint32{1, 2, 3, 4}},
		{"skewed", 5, []uint32{1, 50}},
		{"large", 1000, []uint32{10, 30, 20}},
		{"huge", 4, []uint32{1<<32 - 1, 1 << 31}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			bs := testBackends(tc.n, tc.weights...)
			c, m := counts(t, bs, Config{Seed: 9})
			total := 0.0
			for _, b := range bs {
				total += float64(b.Weight)
			}
			for i, b := range bs {
				target := float64(m) * float64(b.Weight) / total
				// Within one entry of the exact weighted share...
				assert.InDelta(t, target, float64(c[i]), 1.0, "backend %d weight %d", i, b.Weight)
				// ...which is within 1% whenever the share is at least 100
				// entries, the weighted form of M >= 100*N.
				if target >= 100 {
					assert.InEpsilon(t, target, float64(c[i]), 0.01, "backend %d weight %d", i, b.Weight)
				}
			}
		})
	}
}

func TestMaglevDisruption(t *testing.T) {
	for _, n := range []int{10, 100, 1000} {
		for _, weighted := range []bool{false, true} {
			t.Run(fmt.Sprintf("N=%d/weighted=%v", n, weighted), func(t *testing.T) {
				weights := []uint32{5}
				if weighted {
					weights = []uint32{3, 5, 2, 7}
				}
				// The configuration pins the size, as operators who change
				// their set do (see Config.TableSize).
				all := testBackends(n+1, weights...)
				cfg := Config{Seed: 3, TableSize: uint32(defaultMaglevSize(n + 1))}
				r := rand.New(rand.NewPCG(uint64(n), 1))
				for range 3 {
					k := r.IntN(n + 1)
					without := append(append([]Backend(nil), all[:k]...), all[k+1:]...)
					before := addrTable(t, all, cfg)
					after := addrTable(t, without, cfg)
					removed := all[k].Addr
					own, extra := 0, 0
					for j := range before {
						switch {
						case before[j] == removed:
							own++
						case before[j] != after[j]:
							extra++
						}
					}
					m := float64(len(before))
					assert.LessOrEqual(t, float64(extra)/m, 0.01,
						"removing 1 of %d moved %d entries beyond its own %d", n+1, extra, own)

					// Adding it back moves about its share: 1/(N+1) for
					// equal weights, and little besides.
					moved, toOthers := 0, 0
					for j := range before {
						if after[j] != before[j] {
							moved++
							if before[j] != removed {
								toOthers++
							}
						}
					}
					t.Logf("removing %v: own %.4f%%, others moved %.4f%%", removed, 100*float64(own)/m, 100*float64(extra)/m)
					share := float64(own) / m
					if !weighted {
						assert.InDelta(t, 1/float64(n+1), share, 1/m+1e-9)
					}
					assert.InDelta(t, share, float64(moved)/m, 0.01)
					assert.LessOrEqual(t, float64(toOthers)/m, 0.01)
				}
			})
		}
	}
}

func TestMaglevIndependentOfOrder(t *testing.T) {
	bs := testBackends(50, 1, 2, 3)
	want := addrTable(t, bs, Config{Seed: 77})
	shuffled := append([]Backend(nil), bs...)
	rand.New(rand.NewPCG(1, 2)).Shuffle(len(shuffled), func(i, j int) {
		shuffled[i], shuffled[j] = shuffled[j], shuffled[i]
	})
	assert.Equal(t, want, addrTable(t, shuffled, Config{Seed: 77}))
	assert.NotEqual(t, want, addrTable(t, bs, Config{Seed: 78}), "the seed must change placement")
}

func TestMaglevTableSize(t *testing.T) {
	cases := []struct {
		name   string
		n      int
		size   uint32
		want   int
		errStr string
	}{
		{"default small", 3, 0, 65537, ""},
		{"default at rung", 655, 0, 65537, ""},
		{"default above rung", 656, 0, 131101, ""},
		{"default 1000", 1000, 0, 131101, ""},
		{"explicit prime", 3, 251, 251, ""},
		{"equal to backends", 3, 3, 3, ""},
		{"not prime", 3, 1000, 0, "not prime"},
		{"one", 1, 1, 0, "not prime"},
		{"smaller than set", 10, 7, 0, "smaller"},
		{"too large", 1, 67108879, 0, "exceeds"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			tab, err := maglevTable(testBackends(tc.n, 1), Config{TableSize: tc.size})
			if tc.errStr != "" {
				require.ErrorIs(t, err, ErrInvalid)
				assert.ErrorContains(t, err, tc.errStr)
				return
			}
			require.NoError(t, err)
			assert.Len(t, tab, tc.want)
		})
	}
	for _, p := range maglevPrimes {
		assert.True(t, isPrime(uint64(p)), "%d", p)
	}
	assert.Equal(t, uint64(67108879), defaultMaglevSize(670000))
	assert.True(t, isPrime(defaultMaglevSize(700000)))
}

func TestMaglevPickUsesWholeTable(t *testing.T) {
	s, err := newMaglevHash(testBackends(3, 1), Config{TableSize: 7})
	require.NoError(t, err)
	seen := map[int]int{}
	r := rand.New(rand.NewPCG(5, 5))
	for range 3000 {
		i, ok := s.Pick(&Flow{Hash: r.Uint64()})
		require.True(t, ok)
		seen[i]++
	}
	assert.Len(t, seen, 3)
	// Extreme hashes stay in range.
	for _, h := range []uint64{0, 1, 1<<64 - 1} {
		i, ok := s.Pick(&Flow{Hash: h})
		assert.True(t, ok)
		assert.Contains(t, []int{0, 1, 2}, i)
	}
}

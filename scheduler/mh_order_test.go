package scheduler

import (
	"math/rand/v2"
	"net/netip"
	"testing"

	"github.com/stretchr/testify/require"
)

// tableAddrs reads a Maglev table as backend addresses, which is what two
// balancers must agree on (indices depend on each one's slice order).
func tableAddrs(t *testing.T, backends []Backend, cfg Config) []netip.Addr {
	t.Helper()
	table, err := maglevTable(backends, cfg)
	require.NoError(t, err)
	out := make([]netip.Addr, len(table))
	for i, idx := range table {
		out[i] = backends[idx].Addr
	}
	return out
}

// TestMaglevTableIndependentOfOrder builds the table from many permutations
// of one weighted backend set (with an inactive backend among them) and
// requires the same table, entry for entry, read as addresses.
func TestMaglevTableIndependentOfOrder(t *testing.T) {
	var backends []Backend
	for i := range 12 {
		backends = append(backends, Backend{
			Addr:   netip.AddrFrom4([4]byte{198, 51, 100, byte(200 - 7*i)}),
			Weight: uint32(i % 4), // one in four is inactive (weight 0)
		})
	}
	cfg := Config{Seed: 99, TableSize: 65537}
	want := tableAddrs(t, backends, cfg)
	rng := rand.New(rand.NewPCG(1, 2))
	for range 20 {
		perm := append([]Backend(nil), backends...)
		rng.Shuffle(len(perm), func(a, b int) { perm[a], perm[b] = perm[b], perm[a] })
		require.Equal(t, want, tableAddrs(t, perm, cfg))
	}
	// Not a constant table: another seed places the backends elsewhere.
	require.NotEqual(t, want, tableAddrs(t, backends, Config{Seed: 100, TableSize: 65537}))
}

package flowtable

import (
	"runtime"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestMemoryPerFlow measures what a one-million-flow table costs: the heap
// taken by New plus the slot memory it mapped outside the heap (see
// allocRegion), divided by MaxFlows, and checks that filling it allocates
// nothing more.
func TestMemoryPerFlow(t *testing.T) {
	if testing.Short() || raceEnabled {
		t.Skip("allocates about 80 MB and fills a million flows; skipped with -short and -race")
	}
	const maxFlows = 1 << 20
	var m0, m1, m2 runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&m0)
	mapped0 := mappedBytes.Load()
	tab := newTable(t, Config{MaxFlows: maxFlows})
	runtime.GC()
	runtime.ReadMemStats(&m1)

	mapped := uint64(mappedBytes.Load() - mapped0)
	size := m1.HeapAlloc - m0.HeapAlloc + mapped
	perFlow := float64(size) / maxFlows
	t.Logf("New(MaxFlows=%d): %.1f MiB (%.1f MiB mapped outside the heap), %.1f bytes per flow",
		maxFlows, float64(size)/(1<<20), float64(mapped)/(1<<20), perFlow)
	assert.LessOrEqual(t, perFlow, 96.0)
	assert.LessOrEqual(t, size, uint64(128<<20))

	state := uint64(42)
	for i := 0; i < maxFlows; i++ {
		k := randKey(&state)
		_, inserted, err := tab.Insert(&k, tab.Hash(&k), 0, uint32(i))
		require.NoError(t, err, "flow %d", i)
		require.True(t, inserted)
	}
	require.Equal(t, maxFlows, tab.Len())
	runtime.GC()
	runtime.ReadMemStats(&m2)
	assert.LessOrEqual(t, m2.HeapAlloc, m1.HeapAlloc+1<<20, "filling grew the heap")
	assert.Equal(t, mapped, uint64(mappedBytes.Load()-mapped0), "filling mapped memory")

	// Probe lengths at full load, for the record.
	var sum, maxPSL, n int
	for si := range tab.shards {
		for i := range tab.shards[si].slots {
			m := tab.shards[si].slots[i].w[4].Load()
			if m&metaLive != 0 {
				sum += pslOf(m) + 1
				maxPSL = max(maxPSL, pslOf(m))
				n++
			}
		}
	}
	t.Logf("full table: mean probes per hit %.2f, longest displacement %d (bound %d)", float64(sum)/float64(n), maxPSL, maxProbe-1)
	runtime.KeepAlive(tab)
}

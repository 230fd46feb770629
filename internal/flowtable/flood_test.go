package flowtable

import (
	"runtime"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestFloodKeepsEstablished fills the table with established flows, then
// offers ten times as many new random flows (a SYN flood from spoofed
// sources) and checks that no established flow was lost or moved, the
// table stayed within MaxFlows and no memory was allocated.
func TestFloodKeepsEstablished(t *testing.T) {
	for _, fill := range []struct {
		name string
		frac float64 // share of MaxFlows established before the flood
	}{{"full", 1}, {"half", 0.5}} {
		t.Run(fill.name, func(t *testing.T) {
			const maxFlows = 1 << 15
			tab := newTable(t, Config{MaxFlows: maxFlows, Shards: 64})
			state := uint64(1)
			var est []Key
			target := int(fill.frac * maxFlows)
			for len(est) < target {
				k := randKey(&state)
				h := tab.Hash(&k)
				_, inserted, err := tab.Insert(&k, h, 100, uint32(len(est)))
				require.NoError(t, err)
				require.True(t, inserted)
				_, ok := tab.Lookup(&k, h, 100, TCPFlagACK)
				require.True(t, ok)
				est = append(est, k)
			}

			runtime.GC()
			var before, after runtime.MemStats
			runtime.ReadMemStats(&before)
			flood := uint64(0xf100d)
			var inserted, refused int
			for i := 0; i < 10*maxFlows; i++ {
				k := randKey(&flood)
				k.SrcPort = uint16(i) // new source port every time
				_, ins, err := tab.Insert(&k, tab.Hash(&k), 101, 999)
				if err != nil {
					require.ErrorIs(t, err, ErrFull)
					refused++
					continue
				}
				require.True(t, ins)
				inserted++
			}
			runtime.ReadMemStats(&after)
			assert.Less(t, after.TotalAlloc-before.TotalAlloc, uint64(64<<10), "flood allocated")
			assert.LessOrEqual(t, after.HeapAlloc, before.HeapAlloc+64<<10, "heap grew during the flood")
			t.Logf("flood: %d inserted, %d refused, stats %+v", inserted, refused, tab.Stats())
			if fill.frac == 1 {
				assert.Zero(t, inserted, "no room may be made in a table full of established flows")
			} else {
				assert.NotZero(t, inserted)
				assert.NotZero(t, tab.Stats().Evicted, "flood flows evict each other")
			}

			assert.LessOrEqual(t, tab.Len(), maxFlows)
			for i := range est {
				b, ok := tab.Lookup(&est[i], tab.Hash(&est[i]), 102, TCPFlagACK)
				require.True(t, ok, "established flow %d lost", i)
				require.Equal(t, uint32(i), b, "established flow %d moved", i)
			}
			checkInvariants(t, tab)
		})
	}
}

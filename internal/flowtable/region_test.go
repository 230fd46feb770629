package flowtable

import (
	"runtime"
	"testing"
	"unsafe"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestRegionLayout checks, for small and large tables, that every slot
// starts on a cache line's boundary or, for 48-byte slots, that the array
// does (so a slot spans at most two lines), that the tag words and the
// slots do not overlap, and that every window of every shard lies inside
// its shard's tags.
func TestRegionLayout(t *testing.T) {
	for _, maxFlows := range []int{1, 64, 5000, 1 << 17} {
		tab := newTable(t, Config{MaxFlows: maxFlows})
		for i := range tab.shards {
			s := &tab.shards[i]
			require.Zero(t, uintptr(unsafe.Pointer(&s.slots[0]))%8)
			if i == 0 {
				assert.Zero(t, uintptr(unsafe.Pointer(&s.slots[0]))%cacheLine, "slot array on a cache line")
			}
			require.GreaterOrEqual(t, len(s.tags)*tagWindow, int(s.n)+tagWindow, "window of the last home slot")
			require.Equal(t, int(s.n)+maxProbe-1, len(s.slots))
			lastTag := uintptr(unsafe.Pointer(&s.tags[len(s.tags)-1]))
			firstSlot := uintptr(unsafe.Pointer(&tab.shards[0].slots[0]))
			require.Less(t, lastTag, firstSlot, "tags before slots")
		}
		runtime.KeepAlive(tab)
	}
}

// TestMappedRegionReleased checks that a table whose slots were mapped
// outside the heap gives the mapping back once it is unreachable.
func TestMappedRegionReleased(t *testing.T) {
	if raceEnabled {
		t.Skip("race-detector builds keep slots on the Go heap")
	}
	// Let tables of earlier tests go first, so that only this one's
	// mapping moves the count.
	for i := 0; i < 3; i++ {
		runtime.GC()
		runtime.Gosched()
	}
	before := mappedBytes.Load()
	tab := newTable(t, Config{MaxFlows: 1 << 18})
	if mappedBytes.Load() == before {
		t.Skip("no mapping on this system: slots are on the Go heap")
	}
	k := v4Key(1, protoTCP)
	ins(t, tab, k, 0, 1)
	_, ok := look(tab, k, 0)
	require.True(t, ok)
	tab = nil
	// Cleanups run after a collection finds the table unreachable, on
	// their own goroutine: collect until the count drops, a bounded number
	// of times.
	for i := 0; i < 100 && mappedBytes.Load() > before; i++ {
		runtime.GC()
		runtime.Gosched()
	}
	assert.LessOrEqual(t, mappedBytes.Load(), before, "mapping released")
}

// TestShardLayout checks that a shard fills exactly two cache lines, the
// fields every lookup reads in the first, so that lookups on one shard
// never share a line with writers' counters of another.
func TestShardLayout(t *testing.T) {
	assert.Equal(t, uintptr(128), unsafe.Sizeof(shard{}))
	assert.Equal(t, uintptr(64), unsafe.Offsetof(shard{}.mu))
	assert.Equal(t, uintptr(48), unsafe.Sizeof(slot{}))
}

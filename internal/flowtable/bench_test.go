package flowtable

import (
	"fmt"
	"sync"
	"testing"
)

// Benchmark sizes: a small table that stays in cache and a large one that
// does not (the case that matters for a busy balancer).
var benchSizes = []int{10_000, 1_000_000}

const orderLen = 1 << 20 // random access order, shared by all sizes

type benchSet struct {
	keys  []Key
	order []uint32 // random indexes into keys
	tab   *Table
	m     map[Key]uint32
}

var (
	benchMu   sync.Mutex
	benchSets = map[int]*benchSet{}
)

// benchData builds (once per size) n keys, a table and a Go map holding
// them, and a random access order.
func benchData(b testing.TB, n int, withMap bool) *benchSet {
	benchMu.Lock()
	defer benchMu.Unlock()
	s := benchSets[n]
	if s == nil {
		s = &benchSet{keys: make([]Key, n), order: make([]uint32, orderLen)}
		state := uint64(n)
		for i := range s.keys {
			s.keys[i] = randKey(&state)
		}
		r := uint64(99)
		for i := range s.order {
			r = r*6364136223846793005 + 1442695040888963407
			s.order[i] = uint32((r >> 32) * uint64(n) >> 32)
		}
		s.tab = newTable(b, Config{MaxFlows: n})
		for i := range s.keys {
			k := &s.keys[i]
			if _, _, err := s.tab.Insert(k, s.tab.Hash(k), 0, uint32(i)); err != nil {
				b.Fatal(err)
			}
		}
		// Every flow's second packet, in the tick the measurements use:
		// the flows are then already refreshed in this tick, so every
		// timed lookup is the read-only hit that all of a flow's packets
		// but the first of each 100 ms tick take. (That first one also
		// writes the new tick, bookkeeping a map does not have.)
		for i := range s.keys {
			k := &s.keys[i]
			if _, ok := s.tab.Lookup(k, s.tab.Hash(k), 1, 0); !ok {
				b.Fatal("inserted flow not found")
			}
		}
		benchSets[n] = s
	}
	if withMap && s.m == nil {
		s.m = make(map[Key]uint32, n)
		for i, k := range s.keys {
			s.m[k] = uint32(i)
		}
	}
	return s
}

// BenchmarkLookup measures a hit on a random live flow, hash included.
func BenchmarkLookup(b *testing.B) {
	for _, n := range benchSizes {
		b.Run(fmt.Sprintf("flows=%d", n), func(b *testing.B) {
			s := benchData(b, n, false)
			tab := s.tab
			var sum uint32
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				k := &s.keys[s.order[i&(orderLen-1)]]
				v, ok := tab.Lookup(k, tab.Hash(k), 1, 0)
				if !ok {
					b.Fatal("miss")
				}
				sum += v
			}
			_ = sum
		})
	}
}

// BenchmarkGoMapLookup is the baseline: a map[Key]uint32 of the same size
// read in the same order (the map hashes the key itself).
func BenchmarkGoMapLookup(b *testing.B) {
	for _, n := range benchSizes {
		b.Run(fmt.Sprintf("flows=%d", n), func(b *testing.B) {
			s := benchData(b, n, true)
			m := s.m
			var sum uint32
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				v, ok := m[s.keys[s.order[i&(orderLen-1)]]]
				if !ok {
					b.Fatal("miss")
				}
				sum += v
			}
			_ = sum
		})
	}
}

// BenchmarkLookupParallel runs hits from all Ps at once: the forwarding
// workers' pattern.
func BenchmarkLookupParallel(b *testing.B) {
	for _, n := range benchSizes {
		b.Run(fmt.Sprintf("flows=%d", n), func(b *testing.B) {
			s := benchData(b, n, false)
			tab := s.tab
			var seed sync.Mutex
			next := uint32(0)
			b.ReportAllocs()
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				seed.Lock()
				i := next * 7919
				next++
				seed.Unlock()
				for pb.Next() {
					k := &s.keys[s.order[i&(orderLen-1)]]
					i++
					if _, ok := tab.Lookup(k, tab.Hash(k), 1, 0); !ok {
						b.Error("miss")
						return
					}
				}
			})
		})
	}
}

// BenchmarkLookupMiss measures a lookup of an absent flow (every new flow's
// first packet), hash included.
func BenchmarkLookupMiss(b *testing.B) {
	for _, n := range benchSizes {
		b.Run(fmt.Sprintf("flows=%d", n), func(b *testing.B) {
			s := benchData(b, n, false)
			tab := s.tab
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				k := s.keys[s.order[i&(orderLen-1)]]
				k.DstPort = 8443 // never inserted
				if _, ok := tab.Lookup(&k, tab.Hash(&k), 1, 0); ok {
					b.Fatal("hit")
				}
			}
		})
	}
}

// BenchmarkInsert measures inserting a new flow into a table held at n
// flows: each op is one Insert of a new flow and one Delete of the oldest,
// so the load stays steady.
func BenchmarkInsert(b *testing.B) {
	for _, n := range benchSizes {
		b.Run(fmt.Sprintf("flows=%d", n), func(b *testing.B) {
			keys := make([]Key, n)
			state := uint64(n) + 1
			for i := range keys {
				keys[i] = randKey(&state)
			}
			tab := newTable(b, Config{MaxFlows: n})
			for i := range keys {
				k := &keys[i]
				if _, _, err := tab.Insert(k, tab.Hash(k), 0, 1); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				old := &keys[i%n]
				if !tab.Delete(old, tab.Hash(old)) {
					b.Fatal("delete")
				}
				*old = randKey(&state)
				if _, _, err := tab.Insert(old, tab.Hash(old), 0, 2); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkHash measures Key.Hash alone.
func BenchmarkHash(b *testing.B) {
	state := uint64(1)
	k := randKey(&state)
	var sum uint64
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		k.SrcPort = uint16(i)
		sum += k.Hash(testSeed)
	}
	_ = sum
}

package flowtable

import (
	"fmt"
	"runtime"
	"slices"
	"testing"
	"time"
)

// BenchmarkLookupVersusGoMap times the table's Lookup and a Go
// map[Key]uint32 holding the same flows alternately, in one process: each
// iteration is one round of 16384 lookups on each side. It reports the
// median of the per-round ratios (table ÷ map, "ratio-vs-map") and the
// median time per lookup of each side. Short alternating rounds cancel
// most of the noise of a shared machine, which separate benchmark runs
// minutes apart do not; run it with -benchtime 201x (scripts/bench-compare.sh
// does). The goal is parity (1.0); measured figures are in
// docs/PERFORMANCE.md.
//
// The comparison is fair: both sides read the key from the same array (a
// cache miss at 1M flows for both) and hash it (the table's hash is
// included, as the map's is), both structures are live at once (the same
// cache and TLB pressure), the map is pre-sized as the table is, and the
// two sides read different stretches of the random access order, taking
// turns to go first, so that neither finds in the cache the keys the other
// just read.
func BenchmarkLookupVersusGoMap(b *testing.B) {
	compareWithMap(b, timeTableLookups)
}

// BenchmarkBatchedLookupVersusGoMap is BenchmarkLookupVersusGoMap for
// lookups as the balancer makes them: a batch of received packets at a
// time, all of the batch's entries prefetched (Prefetch) before the first
// is looked up, so that their cache misses overlap. A map offers no such
// thing; its side is the same as in BenchmarkLookupVersusGoMap.
func BenchmarkBatchedLookupVersusGoMap(b *testing.B) {
	compareWithMap(b, timeBatchedLookups)
}

// compareWithMap times timeTable against the Go map in alternating rounds,
// one round per iteration, for every benchmark size.
func compareWithMap(b *testing.B, timeTable func(*benchSet, uint32, int) time.Duration) {
	for _, n := range benchSizes {
		b.Run(fmt.Sprintf("flows=%d", n), func(b *testing.B) {
			s := benchData(b, n, true)
			// Let the collector finish with the data just built, so that
			// its background work does not land on either side.
			runtime.GC()
			const chunk = 1 << 14
			var ratios, tabNs, mapNs []float64
			b.ResetTimer()
			for r := 0; r < b.N; r++ {
				// The two sides read different stretches of the access
				// order, so neither finds the keys the other just pulled
				// into the cache, and take turns going first.
				off := uint32(r * chunk)
				var tt, tm time.Duration
				if r%2 == 0 {
					tt = timeTable(s, off, chunk)
					tm = timeMapLookups(s, off+orderLen/2, chunk)
				} else {
					tm = timeMapLookups(s, off+orderLen/2, chunk)
					tt = timeTable(s, off, chunk)
				}
				if tt < 0 || tm < 0 {
					b.Fatal("miss")
				}
				tabNs = append(tabNs, float64(tt)/chunk)
				mapNs = append(mapNs, float64(tm)/chunk)
				ratios = append(ratios, float64(tt)/float64(tm))
			}
			b.StopTimer()
			b.ReportMetric(median(ratios), "ratio-vs-map")
			b.ReportMetric(median(tabNs), "table-ns/lookup")
			b.ReportMetric(median(mapNs), "map-ns/lookup")
		})
	}
}

// lookupBatch is the batch of BenchmarkBatchedLookupVersusGoMap: the
// balancer's default batch of 64 frames.
const lookupBatch = 64

// timeBatchedLookups is timeTableLookups a batch at a time: hash and
// prefetch every key of the batch, then look them up.
func timeBatchedLookups(s *benchSet, off uint32, n int) time.Duration {
	tab := s.tab
	var sum uint32
	var hs [lookupBatch]uint64
	var ks [lookupBatch]*Key
	start := time.Now()
	for i := 0; i < n; i += lookupBatch {
		for j := range lookupBatch {
			k := &s.keys[s.order[(off+uint32(i+j))&(orderLen-1)]]
			ks[j], hs[j] = k, tab.Hash(k)
			tab.Prefetch(hs[j])
		}
		for j := range lookupBatch {
			v, ok := tab.Lookup(ks[j], hs[j], 1, 0)
			if !ok {
				return -1
			}
			sum += v
		}
	}
	d := time.Since(start)
	benchSink += sum
	return d
}

// timeTableLookups runs n hits starting at order[off] and returns the
// elapsed time, or -1 on a miss.
func timeTableLookups(s *benchSet, off uint32, n int) time.Duration {
	tab := s.tab
	var sum uint32
	start := time.Now()
	for i := 0; i < n; i++ {
		k := &s.keys[s.order[(off+uint32(i))&(orderLen-1)]]
		v, ok := tab.Lookup(k, tab.Hash(k), 1, 0)
		if !ok {
			return -1
		}
		sum += v
	}
	d := time.Since(start)
	benchSink += sum
	return d
}

// timeMapLookups is timeTableLookups for the Go map.
func timeMapLookups(s *benchSet, off uint32, n int) time.Duration {
	m := s.m
	var sum uint32
	start := time.Now()
	for i := 0; i < n; i++ {
		v, ok := m[s.keys[s.order[(off+uint32(i))&(orderLen-1)]]]
		if !ok {
			return -1
		}
		sum += v
	}
	d := time.Since(start)
	benchSink += sum
	return d
}

// benchSink keeps results alive so the compiler cannot drop the loops.
var benchSink uint32

func median(xs []float64) float64 {
	ys := slices.Clone(xs)
	slices.Sort(ys)
	return ys[len(ys)/2]
}

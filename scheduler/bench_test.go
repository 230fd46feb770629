package scheduler

import (
	"fmt"
	"math/rand/v2"
	"net/netip"
	"testing"
)

var benchNames = []string{"mh", "sh", "hrw", "rr", "wrr", "lc", "wlc"}

// benchFlows returns 4096 flows (a power of two, for cheap cycling) with
// random hashes and sources (half IPv4, half IPv6), so table lookups hit
// random cache lines as in production. They are filled in as the balancer
// fills them: a source hash per address and consecutive turns, as one
// worker numbers its new flows.
func benchFlows() []Flow {
	fs := bareFlows()
	for k := range fs {
		fs[k].SrcHash = hashAddr(fs[k].Src, 7) | 1
		fs[k].Turn = uint64(k + 1)
	}
	return fs
}

// bareFlows returns benchFlows without SrcHash and Turn, as a caller that
// computes neither offers them.
func bareFlows() []Flow {
	r := rand.New(rand.NewPCG(1, 2))
	fs := make([]Flow, 4096)
	for k := range fs {
		src := netip.AddrFrom16([16]byte{0x20, 0x01, 0x0d, 0xb8, 8: byte(r.Uint32()), 15: byte(r.Uint32())})
		if k%2 == 0 {
			src = netip.AddrFrom4([4]byte{203, 0, 113, byte(r.Uint32())})
		}
		fs[k] = Flow{Src: src, SrcPort: uint16(r.Uint32()), Hash: r.Uint64()}
	}
	return fs
}

// BenchmarkPick measures Pick for every built-in at N = 10, 100, 1000
// backends with mixed weights.
func BenchmarkPick(b *testing.B) {
	flows := benchFlows()
	for _, name := range benchNames {
		for _, n := range []int{10, 100, 1000} {
			b.Run(fmt.Sprintf("%s/N=%d", name, n), func(b *testing.B) {
				s, err := New(name, testBackends(n, 1, 2, 3), Config{})
				if err != nil {
					b.Fatal(err)
				}
				if obs, ok := s.(FlowObserver); ok {
					for i := range n {
						for range i % 7 {
							obs.FlowStarted(i)
						}
					}
				}
				benchPicks(b, s, flows)
			})
		}
	}
}

// benchPicks times Pick over flows (4096 of them), cycling.
func benchPicks(b *testing.B, s Scheduler, flows []Flow) {
	b.ReportAllocs()
	k := 0
	for b.Loop() {
		s.Pick(&flows[k&4095])
		k++
	}
}

// BenchmarkPickBare measures the schedulers whose Pick has a slower path
// for callers that set neither Flow.SrcHash nor Flow.Turn: sh then reads
// the address out of Src, rr and wrr take turns from one shared atomic
// counter.
func BenchmarkPickBare(b *testing.B) {
	flows := bareFlows()
	for _, name := range []string{"mh", "sh", "rr", "wrr"} {
		b.Run(name+"/N=1000", func(b *testing.B) {
			s, err := New(name, testBackends(1000, 1, 2, 3), Config{})
			if err != nil {
				b.Fatal(err)
			}
			benchPicks(b, s, flows)
		})
	}
}

// BenchmarkPickParallel measures Pick from all Ps at once, where rr and wrr
// share one atomic counter.
func BenchmarkPickParallel(b *testing.B) {
	flows := benchFlows()
	for _, name := range benchNames {
		b.Run(name, func(b *testing.B) {
			s, err := New(name, testBackends(1000, 1, 2, 3), Config{})
			if err != nil {
				b.Fatal(err)
			}
			b.ReportAllocs()
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				k := 0
				for pb.Next() {
					s.Pick(&flows[k&4095])
					k++
				}
			})
		})
	}
}

// BenchmarkBuild measures building schedulers for 1000 backends; mh with
// the table size of the Maglev paper's measurement (65537).
func BenchmarkBuild(b *testing.B) {
	cases := []struct {
		name    string
		weights []uint32
		cfg     Config
	}{
		{"mh/equal/N=1000/M=65537", []uint32{1}, Config{TableSize: 65537}},
		{"mh/weighted/N=1000/M=65537", []uint32{1, 2, 3, 5}, Config{TableSize: 65537}},
		{"mh/equal/N=1000/M=default", []uint32{1}, Config{}},
		{"wrr/weighted/N=1000", []uint32{1, 2, 3, 5}, Config{}},
		{"hrw/equal/N=1000", []uint32{1}, Config{}},
		{"hrw/weighted/N=1000", []uint32{1, 2, 3, 5}, Config{}},
	}
	for _, tc := range cases {
		b.Run(tc.name, func(b *testing.B) {
			name := tc.name[:len(tc.name)-len(tc.name[indexByte(tc.name, '/'):])]
			bs := testBackends(1000, tc.weights...)
			b.ReportAllocs()
			for b.Loop() {
				if _, err := New(name, bs, tc.cfg); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func indexByte(s string, c byte) int {
	for i := range len(s) {
		if s[i] == c {
			return i
		}
	}
	return len(s)
}

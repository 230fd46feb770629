package scheduler

import (
	"fmt"
	"slices"
)

func init() {
	Register("mh", newMaglevHash)
	Register("sh", newSourceHash)
}

// maxTableSize bounds TableSize so that a typo cannot make a build allocate
// gigabytes: 2^26 entries (256 MiB of int32) is far beyond any useful table.
const maxTableSize = 1 << 26

// maglevPrimes are the default table sizes: the smallest prime at or above
// each power of two from 2^16. The default is picked from this fixed ladder,
// not computed from the exact backend count, so that adding or removing a
// backend keeps the table size (and therefore the placement of everyone
// else) unless the count crosses a rung.
var maglevPrimes = [...]uint32{
	65537, 131101, 262147, 524309, 1048583, 2097169, 4194319, 8388617,
	16777259, 33554467, 67108879,
}

// defaultMaglevSize returns the smallest listed prime that is at least 100
// times n, which keeps every backend's share of the table within about 1%
// of its weight.
func defaultMaglevSize(n int) uint64 {
	want := uint64(n) * 100
	for _, p := range maglevPrimes {
		if uint64(p) >= want {
			return uint64(p)
		}
	}
	// Beyond the ladder (over 670k backends): the next prime will do.
	for p := want | 1; ; p += 2 {
		if isPrime(p) {
			return p
		}
	}
}

// maglevSize validates cfg.TableSize for active backends, or picks the
// default.
func maglevSize(cfg Config, active int) (uint64, error) {
	if cfg.TableSize == 0 {
		return defaultMaglevSize(active), nil
	}
	m := uint64(cfg.TableSize)
	switch {
	case !isPrime(m):
		return 0, fmt.Errorf("%w: table size %d is not prime", ErrInvalid, m)
	case m > maxTableSize:
		return 0, fmt.Errorf("%w: table size %d exceeds %d", ErrInvalid, m, maxTableSize)
	case m < uint64(active):
		return 0, fmt.Errorf("%w: table size %d is smaller than the %d active backends", ErrInvalid, m, active)
	}
	return m, nil
}

// maglevTable builds a weighted Maglev lookup table (Eisenbud et al.,
// "Maglev: A Fast and Reliable Software Network Load Balancer", NSDI 2016)
// of backend indices.
//
// Each active backend walks its own permutation of the table, derived from
// a hash of its address and seed, and claims the next free entry when it
// is its turn. With equal weights the turns are plain rounds, as in the
// paper. With weights, backend p's k-th turn comes at virtual time
// (k+1/2)/w_p, so every backend has claimed round(T*w_p) entries at any
// time T: shares follow weights to within one entry.
//
// Backends are processed in address order, not slice order, so the table
// (read as addresses) does not depend on how the caller ordered the set.
// A nil table means no backend is active.
func maglevTable(backends []Backend, cfg Config) ([]int32, error) {
	order := activeByAddr(backends)
	if len(order) == 0 {
		return nil, nil
	}
	m, err := maglevSize(cfg, len(order))
	if err != nil {
		return nil, err
	}
	if len(backends) > 1<<31-1 {
		return nil, fmt.Errorf("%w: too many backends", ErrInvalid)
	}

	n := len(order)
	pos := make([]uint64, n)  // next permutation entry to try
	skip := make([]uint64, n) // permutation stride, in [1, m)
	for p, i := range order {
		h := hashAddr(backends[i].Addr, cfg.Seed)
		pos[p] = h % m
		skip[p] = mix64(h^golden)%(m-1) + 1
	}

	// A bitmap of claimed entries answers the probes: m/8 bytes stay in
	// the first-level cache where the int32 table would not, and the
	// probes (about m*ln(m) of them, most near the end) dominate the build.
	taken := make([]uint64, (m+63)/64)
	table := make([]int32, m)
	// claim gives backend p (position in order) its next preferred free
	// entry. The loop ends because m is prime, so the stride visits every
	// entry, and the caller stops before the table is full.
	claim := func(p int) {
		c, s := pos[p], skip[p]
		for taken[c>>6]&(1<<(c&63)) != 0 {
			if c += s; c >= m {
				c -= m
			}
		}
		taken[c>>6] |= 1 << (c & 63)
		table[c] = int32(order[p])
		if c += s; c >= m {
			c -= m
		}
		pos[p] = c
	}

	// Claim in smooth weighted turns: each backend claims as often as its
	// weighted share of the table, to within one entry.
	weight := make([]uint64, n)
	for p, i := range order {
		weight[p] = uint64(backends[i].Weight)
	}
	for _, p := range turnOrder(weight, m) {
		claim(int(p))
	}
	return table, nil
}

// activeByAddr returns the indices of backends with a nonzero weight,
// sorted by address (then index, for duplicate addresses).
func activeByAddr(backends []Backend) []int {
	order := make([]int, 0, len(backends))
	for i, b := range backends {
		if b.Weight > 0 {
			order = append(order, i)
		}
	}
	slices.SortFunc(order, func(a, b int) int {
		if c := backends[a].Addr.Compare(backends[b].Addr); c != 0 {
			return c
		}
		return a - b
	})
	return order
}

// maglevHash is the "mh" scheduler: Maglev consistent hashing on the
// balancer's flow hash. It is the default because it needs no shared state,
// makes every balancer with the same configuration agree, and moves few
// flows when the backend set changes.
type maglevHash struct {
	table []int32
}

func newMaglevHash(backends []Backend, cfg Config) (Scheduler, error) {
	t, err := maglevTable(backends, cfg)
	if err != nil {
		return nil, fmt.Errorf("mh: %w", err)
	}
	return &maglevHash{table: t}, nil
}

// Pick looks the flow hash up in the table: one multiplication and one
// load.
func (s *maglevHash) Pick(f *Flow) (int, bool) {
	if len(s.table) == 0 {
		return 0, false
	}
	return int(s.table[reduce(f.Hash, uint64(len(s.table)))]), true
}

// sourceHash is the "sh" scheduler: like IPVS sh, all flows from one client
// address (optionally address and port) go to one backend. It reuses the
// weighted Maglev table, keyed by a hash of the source instead of the
// 5-tuple, so it shares mh's balance and low disruption.
type sourceHash struct {
	table  []int32
	k1, k2 uint64 // sourceKey keys
	ports  bool
}

func newSourceHash(backends []Backend, cfg Config) (Scheduler, error) {
	t, err := maglevTable(backends, cfg)
	if err != nil {
		return nil, fmt.Errorf("sh: %w", err)
	}
	// Keys independent of the placement hash, so that the source key and
	// the backend permutations are not correlated.
	k1, k2 := sourceKeys(mix64(cfg.Seed ^ 0x5348))
	return &sourceHash{table: t, k1: k1, k2: k2, ports: cfg.HashPorts}, nil
}

// Pick hashes the flow's source address (and port with HashPorts): the
// balancer's precomputed Flow.SrcHash when set, else Src itself.
func (s *sourceHash) Pick(f *Flow) (int, bool) {
	if len(s.table) == 0 {
		return 0, false
	}
	return int(s.table[reduce(s.hash(f), uint64(len(s.table)))]), true
}

// hash is the source hash that places f.
func (s *sourceHash) hash(f *Flow) uint64 {
	if f.SrcHash != 0 {
		// The balancer's source hash, rekeyed with this scheduler's seed.
		lo := s.k2
		if s.ports {
			lo ^= uint64(f.SrcPort) << 40
		}
		return mum(f.SrcHash^s.k1, lo)
	}
	return sourceKey(f.Src, f.SrcPort, s.ports, s.k1, s.k2)
}

// Package schedulertest is a conformance suite for scheduler.Scheduler
// implementations. A plugin author runs every check with one call:
//
//	func TestConformance(t *testing.T) {
//		schedulertest.Run(t, newMyScheduler, nil)
//	}
//
// and runs the test with -race, since the suite picks from many goroutines
// at once. The checks are the contract the balancer relies on: no panic and
// no pick for an empty or fully draining set, never an index outside the
// set or of a draining (weight zero) backend, shares that follow weights
// within a stated tolerance, allocation-free Pick and FlowObserver calls,
// safe concurrent use, and, for deterministic schedulers, agreement between
// two instances built from the same set.
//
// Every check runs twice: with flows filled in as the balancer fills them
// (Flows: with Flow.SrcHash and per-caller Flow.Turn) and with bare flows
// (BareFlows: neither set), since a scheduler must serve both kinds of
// caller.
package schedulertest

import (
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"sync"
	"testing"

	"github.com/dsrlb/dsrlb/scheduler"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// Shares states what a scheduler promises about how new flows spread over
// the backends that are not draining.
type Shares int

const (
	// ByWeight (the default) expects each backend's share of new flows to
	// be its weight divided by the sum of weights, like wrr, wlc and mh.
	ByWeight Shares = iota
	// Equal expects every non-draining backend to get the same share:
	// weights only mark draining, like IPVS rr and lc.
	Equal
	// Unchecked makes no share check, for schedulers that deliberately
	// skew (locality, affinity). Every other check still runs.
	Unchecked
)

// Options tell the suite what to expect. A nil *Options means the zero
// value: shares by weight, 10% tolerance, not deterministic.
type Options struct {
	// Config is passed to the factory. The zero value is valid.
	Config scheduler.Config
	// Shares states the share promise. Zero is ByWeight.
	Shares Shares
	// Tolerance is the largest accepted relative deviation of a backend's
	// observed share from its promised share (0.1 means ±10%). Zero means
	// 0.1, loose enough for hashing schedulers measured over Flows flows.
	Tolerance float64
	// Deterministic declares that Pick depends only on the flow and the
	// backend set, so two instances built from equal sets must pick alike.
	// Hashing schedulers (mh, sh, hrw) set it; stateful ones (rr, lc) not.
	Deterministic bool
	// Flows is the number of flows offered when measuring shares. Zero
	// means 40000.
	Flows int

	bare bool // offer BareFlows instead of Flows
}

func (o *Options) withDefaults() Options {
	var r Options
	if o != nil {
		r = *o
	}
	if r.Tolerance == 0 {
		r.Tolerance = 0.1
	}
	if r.Flows == 0 {
		r.Flows = 40000
	}
	return r
}

// Run runs every conformance check against schedulers built by f, each as
// a subtest of t.
func Run(t *testing.T, f scheduler.Factory, opts *Options) {
	o := opts.withDefaults()
	for _, bare := range []bool{false, true} {
		o.bare = bare
		name := "BalancerFlows"
		if bare {
			// Callers that set neither SrcHash nor Turn.
			name = "BareFlows"
		}
		t.Run(name, func(t *testing.T) {
			t.Run("EmptySet", func(t *testing.T) { testEmpty(t, f, o) })
			t.Run("SingleBackend", func(t *testing.T) { testSingle(t, f, o) })
			t.Run("InSetAndNotDraining", func(t *testing.T) { testInSet(t, f, o) })
			if o.Shares != Unchecked {
				t.Run("Shares", func(t *testing.T) { testShares(t, f, o) })
			}
			t.Run("Concurrent", func(t *testing.T) { testConcurrent(t, f, o) })
			t.Run("NoAllocs", func(t *testing.T) { testAllocs(t, f, o) })
			if o.Deterministic {
				t.Run("Deterministic", func(t *testing.T) { testDeterministic(t, f, o) })
			}
			t.Run("Declarations", func(t *testing.T) { testDeclarations(t, f, o) })
		})
	}
}

// flows returns the suite's flows of the current kind (see Flows and
// BareFlows).
func (o *Options) flows(n int, seed uint64) []scheduler.Flow {
	if o.bare {
		return BareFlows(n, seed)
	}
	return Flows(n, seed)
}

// Backends returns n backends with distinct documentation addresses (the
// first even-numbered ones in 198.51.100.0/24, the rest in 2001:db8::/32)
// and the given weights, cycled. It is exported so plugin tests can build
// the same sets as the suite.
func Backends(n int, weights ...uint32) []scheduler.Backend {
	if len(weights) == 0 {
		weights = []uint32{1}
	}
	bs := make([]scheduler.Backend, n)
	for i := range bs {
		a := netip.AddrFrom16([16]byte{0x20, 0x01, 0x0d, 0xb8, 12: byte(i >> 24), 13: byte(i >> 16), 14: byte(i >> 8), 15: byte(i)})
		if i%2 == 0 && i/2 < 256 {
			a = netip.AddrFrom4([4]byte{198, 51, 100, byte(i / 2)})
		}
		bs[i] = scheduler.Backend{Addr: a, Weight: weights[i%len(weights)]}
	}
	return bs
}

// Flows returns n pseudo-random flows from seed, filled in as the balancer
// fills them: sources spread over 2001:db8::/32 and 203.0.113.0/24, a
// uniformly random Hash standing in for the balancer's flow hash, a SrcHash
// that depends on the source address alone, and consecutive Turns from a
// seed-derived start, as one forwarding worker numbers its new flows. The
// same seed yields the same flows.
func Flows(n int, seed uint64) []scheduler.Flow {
	fs := BareFlows(n, seed)
	turn := seed*0x9e3779b97f4a7c15 | 1
	for i := range fs {
		fs[i].SrcHash = srcHash(fs[i].Src)
		fs[i].Turn = turn
		turn++
		if turn == 0 {
			turn = 1
		}
	}
	return fs
}

// BareFlows returns the flows of Flows without SrcHash and Turn, as a
// caller that computes neither offers them. Every scheduler must work for
// such callers too; the suite checks both kinds.
func BareFlows(n int, seed uint64) []scheduler.Flow {
	r := rand.New(rand.NewPCG(seed, 0x5eed))
	fs := make([]scheduler.Flow, n)
	vip4 := netip.AddrFrom4([4]byte{192, 0, 2, 1})
	vip6 := netip.MustParseAddr("2001:db8::1")
	for i := range fs {
		f := scheduler.Flow{SrcPort: uint16(r.Uint32()), DstPort: 443, Proto: 6, Hash: r.Uint64()}
		if r.IntN(4) == 0 {
			f.Src = netip.AddrFrom4([4]byte{203, 0, 113, byte(r.Uint32())})
			f.Dst = vip4
		} else {
			var b [16]byte
			b[0], b[1], b[2], b[3] = 0x20, 0x01, 0x0d, 0xb8
			lo, hi := r.Uint64(), r.Uint64()
			for k := 4; k < 16; k++ {
				if k < 12 {
					b[k] = byte(lo >> (8 * (k - 4)))
				} else {
					b[k] = byte(hi >> (8 * (k - 12)))
				}
			}
			f.Src = netip.AddrFrom16(b)
			f.Dst = vip6
		}
		fs[i] = f
	}
	return fs
}

// build calls f and turns a panic into a test failure with context.
func build(t *testing.T, f scheduler.Factory, bs []scheduler.Backend, cfg scheduler.Config) (s scheduler.Scheduler, err error) {
	t.Helper()
	defer func() {
		if r := recover(); r != nil {
			t.Fatalf("factory panicked for %d backends: %v", len(bs), r)
		}
	}()
	return f(bs, cfg)
}

// pick calls s.Pick and turns a panic into a test failure with context.
func pick(t *testing.T, s scheduler.Scheduler, fl *scheduler.Flow) (i int, ok bool) {
	t.Helper()
	defer func() {
		if r := recover(); r != nil {
			t.Fatalf("Pick panicked: %v", r)
		}
	}()
	return s.Pick(fl)
}

func mustBuild(t *testing.T, f scheduler.Factory, bs []scheduler.Backend, cfg scheduler.Config) scheduler.Scheduler {
	t.Helper()
	s, err := build(t, f, bs, cfg)
	require.NoError(t, err, "building from %d backends", len(bs))
	require.NotNil(t, s, "factory returned a nil scheduler without an error")
	return s
}

func testEmpty(t *testing.T, f scheduler.Factory, o Options) {
	sets := map[string][]scheduler.Backend{
		"nil":        nil,
		"empty":      {},
		"allDrained": Backends(5, 0),
	}
	flows := o.flows(64, 1)
	for name, bs := range sets {
		t.Run(name, func(t *testing.T) {
			s, err := build(t, f, bs, o.Config)
			if err != nil {
				return // refusing to build is a valid answer
			}
			require.NotNil(t, s, "factory returned a nil scheduler without an error")
			for k := range flows {
				i, ok := pick(t, s, &flows[k])
				require.False(t, ok, "picked index %d from a set with no active backend", i)
			}
		})
	}
}

func testSingle(t *testing.T, f scheduler.Factory, o Options) {
	s := mustBuild(t, f, Backends(1, 7), o.Config)
	flows := o.flows(256, 2)
	for k := range flows {
		i, ok := pick(t, s, &flows[k])
		require.True(t, ok, "no pick from a one-backend set")
		require.Equal(t, 0, i)
	}
}

// checkPick fails unless i is the index of a non-draining backend.
func checkPick(bs []scheduler.Backend, i int, ok bool) error {
	switch {
	case !ok:
		return fmt.Errorf("no pick although %d backends are active", active(bs))
	case i < 0 || i >= len(bs):
		return fmt.Errorf("picked index %d outside the set of %d", i, len(bs))
	case bs[i].Weight == 0:
		return fmt.Errorf("picked draining backend %d (%v)", i, bs[i].Addr)
	}
	return nil
}

func active(bs []scheduler.Backend) int {
	n := 0
	for _, b := range bs {
		if b.Weight > 0 {
			n++
		}
	}
	return n
}

func testInSet(t *testing.T, f scheduler.Factory, o Options) {
	cases := []struct {
		name    string
		n       int
		weights []uint32
	}{
		{"two", 2, []uint32{1}},
		{"oneDraining", 5, []uint32{3, 1, 0, 2, 5}},
		{"mostlyDraining", 16, []uint32{0, 0, 0, 4}},
		{"largeMixed", 1000, []uint32{1, 0, 5, 100, 2}},
		{"hugeWeights", 4, []uint32{1 << 31, 1, 0, 1<<32 - 1}},
	}
	flows := o.flows(5000, 3)
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			bs := Backends(tc.n, tc.weights...)
			s := mustBuild(t, f, bs, o.Config)
			obs, _ := s.(scheduler.FlowObserver)
			for k := range flows {
				i, ok := pick(t, s, &flows[k])
				require.NoError(t, checkPick(bs, i, ok), "flow %d", k)
				if obs != nil {
					obs.FlowStarted(i)
					if k%3 == 0 {
						obs.FlowEnded(i)
					}
				}
			}
		})
	}
}

func testShares(t *testing.T, f scheduler.Factory, o Options) {
	cases := []struct {
		name    string
		n       int
		weights []uint32
	}{
		{"equal", 5, []uint32{1}},
		{"weighted", 5, []uint32{1, 2, 0, 3, 4}},
		{"scaled", 3, []uint32{1000, 3000, 2000}},
	}
	flows := o.flows(o.Flows, 4)
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			bs := Backends(tc.n, tc.weights...)
			s := mustBuild(t, f, bs, o.Config)
			obs, _ := s.(scheduler.FlowObserver)
			got := make([]int, len(bs))
			for k := range flows {
				i, ok := pick(t, s, &flows[k])
				require.NoError(t, checkPick(bs, i, ok), "flow %d", k)
				got[i]++
				if obs != nil {
					obs.FlowStarted(i) // long-lived flows: none end
				}
			}
			total := 0.0
			for _, b := range bs {
				if b.Weight > 0 {
					if o.Shares == Equal {
						total++
					} else {
						total += float64(b.Weight)
					}
				}
			}
			for i, b := range bs {
				if b.Weight == 0 {
					continue
				}
				want := 1 / total
				if o.Shares == ByWeight {
					want = float64(b.Weight) / total
				}
				share := float64(got[i]) / float64(len(flows))
				assert.InDelta(t, 1, share/want, o.Tolerance,
					"backend %d (weight %d): share %.4f, promised %.4f", i, b.Weight, share, want)
			}
		})
	}
}

func testConcurrent(t *testing.T, f scheduler.Factory, o Options) {
	const workers, perWorker = 4, 2000
	bs := Backends(50, 1, 3, 0, 2)
	s := mustBuild(t, f, bs, o.Config)
	obs, _ := s.(scheduler.FlowObserver)
	errs := make(chan error, workers)
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			flows := o.flows(perWorker, uint64(100+w))
			for k := range flows {
				i, ok := s.Pick(&flows[k])
				if err := checkPick(bs, i, ok); err != nil {
					errs <- fmt.Errorf("worker %d flow %d: %w", w, k, err)
					return
				}
				if obs != nil {
					obs.FlowStarted(i)
					obs.FlowEnded(i)
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		assert.NoError(t, err)
	}
}

func testAllocs(t *testing.T, f scheduler.Factory, o Options) {
	for _, n := range []int{3, 1000} {
		t.Run(fmt.Sprint(n), func(t *testing.T) {
			bs := Backends(n, 1, 2)
			s := mustBuild(t, f, bs, o.Config)
			flows := o.flows(128, 5)
			k := 0
			allocs := testing.AllocsPerRun(200, func() {
				fl := &flows[k%len(flows)]
				k++
				_, _ = s.Pick(fl)
			})
			assert.Zero(t, allocs, "Pick allocates")
			if obs, ok := s.(scheduler.FlowObserver); ok {
				allocs = testing.AllocsPerRun(200, func() {
					obs.FlowStarted(1)
					obs.FlowEnded(1)
				})
				assert.Zero(t, allocs, "FlowStarted/FlowEnded allocate")
			}
		})
	}
}

func testDeterministic(t *testing.T, f scheduler.Factory, o Options) {
	for _, n := range []int{7, 300} {
		t.Run(fmt.Sprint(n), func(t *testing.T) {
			bs := Backends(n, 2, 1, 0, 5)
			a := mustBuild(t, f, bs, o.Config)
			// The second instance gets its own copy, which the test then
			// scribbles over: a factory must not depend on the caller's
			// slice after it returns.
			cp := append([]scheduler.Backend(nil), bs...)
			b := mustBuild(t, f, cp, o.Config)
			for i := range cp {
				cp[i] = scheduler.Backend{}
			}
			flows := o.flows(5000, 6)
			for k := range flows {
				ia, oka := a.Pick(&flows[k])
				ib, okb := b.Pick(&flows[k])
				require.Equal(t, oka, okb, "instances disagree on whether flow %d has a backend", k)
				require.Equal(t, ia, ib, "instances disagree on flow %d", k)
			}
		})
	}
}

// testDeclarations holds a scheduler to what it declares through the
// optional interfaces of package scheduler: a FlowKeyed one picks the same
// backend for the same flow whatever Turn says and however often it is
// asked; a Tabled one picks by its table; an Explainer's Explain agrees
// with Pick. A scheduler that declares none passes trivially.
func testDeclarations(t *testing.T, f scheduler.Factory, o Options) {
	bs := Backends(40, 3, 1, 0, 2)
	s := mustBuild(t, f, bs, o.Config)
	flows := o.flows(3000, 8)
	keyed := scheduler.FollowsFlow(s)
	tabled, isTabled := s.(scheduler.Tabled)
	ex, isEx := s.(scheduler.Explainer)
	for k := range flows {
		fl := flows[k]
		i, ok := pick(t, s, &fl)
		if keyed {
			again := fl
			again.Turn = fl.Turn*7 + 13
			j, ok2 := pick(t, s, &again)
			require.Equal(t, ok, ok2, "declares FollowsFlow but flow %d's pick depends on Turn", k)
			require.Equal(t, i, j, "declares FollowsFlow but flow %d's pick depends on Turn", k)
		}
		if isTabled {
			table := tabled.LookupTable()
			require.NotEmpty(t, table, "declares Tabled with an empty table")
			want := int(table[scheduler.Reduce(fl.Hash, uint64(len(table)))])
			require.Equal(t, want >= 0, ok, "declares Tabled but flow %d's pick is not its table entry", k)
			if ok {
				require.Equal(t, want, i, "declares Tabled but flow %d's pick is not its table entry", k)
			}
		}
		if isEx {
			p := ex.Explain(&fl)
			require.Equal(t, ok, p.OK, "Explain disagrees with Pick on flow %d", k)
			if ok {
				require.Equal(t, i, p.Index, "Explain disagrees with Pick on flow %d", k)
			}
		}
	}
}

// srcHash stands in for the balancer's source-address hash: well mixed,
// a function of the address alone, never zero.
func srcHash(a netip.Addr) uint64 {
	b := a.As16()
	h := binary.LittleEndian.Uint64(b[:8])*0x9e3779b97f4a7c15 ^ binary.LittleEndian.Uint64(b[8:])
	h ^= h >> 31
	h *= 0xff51afd7ed558ccd
	h ^= h >> 29
	h *= 0xc4ceb9fe1a85ec53
	h ^= h >> 32
	return h | 1
}

package flowtable

import (
	"crypto/rand"
	"encoding/binary"
	"errors"
	"math"
	"math/bits"
	"runtime"
	"sync"
	"sync/atomic"
	"unsafe"
)

// ErrFull is returned by Insert when the flow cannot be stored without
// evicting an established flow: the table (or the new flow's probe window)
// is full of live, non-embryonic flows. The caller forwards the packet
// without state and counts it; such flows lose affinity only if the backend
// set changes while they run.
var ErrFull = errors.New("flowtable: full")

// Tuning of the slot arrays.
const (
	// maxProbe bounds how far (in slots) an entry may sit from its home
	// slot, and so the work of every lookup. With Robin Hood placement at
	// load 0.75 displacements above 20 are practically never seen.
	maxProbe = 32
	// loadNum/loadDen is the highest load factor a shard reaches (when it
	// holds its cap). Robin Hood linear probing then averages 2.5 probes
	// per hit.
	loadNum, loadDen = 3, 4
	// minShardFlows keeps shards large enough that random placement spreads
	// flows evenly.
	minShardFlows = 64
)

// Slot layout. An entry is six 64-bit words, all read and written through
// sync/atomic so that lock-free readers race with writers only in the
// memory model's permitted way (and the race detector agrees):
//
//	w[0], w[1]  Src address (little-endian words)
//	w[2], w[3]  Dst address
//	w[4]        meta: SrcPort (bits 0-15), DstPort (16-31), Proto (32-39),
//	            State (40-41), live bit (47), probe distance (48-55)
//	w[5]        value: last-seen Tick (bits 0-31), backend (32-63)
//
// The value word holds everything a hit updates together with the backend,
// so refresh, reassignment and expiry decide on one consistent word by
// compare-and-swap. A state change is a compare-and-swap on meta.
//
// Slots are 48 bytes, not padded to a 64-byte cache line: a hit reads one
// slot (the tags say which), and when it straddles two lines the processor
// fetches both at once, whereas padding would cost a third more memory and
// cache for a gain within measurement noise.
const (
	metaStateShift = 40
	metaStateMask  = 3 << metaStateShift
	metaLive       = 1 << 47
	metaPSLShift   = 48
	metaPSLOne     = 1 << metaPSLShift
	pslMinusOne    = ^uint64(metaPSLOne) + 1 // adds -1 to the probe distance
	metaKeyMask    = 1<<40 - 1 | metaLive
)

// slot is one entry; see the layout above.
type slot struct {
	w [6]atomic.Uint64
}

func pslOf(meta uint64) int         { return int(meta>>metaPSLShift) & 0xff }
func stateOf(meta uint64) State     { return State(meta>>metaStateShift) & 3 }
func protoOf(meta uint64) uint8     { return uint8(meta >> 32) }
func lastSeenOf(v uint64) Tick      { return Tick(uint32(v)) }
func backendOf(v uint64) uint32     { return uint32(v >> 32) }
func value(b uint32, t Tick) uint64 { return uint64(b)<<32 | uint64(t) }

// shard is one independently locked part of the table.
//
// seq is a sequence counter: a writer makes it odd before it moves or
// removes entries and even again afterwards; a reader that saw it odd, or
// changed, retries. Writers serialise on mu.
type shard struct {
	// Read by every lookup: kept together in the shard's first cache line.
	seq   atomic.Uint64
	slots []slot // n + maxProbe - 1 slots: no probe ever wraps
	// tags holds one byte per slot (slot i in byte i%8 of word i/8): zero
	// for an empty slot, else tagOf the entry's hash. A lookup reads the
	// eight tags of its window with two loads and goes straight to the one
	// slot whose tag matches, so a hit takes no data-dependent branch that
	// the processor could mispredict (see Lookup).
	tags []atomic.Uint64
	n    uint64 // number of home slots (any value, not a power of two)

	// Used by writers only.
	mu                       sync.Mutex
	count                    atomic.Int64 // entries held; written under mu
	cap                      int64        // most entries this shard holds
	evicted, reused, refused atomic.Uint64
	_                        [128 - 112]byte // 128 bytes: shards never share a cache line
}

// home maps a hash to a home slot with Lemire's multiply-shift reduction:
// uniform over [0, n) for any n, so n need not be rounded up to a power of
// two (which would waste up to half the memory).
func (s *shard) home(hash uint64) uint64 {
	return (uint64(uint32(hash)) * s.n) >> 32
}

// Tags. A tag is the high bit (set in every live slot, so that zero means
// empty) and seven bits of the hash that neither the shard index (the top
// bits) nor the home slot (the low 32 bits) uses, so entries competing for
// a window differ in their tags with probability 127/128.
const (
	tagWindow = 8                  // slots whose tags one uint64 holds
	tagLanes  = 0x0101010101010101 // 1 in every byte
	tagHighs  = 0x8080808080808080 // the high bit of every byte
)

func tagOf(hash uint64) uint64 { return hash>>32&0x7f | 0x80 }

// zeroLanes sets the high bit of the first zero byte of x and of no byte
// before it; bytes after a zero byte may be flagged falsely, so callers
// verify each flagged slot.
func zeroLanes(x uint64) uint64 { return (x - tagLanes) &^ x & tagHighs }

// window returns the tags of slots home..home+7, slot home in the low byte.
func (s *shard) window(home uint64) uint64 {
	w := s.tags[home/tagWindow : home/tagWindow+2]
	r := home % tagWindow * 8
	// For r == 0 the second shift is by 64, which Go defines as 0.
	return w[0].Load()>>r | w[1].Load()<<(64-r)
}

// setTag stores tag (zero: empty) for slot i. Caller holds s.mu, so the
// read-modify-write of the shared word races only with readers.
func (s *shard) setTag(i int, tag uint64) {
	w := &s.tags[i/tagWindow]
	sh := uint(i%tagWindow) * 8
	w.Store(w.Load()&^(0xff<<sh) | tag<<sh)
}

func (s *shard) tagAt(i int) uint64 {
	return s.tags[i/tagWindow].Load() >> (uint(i%tagWindow) * 8) & 0xff
}

// Table is the flow table. It is safe for concurrent use by many
// goroutines; see the package documentation for which operations lock.
type Table struct {
	shards    []shard
	shardBits uint // shard index = top shardBits bits of the hash
	maxFlows  int64
	timeouts  [3][4]int32
	seed      uint64
	onEvict   func(k Key, backend uint32)

	_     [64]byte
	count atomic.Int64 // entries held in all shards; bounded by maxFlows
	_     [56]byte

	sweepMu    sync.Mutex // serialises Sweep calls; guards the fields below
	sweepShard int        // Sweep's cursor: next shard
	sweepSlot  int        // and next slot in it
	sweepBuf   [64]record // removed entries waiting for Sweep's callback
}

// record is a copy of one entry handed to callbacks outside the locks.
type record struct {
	k       Key
	backend uint32
	st      State
}

// New allocates a table for cfg.MaxFlows flows. A nil cfg means all
// defaults. An invalid field gives an error naming it.
func New(cfg *Config) (*Table, error) {
	r, err := cfg.resolve()
	if err != nil {
		return nil, err
	}
	if r.seed == 0 {
		var b [8]byte
		if _, err := rand.Read(b[:]); err != nil {
			return nil, err
		}
		r.seed = binary.LittleEndian.Uint64(b[:]) | 1
	}
	t := &Table{
		shards:   make([]shard, r.shards),
		maxFlows: int64(r.maxFlows),
		timeouts: r.timeouts,
		seed:     r.seed,
		onEvict:  r.onEvict,
	}
	for 1<<t.shardBits < r.shards {
		t.shardBits++
	}
	base, rem := r.maxFlows/r.shards, r.maxFlows%r.shards
	total := 0
	for i := range t.shards {
		mean := base
		if i < rem {
			mean++
		}
		total += shardSlots(shardCap(mean, r.maxFlows)) + maxProbe - 1
	}
	// Each shard's tags start on a word of their own: writers update them
	// under the shard's lock only. The extra word keeps every window in
	// bounds.
	all, allTags, mem := allocRegion(total, total/tagWindow+2*len(t.shards))
	if mem != nil {
		// The mapping is outside the Go heap: release it once the table
		// is unreachable. Every method that touches slots ends with
		// runtime.KeepAlive(t), so no call still reads the mapping when
		// the table becomes unreachable.
		runtime.AddCleanup(t, freeRegion, mem)
	}
	for i := range t.shards {
		mean := base
		if i < rem {
			mean++
		}
		c := shardCap(mean, r.maxFlows)
		n := shardSlots(c)
		s := &t.shards[i]
		s.cap = int64(c)
		s.n = uint64(n)
		s.slots = all[: n+maxProbe-1 : n+maxProbe-1]
		all = all[n+maxProbe-1:]
		nt := (n+maxProbe-1+tagWindow-1)/tagWindow + 1
		s.tags = allTags[:nt:nt]
		allTags = allTags[nt:]
	}
	return t, nil
}

// shardCap is the most entries a shard whose fair share is mean holds.
// Random flows spread binomially over shards: each shard has room for five
// standard deviations above its mean (a shard overflows before the table
// is full with a probability below 1e-6 per shard), so that the table as a
// whole can be filled to MaxFlows.
func shardCap(mean, maxFlows int) int {
	c := mean + 5*int(math.Sqrt(float64(mean))) + 8
	return min(c, maxFlows)
}

// shardSlots is the number of home slots of a shard holding at most c
// entries: the shard's load stays at or below loadNum/loadDen.
func shardSlots(c int) int { return (c*loadDen + loadNum - 1) / loadNum }

// Hash returns k's hash under the table's seed: the value to pass as hash
// to the table's methods. Passing anything else makes them miss.
func (t *Table) Hash(k *Key) uint64 { return k.Hash(t.seed) }

// Seed returns the table's hash seed (see Config.Seed).
func (t *Table) Seed() uint64 { return t.seed }

// shard returns the shard of hash: the top shardBits bits, computed by a
// multiplication (the shard count is a power of two) rather than a
// variable shift, which Go must guard against shift counts of 64.
func (t *Table) shard(hash uint64) *shard {
	// Unchecked: the product of a 32-bit value and len, shifted down 32
	// bits, is below len.
	i := (hash >> 32) * uint64(len(t.shards)) >> 32
	return (*shard)(unsafe.Add(unsafe.Pointer(unsafe.SliceData(t.shards)), i*uint64(unsafe.Sizeof(shard{}))))
}

// expired reports whether an entry with meta m and value v has been idle
// longer than its timeout at now. Ticks compare by wrapped difference; an
// entry refreshed by a worker whose clock ran ahead is not expired.
func (t *Table) expired(m, v uint64, now Tick) bool {
	idle := int32(uint32(now) - uint32(lastSeenOf(v)))
	return idle > t.timeouts[protoClass(protoOf(m))][stateOf(m)]
}

// slotSize is the size of a slot, for unchecked indexing.
const slotSize = uint64(unsafe.Sizeof(slot{}))

// stateKeeps has bit st<<4 | flagIndex(flags) of word [isTCP] set when
// nextState leaves state st as it is: the hit path tests one bit instead
// of running nextState's branches.
var stateKeeps = func() (k [2]uint64) {
	for tcp := range 2 {
		proto := uint8(protoUDP)
		if tcp == 1 {
			proto = protoTCP
		}
		for st := State(0); st < 4; st++ {
			for f := range 16 {
				flags := uint8(f&7 | f&8<<1)
				if nextState(st, proto, flags) == st {
					k[tcp] |= 1 << (uint(st)<<4 | uint(f))
				}
			}
		}
	}
	return k
}()

// keepsState is 1 when a packet with tcpFlags leaves the state of the
// entry with meta m (protocol proto) unchanged, else 0.
func keepsState(m uint64, proto, tcpFlags uint8) uint64 {
	var tcp uint
	if proto == protoTCP {
		tcp = 1
	}
	// FIN, SYN and RST are bits 0-2; ACK (bit 4) becomes bit 3. nextState
	// looks at no other flag.
	f := uint(tcpFlags&7 | tcpFlags>>1&8)
	return stateKeeps[tcp] >> (uint(stateOf(m))<<4 | f) & 1
}

// nextState applies a packet's TCP flags to a hit entry's state.
func nextState(st State, proto uint8, flags uint8) State {
	if proto != protoTCP {
		if st == Embryonic {
			return Established
		}
		return st
	}
	switch {
	case flags&(TCPFlagFIN|TCPFlagRST) != 0:
		return Closing
	case flags&(TCPFlagSYN|TCPFlagACK) == TCPFlagSYN:
		// A bare SYN: a retransmitted first packet keeps an embryonic
		// flow embryonic, and after a close it opens a new connection on
		// the same tuple (kept on the same backend).
		if st == Closing {
			return Embryonic
		}
		return st
	case st == Embryonic && flags&TCPFlagACK != 0:
		return Established
	}
	return st
}

// Lookup finds k. On a hit it refreshes the flow's last-seen tick to now
// and applies tcpFlags (0 for non-TCP): a second packet promotes Embryonic
// to Established (for TCP a packet with ACK and without SYN); FIN or RST
// moves the flow to Closing; a bare SYN reopens a Closing flow as Embryonic.
// An expired entry is a miss: the caller schedules the flow anew and Insert
// replaces the entry.
//
// Lookup takes no lock and does not allocate. hash must be t.Hash(k).
func (t *Table) Lookup(k *Key, hash uint64, now Tick, tcpFlags uint8) (backend uint32, ok bool) {
	backend, _, ok = t.LookupState(k, hash, now, tcpFlags)
	return backend, ok
}

// LookupState is Lookup that also reports the state the flow was in before
// this packet's flags were applied, at no extra cost: a bare SYN on an
// Embryonic flow is a client retrying, on a Closing one a new connection
// reusing the ports. prev is meaningful only when ok.
func (t *Table) LookupState(k *Key, hash uint64, now Tick, tcpFlags uint8) (backend uint32, prev State, ok bool) {
	// At 1M flows every lookup misses the cache twice (the key, then its
	// slot), and what decides the speed is whether the processor overlaps
	// those misses with the next packets'. It does so only while its branch
	// predictions hold, so the common hit is one straight run with no branch
	// that depends on the table's contents: the tags of the whole probe
	// window are compared at once, and the first flagged slot is, but for a
	// 1 in 128 tag collision, the flow. Everything else (a miss, a
	// collision, a write to make, a concurrent writer) goes to lookupSlow.
	s := t.shard(hash)
	home := s.home(hash)
	seq := s.seq.Load()
	// Unchecked indexing: home < s.n, and New sized both arrays so that
	// the window (8 tags, 2 words) and the slots it names lie inside them.
	base := unsafe.Pointer(unsafe.SliceData(s.slots))
	// Start the home slot's cache miss now, in parallel with the tags'
	// (4 hits in 10 sit there): the load of the flow's slot below then
	// waits only for the tags.
	_ = (*slot)(unsafe.Add(base, home*slotSize)).w[4].Load()
	tw := (*[2]atomic.Uint64)(unsafe.Add(unsafe.Pointer(unsafe.SliceData(s.tags)), home/tagWindow*8))
	r := home % tagWindow * 8
	win := tw[0].Load()>>r | tw[1].Load()<<1<<(63-r)
	match := zeroLanes(win ^ tagOf(hash)*tagLanes)
	sl := (*slot)(unsafe.Add(base, (home+uint64(bits.TrailingZeros64(match)/8)&(tagWindow-1))*slotSize))
	m := sl.w[4].Load()
	diff := (m&metaKeyMask ^ (uint64(k.SrcPort) | uint64(k.DstPort)<<16 | uint64(k.Proto)<<32 | metaLive)) |
		(sl.w[0].Load() ^ binary.LittleEndian.Uint64(k.Src[0:8])) |
		(sl.w[1].Load() ^ binary.LittleEndian.Uint64(k.Src[8:16])) |
		(sl.w[2].Load() ^ binary.LittleEndian.Uint64(k.Dst[0:8])) |
		(sl.w[3].Load() ^ binary.LittleEndian.Uint64(k.Dst[8:16]))
	v := sl.w[5].Load()
	// A hit needs no write when the entry was already refreshed in this
	// tick and the flags leave its state as it is; it cannot be expired
	// then, as every timeout is at least one tick. Every condition folds
	// into one word and one branch. (A match of zero cannot pass: the key
	// is then not in the window, and the home slot read instead differs.)
	torn := seq&1 | (s.seq.Load() ^ seq)
	if diff|torn|uint64(uint32(v)^uint32(now))|(keepsState(m, k.Proto, tcpFlags)^1) == 0 {
		runtime.KeepAlive(t)
		return backendOf(v), stateOf(m), true
	}
	if torn == 0 {
		if diff == 0 {
			// A hit with a write to make (the flow's first packet in this
			// tick, or a state change): make it here rather than find the
			// entry again.
			if backend, ok, done := t.refresh(s, sl, seq, m, v, now, tcpFlags); done {
				runtime.KeepAlive(t)
				return backend, stateOf(m), ok
			}
		} else if match == 0 && zeroLanes(win) != 0 {
			// The common miss: no tag in the window is k's (zeroLanes
			// misses no zero byte), and an empty slot in it ends k's run.
			runtime.KeepAlive(t)
			return 0, 0, false
		}
	}
	backend, prev, ok = t.lookupSlow(k, hash, now, tcpFlags)
	runtime.KeepAlive(t)
	return backend, prev, ok
}

// Prefetch starts loading the memory a Lookup or Insert of a key with
// this hash will read (its tags and its home slot) and returns at once.
// A caller with a batch of packets prefetches for all of them before
// looking any up, so that the cache misses of the batch overlap instead of
// following one another. It is only a hint: it changes nothing and takes
// no lock.
func (t *Table) Prefetch(hash uint64) {
	s := t.shard(hash)
	home := s.home(hash)
	base := unsafe.Pointer(unsafe.SliceData(s.slots))
	// Atomic loads are never dropped by the compiler, even unused.
	_ = (*atomic.Uint64)(unsafe.Add(unsafe.Pointer(unsafe.SliceData(s.tags)), home/tagWindow*8)).Load()
	_ = (*slot)(unsafe.Add(base, home*slotSize)).w[4].Load()
	runtime.KeepAlive(t)
}

// lookupSlow is Lookup for every case but the read-only hit in the tag
// window, retried until it sees the shard without a writer in the way.
//
//go:noinline
func (t *Table) lookupSlow(k *Key, hash uint64, now Tick, tcpFlags uint8) (backend uint32, prev State, ok bool) {
	s := t.shard(hash)
	home := s.home(hash)
	s0 := binary.LittleEndian.Uint64(k.Src[0:8])
	s1 := binary.LittleEndian.Uint64(k.Src[8:16])
	d0 := binary.LittleEndian.Uint64(k.Dst[0:8])
	d1 := binary.LittleEndian.Uint64(k.Dst[8:16])
	km := uint64(k.SrcPort) | uint64(k.DstPort)<<16 | uint64(k.Proto)<<32 | metaLive
	tags := tagOf(hash) * tagLanes
	slots := s.slots[home : home+maxProbe]
	for spins := 0; ; spins++ {
		seq := s.seq.Load()
		if seq&1 == 0 {
			win := s.window(home)
			for match := zeroLanes(win ^ tags); match != 0; match &= match - 1 {
				sl := &slots[bits.TrailingZeros64(match)/8]
				m := sl.w[4].Load()
				if m&metaKeyMask != km || sl.w[0].Load() != s0 || sl.w[1].Load() != s1 ||
					sl.w[2].Load() != d0 || sl.w[3].Load() != d1 {
					continue // another flow with the same tag
				}
				v := sl.w[5].Load()
				if s.seq.Load() != seq {
					goto retry // the words read may mix two entries
				}
				if b, hit, done := t.refresh(s, sl, seq, m, v, now, tcpFlags); done {
					return b, stateOf(m), hit
				}
				goto retry
			}
			// Not in the window. An empty slot in it ends k's run; else k
			// may sit further on (at full load about 1 flow in 400 does).
			if zeroLanes(win) == 0 {
				if b, st, hit, done := t.lookupFar(s, slots, seq, s0, s1, d0, d1, km, now, tcpFlags); done {
					return b, st, hit
				}
				goto retry
			}
			if s.seq.Load() == seq {
				return 0, 0, false
			}
		}
	retry:
		if spins > 16 {
			runtime.Gosched()
		}
	}
}

// lookupFar continues a Lookup past the tag window with the plain Robin
// Hood probe. done=false means a writer got in the way.
//
//go:noinline
func (t *Table) lookupFar(s *shard, slots []slot, seq, s0, s1, d0, d1, km uint64, now Tick, tcpFlags uint8) (backend uint32, prev State, ok, done bool) {
	for i := tagWindow; i < len(slots); i++ {
		sl := &slots[i]
		m := sl.w[4].Load()
		if m&metaLive == 0 || pslOf(m) < i {
			break // Robin Hood order: k would sit here or earlier
		}
		if m&metaKeyMask != km || sl.w[0].Load() != s0 || sl.w[1].Load() != s1 ||
			sl.w[2].Load() != d0 || sl.w[3].Load() != d1 {
			continue
		}
		v := sl.w[5].Load()
		if s.seq.Load() != seq {
			return 0, 0, false, false
		}
		b, hit, done := t.refresh(s, sl, seq, m, v, now, tcpFlags)
		return b, stateOf(m), hit, done
	}
	return 0, 0, false, s.seq.Load() == seq
}

// refresh is the part of a Lookup hit that writes: it expires, promotes
// and refreshes the entry at sl, whose words m and v a reader saw
// consistent under seq. done=false means a writer got in the way and the
// lookup must start over. It is kept out of Lookup so that the read-only
// hit path stays short.
//
//go:noinline
func (t *Table) refresh(s *shard, sl *slot, seq, m, v uint64, now Tick, tcpFlags uint8) (backend uint32, ok, done bool) {
	if t.expired(m, v, now) {
		return 0, false, true
	}
	if st := stateOf(m); st != nextState(st, protoOf(m), tcpFlags) {
		nm := m&^metaStateMask | uint64(nextState(st, protoOf(m), tcpFlags))<<metaStateShift
		if !sl.w[4].CompareAndSwap(m, nm) {
			return 0, false, false
		}
	}
	if int32(uint32(now)-uint32(lastSeenOf(v))) > 0 {
		if !sl.w[5].CompareAndSwap(v, value(backendOf(v), now)) {
			return 0, false, false
		}
	}
	if s.seq.Load() != seq {
		// A writer moved or removed the entry while the updates landed:
		// redo them where the entry is now.
		return 0, false, false
	}
	return backendOf(v), true, true
}

// find returns the index of k's live entry, or -1. Caller holds s.mu.
func (s *shard) find(home uint64, kw *keyWords) int {
	for i := 0; i < maxProbe; i++ {
		sl := &s.slots[int(home)+i]
		m := sl.w[4].Load()
		if m&metaLive == 0 || pslOf(m) < i {
			return -1
		}
		if m&metaKeyMask == kw.meta && sl.w[0].Load() == kw.s0 && sl.w[1].Load() == kw.s1 &&
			sl.w[2].Load() == kw.d0 && sl.w[3].Load() == kw.d1 {
			return int(home) + i
		}
	}
	return -1
}

func (s *shard) copySlot(dst, src int, pslDelta uint64) {
	d, o := &s.slots[dst], &s.slots[src]
	for w := 0; w < 4; w++ {
		d.w[w].Store(o.w[w].Load())
	}
	d.w[5].Store(o.w[5].Load())
	d.w[4].Store(o.w[4].Load() + pslDelta)
	s.setTag(dst, s.tagAt(src))
}

// place stores a new entry at its Robin Hood position, shifting the richer
// run after it one slot on. It fails (returns -1, changing nothing) when
// that would put any entry maxProbe or more slots from home. Caller holds
// s.mu.
func (s *shard) place(home uint64, kw *keyWords, st State, v uint64) int {
	p := -1
	for i := 0; i < maxProbe; i++ {
		m := s.slots[int(home)+i].w[4].Load()
		if m&metaLive == 0 || pslOf(m) < i {
			p = int(home) + i
			break
		}
	}
	if p < 0 {
		return -1
	}
	e := p
	for ; ; e++ {
		if e >= len(s.slots) {
			return -1
		}
		m := s.slots[e].w[4].Load()
		if m&metaLive == 0 {
			break
		}
		if pslOf(m)+1 >= maxProbe {
			return -1
		}
	}
	s.seq.Add(1)
	for j := e; j > p; j-- {
		s.copySlot(j, j-1, metaPSLOne)
	}
	sl := &s.slots[p]
	sl.w[0].Store(kw.s0)
	sl.w[1].Store(kw.s1)
	sl.w[2].Store(kw.d0)
	sl.w[3].Store(kw.d1)
	sl.w[5].Store(v)
	sl.w[4].Store(kw.meta | uint64(st)<<metaStateShift | uint64(p-int(home))<<metaPSLShift)
	s.setTag(p, kw.tag)
	s.seq.Add(1)
	return p
}

// remove deletes the entry at i by backward shift: the following entries
// that are away from home move one slot back, so no tombstones are needed
// and probes stay short. Caller holds s.mu and adjusts the counts.
func (s *shard) remove(i int) {
	s.seq.Add(1)
	for {
		j := i + 1
		if j >= len(s.slots) {
			break
		}
		m := s.slots[j].w[4].Load()
		if m&metaLive == 0 || pslOf(m) == 0 {
			break
		}
		s.copySlot(i, j, pslMinusOne)
		i = j
	}
	sl := &s.slots[i]
	sl.w[4].Store(0)
	for w := 0; w < 4; w++ {
		sl.w[w].Store(0)
	}
	sl.w[5].Store(0)
	s.setTag(i, 0)
	s.seq.Add(1)
}

// load copies the entry at i. Caller holds s.mu.
func (s *shard) load(i int, r *record) {
	sl := &s.slots[i]
	binary.LittleEndian.PutUint64(r.k.Src[0:8], sl.w[0].Load())
	binary.LittleEndian.PutUint64(r.k.Src[8:16], sl.w[1].Load())
	binary.LittleEndian.PutUint64(r.k.Dst[0:8], sl.w[2].Load())
	binary.LittleEndian.PutUint64(r.k.Dst[8:16], sl.w[3].Load())
	m := sl.w[4].Load()
	r.k.SrcPort = uint16(m)
	r.k.DstPort = uint16(m >> 16)
	r.k.Proto = protoOf(m)
	r.st = stateOf(m)
	r.backend = backendOf(sl.w[5].Load())
}

// victim picks the entry to give up for a new flow whose probe window
// starts at home: the first expired entry, else the least recently seen
// embryonic one. -1 means every entry in the window is a live flow past its
// first packet. Caller holds s.mu.
func (t *Table) victim(s *shard, home uint64, now Tick) (idx int, expired bool) {
	idx = -1
	var oldest int32 = math.MinInt32
	for i := int(home); i < int(home)+maxProbe; i++ {
		sl := &s.slots[i]
		m := sl.w[4].Load()
		if m&metaLive == 0 {
			continue
		}
		v := sl.w[5].Load()
		if t.expired(m, v, now) {
			return i, true
		}
		if stateOf(m) == Embryonic {
			if age := int32(uint32(now) - uint32(lastSeenOf(v))); age > oldest {
				oldest, idx = age, i
			}
		}
	}
	return idx, false
}

// Insert adds a new flow, Embryonic, on backend. If k is already present
// (two workers raced on the same new flow) it returns that flow's backend
// and inserted=false, so both forward to the same backend. An expired entry
// for k is replaced as if absent.
//
// When the table or the flow's probe window is full, Insert reuses an
// expired entry, else evicts the least recently seen embryonic entry of the
// window (reporting either to Config.OnEvict), else returns ErrFull. It
// never evicts an established or closing flow and does not allocate. hash
// must be t.Hash(k).
func (t *Table) Insert(k *Key, hash uint64, now Tick, backend uint32) (got uint32, inserted bool, err error) {
	got, inserted, err = t.insert(k, hash, now, backend)
	runtime.KeepAlive(t)
	return got, inserted, err
}

func (t *Table) insert(k *Key, hash uint64, now Tick, backend uint32) (got uint32, inserted bool, err error) {
	s := t.shard(hash)
	home := s.home(hash)
	kw := k.words()
	kw.tag = tagOf(hash)
	v := value(backend, now)
	var gone record

	s.mu.Lock()
	if i := s.find(home, &kw); i >= 0 {
		sl := &s.slots[i]
		m, old := sl.w[4].Load(), sl.w[5].Load()
		if !t.expired(m, old, now) {
			s.mu.Unlock()
			return backendOf(old), false, nil
		}
		// Expired but not yet swept: start the flow afresh in place.
		s.load(i, &gone)
		s.seq.Add(1)
		sl.w[5].Store(v)
		sl.w[4].Store(m &^ metaStateMask)
		s.seq.Add(1)
		s.reused.Add(1)
		s.mu.Unlock()
		t.reportEvict(&gone)
		return backend, true, nil
	}

	if s.count.Load() < s.cap {
		if t.count.Add(1) <= t.maxFlows {
			if s.place(home, &kw, Embryonic, v) >= 0 {
				s.count.Add(1)
				s.mu.Unlock()
				return backend, true, nil
			}
		}
		t.count.Add(-1)
	}

	// No room: give up an expired or embryonic entry of the window. The
	// table-wide count is unchanged when the new entry takes its place.
	i, exp := t.victim(s, home, now)
	if i < 0 {
		s.refused.Add(1)
		s.mu.Unlock()
		return 0, false, ErrFull
	}
	s.load(i, &gone)
	s.remove(i)
	if exp {
		s.reused.Add(1)
	} else {
		s.evicted.Add(1)
	}
	if s.place(home, &kw, Embryonic, v) < 0 {
		// Vanishingly rare: the window's layout still exceeds the probe
		// bound. The victim is gone all the same.
		s.count.Add(-1)
		t.count.Add(-1)
		s.refused.Add(1)
		s.mu.Unlock()
		t.reportEvict(&gone)
		return 0, false, ErrFull
	}
	s.mu.Unlock()
	t.reportEvict(&gone)
	return backend, true, nil
}

func (t *Table) reportEvict(r *record) {
	if t.onEvict != nil {
		t.onEvict(r.k, r.backend)
	}
}

// Reassign moves the existing flow k to backend, keeping its state and
// last-seen time; the balancer uses it when the flow's backend is down or
// gone. It reports whether k was present. An expired entry not yet removed
// is reassigned too (Sweep then reports it with the new backend). hash must
// be t.Hash(k).
func (t *Table) Reassign(k *Key, hash uint64, backend uint32) bool {
	defer runtime.KeepAlive(t)
	s := t.shard(hash)
	kw := k.words()
	s.mu.Lock()
	defer s.mu.Unlock()
	i := s.find(s.home(hash), &kw)
	if i < 0 {
		return false
	}
	// Lock-free hits may refresh the value word concurrently: swap the
	// backend in without losing their last-seen update.
	w := &s.slots[i].w[5]
	for {
		v := w.Load()
		if w.CompareAndSwap(v, value(backend, lastSeenOf(v))) {
			return true
		}
	}
}

// Delete removes flow k and reports whether it was present. hash must be
// t.Hash(k).
func (t *Table) Delete(k *Key, hash uint64) bool {
	defer runtime.KeepAlive(t)
	s := t.shard(hash)
	kw := k.words()
	s.mu.Lock()
	defer s.mu.Unlock()
	i := s.find(s.home(hash), &kw)
	if i < 0 {
		return false
	}
	s.remove(i)
	s.count.Add(-1)
	t.count.Add(-1)
	return true
}

// Entry is what Peek reports of a held flow.
type Entry struct {
	Backend uint32
	State   State
	// Idle is how long the flow has been idle at the time given to Peek.
	Idle Tick
	// Expired reports that the flow timed out: the next packet of the
	// tuple starts a new flow.
	Expired bool
}

// Peek returns flow k's entry without refreshing it or changing its state,
// and whether k is held (an expired entry not yet removed is held, with
// Expired set). It takes the shard's lock: it is for questions off the
// forwarding path (explaining a decision, tests); the forwarding path
// learns a flow's state from LookupState.
func (t *Table) Peek(k *Key, hash uint64, now Tick) (Entry, bool) {
	defer runtime.KeepAlive(t)
	s := t.shard(hash)
	kw := k.words()
	s.mu.Lock()
	defer s.mu.Unlock()
	i := s.find(s.home(hash), &kw)
	if i < 0 {
		return Entry{}, false
	}
	m, v := s.slots[i].w[4].Load(), s.slots[i].w[5].Load()
	return Entry{Backend: backendOf(v), State: stateOf(m), Idle: Tick(uint32(now) - uint32(lastSeenOf(v))), Expired: t.expired(m, v, now)}, true
}

// Len returns the number of entries held, including expired ones that
// neither Sweep nor Insert has removed yet. Under concurrent writers it is
// approximate: a snapshot of a moving count.
func (t *Table) Len() int { return int(t.count.Load()) }

// Cap returns the most flows the table holds (Config.MaxFlows).
func (t *Table) Cap() int { return int(t.maxFlows) }

// Stats counts the table's decisions under pressure, for the balancer's
// metrics.
type Stats struct {
	// Evicted is the number of embryonic flows Insert evicted to make room.
	Evicted uint64
	// Reused is the number of expired entries Insert replaced.
	Reused uint64
	// Refused is the number of Insert calls that returned ErrFull.
	Refused uint64
}

// Stats returns the counters summed over all shards.
func (t *Table) Stats() Stats {
	var st Stats
	for i := range t.shards {
		s := &t.shards[i]
		st.Evicted += s.evicted.Load()
		st.Reused += s.reused.Load()
		st.Refused += s.refused.Load()
	}
	return st
}

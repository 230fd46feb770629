package flowtable

import (
	"errors"
	"net/netip"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestMakeKey(t *testing.T) {
	tests := []struct {
		name     string
		src, dst string
	}{
		{"ipv4", "198.51.100.7", "192.0.2.10"},
		{"ipv6", "2001:db8::7", "2001:db8::10"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			src, dst := netip.MustParseAddr(tt.src), netip.MustParseAddr(tt.dst)
			k := MakeKey(src, dst, 40000, 80, protoTCP)
			assert.Equal(t, src, k.SrcAddr())
			assert.Equal(t, dst, k.DstAddr())
			assert.Equal(t, uint16(40000), k.SrcPort)
			assert.Equal(t, uint16(80), k.DstPort)
			assert.Equal(t, uint8(protoTCP), k.Proto)
			assert.Equal(t, src.As16(), k.Src)
		})
	}

	// An IPv4 flow is the same flow whether it arrives as 4 bytes or
	// IPv4-mapped.
	a := MakeKey(netip.MustParseAddr("198.51.100.7"), netip.MustParseAddr("192.0.2.10"), 1, 2, protoUDP)
	b := MakeKey(netip.MustParseAddr("::ffff:198.51.100.7"), netip.MustParseAddr("::ffff:192.0.2.10"), 1, 2, protoUDP)
	assert.Equal(t, a, b)
	assert.Equal(t, a.Hash(1), b.Hash(1))

	// The zero Addr does not panic and gives the zero address.
	z := MakeKey(netip.Addr{}, netip.Addr{}, 0, 0, 0)
	assert.Equal(t, [16]byte{}, z.Src)
}

func TestInsertLookupReassignDelete(t *testing.T) {
	keys := map[string]Key{
		"ipv4 tcp":  v4Key(1, protoTCP),
		"ipv4 udp":  MakeKey(netip.MustParseAddr("203.0.113.9"), netip.MustParseAddr("192.0.2.10"), 5353, 53, protoUDP),
		"ipv6 tcp":  MakeKey(netip.MustParseAddr("2001:db8::1"), netip.MustParseAddr("2001:db8::10"), 50000, 443, protoTCP),
		"ipv6 icmp": MakeKey(netip.MustParseAddr("2001:db8::2"), netip.MustParseAddr("2001:db8::10"), 0, 0, 58),
	}
	for name, k := range keys {
		t.Run(name, func(t *testing.T) {
			tab := newTable(t, Config{MaxFlows: 1000})
			h := tab.Hash(&k)

			_, ok := tab.Lookup(&k, h, 10, 0)
			require.False(t, ok, "empty table")

			got, inserted, err := tab.Insert(&k, h, 10, 7)
			require.NoError(t, err)
			require.True(t, inserted)
			require.Equal(t, uint32(7), got)
			require.Equal(t, 1, tab.Len())

			// A racing second insert gets the first backend.
			got, inserted, err = tab.Insert(&k, h, 11, 9)
			require.NoError(t, err)
			require.False(t, inserted)
			require.Equal(t, uint32(7), got)
			require.Equal(t, 1, tab.Len())

			b, ok := tab.Lookup(&k, h, 12, 0)
			require.True(t, ok)
			require.Equal(t, uint32(7), b)

			// Another flow differing in one field only is a different flow.
			other := k
			other.SrcPort++
			_, ok = tab.Lookup(&other, tab.Hash(&other), 12, 0)
			require.False(t, ok)
			require.False(t, tab.Reassign(&other, tab.Hash(&other), 1))
			require.False(t, tab.Delete(&other, tab.Hash(&other)))

			require.True(t, tab.Reassign(&k, h, 3))
			b, ok = tab.Lookup(&k, h, 13, 0)
			require.True(t, ok)
			require.Equal(t, uint32(3), b)

			require.True(t, tab.Delete(&k, h))
			require.False(t, tab.Delete(&k, h))
			require.Equal(t, 0, tab.Len())
			_, ok = tab.Lookup(&k, h, 14, 0)
			require.False(t, ok)
			checkInvariants(t, tab)
		})
	}
}

func TestManyFlowsRoundTrip(t *testing.T) {
	tab := newTable(t, Config{MaxFlows: 20000, Shards: 16})
	const n = 15000 // 75% of capacity
	for i := uint32(0); i < n; i++ {
		ins(t, tab, v4Key(i, protoTCP), 1, i)
	}
	checkInvariants(t, tab)
	for i := uint32(0); i < n; i++ {
		b, ok := look(tab, v4Key(i, protoTCP), 2)
		require.True(t, ok, i)
		require.Equal(t, i, b)
	}
	// Delete every third flow: backward shift must keep the rest findable.
	for i := uint32(0); i < n; i += 3 {
		k := v4Key(i, protoTCP)
		require.True(t, tab.Delete(&k, tab.Hash(&k)))
	}
	checkInvariants(t, tab)
	for i := uint32(0); i < n; i++ {
		b, ok := look(tab, v4Key(i, protoTCP), 3)
		require.Equal(t, i%3 != 0, ok, i)
		if ok {
			require.Equal(t, i, b)
		}
	}
}

func TestTimeouts(t *testing.T) {
	cfg := Config{
		MaxFlows:            100,
		TCPTimeout:          100 * time.Second,
		TCPEmbryonicTimeout: 20 * time.Second,
		TCPClosingTimeout:   5 * time.Second,
		UDPTimeout:          60 * time.Second,
		UDPEmbryonicTimeout: 10 * time.Second,
		OtherTimeout:        30 * time.Second,
	}
	tests := []struct {
		name    string
		proto   uint8
		flags   []uint8 // packets after the first, all at tick 0
		state   State
		timeout time.Duration
	}{
		{"tcp embryonic", protoTCP, nil, Embryonic, cfg.TCPEmbryonicTimeout},
		{"tcp syn retransmit stays embryonic", protoTCP, []uint8{TCPFlagSYN}, Embryonic, cfg.TCPEmbryonicTimeout},
		{"tcp established", protoTCP, []uint8{TCPFlagACK}, Established, cfg.TCPTimeout},
		{"tcp data", protoTCP, []uint8{TCPFlagACK, TCPFlagACK | 0x08}, Established, cfg.TCPTimeout},
		{"tcp fin", protoTCP, []uint8{TCPFlagACK, TCPFlagFIN | TCPFlagACK}, Closing, cfg.TCPClosingTimeout},
		{"tcp rst on embryonic", protoTCP, []uint8{TCPFlagRST}, Closing, cfg.TCPClosingTimeout},
		{"tcp ack after fin stays closing", protoTCP, []uint8{TCPFlagACK, TCPFlagFIN, TCPFlagACK}, Closing, cfg.TCPClosingTimeout},
		{"tcp syn reopens closed", protoTCP, []uint8{TCPFlagACK, TCPFlagRST, TCPFlagSYN}, Embryonic, cfg.TCPEmbryonicTimeout},
		{"udp embryonic", protoUDP, nil, Embryonic, cfg.UDPEmbryonicTimeout},
		{"udp established", protoUDP, []uint8{0}, Established, cfg.UDPTimeout},
		{"udp ignores flags", protoUDP, []uint8{TCPFlagFIN}, Established, cfg.UDPTimeout},
		{"other embryonic", 47, nil, Embryonic, cfg.OtherTimeout},
		{"other established", 47, []uint8{0}, Established, cfg.OtherTimeout},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			limit := TickOf(tt.timeout)
			// Start near the wrap of Tick to prove the comparisons are
			// wrap-safe.
			start := Tick(1<<32 - 5)
			for _, probe := range []struct {
				at  Tick
				hit bool
			}{{start + limit, true}, {start + limit + 1, false}} {
				tab := newTable(t, cfg)
				k := v4Key(9, tt.proto)
				h := tab.Hash(&k)
				ins(t, tab, k, start, 4)
				for _, f := range tt.flags {
					b, ok := tab.Lookup(&k, h, start, f)
					require.True(t, ok)
					require.Equal(t, uint32(4), b)
				}
				require.Equal(t, tt.state, stateOfKey(t, tab, k))
				_, ok := tab.Lookup(&k, h, probe.at, 0)
				require.Equal(t, probe.hit, ok, "lookup %d ticks after last packet", probe.at-start)

				if !probe.hit {
					// The expired entry still counts until removed; Insert
					// replaces it as a new embryonic flow on the new
					// backend.
					var gone []uint32
					tab.onEvict = func(_ Key, b uint32) { gone = append(gone, b) }
					got, inserted, err := tab.Insert(&k, h, probe.at, 5)
					require.NoError(t, err)
					require.True(t, inserted)
					require.Equal(t, uint32(5), got)
					require.Equal(t, []uint32{4}, gone)
					require.Equal(t, Embryonic, stateOfKey(t, tab, k))
					require.Equal(t, 1, tab.Len())
				}
			}
		})
	}
}

func TestLookupRefreshes(t *testing.T) {
	tab := newTable(t, Config{MaxFlows: 100, UDPTimeout: 10 * time.Second})
	k := v4Key(3, protoUDP)
	h := tab.Hash(&k)
	ins(t, tab, k, 0, 1)
	// Each hit within the timeout pushes expiry further out.
	for now := Tick(0); now <= 1000; now += 100 {
		_, ok := tab.Lookup(&k, h, now, 0)
		require.True(t, ok, now)
	}
	// A worker whose clock lags behind does not see the entry expired nor
	// move last-seen backwards.
	_, ok := tab.Lookup(&k, h, 900, 0)
	require.True(t, ok)
	_, ok = tab.Lookup(&k, h, 1100, 0)
	require.True(t, ok)
	_, ok = tab.Lookup(&k, h, 1201, 0)
	require.False(t, ok)
}

func TestConfig(t *testing.T) {
	tab, err := New(nil)
	require.NoError(t, err)
	assert.Equal(t, DefaultMaxFlows, tab.Cap())
	assert.Len(t, tab.shards, DefaultShards)
	assert.NotZero(t, tab.Seed())
	assert.Equal(t, [4]int32{300, 9000, 100, 9000}, tab.timeouts[classTCP])
	assert.Equal(t, [4]int32{300, 3000, 3000, 3000}, tab.timeouts[classUDP])
	assert.Equal(t, [4]int32{600, 600, 600, 600}, tab.timeouts[classOther])

	tab = newTable(t, Config{MaxFlows: 10, Shards: 3})
	assert.Len(t, tab.shards, 1, "shards reduced for a tiny table")
	tab = newTable(t, Config{MaxFlows: 1 << 16, Shards: 3})
	assert.Len(t, tab.shards, 4, "shards rounded up to a power of two")

	invalid := []struct {
		field string
		cfg   Config
	}{
		{"MaxFlows", Config{MaxFlows: -1}},
		{"MaxFlows", Config{MaxFlows: MaxMaxFlows + 1}},
		{"Shards", Config{Shards: -1}},
		{"Shards", Config{Shards: 1<<16 + 1}},
		{"TCPTimeout", Config{TCPTimeout: -time.Second}},
		{"TCPEmbryonicTimeout", Config{TCPEmbryonicTimeout: -1}},
		{"TCPClosingTimeout", Config{TCPClosingTimeout: -1}},
		{"UDPTimeout", Config{UDPTimeout: 100 * 365 * 24 * time.Hour}},
		{"UDPEmbryonicTimeout", Config{UDPEmbryonicTimeout: -1}},
		{"OtherTimeout", Config{OtherTimeout: -1}},
	}
	for _, tt := range invalid {
		t.Run(tt.field, func(t *testing.T) {
			_, err := New(&tt.cfg)
			require.Error(t, err)
			assert.Contains(t, err.Error(), "Config."+tt.field)
		})
	}
}

func TestCapacityIsExact(t *testing.T) {
	const maxFlows = 1000
	tab := newTable(t, Config{MaxFlows: maxFlows, Shards: 4})
	var state uint64
	for i := 0; tab.Len() < maxFlows; i++ {
		require.Less(t, i, 10*maxFlows, "the table does not fill")
		k := randKey(&state)
		_, _, err := tab.Insert(&k, tab.Hash(&k), 0, 1)
		require.NoError(t, err, "filling at %d", tab.Len())
		_, ok := tab.Lookup(&k, tab.Hash(&k), 0, TCPFlagACK)
		require.True(t, ok)
	}
	checkInvariants(t, tab)
	for i := 0; i < 100; i++ {
		k := randKey(&state)
		_, inserted, err := tab.Insert(&k, tab.Hash(&k), 0, 1)
		require.ErrorIs(t, err, ErrFull)
		require.False(t, inserted)
	}
	assert.Equal(t, maxFlows, tab.Len())
	assert.Equal(t, Stats{Refused: 100}, tab.Stats())
}

func TestEmbryonicEvictedForNewFlows(t *testing.T) {
	const maxFlows = 200
	var evicted []Key
	tab := newTable(t, Config{MaxFlows: maxFlows, Shards: 1, OnEvict: func(k Key, b uint32) {
		require.Equal(t, uint32(1), b)
		evicted = append(evicted, k)
	}})
	var state uint64
	var keys []Key
	for i := 0; i < maxFlows; i++ {
		k := randKey(&state)
		ins(t, tab, k, Tick(i), 1)
		keys = append(keys, k)
	}
	// Full of embryonic flows: a new one evicts the least recently seen
	// embryonic flow of its window.
	k := randKey(&state)
	ins(t, tab, k, 200, 2)
	require.Len(t, evicted, 1)
	assert.Equal(t, maxFlows, tab.Len())
	_, ok := look(tab, evicted[0], 200)
	assert.False(t, ok, "evicted flow is gone")
	assert.Equal(t, Stats{Evicted: 1}, tab.Stats())
	checkInvariants(t, tab)

	// An expired flow in the window is reused before any live embryonic
	// one: at tick 350 the flows inserted before tick 50 are expired
	// (embryonic timeout 300 ticks).
	evicted = evicted[:0]
	k = randKey(&state)
	ins(t, tab, k, 350, 2)
	require.Len(t, evicted, 1)
	var idx int
	for i := range keys {
		if keys[i] == evicted[0] {
			idx = i
		}
	}
	assert.Less(t, idx, 50, "reused entry was expired")
	assert.Equal(t, uint64(1), tab.Stats().Reused)
}

func TestSweep(t *testing.T) {
	tab := newTable(t, Config{MaxFlows: 5000, Shards: 8, UDPEmbryonicTimeout: 10 * time.Second})
	const n = 3000
	for i := uint32(0); i < n; i++ {
		// Even flows were last seen at tick 0, odd ones at tick 100.
		ins(t, tab, v4Key(i, protoUDP), Tick(i%2)*100, i)
	}
	totalSlots := 0
	for i := range tab.shards {
		totalSlots += len(tab.shards[i].slots)
	}

	// At tick 150 the even flows are expired (idle 150 > 100).
	const budget = 97
	seen := map[uint32]int{}
	removed := 0
	// This many calls cover every slot exactly once.
	calls := (totalSlots + budget - 1) / budget
	for c := 0; c < calls; c++ {
		r := tab.Sweep(150, budget, func(k *Key, b uint32) {
			require.Equal(t, v4Key(b, protoUDP), *k, "reported backend belongs to the key")
			seen[b]++
		})
		removed += r
	}
	assert.Equal(t, n/2, removed)
	assert.Len(t, seen, n/2)
	for b, c := range seen {
		assert.Equal(t, 1, c, "flow %d reported once", b)
		assert.Zero(t, b%2, "only expired flows removed")
	}
	assert.Equal(t, n/2, tab.Len())
	checkInvariants(t, tab)

	// Another full pass removes nothing more.
	assert.Zero(t, tab.Sweep(150, 0, nil))
	// Everything expires eventually.
	assert.Equal(t, n/2, tab.Sweep(1000, 0, nil))
	assert.Zero(t, tab.Len())
}

func TestSweepCallbackMayUseTable(t *testing.T) {
	tab := newTable(t, Config{MaxFlows: 1000})
	for i := uint32(0); i < 500; i++ {
		ins(t, tab, v4Key(i, protoTCP), 0, i)
	}
	n := tab.Sweep(10000, 0, func(k *Key, _ uint32) {
		// Must not deadlock: the shard lock is released.
		_, _, err := tab.Insert(k, tab.Hash(k), 10000, 1)
		require.NoError(t, err)
	})
	assert.Equal(t, 500, n)
	assert.Equal(t, 500, tab.Len())
}

func TestRange(t *testing.T) {
	tab := newTable(t, Config{MaxFlows: 2000, Shards: 4})
	const n = 1500
	for i := uint32(0); i < n; i++ {
		ins(t, tab, v4Key(i, protoTCP), 0, i)
	}
	k := v4Key(7, protoTCP)
	_, ok := tab.Lookup(&k, tab.Hash(&k), 0, TCPFlagACK)
	require.True(t, ok)

	seen := map[uint32]State{}
	tab.Range(func(k *Key, b uint32, st State) bool {
		require.Equal(t, v4Key(b, protoTCP), *k)
		_, dup := seen[b]
		require.False(t, dup)
		seen[b] = st
		return true
	})
	assert.Len(t, seen, n)
	assert.Equal(t, Established, seen[7])
	assert.Equal(t, Embryonic, seen[8])

	calls := 0
	tab.Range(func(*Key, uint32, State) bool { calls++; return calls < 10 })
	assert.Equal(t, 10, calls, "Range stops when fn returns false")

	// fn may mutate the table (no lock held). Deleting moves entries
	// across Range's position, so some are seen only by a later Range.
	for i := 0; i < 10 && tab.Len() > 0; i++ {
		tab.Range(func(k *Key, _ uint32, _ State) bool {
			require.True(t, tab.Delete(k, tab.Hash(k)))
			return true
		})
	}
	assert.Zero(t, tab.Len())
}

func TestStateString(t *testing.T) {
	assert.Equal(t, "embryonic", Embryonic.String())
	assert.Equal(t, "established", Established.String())
	assert.Equal(t, "closing", Closing.String())
	assert.Equal(t, "State(9)", State(9).String())
}

func TestTickOf(t *testing.T) {
	assert.Equal(t, Tick(0), TickOf(-time.Second))
	assert.Equal(t, Tick(0), TickOf(99*time.Millisecond))
	assert.Equal(t, Tick(1), TickOf(100*time.Millisecond))
	assert.Equal(t, Tick(9000), TickOf(15*time.Minute))
}

func TestErrFullIsSentinel(t *testing.T) {
	err := error(ErrFull)
	assert.True(t, errors.Is(err, ErrFull))
}

func TestPeekReportsWithoutRefreshing(t *testing.T) {
	tab, err := New(&Config{MaxFlows: 1024, TCPClosingTimeout: time.Second})
	require.NoError(t, err)
	k := MakeKey(netip.MustParseAddr("198.51.100.1"), netip.MustParseAddr("192.0.2.100"), 1000, 80, 6)
	h := tab.Hash(&k)
	_, ok := tab.Peek(&k, h, 0)
	assert.False(t, ok)
	_, _, err = tab.Insert(&k, h, 1, 7)
	require.NoError(t, err)
	e, ok := tab.Peek(&k, h, 4)
	require.True(t, ok)
	assert.Equal(t, Entry{Backend: 7, State: Embryonic, Idle: 3}, e)
	_, ok = tab.Lookup(&k, h, 5, TCPFlagACK)
	require.True(t, ok)
	e, _ = tab.Peek(&k, h, 5)
	assert.Equal(t, Established, e.State)
	assert.Zero(t, e.Idle, "Lookup refreshed it")
	_, _ = tab.Lookup(&k, h, 6, TCPFlagFIN|TCPFlagACK)
	e, _ = tab.Peek(&k, h, 6)
	assert.Equal(t, Closing, e.State)
	e, _ = tab.Peek(&k, h, 6+20)
	assert.True(t, e.Expired, "idle past the closing timeout")
	assert.Equal(t, Tick(20), e.Idle)
	e, _ = tab.Peek(&k, h, 6+20)
	assert.Equal(t, Tick(20), e.Idle, "Peek itself refreshes nothing")
}

// TestLookupStateReportsThePreviousState checks that LookupState tells a
// packet the state its flow was in before the packet's flags moved it on,
// on the lock-free hit path and on the writing one alike.
func TestLookupStateReportsThePreviousState(t *testing.T) {
	tab, err := New(&Config{MaxFlows: 1024})
	require.NoError(t, err)
	k := MakeKey(netip.MustParseAddr("198.51.100.1"), netip.MustParseAddr("192.0.2.100"), 1000, 80, 6)
	h := tab.Hash(&k)
	_, _, ok := tab.LookupState(&k, h, 1, TCPFlagSYN)
	require.False(t, ok)
	_, _, err = tab.Insert(&k, h, 1, 7)
	require.NoError(t, err)
	for _, step := range []struct {
		at          Tick
		flags       uint8
		prev, after State
	}{
		{1, TCPFlagSYN, Embryonic, Embryonic},                // a retransmission, same tick: read-only hit
		{2, TCPFlagSYN, Embryonic, Embryonic},                // the same in a new tick: a refresh
		{2, TCPFlagACK, Embryonic, Established},              // the handshake completes
		{2, TCPFlagACK, Established, Established},            // read-only hit
		{3, TCPFlagSYN, Established, Established},            // a stray SYN changes nothing
		{3, TCPFlagFIN | TCPFlagACK, Established, Closing},   // close
		{3, TCPFlagACK, Closing, Closing},                    // the last ACK
		{4, TCPFlagSYN, Closing, Embryonic},                  // a new connection on the ports
		{4, TCPFlagSYN | TCPFlagACK, Embryonic, Established}, // not a bare SYN: an ACK
	} {
		b, prev, ok := tab.LookupState(&k, h, step.at, step.flags)
		require.True(t, ok)
		assert.Equal(t, uint32(7), b)
		assert.Equal(t, step.prev, prev, "flags %#x at %d", step.flags, step.at)
		e, _ := tab.Peek(&k, h, step.at)
		assert.Equal(t, step.after, e.State, "flags %#x at %d", step.flags, step.at)
	}
}

// TestPrefetchChangesNothing checks that Prefetch is only a hint: for any
// hash, of present and absent flows alike (including the extremes that
// pick the first and last shard and slot), it reads without writing, so
// every lookup answers as before.
func TestPrefetchChangesNothing(t *testing.T) {
	tab := newTable(t, Config{MaxFlows: 1 << 12})
	state := uint64(11)
	keys := make([]Key, 500)
	for i := range keys {
		keys[i] = randKey(&state)
		ins(t, tab, keys[i], 0, uint32(i))
	}
	for _, h := range []uint64{0, ^uint64(0), 1 << 63, 1<<32 - 1} {
		tab.Prefetch(h)
	}
	for i := range keys {
		tab.Prefetch(tab.Hash(&keys[i]))
		absent := randKey(&state)
		tab.Prefetch(tab.Hash(&absent))
	}
	assert.Equal(t, len(keys), tab.Len())
	for i := range keys {
		b, ok := tab.Lookup(&keys[i], tab.Hash(&keys[i]), 0, 0)
		require.True(t, ok)
		assert.Equal(t, uint32(i), b)
	}
}

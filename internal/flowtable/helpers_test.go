package flowtable

import (
	"encoding/binary"
	"net/netip"
	"testing"

	"github.com/stretchr/testify/require"
)

const testSeed = 0x5eed_f00d_1234_5678

// newTable builds a table with a fixed seed for reproducible placement.
func newTable(tb testing.TB, cfg Config) *Table {
	tb.Helper()
	if cfg.Seed == 0 {
		cfg.Seed = testSeed
	}
	tab, err := New(&cfg)
	require.NoError(tb, err)
	return tab
}

// v4Key returns a distinct IPv4 TCP key for each i: clients in
// 198.51.100.0/24 and beyond, to the VIP 192.0.2.10:80.
func v4Key(i uint32, proto uint8) Key {
	var a [4]byte
	binary.BigEndian.PutUint32(a[:], 0xc6336400+i>>8) // 198.51.100.0 + i/256
	return MakeKey(netip.AddrFrom4(a), netip.MustParseAddr("192.0.2.10"), uint16(1024+i&0xff), 80, proto)
}

// randKey returns a pseudo-random IPv6 TCP key from a splitmix64 state.
func randKey(state *uint64) Key {
	next := func() uint64 {
		*state += 0x9e3779b97f4a7c15
		z := *state
		z = (z ^ z>>30) * 0xbf58476d1ce4e5b9
		z = (z ^ z>>27) * 0x94d049bb133111eb
		return z ^ z>>31
	}
	var k Key
	k.Src[0], k.Src[1], k.Src[2], k.Src[3] = 0x20, 0x01, 0x0d, 0xb8
	binary.LittleEndian.PutUint64(k.Src[8:], next())
	k.Dst = netip.MustParseAddr("2001:db8::10").As16()
	r := next()
	k.SrcPort = uint16(r)
	k.DstPort = 443
	k.Proto = protoTCP
	return k
}

// ins inserts k and requires success.
func ins(tb testing.TB, tab *Table, k Key, now Tick, backend uint32) {
	tb.Helper()
	got, inserted, err := tab.Insert(&k, tab.Hash(&k), now, backend)
	require.NoError(tb, err)
	require.True(tb, inserted)
	require.Equal(tb, backend, got)
}

// look looks k up without flags.
func look(tab *Table, k Key, now Tick) (uint32, bool) {
	return tab.Lookup(&k, tab.Hash(&k), now, 0)
}

// stateOfKey returns k's state via Range.
func stateOfKey(tb testing.TB, tab *Table, k Key) State {
	tb.Helper()
	var st State
	found := false
	tab.Range(func(rk *Key, _ uint32, s State) bool {
		if *rk == k {
			st, found = s, true
			return false
		}
		return true
	})
	require.True(tb, found, "key not in table")
	return st
}

// checkInvariants verifies the Robin Hood layout of every shard: live
// entries sit within maxProbe of home, the stored probe distance is right,
// no gap separates an entry from its home, and the counts match.
func checkInvariants(tb testing.TB, tab *Table) {
	tb.Helper()
	total := 0
	for si := range tab.shards {
		s := &tab.shards[si]
		s.mu.Lock()
		n := 0
		for i := range s.slots {
			m := s.slots[i].w[4].Load()
			if m&metaLive == 0 {
				require.Zero(tb, s.tagAt(i), "tag of an empty slot")
				continue
			}
			n++
			var r record
			s.load(i, &r)
			h := tab.Hash(&r.k)
			require.Equal(tb, si, int(h>>(64-tab.shardBits)&(1<<tab.shardBits-1)), "entry in wrong shard")
			home := int(s.home(h))
			require.Equal(tb, tagOf(h), s.tagAt(i), "tag of a live slot")
			require.Equal(tb, i-home, pslOf(m), "stored probe distance")
			require.Less(tb, i-home, maxProbe)
			for j := home; j < i; j++ {
				require.NotZero(tb, s.slots[j].w[4].Load()&metaLive, "gap between home and entry")
			}
		}
		require.EqualValues(tb, n, s.count.Load(), "shard count")
		require.LessOrEqual(tb, int64(n), s.cap)
		s.mu.Unlock()
		total += n
	}
	require.Equal(tb, total, tab.Len())
	require.LessOrEqual(tb, total, tab.Cap())
}

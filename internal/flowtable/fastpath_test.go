package flowtable

import (
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// lastSeenOfKey returns the last-seen tick stored for k.
func lastSeenOfKey(tb testing.TB, tab *Table, k Key) Tick {
	tb.Helper()
	kw := k.words()
	h := tab.Hash(&k)
	s := tab.shard(h)
	i := s.find(s.home(h), &kw)
	require.GreaterOrEqual(tb, i, 0, "key not in table")
	return lastSeenOf(s.slots[i].w[5].Load())
}

// TestLookupRefreshesEveryTick looks a flow up once per tick, so that the
// stored and the current tick differ in single low bits, and checks that
// every hit stores the new tick: the read-only fast path must take only
// hits already refreshed in this very tick.
func TestLookupRefreshesEveryTick(t *testing.T) {
	for _, start := range []Tick{0, 1, 1<<32 - 3} {
		t.Run(fmt.Sprint(start), func(t *testing.T) {
			tab := newTable(t, Config{MaxFlows: 100, UDPTimeout: time.Second})
			k := v4Key(5, protoUDP)
			h := tab.Hash(&k)
			ins(t, tab, k, start, 1)
			now := start
			for i := 0; i < 40; i++ {
				_, ok := tab.Lookup(&k, h, now, 0)
				require.True(t, ok, "tick %d", now)
				require.Equal(t, now, lastSeenOfKey(t, tab, k), "tick %d", now)
				// A second packet in the same tick changes nothing.
				_, ok = tab.Lookup(&k, h, now, 0)
				require.True(t, ok)
				require.Equal(t, now, lastSeenOfKey(t, tab, k))
				now++
			}
			last := now - 1
			_, ok := tab.Lookup(&k, h, last+10, 0)
			assert.True(t, ok, "10 ticks after the last packet")
			_, ok = tab.Lookup(&k, h, last+10+11, 0)
			assert.False(t, ok, "11 ticks after the previous one")
		})
	}
}

// TestStateKeepsMatchesNextState checks the hit path's state table
// against nextState for every protocol class, state and flag byte.
func TestStateKeepsMatchesNextState(t *testing.T) {
	for _, proto := range []uint8{protoTCP, protoUDP, 1, 47} {
		for st := State(0); st < 4; st++ {
			for f := 0; f < 256; f++ {
				m := uint64(proto)<<32 | uint64(st)<<metaStateShift | metaLive
				want := uint64(0)
				if nextState(st, proto, uint8(f)) == st {
					want = 1
				}
				require.Equal(t, want, keepsState(m, proto, uint8(f)), "proto %d state %v flags %#x", proto, st, f)
			}
		}
	}
}

// TestLookupFastPathStateChanges checks that hits which change the state
// within one tick are not taken as read-only.
func TestLookupFastPathStateChanges(t *testing.T) {
	tab := newTable(t, Config{MaxFlows: 100})
	k := v4Key(7, protoTCP)
	h := tab.Hash(&k)
	ins(t, tab, k, 5, 3)
	steps := []struct {
		flags uint8
		want  State
	}{
		{TCPFlagSYN, Embryonic},
		{TCPFlagACK, Established},
		{TCPFlagACK, Established},
		{TCPFlagFIN | TCPFlagACK, Closing},
		{TCPFlagSYN, Embryonic},
		{TCPFlagRST, Closing},
	}
	for i, st := range steps {
		b, ok := tab.Lookup(&k, h, 5, st.flags)
		require.True(t, ok, "step %d", i)
		require.Equal(t, uint32(3), b)
		require.Equal(t, st.want, stateOfKey(t, tab, k), "step %d", i)
	}
}

// TestLookupWaitsForWriter holds a shard's sequence counter odd, as a
// writer moving entries does, with the flow's words half rewritten, and
// checks that Lookup returns nothing read in that state: it answers only
// once the counter is even again, with the finished entry.
func TestLookupWaitsForWriter(t *testing.T) {
	tab := newTable(t, Config{MaxFlows: 100})
	k := v4Key(11, protoUDP)
	h := tab.Hash(&k)
	ins(t, tab, k, 1, 6)
	_, ok := tab.Lookup(&k, h, 1, 0) // promote, refresh: the fast path applies
	require.True(t, ok)

	s := tab.shard(h)
	kw := k.words()
	i := s.find(s.home(h), &kw)
	require.GreaterOrEqual(t, i, 0)
	s.mu.Lock()
	s.seq.Add(1)
	w := &s.slots[i].w[5]
	w.Store(value(99, 1)) // a torn intermediate value
	got := make(chan uint32, 1)
	go func() {
		b, _ := tab.Lookup(&k, h, 1, 0)
		got <- b
	}()
	select {
	case b := <-got:
		t.Fatalf("Lookup returned %d while a writer held the shard", b)
	case <-time.After(50 * time.Millisecond):
	}
	w.Store(value(7, 1))
	s.seq.Add(1)
	s.mu.Unlock()
	assert.Equal(t, uint32(7), <-got)
}

// TestLookupCrowdedWindow fills one home slot's run past the tag window
// (so some flows sit more than eight slots from home and are found by the
// plain probe) and with flows whose tags collide, then checks that every
// flow is found with its own backend and that absent flows with the same
// home, and the same tag, miss.
func TestLookupCrowdedWindow(t *testing.T) {
	tab := newTable(t, Config{MaxFlows: 256, Shards: 1})
	s := &tab.shards[0]
	const home = 10
	var sameHome, sameTag []Key
	var tag uint64
	for i := uint32(0); len(sameHome) < 14 || len(sameTag) < 3; i++ {
		require.Less(t, i, uint32(1<<24), "search for colliding keys")
		k := v4Key(i, protoTCP)
		h := tab.Hash(&k)
		if s.home(h) != home {
			continue
		}
		if len(sameHome) == 0 {
			tag = tagOf(h)
		}
		switch {
		case tagOf(h) == tag && len(sameTag) < 3:
			sameTag = append(sameTag, k)
		case len(sameHome) < 14:
			sameHome = append(sameHome, k)
		}
	}
	// Keep one key of each group out of the table to probe misses.
	absentHome, absentTag := sameHome[len(sameHome)-1], sameTag[len(sameTag)-1]
	flows := append(sameTag[:len(sameTag)-1:len(sameTag)-1], sameHome[:len(sameHome)-1]...)
	for i, k := range flows {
		ins(t, tab, k, 1, uint32(100+i))
	}
	checkInvariants(t, tab)
	far := 0
	for i, k := range flows {
		kw := k.words()
		if s.find(home, &kw)-home >= tagWindow {
			far++
		}
		for _, now := range []Tick{1, 1, 2} { // fast path, then a refresh
			b, ok := tab.Lookup(&k, tab.Hash(&k), now, 0)
			require.True(t, ok, "flow %d at tick %d", i, now)
			require.Equal(t, uint32(100+i), b, "flow %d", i)
		}
	}
	assert.NotZero(t, far, "some flows sit beyond the tag window")
	for _, k := range []Key{absentHome, absentTag} {
		_, ok := tab.Lookup(&k, tab.Hash(&k), 2, 0)
		assert.False(t, ok)
	}
	// Removing the first flows moves the rest back into the window.
	for _, k := range flows[:6] {
		require.True(t, tab.Delete(&k, tab.Hash(&k)))
	}
	checkInvariants(t, tab)
	for i, k := range flows[6:] {
		b, ok := tab.Lookup(&k, tab.Hash(&k), 3, 0)
		require.True(t, ok)
		require.Equal(t, uint32(106+i), b)
	}
}

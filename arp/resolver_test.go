package arp

import (
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/mdlayher/arp"
	"github.com/mdlayher/ethernet"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

var resolverCfg = Config{
	ResolveInterval: 10 * time.Second, ResolveTimeout: time.Second, ResolveAttempts: 2,
	ConflictProbeInterval: -1,
}

// requests returns the targets of the resolver requests in b.
func requests(t *testing.T, s *Speaker, b batch) []netip.Addr {
	t.Helper()
	var out []netip.Addr
	for i, f := range decodeAll(t, b) {
		if b.frames[i].ctr != &s.stats.resolveRequests {
			continue
		}
		assert.Equal(t, ethernet.Broadcast, f.eth.Destination)
		assert.Equal(t, arp.OperationRequest, f.arp.Operation)
		assert.Equal(t, ourMAC, f.arp.SenderHardwareAddr)
		assert.Equal(t, ourIP, f.arp.SenderIP)
		out = append(out, f.arp.TargetIP)
	}
	return out
}

func TestResolverMatching(t *testing.T) {
	at := func(d time.Duration) time.Time { return t0.Add(d) }
	tests := []struct {
		name  string
		frame func(t *testing.T) []byte
		when  time.Duration
	}{
		{"reply from another IP", func(t *testing.T) []byte { return reply(t, srvMAC, srvIP2, ourMAC, ourIP) }, 0},
		{"reply to another IP", func(t *testing.T) []byte { return reply(t, srvMAC, srvIP, ourMAC, clientIP) }, 0},
		{"reply to another MAC", func(t *testing.T) []byte { return reply(t, srvMAC, srvIP, clientMAC, ourIP) }, 0},
		{"gratuitous reply", func(t *testing.T) []byte {
			return arpFrame(t, ethernet.Broadcast, srvMAC, arp.OperationReply, srvMAC, srvIP, ethernet.Broadcast, srvIP)
		}, 0},
		{"gratuitous request", func(t *testing.T) []byte { return request(t, srvMAC, srvIP, srvIP) }, 0},
		{"request from the backend", func(t *testing.T) []byte { return request(t, srvMAC, srvIP, ourIP) }, 0},
		{"stale: after the timeout", func(t *testing.T) []byte { return reply(t, srvMAC, srvIP, ourMAC, ourIP) }, 1500 * time.Millisecond},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := resolverCfg
			if tt.when > 0 {
				// No retry may be outstanding, or the late reply would
				// answer it (ARP has no request IDs).
				c.ResolveAttempts = 1
			}
			s, _, _ := testSpeaker(t, &c)
			s.SetBackends([]Backend{{Addr: srvIP}})
			b, _ := s.tickAt(t0)
			require.Equal(t, []netip.Addr{srvIP}, requests(t, s, b))
			if tt.when > 0 {
				s.tickAt(at(tt.when)) // the request times out
			}
			b = s.step(tt.frame(t), at(tt.when))
			assert.Empty(t, b.events, "not a reply to our request")
			_, ok := s.Lookup(srvIP)
			assert.False(t, ok)
		})
	}
}

func TestResolver(t *testing.T) {
	var c = resolverCfg
	s, _, now := testSpeaker(t, &c)
	at := func(d time.Duration) time.Time { return t0.Add(d) }
	s.SetBackends([]Backend{{Addr: srvIP}, {Addr: srvIP2, MAC: srvMAC2}, {Addr: netip.MustParseAddr("2001:db8::20")}})

	mac, ok := s.Lookup(srvIP2)
	require.True(t, ok, "static MAC is known at once")
	assert.Equal(t, srvMAC2, mac)

	b, next := s.tickAt(t0)
	require.Equal(t, []netip.Addr{srvIP}, requests(t, s, b), "static and IPv6 backends are not resolved")
	assert.Equal(t, at(time.Second), next, "wake up at the timeout")

	// The answer to our request resolves the backend.
	b = s.step(reply(t, srvMAC, srvIP, ourMAC, ourIP), at(100*time.Millisecond))
	require.Len(t, b.events, 1)
	assert.Equal(t, Event{Kind: Resolved, Addr: srvIP, MAC: srvMAC, At: at(100 * time.Millisecond)}, b.events[0])
	mac, ok = s.Lookup(srvIP)
	require.True(t, ok)
	assert.Equal(t, srvMAC, mac)

	// A duplicate answer is no longer expected.
	b = s.step(reply(t, srvMAC, srvIP, ourMAC, ourIP), at(200*time.Millisecond))
	assert.Empty(t, b.events)
	assert.EqualValues(t, 1, s.Stats().Drops[DropUnsolicited])

	// Refresh after ResolveInterval; the same MAC raises no event.
	b, next = s.tickAt(at(5 * time.Second))
	assert.Empty(t, requests(t, s, b))
	assert.Equal(t, at(10100*time.Millisecond), next)
	b, _ = s.tickAt(at(10100 * time.Millisecond))
	require.Equal(t, []netip.Addr{srvIP}, requests(t, s, b))
	assert.Empty(t, s.step(reply(t, srvMAC, srvIP, ourMAC, ourIP), at(10200*time.Millisecond)).events)

	// The backend's MAC changes: the next refresh sees it.
	newMAC := net.HardwareAddr{0x02, 0, 0, 0, 0, 0x99}
	b, _ = s.tickAt(at(20200 * time.Millisecond))
	require.Equal(t, []netip.Addr{srvIP}, requests(t, s, b))
	b = s.step(reply(t, newMAC, srvIP, ourMAC, ourIP), at(20300*time.Millisecond))
	require.Len(t, b.events, 1)
	assert.Equal(t, Event{Kind: MACChanged, Addr: srvIP, MAC: newMAC, OldMAC: srvMAC, At: at(20300 * time.Millisecond)}, b.events[0])
	mac, _ = s.Lookup(srvIP)
	assert.Equal(t, newMAC, mac)

	// The backend goes silent: ResolveAttempts lost requests make it
	// Unresolved, once.
	b, _ = s.tickAt(at(30300 * time.Millisecond))
	require.Equal(t, []netip.Addr{srvIP}, requests(t, s, b))
	b, next = s.tickAt(at(31300 * time.Millisecond))
	assert.Equal(t, []netip.Addr{srvIP}, requests(t, s, b), "first loss: retry at once")
	assert.Empty(t, b.events)
	assert.Equal(t, at(32300*time.Millisecond), next)
	b, next = s.tickAt(at(32300 * time.Millisecond))
	require.Len(t, b.events, 1)
	assert.Equal(t, Event{Kind: Unresolved, Addr: srvIP, OldMAC: newMAC, At: at(32300 * time.Millisecond)}, b.events[0])
	assert.Empty(t, requests(t, s, b))
	assert.Equal(t, at(42300*time.Millisecond), next, "unresolved backends are retried every ResolveInterval")
	_, ok = s.Lookup(srvIP)
	assert.False(t, ok, "an unresolved backend gets no new flows")

	b, _ = s.tickAt(at(42300 * time.Millisecond))
	require.Equal(t, []netip.Addr{srvIP}, requests(t, s, b))
	b, _ = s.tickAt(at(43300 * time.Millisecond))
	b2, _ := s.tickAt(at(44300 * time.Millisecond))
	assert.Empty(t, append(b.events, b2.events...), "Unresolved is reported once")

	// It comes back.
	b, _ = s.tickAt(at(54300 * time.Millisecond))
	require.Equal(t, []netip.Addr{srvIP}, requests(t, s, b))
	b = s.step(reply(t, newMAC, srvIP, ourMAC, ourIP), at(54400*time.Millisecond))
	require.Len(t, b.events, 1)
	assert.Equal(t, Event{Kind: Resolved, Addr: srvIP, MAC: newMAC, OldMAC: newMAC, At: at(54400 * time.Millisecond)}, b.events[0])

	// Removing a backend forgets it; a static MAC turning dynamic resolves.
	*now = at(60 * time.Second)
	s.SetBackends([]Backend{{Addr: srvIP2}})
	_, ok = s.Lookup(srvIP)
	assert.False(t, ok)
	_, ok = s.Lookup(srvIP2)
	assert.False(t, ok, "no longer static, not yet resolved")
	b, _ = s.tickAt(at(60 * time.Second))
	assert.Equal(t, []netip.Addr{srvIP2}, requests(t, s, b))
}

func TestResolverNeverResolved(t *testing.T) {
	c := resolverCfg
	s, _, _ := testSpeaker(t, &c)
	s.SetBackends([]Backend{{Addr: srvIP}})
	s.tickAt(t0)
	s.tickAt(t0.Add(time.Second))
	b, _ := s.tickAt(t0.Add(2 * time.Second))
	require.Len(t, b.events, 1)
	assert.Equal(t, Event{Kind: Unresolved, Addr: srvIP, At: t0.Add(2 * time.Second)}, b.events[0])
}

// Unsolicited ARP showing a new MAC is not trusted, but brings the next
// request forward so a real change is followed at once.
func TestResolverHint(t *testing.T) {
	c := resolverCfg
	s, _, _ := testSpeaker(t, &c)
	at := func(d time.Duration) time.Time { return t0.Add(d) }
	s.SetBackends([]Backend{{Addr: srvIP}})
	s.tickAt(t0)
	s.step(reply(t, srvMAC, srvIP, ourMAC, ourIP), t0)

	newMAC := net.HardwareAddr{0x02, 0, 0, 0, 0, 0x99}
	garp := request(t, newMAC, srvIP, srvIP)
	b := s.step(garp, at(time.Second))
	assert.True(t, b.wake)
	assert.Empty(t, b.events)
	mac, _ := s.Lookup(srvIP)
	assert.Equal(t, srvMAC, mac, "unsolicited ARP never changes forwarding")

	b, _ = s.tickAt(at(time.Second))
	require.Equal(t, []netip.Addr{srvIP}, requests(t, s, b), "confirmation request sent at once")
	b = s.step(reply(t, newMAC, srvIP, ourMAC, ourIP), at(1100*time.Millisecond))
	require.Len(t, b.events, 1)
	assert.Equal(t, MACChanged, b.events[0].Kind)

	// Hints with the current MAC, or too frequent ones, change nothing.
	assert.False(t, s.step(request(t, newMAC, srvIP, srvIP), at(2*time.Second)).wake)
	assert.True(t, s.step(request(t, srvMAC, srvIP, srvIP), at(3*time.Second)).wake)
	s.tickAt(at(3 * time.Second))
	s.tickAt(at(4 * time.Second)) // lost
	assert.False(t, s.step(request(t, srvMAC, srvIP, srvIP), at(4*time.Second)).wake, "a request is outstanding")
}

// Without an IPv4 address of its own the resolver asks in the RFC 5227
// probe form (sender 0.0.0.0), which hosts answer to our MAC and 0.0.0.0.
func TestResolverWithoutIP(t *testing.T) {
	s, err := New(newFakeConn(), &Config{HardwareAddr: ourMAC, ConflictProbeInterval: -1})
	require.NoError(t, err)
	s.now = func() time.Time { return t0 }
	unspec := netip.IPv4Unspecified()
	s.SetBackends([]Backend{{Addr: srvIP}})
	b, _ := s.tickAt(t0)
	out := decodeAll(t, b)
	require.Len(t, out, 1)
	assert.Equal(t, unspec, out[0].arp.SenderIP)
	assert.Equal(t, srvIP, out[0].arp.TargetIP)

	assert.Empty(t, s.step(reply(t, srvMAC, srvIP, ourMAC, clientIP), t0).events, "not addressed to us")
	b = s.step(reply(t, srvMAC, srvIP, ourMAC, unspec), t0)
	require.Len(t, b.events, 1)
	assert.Equal(t, Resolved, b.events[0].Kind)
}

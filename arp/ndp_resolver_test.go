package arp

import (
	"bytes"
	"log/slog"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/net/ipv6"
)

// solicits returns the targets of the resolver solicitations in b, checking
// their form.
func solicits(t *testing.T, s *Speaker, b batch) []netip.Addr {
	t.Helper()
	var out []netip.Addr
	for _, d := range ndFrames(t, b, &s.stats.resolveRequests) {
		assert.Equal(t, ipv6.ICMPTypeNeighborSolicitation, d.typ)
		assert.Equal(t, s.IP6(), d.src)
		assert.Equal(t, solNode(d.target), d.dst, "to the solicited-node group")
		assert.Equal(t, groupMAC(solNode(d.target)), d.eth.Destination)
		out = append(out, d.target)
	}
	return out
}

func naToUs(t testing.TB, mac net.HardwareAddr, target netip.Addr) []byte {
	return naSpec(mac, target, ourMAC, ourIP6, naSolicited|naOverride, target).frame(t)
}

func TestNDResolver(t *testing.T) {
	at := func(d time.Duration) time.Time { return t0.Add(d) }
	s, _, _, _ := testSpeaker6(t, &resolverCfg)
	s.SetBackends([]Backend{{Addr: srvIP6}, {Addr: srvIP6b, MAC: srvMAC2}, {Addr: srvIP}})

	b, next := s.tickAt(t0)
	assert.Equal(t, []netip.Addr{srvIP6}, solicits(t, s, b), "static backends are not resolved")
	assert.Equal(t, at(time.Second), next)
	_, ok := s.Lookup(srvIP6)
	assert.False(t, ok)
	mac, ok := s.Lookup(srvIP6b)
	require.True(t, ok)
	assert.Equal(t, srvMAC2, mac)

	// The answer to our solicitation resolves the backend.
	b = s.step(naToUs(t, srvMAC, srvIP6), at(100*time.Millisecond))
	require.Len(t, b.events, 1)
	assert.Equal(t, Event{Kind: Resolved, Addr: srvIP6, MAC: srvMAC, At: at(100 * time.Millisecond)}, b.events[0])
	mac, ok = s.Lookup(srvIP6)
	require.True(t, ok)
	assert.Equal(t, srvMAC, mac)

	// Refreshed every ResolveInterval; a new MAC is followed.
	b, _ = s.tickAt(at(10100 * time.Millisecond))
	assert.Contains(t, solicits(t, s, b), srvIP6)
	b = s.step(naToUs(t, srvMAC2, srvIP6), at(10200*time.Millisecond))
	require.Len(t, b.events, 1)
	assert.Equal(t, MACChanged, b.events[0].Kind)
	assert.Equal(t, srvMAC2, b.events[0].MAC)
	assert.Equal(t, srvMAC, b.events[0].OldMAC)

	// No answer to ResolveAttempts solicitations: Unresolved.
	b, _ = s.tickAt(at(20200 * time.Millisecond))
	assert.Contains(t, solicits(t, s, b), srvIP6)
	b, _ = s.tickAt(at(21200 * time.Millisecond))
	assert.Contains(t, solicits(t, s, b), srvIP6, "retried at once")
	b, _ = s.tickAt(at(22200 * time.Millisecond))
	require.Len(t, b.events, 1)
	assert.Equal(t, Unresolved, b.events[0].Kind)
	assert.Equal(t, srvMAC2, b.events[0].OldMAC)
	assert.Contains(t, b.events[0].String(), "neighbour solicitations")
	_, ok = s.Lookup(srvIP6)
	assert.False(t, ok)
}

func TestNDResolverMatching(t *testing.T) {
	tests := []struct {
		name  string
		frame []byte
		when  time.Duration
	}{
		{"advertisement of another target", naToUs(t, srvMAC, srvIP6b), 0},
		{"not solicited", naSpec(srvMAC, srvIP6, ourMAC, ourIP6, naOverride, srvIP6).frame(t), 0},
		{"to another address", naSpec(srvMAC, srvIP6, ourMAC, clientIP6, naSolicited, srvIP6).frame(t), 0},
		{"to another MAC", naSpec(srvMAC, srvIP6, clientMAC, ourIP6, naSolicited, srvIP6).frame(t), 0},
		{"unsolicited to all nodes", naSpec(srvMAC, srvIP6, allNodesM, allNodes, naOverride, srvIP6).frame(t), 0},
		{"solicitation from the backend", ns(t, srvMAC, srvIP6, clientIP6), 0},
		{"stale: after the timeout", naToUs(t, srvMAC, srvIP6), 1500 * time.Millisecond},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := resolverCfg
			c.ResolveAttempts = 1
			s, _, _, _ := testSpeaker6(t, &c)
			s.SetBackends([]Backend{{Addr: srvIP6}})
			s.tickAt(t0)
			if tt.when > 0 {
				s.tickAt(t0.Add(tt.when))
			}
			b := s.step(tt.frame, t0.Add(tt.when))
			for _, e := range b.events {
				assert.NotEqual(t, Resolved, e.Kind)
			}
			_, ok := s.Lookup(srvIP6)
			assert.False(t, ok, "not trusted")
		})
	}
}

// Without an IPv6 address the Speaker solicits in the duplicate address
// detection form, which owners answer to all nodes, unsolicited.
func TestNDResolverUnspecifiedSource(t *testing.T) {
	c := resolverCfg
	c.IP6 = netip.IPv6Unspecified()
	s, _, _, _ := testSpeaker6(t, &c)
	s.SetBackends([]Backend{{Addr: srvIP6}})
	b, _ := s.tickAt(t0)
	out := ndFrames(t, b, &s.stats.resolveRequests)
	require.Len(t, out, 1)
	assert.Equal(t, netip.IPv6Unspecified(), out[0].src)
	assert.Empty(t, out[0].opts, "no source link-layer option from ::")

	assert.Empty(t, s.step(naToUs(t, srvMAC, srvIP6), t0).events, "a unicast answer is to someone else")
	b = s.step(naSpec(srvMAC, srvIP6, allNodesM, allNodes, naOverride, srvIP6).frame(t), t0.Add(time.Millisecond))
	require.Len(t, b.events, 1)
	assert.Equal(t, Resolved, b.events[0].Kind)
	assert.Equal(t, srvMAC, b.events[0].MAC)
	b = s.step(naSpec(srvMAC2, srvIP6, allNodesM, allNodes, naOverride, srvIP6).frame(t), t0.Add(2*time.Millisecond))
	assert.Empty(t, b.events, "only while a solicitation is outstanding")
}

// A backend advertising a new MAC is not believed, but solicited at once.
func TestNDResolverHint(t *testing.T) {
	s, _, _, _ := testSpeaker6(t, &resolverCfg)
	s.SetBackends([]Backend{{Addr: srvIP6}})
	s.tickAt(t0)
	s.step(naToUs(t, srvMAC, srvIP6), t0)
	at := t0.Add(2 * time.Second)
	b := s.step(naSpec(srvMAC2, srvIP6, allNodesM, allNodes, naOverride, srvIP6).frame(t), at)
	assert.Empty(t, b.events)
	assert.True(t, b.wake)
	mac, _ := s.Lookup(srvIP6)
	assert.Equal(t, srvMAC, mac)
	b, _ = s.tickAt(at)
	assert.Equal(t, []netip.Addr{srvIP6}, solicits(t, s, b), "confirmed at once")
}

// Log lines name the protocol that produced them: an IPv6 backend's
// resolution is neighbour discovery, not ARP.
func TestEventLogPrefix(t *testing.T) {
	tests := []struct {
		name   string
		event  Event
		prefix string
		not    string
	}{
		{"IPv4 resolved", Event{Kind: Resolved, Addr: srvIP, MAC: srvMAC, At: t0}, "arp: ", "ndp:"},
		{"IPv6 resolved", Event{Kind: Resolved, Addr: srvIP6, MAC: srvMAC, At: t0}, "ndp: ", "arp:"},
		{"IPv6 unresolved", Event{Kind: Unresolved, Addr: srvIP6, At: t0}, "ndp: ", "arp:"},
		{"IPv6 conflict", Event{Kind: Conflict, Addr: vip6, MAC: srvMAC, At: t0}, "ndp: ", "arp:"},
		{"IPv4 conflict", Event{Kind: Conflict, Addr: vip, MAC: srvMAC, At: t0}, "arp: ", "ndp:"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var logged bytes.Buffer
			c := resolverCfg
			c.Logger = slog.New(slog.NewTextHandler(&logged, nil))
			s, _, _, _ := testSpeaker6(t, &c)
			s.apply(&batch{events: []Event{tt.event}})
			line := logged.String()
			assert.Contains(t, line, `msg="`+tt.prefix+tt.event.String()+`"`)
			assert.NotContains(t, line, tt.not)
		})
	}
}

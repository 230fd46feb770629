package arp

import (
	"context"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/net/ipv6"
)

func TestNDResponder(t *testing.T) {
	noOpt := nsSpec(clientMAC, clientIP6, vip6)
	noOpt.opts, noOpt.ethDst = nil, ourMAC
	tests := []struct {
		name      string
		frame     []byte
		wantMAC   net.HardwareAddr
		wantDst   netip.Addr
		wantFlags byte
	}{
		{"solicitation", ns(t, clientMAC, clientIP6, vip6), clientMAC, clientIP6, naSolicited | naOverride},
		{"link-local solicitor", ns(t, clientMAC, netip.MustParseAddr("fe80::10"), vip6), clientMAC, netip.MustParseAddr("fe80::10"), naSolicited | naOverride},
		{"unicast without option: to the Ethernet source", noOpt.frame(t), clientMAC, clientIP6, naSolicited | naOverride},
		{"duplicate address detection: defended to all nodes", dadSpec(clientMAC, vip6).frame(t), allNodesM, allNodes, naOverride},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, _, _, _ := testSpeaker6(t, nil)
			s.SetVIPs([]netip.Addr{vip, vip6})
			b := s.step(tt.frame, t0)
			assert.Empty(t, b.events)
			out := ndFrames(t, b, &s.stats.replies)
			require.Len(t, out, 1)
			a := out[0]
			assert.Equal(t, tt.wantMAC, a.eth.Destination)
			assert.Equal(t, ipv6.ICMPTypeNeighborAdvertisement, a.typ)
			assert.Equal(t, vip6, a.src, "sent from the VIP")
			assert.Equal(t, tt.wantDst, a.dst)
			assert.Equal(t, tt.wantFlags, a.flags)
			assert.Equal(t, vip6, a.target)
			assert.Equal(t, llaOpt(ndOptTargetLLA, ourMAC), a.opts, "target link-layer address is ours")
		})
	}
}

func TestNDResponderIgnores(t *testing.T) {
	s, _, _, _ := testSpeaker6(t, nil)
	s.SetVIPs([]netip.Addr{vip6})
	own := nsSpec(ourMAC, ourIP6, vip6)
	tests := []struct {
		name  string
		frame []byte
		want  DropReason
	}{
		{"another target", ns(t, clientMAC, clientIP6, vip6b), DropNotOurs},
		{"our own solicitation", own.frame(t), DropOwnFrame},
		{"bad checksum", func() []byte { p := nsSpec(clientMAC, clientIP6, vip6); p.badSum = true; return p.frame(t) }(), DropChecksum},
		{"off-link", func() []byte { p := nsSpec(clientMAC, clientIP6, vip6); p.hop = 64; return p.frame(t) }(), DropHopLimit},
		{"advertisement for another host", naSpec(srvMAC, srvIP6, allNodesM, allNodes, naOverride, srvIP6).frame(t), DropUnsolicited},
	}
	for _, tt := range tests {
		before := s.Stats().Drops[tt.want]
		b := s.step(tt.frame, t0)
		assert.Empty(t, b.frames, tt.name)
		assert.Empty(t, b.events, tt.name)
		assert.Equal(t, before+1, s.Stats().Drops[tt.want], tt.name)
	}

	// Withdrawn VIPs are not answered.
	s.SetVIPs([]netip.Addr{vip})
	assert.Empty(t, s.step(ns(t, clientMAC, clientIP6, vip6), t0).frames)
}

func TestNDRateLimit(t *testing.T) {
	s, _, _, _ := testSpeaker6(t, &Config{ReplyRate: 1, ReplyBurst: 2})
	s.SetVIPs([]netip.Addr{vip6})
	fr := ns(t, clientMAC, clientIP6, vip6)
	assert.Len(t, s.step(fr, t0).frames, 1)
	assert.Len(t, s.step(fr, t0).frames, 1)
	assert.Empty(t, s.step(fr, t0).frames, "burst used up")
	assert.EqualValues(t, 1, s.Stats().Drops[DropRateLimited])
	assert.Len(t, s.step(ns(t, srvMAC, srvIP6, vip6), t0).frames, 1, "another requester has its own bucket")
	assert.Len(t, s.step(fr, t0.Add(time.Second)).frames, 1, "refilled at ReplyRate")
}

// Without an NDP socket the Speaker is IPv4-only, as before.
func TestNDDisabled(t *testing.T) {
	s, _, _ := testSpeaker(t, nil)
	assert.False(t, s.NDP())
	s.SetVIPs([]netip.Addr{vip, vip6})
	assert.Equal(t, []netip.Addr{vip}, s.VIPs())
	s.SetBackends([]Backend{{Addr: srvIP6}})
	b, _ := s.tickAt(t0)
	for _, f := range b.frames {
		assert.False(t, f.nd)
	}
	b = s.step(ns(t, clientMAC, clientIP6, vip6), t0)
	assert.Empty(t, b.frames)
	assert.EqualValues(t, 1, s.Stats().Drops[DropNotARP])
}

func TestNDAnnouncer(t *testing.T) {
	s, _, _, now := testSpeaker6(t, &Config{
		AnnounceCount: 3, AnnounceSpacing: time.Second, AnnounceInterval: time.Minute,
		ConflictProbeInterval: -1,
	})
	at := func(d time.Duration) time.Time { return t0.Add(d) }
	announced := func(b batch) []netip.Addr {
		var out []netip.Addr
		for _, a := range ndFrames(t, b, &s.stats.announcements) {
			assert.Equal(t, allNodesM, a.eth.Destination)
			assert.Equal(t, ipv6.ICMPTypeNeighborAdvertisement, a.typ)
			assert.Equal(t, allNodes, a.dst)
			assert.Equal(t, a.target, a.src)
			assert.Equal(t, byte(naOverride), a.flags, "unsolicited, overriding")
			assert.Equal(t, llaOpt(ndOptTargetLLA, ourMAC), a.opts)
			out = append(out, a.target)
		}
		return out
	}
	s.SetVIPs([]netip.Addr{vip6})
	steps := []struct {
		at, next time.Duration
		want     []netip.Addr
	}{
		{0, time.Second, []netip.Addr{vip6}},
		{500 * time.Millisecond, time.Second, nil},
		{time.Second, 2 * time.Second, []netip.Addr{vip6}},
		{2 * time.Second, 62 * time.Second, []netip.Addr{vip6}},
		{61 * time.Second, 62 * time.Second, nil},
		{62 * time.Second, 122 * time.Second, []netip.Addr{vip6}},
	}
	for _, st := range steps {
		b, next := s.tickAt(at(st.at))
		assert.Equal(t, st.want, announced(b), "at %v", st.at)
		assert.Equal(t, at(st.next), next, "next after %v", st.at)
	}

	// An IPv4 VIP next to it gets gratuitous ARP on the ARP socket.
	*now = at(70 * time.Second)
	s.SetVIPs([]netip.Addr{vip6, vip})
	b, _ := s.tickAt(at(70 * time.Second))
	require.Len(t, b.frames, 1)
	assert.False(t, b.frames[0].nd)
	assert.Equal(t, vip, decode(t, b.frames[0].b).arp.TargetIP)

	// Withdrawn: never announced again.
	s.SetVIPs([]netip.Addr{vip})
	for d := 71 * time.Second; d < 300*time.Second; d += time.Second {
		b, _ := s.tickAt(at(d))
		for _, f := range b.frames {
			assert.False(t, f.nd, "withdrawn IPv6 VIP announced at %v", d)
		}
	}
}

func TestNDConflict(t *testing.T) {
	thief := net.HardwareAddr{0x02, 0, 0, 0, 0, 0x66}
	tests := []struct {
		name        string
		frame       func(t *testing.T) []byte
		mac         net.HardwareAddr
		wantBackend netip.Addr
	}{
		{"server answers our probe", func(t *testing.T) []byte {
			return naSpec(srvMAC, srvIP6, ourMAC, ourIP6, naSolicited|naOverride, vip6).frame(t)
		}, srvMAC, srvIP6},
		{"server answers a client", func(t *testing.T) []byte {
			return naSpec(srvMAC, vip6, clientMAC, clientIP6, naSolicited|naOverride, vip6).frame(t)
		}, srvMAC, srvIP6},
		{"answer without option", func(t *testing.T) []byte {
			p := naSpec(srvMAC2, vip6, clientMAC, clientIP6, naSolicited, vip6)
			p.opts = nil
			return p.frame(t)
		}, srvMAC2, srvIP6b},
		{"unsolicited advertisement from another balancer", func(t *testing.T) []byte {
			return naSpec(thief, vip6, allNodesM, allNodes, naOverride, vip6).frame(t)
		}, thief, netip.Addr{}},
		{"solicitation sent from the VIP", func(t *testing.T) []byte { return ns(t, srvMAC, vip6, clientIP6) }, srvMAC, srvIP6},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := resolverCfg
			c.ConflictProbeInterval = 10 * time.Second
			s, _, _, _ := testSpeaker6(t, &c)
			s.SetVIPs([]netip.Addr{vip6})
			s.SetBackends([]Backend{{Addr: srvIP6}, {Addr: srvIP6b, MAC: srvMAC2}})
			s.tickAt(t0)
			b := s.step(naSpec(srvMAC, srvIP6, ourMAC, ourIP6, naSolicited|naOverride, srvIP6).frame(t), t0)
			require.Len(t, b.events, 1)
			require.Equal(t, Resolved, b.events[0].Kind)

			at := t0.Add(time.Second)
			b = s.step(tt.frame(t), at)
			require.Len(t, b.events, 1)
			assert.Equal(t, Event{Kind: Conflict, Addr: vip6, MAC: tt.mac, Backend: tt.wantBackend, At: at}, b.events[0])
			out := ndFrames(t, b, &s.stats.announcements)
			require.Len(t, out, 1, "the VIP is defended with one announcement")
			assert.Equal(t, vip6, out[0].target)

			b = s.step(tt.frame(t), at.Add(9*time.Second))
			assert.Empty(t, b.events, "deduplicated")
			assert.Empty(t, b.frames)
			assert.EqualValues(t, 2, s.Stats().Conflicts)
		})
	}
}

func TestNDConflictNotClaims(t *testing.T) {
	s, _, _, _ := testSpeaker6(t, nil)
	s.SetVIPs([]netip.Addr{vip6})
	for name, fr := range map[string][]byte{
		"asking for the VIP":           ns(t, clientMAC, clientIP6, vip6),
		"DAD probe for the VIP":        dadSpec(clientMAC, vip6).frame(t),
		"our own announcement":         naSpec(ourMAC, vip6, allNodesM, allNodes, naOverride, vip6).frame(t),
		"advertisement of another VIP": naSpec(srvMAC, vip6b, allNodesM, allNodes, naOverride, vip6b).frame(t),
	} {
		assert.Empty(t, s.step(fr, t0).events, name)
	}
}

func TestNDConflictProbes(t *testing.T) {
	for _, tt := range []struct {
		name    string
		ip6     netip.Addr
		wantOpt []byte
	}{
		{"from our address", ourIP6, llaOpt(ndOptSourceLLA, ourMAC)},
		{"duplicate address detection form", netip.IPv6Unspecified(), []byte{}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			s, _, _, _ := testSpeaker6(t, &Config{IP6: tt.ip6, AnnounceCount: 1, AnnounceInterval: -1, ConflictProbeInterval: 5 * time.Second})
			s.SetVIPs([]netip.Addr{vip6})
			b, next := s.tickAt(t0)
			probes := ndFrames(t, b, &s.stats.conflictProbes)
			require.Len(t, probes, 1, "probe as soon as a VIP is served")
			p := probes[0]
			assert.Equal(t, groupMAC(solNode(vip6)), p.eth.Destination)
			assert.Equal(t, ipv6.ICMPTypeNeighborSolicitation, p.typ)
			assert.Equal(t, tt.ip6, p.src)
			assert.Equal(t, solNode(vip6), p.dst)
			assert.Equal(t, vip6, p.target)
			assert.Equal(t, tt.wantOpt, p.opts)
			assert.Equal(t, t0.Add(5*time.Second), next)
			b, _ = s.tickAt(t0.Add(5 * time.Second))
			assert.Len(t, ndFrames(t, b, &s.stats.conflictProbes), 1)
		})
	}
}

func TestNDGroups(t *testing.T) {
	s, _, _, _ := testSpeaker6(t, nil)
	var got [][][6]byte
	s.joinGroups = func(macs [][6]byte) error { got = append(got, macs); return nil }
	sameLow24 := netip.MustParseAddr("2001:db8:ffff::100") // shares vip6's group
	s.SetVIPs([]netip.Addr{vip, vip6, vip6b, sameLow24})
	s.SetVIPs([]netip.Addr{vip6b})
	s.SetVIPs(nil)
	g := func(a netip.Addr) [6]byte { return [6]byte(groupMAC(solNode(a))) }
	assert.Equal(t, [][][6]byte{{g(vip6), g(vip6b)}, {g(vip6b)}, nil}, got)
}

// Run serves both sockets: a solicitation on the NDP socket is answered
// there, and Close closes both.
func TestNDRun(t *testing.T) {
	events := make(chan Event, 16)
	nd := newFakeConn()
	conn := newFakeConn()
	s, err := New(conn, &Config{
		HardwareAddr: ourMAC, IP: ourIP, IP6: ourIP6, NDPConn: nd,
		ResolveInterval: time.Hour, ConflictProbeInterval: time.Hour,
		OnEvent: func(e Event) { events <- e },
	})
	require.NoError(t, err)
	assert.True(t, s.NDP())
	assert.Equal(t, ourIP6, s.IP6())
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()

	next := func(keep func(ndDecoded) bool) ndDecoded {
		t.Helper()
		timeout := time.After(5 * time.Second)
		for {
			select {
			case f := <-nd.out:
				if d := decodeND(t, f.b); keep(d) {
					return d
				}
			case <-timeout:
				t.Fatal("no matching frame sent")
			}
		}
	}
	s.SetVIPs([]netip.Addr{vip6})
	next(func(d ndDecoded) bool { return d.dst == allNodes && d.target == vip6 })

	nd.in <- ns(t, clientMAC, clientIP6, vip6)
	r := next(func(d ndDecoded) bool { return d.dst == clientIP6 })
	assert.Equal(t, clientMAC, r.eth.Destination)

	s.SetBackends([]Backend{{Addr: srvIP6}})
	next(func(d ndDecoded) bool { return d.typ == ipv6.ICMPTypeNeighborSolicitation && d.target == srvIP6 })
	nd.in <- naSpec(srvMAC, srvIP6, ourMAC, ourIP6, naSolicited|naOverride, srvIP6).frame(t)
	select {
	case e := <-events:
		assert.Equal(t, Event{Kind: Resolved, Addr: srvIP6, MAC: srvMAC, At: e.At}, e)
	case <-time.After(5 * time.Second):
		t.Fatal("no Resolved event")
	}
	assert.Empty(t, conn.out, "nothing IPv6 on the ARP socket")

	cancel()
	require.NoError(t, <-done)
	require.NoError(t, s.Close())
	_, _, err = nd.ReadFrom(make([]byte, 10))
	assert.ErrorIs(t, err, net.ErrClosed, "Close closes the NDP socket")
}

func TestNDConfig(t *testing.T) {
	for name, ip6 := range map[string]netip.Addr{
		"IPv4":      ourIP,
		"multicast": allNodes,
	} {
		_, err := New(newFakeConn(), &Config{HardwareAddr: ourMAC, IP6: ip6, NDPConn: newFakeConn()})
		require.ErrorIs(t, err, ErrInvalidConfig, name)
	}
	s, err := New(newFakeConn(), &Config{HardwareAddr: ourMAC, IP6: netip.MustParseAddr("fe80::1%eth0"), NDPConn: newFakeConn()})
	require.NoError(t, err)
	assert.Equal(t, ourIP6, s.IP6(), "the zone is the socket's link")
	s, err = New(newFakeConn(), &Config{HardwareAddr: ourMAC, NDPConn: newFakeConn()})
	require.NoError(t, err)
	assert.Equal(t, netip.IPv6Unspecified(), s.IP6(), "no address: solicitations in DAD form")
}

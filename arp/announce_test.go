package arp

import (
	"net/netip"
	"testing"
	"time"

	"github.com/mdlayher/arp"
	"github.com/mdlayher/ethernet"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// announcements returns the gratuitous ARPs in b, checking their form.
func announcements(t *testing.T, b batch) []netip.Addr {
	t.Helper()
	var out []netip.Addr
	for i, f := range decodeAll(t, b) {
		if b.frames[i].ctr != nil && f.arp.SenderIP != f.arp.TargetIP {
			continue // a probe
		}
		assert.Equal(t, ethernet.Broadcast, f.eth.Destination)
		assert.Equal(t, ourMAC, f.eth.Source)
		assert.Equal(t, arp.OperationRequest, f.arp.Operation)
		assert.Equal(t, ourMAC, f.arp.SenderHardwareAddr)
		assert.Equal(t, make([]byte, 6), []byte(f.arp.TargetHardwareAddr))
		out = append(out, f.arp.SenderIP)
	}
	return out
}

func TestAnnouncer(t *testing.T) {
	s, _, now := testSpeaker(t, &Config{
		AnnounceCount: 3, AnnounceSpacing: time.Second, AnnounceInterval: time.Minute,
		ConflictProbeInterval: -1,
	})
	at := func(d time.Duration) time.Time { return t0.Add(d) }

	b, next := s.tickAt(t0)
	assert.Empty(t, b.frames, "nothing to announce before SetVIPs")
	assert.Equal(t, at(time.Hour), next)

	s.SetVIPs([]netip.Addr{vip})
	steps := []struct {
		at, next time.Duration
		want     []netip.Addr
	}{
		{0, time.Second, []netip.Addr{vip}},                    // burst 1
		{500 * time.Millisecond, time.Second, nil},             // early wake-up: nothing due
		{time.Second, 2 * time.Second, []netip.Addr{vip}},      // burst 2
		{2 * time.Second, 62 * time.Second, []netip.Addr{vip}}, // burst 3, then refresh
		{61 * time.Second, 62 * time.Second, nil},
		{62 * time.Second, 122 * time.Second, []netip.Addr{vip}}, // refresh
	}
	for _, st := range steps {
		b, next := s.tickAt(at(st.at))
		assert.Equal(t, st.want, announcements(t, b), "at %v", st.at)
		assert.Equal(t, at(st.next), next, "next after %v", st.at)
	}

	// Explicit takeover restarts the burst for a served VIP only.
	*now = at(70 * time.Second)
	s.Takeover(netip.MustParseAddr("192.0.2.250"))
	b, _ = s.tickAt(at(70 * time.Second))
	assert.Empty(t, b.frames, "takeover of a VIP we do not serve does nothing")
	s.Takeover()
	for i, d := range []time.Duration{70, 71, 72} {
		b, next := s.tickAt(at(d * time.Second))
		assert.Equal(t, []netip.Addr{vip}, announcements(t, b), "takeover burst %d", i)
		if i == 2 {
			assert.Equal(t, at(132*time.Second), next, "back to the refresh period")
		}
	}

	// A second VIP gets its own burst; withdrawing the first stops it.
	*now = at(100 * time.Second)
	s.SetVIPs([]netip.Addr{vip2})
	b, next = s.tickAt(at(100 * time.Second))
	assert.Equal(t, []netip.Addr{vip2}, announcements(t, b))
	assert.Equal(t, at(101*time.Second), next)
	for d := 101 * time.Second; d < 400*time.Second; d += time.Second {
		b, _ := s.tickAt(at(d))
		assert.NotContains(t, announcements(t, b), vip, "withdrawn VIP announced at %v", d)
	}

	s.SetVIPs(nil)
	b, next = s.tickAt(at(500 * time.Second))
	assert.Empty(t, b.frames)
	assert.Equal(t, at(500*time.Second+time.Hour), next, "nothing left to do")
}

func TestAnnouncerNoRefresh(t *testing.T) {
	s, _, _ := testSpeaker(t, &Config{AnnounceCount: -1, AnnounceInterval: -1, ConflictProbeInterval: -1})
	s.SetVIPs([]netip.Addr{vip})
	b, next := s.tickAt(t0)
	assert.Equal(t, []netip.Addr{vip}, announcements(t, b), "a negative count still sends one")
	assert.Equal(t, t0.Add(time.Hour), next)
	b, _ = s.tickAt(t0.Add(24 * time.Hour))
	assert.Empty(t, b.frames)
}

func TestConflictProbes(t *testing.T) {
	s, _, _ := testSpeaker(t, &Config{AnnounceCount: 1, AnnounceInterval: -1, ConflictProbeInterval: 5 * time.Second})
	s.SetVIPs([]netip.Addr{vip})
	probes := func(b batch) (n int) {
		for i, f := range decodeAll(t, b) {
			if b.frames[i].ctr != &s.stats.conflictProbes {
				continue
			}
			n++
			assert.Equal(t, ethernet.Broadcast, f.eth.Destination)
			assert.Equal(t, arp.OperationRequest, f.arp.Operation)
			assert.Equal(t, ourIP, f.arp.SenderIP, "asks from our own address, so owners reply to us")
			assert.Equal(t, vip, f.arp.TargetIP)
		}
		return n
	}
	b, next := s.tickAt(t0)
	assert.Equal(t, 1, probes(b), "probe as soon as a VIP is served")
	assert.Equal(t, t0.Add(5*time.Second), next)
	b, _ = s.tickAt(t0.Add(4 * time.Second))
	assert.Zero(t, probes(b))
	b, _ = s.tickAt(t0.Add(5 * time.Second))
	assert.Equal(t, 1, probes(b))
}

func TestNewErrors(t *testing.T) {
	conn := newFakeConn()
	tests := []struct {
		name string
		conn *fakeConn
		cfg  *Config
	}{
		{"nil conn", nil, &Config{HardwareAddr: ourMAC}},
		{"nil config", conn, nil},
		{"short MAC", conn, &Config{HardwareAddr: ourMAC[:4]}},
		{"multicast MAC", conn, &Config{HardwareAddr: ethernet.Broadcast}},
		{"zero MAC", conn, &Config{HardwareAddr: make([]byte, 6)}},
		{"IPv6 IP", conn, &Config{HardwareAddr: ourMAC, IP: netip.MustParseAddr("2001:db8::1")}},
		{"negative timeout", conn, &Config{HardwareAddr: ourMAC, ResolveTimeout: -1}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var err error
			if tt.conn == nil {
				_, err = New(nil, tt.cfg)
			} else {
				_, err = New(tt.conn, tt.cfg)
			}
			require.ErrorIs(t, err, ErrInvalidConfig)
		})
	}
	s, err := New(conn, &Config{HardwareAddr: ourMAC})
	require.NoError(t, err)
	assert.Equal(t, netip.IPv4Unspecified(), s.IP(), "no IP: probes in RFC 5227 form")
	assert.Equal(t, ourMAC, s.HardwareAddr())
}

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

func TestConflict(t *testing.T) {
	thief := net.HardwareAddr{0x02, 0, 0, 0, 0, 0x66}
	tests := []struct {
		name        string
		frame       func(t *testing.T) []byte
		mac         net.HardwareAddr
		wantBackend netip.Addr
	}{
		{"server answers our probe", func(t *testing.T) []byte { return reply(t, srvMAC, vip, ourMAC, ourIP) }, srvMAC, srvIP},
		{"server answers a client", func(t *testing.T) []byte { return reply(t, srvMAC, vip, clientMAC, clientIP) }, srvMAC, srvIP},
		{"static backend's MAC", func(t *testing.T) []byte { return reply(t, srvMAC2, vip, clientMAC, clientIP) }, srvMAC2, srvIP2},
		{"gratuitous request from another balancer", func(t *testing.T) []byte { return request(t, thief, vip, vip) }, thief, netip.Addr{}},
		{"gratuitous reply", func(t *testing.T) []byte {
			return arpFrame(t, ethernet.Broadcast, thief, arp.OperationReply, thief, vip, ethernet.Broadcast, vip)
		}, thief, netip.Addr{}},
		{"request sent from the VIP (arp_announce=0)", func(t *testing.T) []byte { return request(t, srvMAC, vip, clientIP) }, srvMAC, srvIP},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := resolverCfg
			c.ConflictProbeInterval = 10 * time.Second
			s, _, _ := testSpeaker(t, &c)
			s.SetVIPs([]netip.Addr{vip})
			s.SetBackends([]Backend{{Addr: srvIP}, {Addr: srvIP2, MAC: srvMAC2}})
			s.tickAt(t0)
			s.step(reply(t, srvMAC, srvIP, ourMAC, ourIP), t0) // resolve srvIP

			at := t0.Add(time.Second)
			b := s.step(tt.frame(t), at)
			require.Len(t, b.events, 1)
			assert.Equal(t, Event{Kind: Conflict, Addr: vip, MAC: tt.mac, Backend: tt.wantBackend, At: at}, b.events[0])
			assert.Equal(t, []netip.Addr{vip}, announcements(t, b), "the VIP is defended with one announcement")
			assert.NotContains(t, b.events[0].String(), "%!")

			// Deduplicated per VIP and MAC within the probe interval, but
			// every packet is counted.
			b = s.step(tt.frame(t), at.Add(9*time.Second))
			assert.Empty(t, b.events)
			assert.Empty(t, b.frames, "no announcement war")
			assert.EqualValues(t, 2, s.Stats().Conflicts)
			s.tickAt(at.Add(10 * time.Second))
			b = s.step(tt.frame(t), at.Add(10*time.Second))
			assert.Len(t, b.events, 1, "raised again after the interval")
		})
	}
}

func TestConflictOnlyForOurVIPs(t *testing.T) {
	s, _, _ := testSpeaker(t, nil)
	s.SetVIPs([]netip.Addr{vip})
	assert.Empty(t, s.step(reply(t, srvMAC, vip2, clientMAC, clientIP), t0).events, "not our VIP")
	assert.Empty(t, s.step(request(t, clientMAC, clientIP, vip), t0).events, "asking for the VIP is no claim")
	assert.Empty(t, s.step(request(t, clientMAC, netip.IPv4Unspecified(), vip), t0).events, "a probe is no claim")
	assert.Empty(t, s.step(request(t, ourMAC, vip, vip), t0).events, "our own announcement")
	b := s.step(reply(t, srvMAC, vip, clientMAC, clientIP), t0)
	require.Len(t, b.events, 1)
	assert.False(t, b.events[0].Backend.IsValid(), "unknown MAC: no backend named")
	b = s.step(reply(t, srvMAC2, vip, clientMAC, clientIP), t0)
	assert.Len(t, b.events, 1, "a second claimant is its own conflict")
}

package arp

import (
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/mdlayher/arp"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestResponder(t *testing.T) {
	v6 := netip.MustParseAddr("2001:db8::100")
	tests := []struct {
		name  string
		vips  []netip.Addr
		frame func(t *testing.T) []byte
		// reply expected: to (eth and ARP target) for IP tpa, from VIP
		wantTo   net.HardwareAddr
		wantTPA  netip.Addr
		wantFrom netip.Addr
		drop     DropReason
	}{
		{name: "request for VIP", vips: []netip.Addr{vip}, frame: func(t *testing.T) []byte { return request(t, clientMAC, clientIP, vip) },
			wantTo: clientMAC, wantTPA: clientIP, wantFrom: vip},
		{name: "request for second VIP", vips: []netip.Addr{vip, vip2}, frame: func(t *testing.T) []byte { return request(t, clientMAC, clientIP, vip2) },
			wantTo: clientMAC, wantTPA: clientIP, wantFrom: vip2},
		{name: "unicast refresh request", vips: []netip.Addr{vip}, frame: func(t *testing.T) []byte {
			return arpFrame(t, ourMAC, clientMAC, arp.OperationRequest, clientMAC, clientIP, ourMAC, vip)
		}, wantTo: clientMAC, wantTPA: clientIP, wantFrom: vip},
		{name: "probe from 0.0.0.0 is defended", vips: []netip.Addr{vip}, frame: func(t *testing.T) []byte {
			return request(t, clientMAC, netip.IPv4Unspecified(), vip)
		}, wantTo: clientMAC, wantTPA: netip.IPv4Unspecified(), wantFrom: vip},
		{name: "request for another host", vips: []netip.Addr{vip}, frame: func(t *testing.T) []byte { return request(t, clientMAC, clientIP, srvIP) },
			drop: DropNotOurs},
		{name: "request for our own IP is the kernel's job", vips: []netip.Addr{vip}, frame: func(t *testing.T) []byte { return request(t, clientMAC, clientIP, ourIP) },
			drop: DropNotOurs},
		{name: "no VIPs", frame: func(t *testing.T) []byte { return request(t, clientMAC, clientIP, vip) }, drop: DropNotOurs},
		{name: "IPv6 VIP ignored", vips: []netip.Addr{v6}, frame: func(t *testing.T) []byte { return request(t, clientMAC, clientIP, vip) }, drop: DropNotOurs},
		{name: "4in6 VIP unmapped", vips: []netip.Addr{netip.AddrFrom16(vip.As16())}, frame: func(t *testing.T) []byte { return request(t, clientMAC, clientIP, vip) },
			wantTo: clientMAC, wantTPA: clientIP, wantFrom: vip},
		{name: "own frame", vips: []netip.Addr{vip}, frame: func(t *testing.T) []byte { return request(t, ourMAC, ourIP, vip) }, drop: DropOwnFrame},
		{name: "unsolicited reply", vips: []netip.Addr{vip}, frame: func(t *testing.T) []byte { return reply(t, clientMAC, clientIP, ourMAC, ourIP) },
			drop: DropUnsolicited},
		{name: "bad hardware length", vips: []netip.Addr{vip}, frame: func(t *testing.T) []byte {
			b := request(t, clientMAC, clientIP, vip)
			b[ethHeaderLen+4] = 8
			return b
		}, drop: DropHardwareLength},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, _, _ := testSpeaker(t, nil)
			s.SetVIPs(tt.vips)
			b := s.step(tt.frame(t), t0)
			st := s.Stats()
			assert.EqualValues(t, 1, st.Received)
			assert.Empty(t, b.events)
			if tt.drop != 0 {
				assert.Empty(t, b.frames)
				assert.Equal(t, map[DropReason]uint64{tt.drop: 1}, st.Drops)
				return
			}
			assert.Empty(t, st.Drops)
			out := decodeAll(t, b)
			require.Len(t, out, 1)
			f := out[0]
			assert.Equal(t, tt.wantTo, f.eth.Destination, "unicast to the asker")
			assert.Equal(t, ourMAC, f.eth.Source)
			assert.Equal(t, arp.OperationReply, f.arp.Operation)
			assert.Equal(t, ourMAC, f.arp.SenderHardwareAddr)
			assert.Equal(t, tt.wantFrom, f.arp.SenderIP)
			assert.Equal(t, tt.wantTo, f.arp.TargetHardwareAddr)
			assert.Equal(t, tt.wantTPA, f.arp.TargetIP)
			assert.Same(t, &s.stats.replies, b.frames[0].ctr)
		})
	}
}

func TestResponderVIPSetChanges(t *testing.T) {
	s, _, _ := testSpeaker(t, nil)
	s.SetVIPs([]netip.Addr{vip, vip2})
	assert.Equal(t, []netip.Addr{vip, vip2}, s.VIPs())
	assert.Len(t, s.step(request(t, clientMAC, clientIP, vip), t0).frames, 1)

	s.SetVIPs([]netip.Addr{vip2})
	assert.Equal(t, []netip.Addr{vip2}, s.VIPs())
	assert.Empty(t, s.step(request(t, clientMAC, clientIP, vip), t0).frames, "withdrawn VIP is not answered")
	assert.Len(t, s.step(request(t, clientMAC, clientIP, vip2), t0).frames, 1)
}

func TestRateLimit(t *testing.T) {
	s, _, _ := testSpeaker(t, &Config{ReplyRate: 2, ReplyBurst: 3})
	s.SetVIPs([]netip.Addr{vip})
	req := request(t, clientMAC, clientIP, vip)
	other := request(t, srvMAC, srvIP, vip)

	for i := range 3 {
		require.Len(t, s.step(req, t0).frames, 1, "burst reply %d", i)
	}
	assert.Empty(t, s.step(req, t0).frames, "burst exhausted")
	assert.Len(t, s.step(other, t0).frames, 1, "another requester has its own bucket")
	assert.Empty(t, s.step(req, t0.Add(400*time.Millisecond)).frames, "0.8 tokens refilled")
	assert.Len(t, s.step(req, t0.Add(500*time.Millisecond)).frames, 1, "1 token refilled at 2/s")
	assert.Empty(t, s.step(req, t0.Add(500*time.Millisecond)).frames)
	assert.Len(t, s.step(req, t0.Add(time.Hour)).frames, 1, "refill is capped at the burst")
	assert.Len(t, s.step(req, t0.Add(time.Hour)).frames, 1)
	assert.Len(t, s.step(req, t0.Add(time.Hour)).frames, 1)
	assert.Empty(t, s.step(req, t0.Add(time.Hour)).frames)

	st := s.Stats()
	assert.EqualValues(t, 4, st.Drops[DropRateLimited])
	assert.EqualValues(t, 0, st.Replies, "Replies counts frames written, not built")
}

func TestRateLimitUnlimited(t *testing.T) {
	s, _, _ := testSpeaker(t, &Config{ReplyRate: -1})
	s.SetVIPs([]netip.Addr{vip})
	req := request(t, clientMAC, clientIP, vip)
	for range 1000 {
		require.Len(t, s.step(req, t0).frames, 1)
	}
}

func TestRateLimitTableFull(t *testing.T) {
	l := newLimiter(1, 2, 3)
	mac := func(i byte) [6]byte { return [6]byte{2, 0, 0, 0, 0, i} }
	for i := range byte(3) {
		require.Zero(t, l.allow(mac(i), t0))
	}
	assert.Equal(t, DropRateTableFull, l.allow(mac(9), t0), "no bucket has refilled: no room")
	require.Zero(t, l.allow(mac(0), t0.Add(1500*time.Millisecond)), "known requesters are still served")
	assert.Equal(t, DropRateTableFull, l.allow(mac(9), t0.Add(1500*time.Millisecond)), "buckets refill in 2 s: none idle long enough")
	assert.Equal(t, DropRateTableFull, l.allow(mac(9), t0.Add(2200*time.Millisecond)), "buckets 1 and 2 refilled, but prune runs at most once a second")
	assert.Zero(t, l.allow(mac(9), t0.Add(2600*time.Millisecond)), "idle buckets 1 and 2 were pruned")
	assert.Len(t, l.buckets, 2, "bucket 0 was used 1.1 s ago and bucket 9 is new")
}

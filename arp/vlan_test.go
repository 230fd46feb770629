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

// vlanTag inserts an 802.1Q tag with TCI tci into the untagged frame b.
func vlanTag(b []byte, tci uint16) []byte { return tagged(b, 0x8100, tci) }

// vlanOf returns the VLAN ID of a sent frame, 0 when untagged, checking
// the tag's priority is 0.
func vlanOf(t *testing.T, b []byte) uint16 {
	t.Helper()
	d := decode(t, b)
	if d.eth.VLAN == nil {
		return 0
	}
	require.Zero(t, d.eth.VLAN.Priority, "our frames carry priority 0")
	return d.eth.VLAN.ID
}

func TestFrameVLAN(t *testing.T) {
	good := request(t, clientMAC, clientIP, vip)
	tests := []struct {
		name  string
		frame []byte
		want  uint16
	}{
		{"untagged", good, 0},
		{"802.1Q", vlanTag(good, 10), 10},
		{"priority bits ignored", vlanTag(good, 5<<13|0x1000|20), 20},
		{"priority tag is untagged", vlanTag(good, 3<<13), 0},
		{"802.1ad then 802.1Q belongs to no VLAN", tagged(good, 0x88a8, 7, 0x8100, 10), noVLAN},
		{"short", good[:13], 0},
	}
	for _, tt := range tests {
		assert.Equal(t, tt.want, frameVLAN(tt.frame), tt.name)
	}
}

// A VIP on VLAN 10 is answered for requests tagged 10 only, with a reply
// tagged 10; the same address on VLAN 20 is a VIP of its own, and an
// untagged request for it gets nothing.
func TestVLANAnswers(t *testing.T) {
	s, _, _ := testSpeaker(t, nil)
	s.SetVLANVIPs([]VIP{{Addr: vip, VLAN: 10}, {Addr: vip, VLAN: 20}, {Addr: vip2}})
	req := request(t, clientMAC, clientIP, vip)
	tests := []struct {
		name  string
		frame []byte
		want  int // VLAN of the reply; -1: none
	}{
		{"VLAN 10", vlanTag(req, 10), 10},
		{"VLAN 20", vlanTag(req, 20), 20},
		{"VLAN 10 with priority", vlanTag(req, 6<<13|10), 10},
		{"VLAN 30: not served there", vlanTag(req, 30), -1},
		{"untagged: not served there", req, -1},
		{"untagged VIP asked untagged", request(t, clientMAC, clientIP, vip2), 0},
		{"untagged VIP asked on VLAN 10", vlanTag(request(t, clientMAC, clientIP, vip2), 10), -1},
		{"priority-tagged is untagged", vlanTag(request(t, clientMAC, clientIP, vip2), 2<<13), 0},
	}
	for _, tt := range tests {
		before := s.Stats().Drops[DropNotOurs]
		b := s.step(tt.frame, t0)
		if tt.want < 0 {
			assert.Empty(t, b.frames, tt.name)
			assert.Equal(t, before+1, s.Stats().Drops[DropNotOurs], tt.name)
			continue
		}
		require.Len(t, b.frames, 1, tt.name)
		d := decode(t, b.frames[0].b)
		assert.Equal(t, arp.OperationReply, d.arp.Operation, tt.name)
		assert.Equal(t, clientMAC, d.eth.Destination, tt.name)
		assert.Equal(t, ourMAC, d.arp.SenderHardwareAddr, tt.name)
		assert.Equal(t, uint16(tt.want), vlanOf(t, b.frames[0].b), tt.name)
	}
}

// Announcements and conflict probes of a VLAN VIP carry its tag.
func TestVLANAnnounceAndProbe(t *testing.T) {
	s, _, _ := testSpeaker(t, nil)
	s.SetVLANVIPs([]VIP{{Addr: vip, VLAN: 10}, {Addr: vip, VLAN: 20}, {Addr: vip2}})
	b, _ := s.tickAt(t0)
	got := map[uint16]map[string]int{}
	for _, f := range b.frames {
		d := decode(t, f.b)
		v := vlanOf(t, f.b)
		if got[v] == nil {
			got[v] = map[string]int{}
		}
		kind := "probe"
		if d.arp.SenderIP == d.arp.TargetIP {
			kind = "announce"
		}
		got[v][kind+" "+d.arp.TargetIP.String()]++
	}
	assert.Equal(t, map[uint16]map[string]int{
		0:  {"announce " + vip2.String(): 1, "probe " + vip2.String(): 1},
		10: {"announce " + vip.String(): 1, "probe " + vip.String(): 1},
		20: {"announce " + vip.String(): 1, "probe " + vip.String(): 1},
	}, got)
	assert.Equal(t, []VIP{{Addr: vip2}, {Addr: vip, VLAN: 10}, {Addr: vip, VLAN: 20}}, s.VLANVIPs())
	assert.Equal(t, []netip.Addr{vip, vip2}, s.VIPs(), "addresses once each")
}

// A conflict on VLAN 10 is reported for VLAN 10 only, names the backend of
// that VLAN with the claimant's MAC, and is defended with a tagged
// announcement.
func TestVLANConflict(t *testing.T) {
	s, _, _ := testSpeaker(t, nil)
	s.SetVLANVIPs([]VIP{{Addr: vip, VLAN: 10}, {Addr: vip, VLAN: 20}})
	s.SetBackends([]Backend{{Addr: srvIP, MAC: srvMAC, VLAN: 10}, {Addr: srvIP2, MAC: srvMAC, VLAN: 20}})
	claim := reply(t, srvMAC, vip, ourMAC, ourIP)

	b := s.step(vlanTag(claim, 10), t0)
	require.Len(t, b.events, 1)
	e := b.events[0]
	assert.Equal(t, Conflict, e.Kind)
	assert.Equal(t, vip, e.Addr)
	assert.Equal(t, uint16(10), e.VLAN)
	assert.Equal(t, srvIP, e.Backend, "the backend with that MAC on VLAN 10, not VLAN 20's")
	assert.Contains(t, e.String(), "on VLAN 10")
	require.Len(t, b.frames, 1)
	assert.Equal(t, uint16(10), vlanOf(t, b.frames[0].b), "defended on VLAN 10")

	b = s.step(claim, t0)
	assert.Empty(t, b.events, "the VIP is not served untagged: no conflict there")
	b = s.step(vlanTag(claim, 30), t0)
	assert.Empty(t, b.events, "nor on VLAN 30")
	b = s.step(vlanTag(claim, 20), t0)
	require.Len(t, b.events, 1, "VLAN 20 has its own conflict")
	assert.Equal(t, uint16(20), b.events[0].VLAN)
	assert.Equal(t, srvIP2, b.events[0].Backend)
}

// The same backend address on two VLANs is two neighbours: each is asked
// with its tag and resolved only by an answer tagged with its VLAN.
func TestVLANResolve(t *testing.T) {
	s, _, _ := testSpeaker(t, nil)
	s.SetBackends([]Backend{{Addr: srvIP, VLAN: 10}, {Addr: srvIP, VLAN: 20}, {Addr: srvIP}})
	b, _ := s.tickAt(t0)
	asked := map[uint16]int{}
	for _, f := range b.frames {
		d := decode(t, f.b)
		require.Equal(t, srvIP, d.arp.TargetIP)
		asked[vlanOf(t, f.b)]++
	}
	assert.Equal(t, map[uint16]int{0: 1, 10: 1, 20: 1}, asked)

	mac10 := net.HardwareAddr{0x02, 0, 0, 0, 0x10, 0x10}
	mac20 := net.HardwareAddr{0x02, 0, 0, 0, 0x20, 0x20}
	b = s.step(vlanTag(reply(t, mac10, srvIP, ourMAC, ourIP), 10), t0)
	require.Len(t, b.events, 1)
	assert.Equal(t, Resolved, b.events[0].Kind)
	assert.Equal(t, uint16(10), b.events[0].VLAN)
	assert.Equal(t, mac10, b.events[0].MAC)
	b = s.step(vlanTag(reply(t, mac20, srvIP, ourMAC, ourIP), 20), t0)
	require.Len(t, b.events, 1)
	assert.Equal(t, uint16(20), b.events[0].VLAN)

	got, ok := s.LookupVLAN(10, srvIP)
	require.True(t, ok)
	assert.Equal(t, mac10, got)
	got, ok = s.LookupVLAN(20, srvIP)
	require.True(t, ok)
	assert.Equal(t, mac20, got)
	_, ok = s.Lookup(srvIP)
	assert.False(t, ok, "the untagged one has not answered")
	_, ok = s.LookupVLAN(30, srvIP)
	assert.False(t, ok)
}

// Neighbour discovery per VLAN: a solicitation tagged 10 for a VIP of VLAN
// 10 is answered with a tagged advertisement; untagged it is not ours.
func TestVLANNeighbourDiscovery(t *testing.T) {
	s, _, _, _ := testSpeaker6(t, nil)
	s.SetVLANVIPs([]VIP{{Addr: vip6, VLAN: 10}})
	sol := ns(t, clientMAC, clientIP6, vip6)
	b := s.step(vlanTag(sol, 10), t0)
	require.Len(t, b.frames, 1)
	f := b.frames[0]
	assert.True(t, f.nd)
	d := decodeND(t, f.b)
	require.NotNil(t, d.eth.VLAN)
	assert.Equal(t, uint16(10), d.eth.VLAN.ID)
	assert.Equal(t, vip6, d.target)

	b = s.step(sol, t0)
	assert.Empty(t, b.frames, "untagged: not served")

	b, _ = s.tickAt(t0)
	require.NotEmpty(t, b.frames)
	for _, f := range b.frames {
		d := decodeND(t, f.b)
		require.NotNil(t, d.eth.VLAN, "announcements and probes are tagged")
		assert.Equal(t, uint16(10), d.eth.VLAN.ID)
	}

	claim := naSpec(srvMAC, srvIP6, ourMAC, ourIP6, naOverride, vip6).frame(t)
	b = s.step(vlanTag(claim, 10), t0)
	require.Len(t, b.events, 1)
	assert.Equal(t, uint16(10), b.events[0].VLAN)
}

// VIPs and backends with VLAN IDs above MaxVLAN are ignored.
func TestVLANOutOfRange(t *testing.T) {
	s, _, _ := testSpeaker(t, nil)
	s.SetVLANVIPs([]VIP{{Addr: vip, VLAN: MaxVLAN + 1}, {Addr: vip2, VLAN: MaxVLAN}})
	assert.Equal(t, []VIP{{Addr: vip2, VLAN: MaxVLAN}}, s.VLANVIPs())
	s.SetBackends([]Backend{{Addr: srvIP, VLAN: 4095}})
	b, _ := s.tickAt(t0)
	for _, f := range b.frames {
		assert.NotEqual(t, srvIP, decode(t, f.b).arp.TargetIP)
	}
}

// Tagged parsing and answering allocate no more than untagged: the core
// drops a tagged frame for another VLAN without allocating.
func TestVLANDropAllocs(t *testing.T) {
	s, _, _ := testSpeaker(t, nil)
	s.SetVLANVIPs([]VIP{{Addr: vip, VLAN: 10}})
	other := vlanTag(request(t, clientMAC, clientIP, vip), 20)
	var b batch
	assert.Zero(t, testing.AllocsPerRun(100, func() { s.handle(other, t0, &b) }))
	assert.Empty(t, b.frames)
}

// FuzzHandleVLAN feeds arbitrary frames to a Speaker serving the same VIP
// and backend address on VLANs 10 and 20 (and a VIP untagged): it never
// panics, and every frame it sends in answer carries the VLAN of the frame
// it answers.
func FuzzHandleVLAN(f *testing.F) {
	req := request(f, clientMAC, clientIP, vip)
	f.Add(vlanTag(req, 10))
	f.Add(vlanTag(req, 3<<13|20))
	f.Add(vlanTag(req, 30))
	f.Add(tagged(req, 0x88a8, 7, 0x8100, 10))
	f.Add(vlanTag(reply(f, srvMAC, vip, ourMAC, ourIP), 20))
	f.Add(vlanTag(reply(f, srvMAC, srvIP, ourMAC, ourIP), 10))
	f.Add(vlanTag(ns(f, clientMAC, clientIP6, vip6), 10))
	f.Add(request(f, clientMAC, clientIP, vip2))
	f.Add([]byte{})
	s, err := New(newFakeConn(), &Config{HardwareAddr: ourMAC, IP: ourIP, IP6: ourIP6, NDPConn: newFakeConn()})
	require.NoError(f, err)
	s.now = func() time.Time { return t0 }
	s.SetVLANVIPs([]VIP{{Addr: vip, VLAN: 10}, {Addr: vip, VLAN: 20}, {Addr: vip6, VLAN: 10}, {Addr: vip2}})
	s.SetBackends([]Backend{{Addr: srvIP, VLAN: 10}, {Addr: srvIP, VLAN: 20}, {Addr: srvIP6, VLAN: 20}})
	_, _ = s.tickAt(t0) // resolution requests outstanding, so replies resolve
	f.Fuzz(func(t *testing.T, b []byte) {
		out := s.step(b, t0)
		want := frameVLAN(b)
		for _, fr := range out.frames {
			if got := frameVLAN(fr.b); got != want {
				t.Fatalf("answer on VLAN %d to a frame of VLAN %d:\n in %x\nout %x", got, want, b, fr.b)
			}
		}
		for _, e := range out.events {
			if e.VLAN != want {
				t.Fatalf("event %v on VLAN %d from a frame of VLAN %d", e, e.VLAN, want)
			}
		}
	})
}

package health

import (
	"net/netip"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dsrlb/dsrlb/internal/frame"
)

func TestParseVLANSources(t *testing.T) {
	v4 := netip.MustParseAddr("198.51.100.9")
	v6 := netip.MustParseAddr("2001:db8:10::9")
	got, err := parseVLANSources(map[uint16][]netip.Addr{10: {v4, v6}, 20: {netip.AddrFrom16(v4.As16())}})
	require.NoError(t, err)
	assert.Equal(t, map[uint16]vlanSource{10: {v4: v4, v6: v6}, 20: {v4: v4}}, got, "IPv4-mapped is IPv4")
	for name, in := range map[string]map[uint16][]netip.Addr{
		"VLAN 0":        {0: {v4}},
		"VLAN 4095":     {4095: {v4}},
		"two IPv4":      {10: {v4, v4.Next()}},
		"multicast":     {10: {netip.MustParseAddr("224.0.0.1")}},
		"invalid":       {10: {{}}},
		"loopback IPv6": {10: {netip.IPv6Loopback()}},
	} {
		_, err := parseVLANSources(in)
		assert.Error(t, err, name)
	}
}

// A VLAN target is refused by checkers through the host stack, and by the
// DSR-path checker on a VLAN (or of a family) it has no source for.
func TestSupportVLAN(t *testing.T) {
	vip := netip.MustParseAddr("192.0.2.100")
	vip6 := netip.MustParseAddr("2001:db8::100")
	be := netip.MustParseAddr("192.0.2.21")
	dsr := Support{Name: "dsr", NeedsPort: true, NeedsVIP: true, VLANFamilies: map[uint16]Families{10: IPv4}}
	tests := []struct {
		name string
		s    Support
		t    Target
		want string
	}{
		{"tcp untagged", (&TCPChecker{}).Support(), Target{Addr: be, Port: 80}, ""},
		{"tcp on a VLAN", (&TCPChecker{}).Support(), Target{Addr: be, Port: 80, VLAN: 10}, "does not reach backends on VLAN 10"},
		{"http on a VLAN", (&HTTPChecker{}).Support(), Target{Addr: be, VLAN: 10}, "host's IP stack"},
		{"icmp on a VLAN", (&ICMPChecker{}).Support(), Target{Addr: be, VLAN: 7}, "VLAN 7"},
		{"dsr on its VLAN", dsr, Target{Addr: be, Port: 80, VIP: vip, VLAN: 10}, ""},
		{"dsr on another VLAN", dsr, Target{Addr: be, Port: 80, VIP: vip, VLAN: 20}, "no probe source address on VLAN 20"},
		{"dsr without the family", dsr, Target{Addr: be, Port: 80, VIP: vip6, VLAN: 10}, "no IPv6 probe source address on VLAN 10"},
		{"zero support: everything", Support{}, Target{Addr: be, VLAN: 10}, ""},
	}
	for _, tt := range tests {
		err := tt.s.Validate(tt.t)
		if tt.want == "" {
			assert.NoError(t, err, tt.name)
			continue
		}
		require.ErrorIs(t, err, ErrUnsupportedTarget, tt.name)
		assert.ErrorContains(t, err, tt.want, tt.name)
	}
}

// The probe's frames carry the target's VLAN tag; ARP and ND answers are
// tagged by tagFrame.
func TestProbeTagged(t *testing.T) {
	p := probe{srcMAC: [6]byte{2, 0, 0, 0, 0, 1}, dstMAC: [6]byte{2, 0, 0, 0, 0, 2},
		src: netip.MustParseAddr("198.51.100.9"), dst: netip.MustParseAddr("192.0.2.100"), sport: 40000, dport: 80, seq: 7, vlan: 10}
	for _, b := range [][]byte{p.appendSYN(nil), p.appendRST(nil)} {
		var pkt frame.Packet
		require.NoError(t, frame.Parse(b, &pkt))
		assert.True(t, pkt.Tagged)
		assert.Equal(t, uint16(10), pkt.VLANID())
		assert.Equal(t, uint16(10), frameVLAN(b))
		s, err := parseSegment(b)
		require.NoError(t, err)
		assert.Equal(t, p.dst, s.dst)
	}
	p.vlan = 0
	assert.Zero(t, frameVLAN(p.appendSYN(nil)))

	req := arpRequest{senderMAC: [6]byte{2, 0, 0, 0, 0, 2}, senderIP: netip.MustParseAddr("198.51.100.21"), targetIP: p.src}
	reply := tagFrame(appendARPReply(nil, req, p.src, p.srcMAC), 10)
	var pkt frame.Packet
	require.NoError(t, frame.Parse(reply, &pkt))
	assert.Equal(t, uint16(10), pkt.VLANID())
	assert.Equal(t, uint16(frame.EtherTypeARP), pkt.EtherType)
	again, err := parseARPRequest(tagFrame(appendARPRequestForTest(req), 10))
	require.NoError(t, err, "a tagged request parses")
	assert.Equal(t, req, again)
}

// appendARPRequestForTest builds the broadcast ARP request req describes.
func appendARPRequestForTest(req arpRequest) []byte {
	b := frame.AppendEthernet(nil, frame.EthernetHeader{Dst: [6]byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}, Src: req.senderMAC, EtherType: frame.EtherTypeARP})
	b = append(b, 0, 1, 0x08, 0x00, 6, 4, 0, 1) // Ethernet, IPv4, request
	s4, t4 := req.senderIP.As4(), req.targetIP.As4()
	b = append(b, req.senderMAC[:]...)
	b = append(b, s4[:]...)
	b = append(b, make([]byte, 6)...)
	return append(b, t4[:]...)
}

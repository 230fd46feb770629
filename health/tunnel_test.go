package health

import (
	"fmt"
	"net/netip"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dsrlb/dsrlb/internal/frame"
)

func TestProbeEncapsulated(t *testing.T) {
	for _, tc := range []struct {
		name      string
		src, vip  netip.Addr
		tun       Tunnel
		outer     uint8
		overhead  int
		innerProt byte
	}{
		{"ipip4", netip.MustParseAddr("203.0.113.2"), netip.MustParseAddr("192.0.2.100"),
			Tunnel{Kind: TunnelIPIP, Src: netip.MustParseAddr("203.0.113.2"), Dst: netip.MustParseAddr("198.51.100.21")}, 4, 20, 4},
		{"gue4", netip.MustParseAddr("203.0.113.2"), netip.MustParseAddr("192.0.2.100"),
			Tunnel{Kind: TunnelGUE, Src: netip.MustParseAddr("203.0.113.2"), Dst: netip.MustParseAddr("198.51.100.21"), Port: 6080}, frame.ProtoUDP, 32, 4},
		{"ipip6", netip.MustParseAddr("2001:db8:b::2"), netip.MustParseAddr("2001:db8::100"),
			Tunnel{Kind: TunnelIPIP, Src: netip.MustParseAddr("2001:db8:b::2"), Dst: netip.MustParseAddr("2001:db8:5::21")}, 41, 40, 41},
		{"gue6", netip.MustParseAddr("2001:db8:b::2"), netip.MustParseAddr("2001:db8::100"),
			Tunnel{Kind: TunnelGUE, Src: netip.MustParseAddr("2001:db8:b::2"), Dst: netip.MustParseAddr("2001:db8:5::21"), Port: 7000}, frame.ProtoUDP, 52, 41},
	} {
		for _, vlan := range []uint16{0, 30} {
			t.Run(fmt.Sprintf("%s/vlan%d", tc.name, vlan), func(t *testing.T) {
				p := probe{srcMAC: [6]byte{2, 0, 0, 0, 0, 1}, dstMAC: [6]byte{2, 0, 0, 0, 0, 2}, src: tc.src, dst: tc.vip, sport: 40000, dport: 80, seq: 7, vlan: vlan}
				l2 := frame.EthernetHeaderLen // the link header: Ethernet and any tag
				if vlan != 0 {
					l2 += frame.VLANTagLen
				}
				bare := p.appendSYN(nil)
				p.tun = tc.tun
				got := p.appendSYN(nil)
				require.Len(t, got, len(bare)+tc.overhead)
				var pk frame.Packet
				require.NoError(t, frame.Parse(got, &pk))
				assert.Equal(t, tc.tun.Src, pk.Src)
				assert.Equal(t, tc.tun.Dst, pk.Dst)
				assert.Equal(t, tc.outer, pk.Proto)
				assert.Equal(t, vlan, pk.VLANID(), "on the backend's VLAN")
				assert.Equal(t, bare[:l2], got[:l2], "same link header, to the next hop")
				assert.Equal(t, bare[l2:], got[l2+tc.overhead:], "the probe itself travels unchanged")
				if tc.tun.Kind == TunnelGUE {
					assert.Equal(t, tc.tun.Port, pk.DstPort)
					assert.True(t, frame.TransportChecksumOK(got, &pk))
					assert.Equal(t, []byte{0, tc.innerProt, 0, 0}, got[l2+tc.overhead-4:l2+tc.overhead])
				}
				k := Target{VIP: tc.vip, Tunnel: tc.tun}.Key()
				assert.NotEqual(t, Target{VIP: tc.vip}.Key(), k, "the tunnel is part of the target's identity")
			})
		}
	}
}

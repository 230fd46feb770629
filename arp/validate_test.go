package arp

import (
	"encoding/binary"
	"net"
	"net/netip"
	"testing"

	"github.com/mdlayher/arp"
	"github.com/mdlayher/ethernet"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestParseFrame(t *testing.T) {
	good := request(t, clientMAC, clientIP, vip)
	// mutate returns a copy of good with fn applied to its ARP payload.
	mutate := func(fn func(p []byte)) []byte {
		b := append([]byte(nil), good...)
		fn(b[ethHeaderLen:])
		return b
	}
	vlan := func() []byte {
		f := &ethernet.Frame{Destination: ethernet.Broadcast, Source: clientMAC, EtherType: ethernet.EtherTypeARP,
			VLAN: &ethernet.VLAN{ID: 42}, Payload: good[ethHeaderLen : ethHeaderLen+arpPacketLen]}
		b, err := f.MarshalBinary()
		require.NoError(t, err)
		return b
	}()
	tests := []struct {
		name string
		b    []byte
		want DropReason
	}{
		{"request", good, 0},
		{"reply", reply(t, srvMAC, srvIP, ourMAC, ourIP), 0},
		{"probe from 0.0.0.0", request(t, clientMAC, netip.IPv4Unspecified(), vip), 0},
		{"802.1Q tagged", vlan, 0},
		{"no payload padding", good[:ethHeaderLen+arpPacketLen], 0},
		{"empty", nil, DropMalformed},
		{"short ethernet", good[:13], DropMalformed},
		{"802.1ad then 802.1Q", tagged(good, 0x88a8, 7, 0x8100, 42), 0},
		{"802.1ad alone", tagged(good, 0x88a8, 7), DropMalformed},
		{"two 802.1Q tags", tagged(good, 0x8100, 7, 0x8100, 42), DropNotARP},
		{"reserved VLAN ID", tagged(good, 0x8100, 0xfff), DropMalformed},
		{"tag without type", append(append([]byte(nil), good[:12]...), 0x81, 0x00, 0, 42), DropMalformed},
		{"ipv4 ethertype", mutateEth(good, ethernet.EtherTypeIPv4), DropNotARP},
		{"short arp header", good[:ethHeaderLen+7], DropMalformed},
		{"hardware type 6", mutate(func(p []byte) { binary.BigEndian.PutUint16(p[0:], 6) }), DropHardwareType},
		{"protocol type ipv6", mutate(func(p []byte) { binary.BigEndian.PutUint16(p[2:], 0x86dd) }), DropProtocolType},
		{"hardware length 8", mutate(func(p []byte) { p[4] = 8 }), DropHardwareLength},
		{"hardware length 0", mutate(func(p []byte) { p[4] = 0 }), DropHardwareLength},
		{"protocol length 16", mutate(func(p []byte) { p[5] = 16 }), DropProtocolLength},
		{"operation 0", mutate(func(p []byte) { binary.BigEndian.PutUint16(p[6:], 0) }), DropOperation},
		{"operation 3 (rarp)", mutate(func(p []byte) { binary.BigEndian.PutUint16(p[6:], 3) }), DropOperation},
		{"truncated addresses", good[:ethHeaderLen+arpPacketLen-1], DropMalformed},
		{"sender mac broadcast", request(t, ethernet.Broadcast, clientIP, vip), DropSenderAddr},
		{"sender mac multicast", request(t, net.HardwareAddr{0x01, 0, 0x5e, 0, 0, 1}, clientIP, vip), DropSenderAddr},
		{"sender mac zero", request(t, make(net.HardwareAddr, 6), clientIP, vip), DropSenderAddr},
		{"sender ip broadcast", request(t, clientMAC, netip.MustParseAddr("255.255.255.255"), vip), DropSenderAddr},
		{"sender ip multicast", request(t, clientMAC, netip.MustParseAddr("224.0.0.1"), vip), DropSenderAddr},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var v view
			assert.Equal(t, tt.want, parseFrame(tt.b, &v), "got %s", parseFrame(tt.b, &v))
		})
	}

	var v view
	require.Zero(t, parseFrame(good, &v))
	assert.Equal(t, view{
		ethDst: bcast, ethSrc: [6]byte(clientMAC), op: arp.OperationRequest,
		sha: [6]byte(clientMAC), spa: clientIP, tpa: vip,
	}, v)
}

// tagged inserts VLAN tags (TPID, TCI pairs) after the MAC addresses of b.
func tagged(b []byte, tags ...uint16) []byte {
	out := append([]byte(nil), b[:12]...)
	for _, v := range tags {
		out = binary.BigEndian.AppendUint16(out, v)
	}
	return append(out, b[12:]...)
}

func mutateEth(b []byte, et ethernet.EtherType) []byte {
	b = append([]byte(nil), b...)
	binary.BigEndian.PutUint16(b[12:], uint16(et))
	return b
}

// Every host on the segment can send ARP at line rate, so validation must
// not allocate.
func TestParseFrameAllocs(t *testing.T) {
	good := request(t, clientMAC, clientIP, vip)
	bad := mutateEth(good, ethernet.EtherTypeIPv4)
	var v view
	allocs := testing.AllocsPerRun(1000, func() {
		parseFrame(good, &v)
		parseFrame(bad, &v)
	})
	assert.Zero(t, allocs)
}

// The segment's chatter (requests for other hosts, malformed frames) is
// dropped without allocating; only frames we act on may allocate.
func TestHandleDropAllocs(t *testing.T) {
	s, _, _ := testSpeaker(t, nil)
	s.SetVIPs([]netip.Addr{vip})
	other := request(t, clientMAC, clientIP, netip.MustParseAddr("192.0.2.77"))
	bad := mutateEth(other, ethernet.EtherTypeIPv4)
	var b batch
	allocs := testing.AllocsPerRun(1000, func() {
		s.handle(other, t0, &b)
		s.handle(bad, t0, &b)
	})
	assert.Zero(t, allocs)
	assert.Empty(t, b.frames)
}

func TestDropReasonString(t *testing.T) {
	for r := DropReason(1); r < numDropReasons; r++ {
		assert.NotEmpty(t, dropNames[r], "reason %d has a name", r)
		assert.Equal(t, dropNames[r], r.String())
	}
	assert.Equal(t, "DropReason(0)", DropReason(0).String())
	assert.Equal(t, "DropReason(200)", DropReason(200).String())
}

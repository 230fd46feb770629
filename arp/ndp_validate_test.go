package arp

import (
	"net"
	"net/netip"
	"testing"

	"github.com/mdlayher/ethernet"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/net/bpf"
	"golang.org/x/net/ipv6"
)

func TestParseND(t *testing.T) {
	good := nsSpec(clientMAC, clientIP6, vip6)
	with := func(p ndSpec, f func(*ndSpec)) ndSpec { f(&p); return p }
	naToUs := naSpec(srvMAC, srvIP6, ourMAC, ourIP6, naSolicited|naOverride, srvIP6)
	tests := []struct {
		name  string
		frame []byte
		want  DropReason
	}{
		{"solicitation", good.frame(t), 0},
		{"solicitation with Ethernet padding", with(good, func(p *ndSpec) { p.pad = 10 }).frame(t), 0},
		{"unicast solicitation without option", with(good, func(p *ndSpec) { p.opts = nil; p.ethDst = ourMAC }).frame(t), 0},
		{"unknown option skipped", with(good, func(p *ndSpec) { p.opts = append([]byte{14, 1, 1, 2, 3, 4, 5, 6}, p.opts...) }).frame(t), 0},
		{"duplicate address detection", dadSpec(clientMAC, vip6).frame(t), 0},
		{"solicited advertisement", naToUs.frame(t), 0},
		{"unsolicited advertisement", naSpec(srvMAC, srvIP6, allNodesM, allNodes, naOverride, srvIP6).frame(t), 0},
		{"advertisement without option", with(naToUs, func(p *ndSpec) { p.opts = nil }).frame(t), 0},
		{"VLAN-tagged solicitation", tagged(good.frame(t), 0x8100, 7), 0},

		{"empty", nil, DropMalformed},
		{"ARP", request(t, clientMAC, clientIP, vip), DropNotND},
		{"IPv6 header truncated", good.frame(t)[:ethHeaderLen+39], DropMalformed},
		{"payload length beyond the frame", with(good, func(p *ndSpec) { p.plenDelta = 1 }).frame(t), DropMalformed},
		{"IP version 4 in an IPv6 frame", with(good, func(p *ndSpec) { p.version = 4 }).frame(t), DropMalformed},
		{"UDP", with(good, func(p *ndSpec) { p.next = 17 }).frame(t), DropNotND},
		{"echo request", with(good, func(p *ndSpec) { p.typ = ipv6.ICMPTypeEchoRequest }).frame(t), DropNotND},
		{"router solicitation", with(good, func(p *ndSpec) { p.typ = ipv6.ICMPTypeRouterSolicitation }).frame(t), DropNotND},
		{"routed: hop limit 64", with(good, func(p *ndSpec) { p.hop = 64 }).frame(t), DropHopLimit},
		{"hop limit 254", with(good, func(p *ndSpec) { p.hop = 254 }).frame(t), DropHopLimit},
		{"bad checksum", with(good, func(p *ndSpec) { p.badSum = true }).frame(t), DropChecksum},
		{"code 1", with(good, func(p *ndSpec) { p.code = 1 }).frame(t), DropICMPCode},
		{"shorter than 24 bytes", with(good, func(p *ndSpec) { p.opts = nil; p.plenDelta = -4 }).frame(t), DropNDLength},
		{"multicast target", with(good, func(p *ndSpec) { p.target = allNodes }).frame(t), DropTargetAddr},
		{"option of length 0", with(good, func(p *ndSpec) { p.opts = []byte{1, 0, 0, 0, 0, 0, 0, 0} }).frame(t), DropNDOption},
		{"option past the end", with(good, func(p *ndSpec) { p.opts = []byte{1, 2, 0, 0, 0, 0, 0, 0} }).frame(t), DropNDOption},
		{"option header cut", with(good, func(p *ndSpec) { p.opts = append(p.opts, 1) }).frame(t), DropNDOption},
		{"16-byte link-layer option", with(good, func(p *ndSpec) { p.opts = append([]byte{1, 2}, make([]byte, 14)...) }).frame(t), DropNDOption},
		{"repeated link-layer option", with(good, func(p *ndSpec) { p.opts = append(p.opts, llaOpt(1, srvMAC)...) }).frame(t), DropNDOption},
		{"multicast Ethernet source", with(good, func(p *ndSpec) { p.ethSrc = allNodesM }).frame(t), DropSenderAddr},
		{"multicast link-layer option", with(good, func(p *ndSpec) { p.opts = llaOpt(1, ethernet.Broadcast) }).frame(t), DropSenderAddr},
		{"multicast source", with(good, func(p *ndSpec) { p.src = allNodes }).frame(t), DropSenderAddr},
		{"DAD with a source link-layer option", with(dadSpec(clientMAC, vip6), func(p *ndSpec) { p.opts = llaOpt(1, clientMAC) }).frame(t), DropDADForm},
		{"DAD to a unicast address", with(dadSpec(clientMAC, vip6), func(p *ndSpec) { p.dst = vip6; p.ethDst = ourMAC }).frame(t), DropDADForm},
		{"DAD to all nodes", with(dadSpec(clientMAC, vip6), func(p *ndSpec) { p.dst = allNodes }).frame(t), DropDADForm},
		{"solicited advertisement to all nodes", naSpec(srvMAC, srvIP6, allNodesM, allNodes, naSolicited, srvIP6).frame(t), DropNDFlags},
		{"advertisement from ::", naSpec(srvMAC, netip.IPv6Unspecified(), allNodesM, allNodes, naOverride, srvIP6).frame(t), DropSenderAddr},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var v ndView
			require.Equal(t, tt.want, parseND(tt.frame, &v), "got %v", parseND(tt.frame, &v))
		})
	}

	var v ndView
	require.Zero(t, parseND(good.frame(t), &v))
	assert.Equal(t, ndView{
		ethDst: [6]byte(groupMAC(solNode(vip6))), ethSrc: [6]byte(clientMAC),
		src: clientIP6, dst: solNode(vip6), typ: icmpTypeNS, target: vip6,
		lla: [6]byte(clientMAC), hasLLA: true,
	}, v)
	require.Zero(t, parseND(naToUs.frame(t), &v))
	assert.Equal(t, uint8(icmpTypeNA), v.typ)
	assert.Equal(t, uint8(naSolicited|naOverride), v.flags)
	assert.Equal(t, [6]byte(srvMAC), v.sender())
	require.Zero(t, parseND(with(naToUs, func(p *ndSpec) { p.opts = nil; p.ethSrc = srvMAC2 }).frame(t), &v))
	assert.Equal(t, [6]byte(srvMAC2), v.sender(), "without an option the Ethernet source speaks")
}

// What ndMessage builds is valid by an independent implementation, and
// passes our own validation.
func TestNDMessage(t *testing.T) {
	b := ndMessage([6]byte(ourMAC), [6]byte(clientMAC), vip6, clientIP6, icmpTypeNA, naSolicited|naOverride, vip6, ndOptTargetLLA)
	d := decodeND(t, b)
	assert.Equal(t, ipv6.ICMPTypeNeighborAdvertisement, d.typ)
	assert.Equal(t, vip6, d.src)
	assert.Equal(t, clientIP6, d.dst)
	assert.Equal(t, byte(naSolicited|naOverride), d.flags)
	assert.Equal(t, vip6, d.target)
	assert.Equal(t, llaOpt(ndOptTargetLLA, ourMAC), d.opts)
	var v ndView
	assert.Zero(t, parseND(b, &v))

	b = ndMessage([6]byte(ourMAC), multicastMAC(solicitedNode(srvIP6)), netip.IPv6Unspecified(), solicitedNode(srvIP6), icmpTypeNS, 0, srvIP6, 0)
	d = decodeND(t, b)
	assert.Equal(t, ipv6.ICMPTypeNeighborSolicitation, d.typ)
	assert.Empty(t, d.opts)
	assert.Zero(t, parseND(b, &v))
}

func TestSolicitedNode(t *testing.T) {
	tests := []struct {
		addr, group string
		mac         net.HardwareAddr
	}{
		{"2001:db8:0:1::100", "ff02::1:ff00:100", net.HardwareAddr{0x33, 0x33, 0xff, 0, 1, 0}},
		{"2001:db8::abcd:ef12:3456", "ff02::1:ff12:3456", net.HardwareAddr{0x33, 0x33, 0xff, 0x12, 0x34, 0x56}},
		{"fe80::1", "ff02::1:ff00:1", net.HardwareAddr{0x33, 0x33, 0xff, 0, 0, 1}},
	}
	for _, tt := range tests {
		g := solicitedNode(netip.MustParseAddr(tt.addr))
		assert.Equal(t, netip.MustParseAddr(tt.group), g, tt.addr)
		assert.True(t, isSolicitedNode(g))
		mac := multicastMAC(g)
		assert.Equal(t, tt.mac, net.HardwareAddr(mac[:]))
	}
	assert.False(t, isSolicitedNode(allNodes))
	assert.False(t, isSolicitedNode(vip6))
	assert.False(t, isSolicitedNode(vip))
}

// Every host on the segment can send neighbour discovery at line rate, so
// validation and the drop path must not allocate.
func TestParseNDAllocs(t *testing.T) {
	good := ns(t, clientMAC, clientIP6, vip6)
	bad := nsSpec(clientMAC, clientIP6, vip6)
	bad.badSum = true
	badFrame := bad.frame(t)
	var v ndView
	assert.Zero(t, testing.AllocsPerRun(1000, func() {
		parseND(good, &v)
		parseND(badFrame, &v)
	}))

	s, _, _, _ := testSpeaker6(t, nil)
	s.SetVIPs([]netip.Addr{vip6})
	other := ns(t, clientMAC, clientIP6, netip.MustParseAddr("2001:db8:0:1::77"))
	var b batch
	assert.Zero(t, testing.AllocsPerRun(1000, func() {
		s.handle(other, t0, &b)
		s.handle(badFrame, t0, &b)
	}))
	assert.Empty(t, b.frames)
	assert.EqualValues(t, 1000+1, s.Stats().Drops[DropNotOurs], "AllocsPerRun runs once more to warm up")
}

// The kernel filter passes exactly the frames parseND may accept by type
// and hop limit, and keeps the forwarded traffic out.
func TestNDFilter(t *testing.T) {
	vm, err := bpf.NewVM(ndFilter)
	require.NoError(t, err)
	good := nsSpec(clientMAC, clientIP6, vip6)
	with := func(p ndSpec, f func(*ndSpec)) []byte { f(&p); return p.frame(t) }
	tests := []struct {
		name  string
		frame []byte
		pass  bool
	}{
		{"solicitation", good.frame(t), true},
		{"DAD", dadSpec(clientMAC, vip6).frame(t), true},
		{"advertisement", naSpec(srvMAC, srvIP6, ourMAC, ourIP6, naSolicited, srvIP6).frame(t), true},
		{"bad checksum still passes (counted in userspace)", with(good, func(p *ndSpec) { p.badSum = true }), true},
		{"hop limit 64", with(good, func(p *ndSpec) { p.hop = 64 }), false},
		{"UDP", with(good, func(p *ndSpec) { p.next = 17 }), false},
		{"TCP", with(good, func(p *ndSpec) { p.next = 6 }), false},
		{"echo request", with(good, func(p *ndSpec) { p.typ = ipv6.ICMPTypeEchoRequest }), false},
		{"router advertisement", with(good, func(p *ndSpec) { p.typ = ipv6.ICMPTypeRouterAdvertisement }), false},
		{"ARP", request(t, clientMAC, clientIP, vip), false},
		{"short", []byte{1, 2, 3}, false},
	}
	for _, tt := range tests {
		n, err := vm.Run(tt.frame)
		require.NoError(t, err, tt.name)
		if tt.pass {
			assert.GreaterOrEqual(t, n, len(tt.frame), "whole frame kept: %s", tt.name)
		} else {
			assert.Zero(t, n, tt.name)
		}
	}
	_, err = assembledNDFilter()
	require.NoError(t, err)
}

//go:build linux && (386 || amd64 || arm || arm64 || loong64 || mips64le || mipsle || ppc64le || riscv64)

package decap

import (
	"bytes"
	"encoding/binary"
	"net/netip"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dsrlb/dsrlb/internal/frame"
	ft "github.com/dsrlb/dsrlb/internal/frame/frametest"
	"github.com/dsrlb/dsrlb/internal/netlab"
)

const (
	xdpDrop = 1
	xdpPass = 2
)

var (
	srvMAC = ft.MAC("02:00:00:00:00:21")
	gwMAC  = ft.MAC("02:00:00:00:00:fe")
	lb4    = netip.MustParseAddr("203.0.113.2")
	lb6    = netip.MustParseAddr("2001:db8:2::2")
	srv4   = netip.MustParseAddr("198.51.100.21")
	srv6   = netip.MustParseAddr("2001:db8:3::21")
	other4 = netip.MustParseAddr("198.51.100.99")
	other6 = netip.MustParseAddr("2001:db8:3::99")
	cli4   = netip.MustParseAddr("192.0.2.7")
	cli6   = netip.MustParseAddr("2001:db8:1::7")
	vip4   = netip.MustParseAddr("192.0.2.100")
	vip6   = netip.MustParseAddr("2001:db8::100")
)

func loadT(t testing.TB) *Program {
	t.Helper()
	netlab.RequirePrivileged(t)
	p, err := Load(&Config{Balancers: []netip.Addr{lb4, lb6}, Locals: []netip.Addr{srv4, srv6}, GUE: true})
	require.NoError(t, err)
	t.Cleanup(func() { p.Close() })
	return p
}

func inner4() []byte {
	return ft.Build(ft.IPv4{Src: cli4, Dst: vip4, TTL: 60, DF: true}, ft.TCP{SrcPort: 40000, DstPort: 80, Flags: frame.FlagSYN}, ft.Raw("hello"))
}

func inner6() []byte {
	return ft.Build(ft.IPv6{Src: cli6, Dst: vip6}, ft.TCP{SrcPort: 40000, DstPort: 443, Flags: frame.FlagSYN}, ft.Raw("hello"))
}

var eth = ft.Ethernet{Dst: srvMAC, Src: gwMAC}

func gue(proto byte, inner []byte) []byte {
	return append([]byte{0, proto, 0, 0}, inner...)
}

func ipip4(src, dst netip.Addr, inner []byte) []byte {
	return ft.Build(eth, ft.IPv4{Src: src, Dst: dst, DF: true, Protocol: 4}, ft.Raw(inner))
}

func ipip6(src, dst netip.Addr, inner []byte) []byte {
	return ft.Build(eth, ft.IPv6{Src: src, Dst: dst, NextHeader: 41}, ft.Raw(inner))
}

func gue4(src, dst netip.Addr, port uint16, payload []byte) []byte {
	return ft.Build(eth, ft.IPv4{Src: src, Dst: dst, DF: true}, ft.UDP{SrcPort: 50000, DstPort: port}, ft.Raw(payload))
}

func gue6(src, dst netip.Addr, port uint16, payload []byte) []byte {
	return ft.Build(eth, ft.IPv6{Src: src, Dst: dst}, ft.UDP{SrcPort: 50000, DstPort: port}, ft.Raw(payload))
}

// withEth puts the test's Ethernet header before a packet.
func withEth(p []byte, v6 bool) []byte {
	b := make([]byte, 14, 14+len(p))
	copy(b, srvMAC[:])
	copy(b[6:], gwMAC[:])
	et := uint16(frame.EtherTypeIPv4)
	if v6 {
		et = frame.EtherTypeIPv6
	}
	binary.BigEndian.PutUint16(b[12:], et)
	return append(b, p...)
}

func TestIntegrationDecapVectors(t *testing.T) {
	badCsum := ipip4(lb4, srv4, inner4())
	badCsum[14+10] ^= 0xff
	truncOuter := ipip4(lb4, srv4, inner4())
	truncOuter = truncOuter[:len(truncOuter)-3]
	truncInner := ipip4(lb4, srv4, inner4()[:15])
	badGUE := gue4(lb4, srv4, DefaultGUEPort, gue(4, inner4()))
	badGUE[14+20+8] = 0x80 // variant 2
	ctrl := gue4(lb4, srv4, DefaultGUEPort, gue(4, inner4()))
	ctrl[14+20+8] = 0x20 // control message
	frag := ft.Build(eth, ft.IPv4{Src: lb4, Dst: srv4, MF: true, Protocol: 4}, ft.Raw(inner4()))
	variant1 := gue4(lb4, srv4, DefaultGUEPort, inner4())
	vlan := ft.Build(eth, ft.VLAN{TCI: 10}, ft.IPv4{Src: lb4, Dst: srv4, DF: true, Protocol: 4}, ft.Raw(inner4()))
	vlanOut := ft.Build(eth, ft.VLAN{TCI: 10}, ft.Raw(inner4()))
	binary.BigEndian.PutUint16(vlanOut[16:], frame.EtherTypeIPv4)
	plain := ft.Build(eth, ft.IPv4{Src: cli4, Dst: srv4}, ft.TCP{SrcPort: 1, DstPort: 22})

	for _, tc := range []struct {
		name    string
		in      []byte
		verdict uint32
		out     []byte // nil: unchanged
		counter func(Stats) uint64
	}{
		{"ipip4", ipip4(lb4, srv4, inner4()), xdpPass, withEth(inner4(), false), func(s Stats) uint64 { return s.IPIP4 }},
		{"ipip6", ipip6(lb6, srv6, inner6()), xdpPass, withEth(inner6(), true), func(s Stats) uint64 { return s.IPIP6 }},
		{"gue4", gue4(lb4, srv4, DefaultGUEPort, gue(4, inner4())), xdpPass, withEth(inner4(), false), func(s Stats) uint64 { return s.GUE4 }},
		{"gue6", gue6(lb6, srv6, DefaultGUEPort, gue(41, inner6())), xdpPass, withEth(inner6(), true), func(s Stats) uint64 { return s.GUE6 }},
		{"gue4 variant 1", variant1, xdpPass, withEth(inner4(), false), func(s Stats) uint64 { return s.GUE4 }},
		{"ipip4 on a VLAN", vlan, xdpPass, vlanOut, func(s Stats) uint64 { return s.IPIP4 }},
		{"truncated outer", truncOuter, xdpDrop, nil, func(s Stats) uint64 { return s.Truncated }},
		{"truncated inner", truncInner, xdpDrop, nil, func(s Stats) uint64 { return s.Truncated }},
		{"bad GUE version", badGUE, xdpDrop, nil, func(s Stats) uint64 { return s.BadVersion }},
		{"IPv6 inside IPv4 GUE", gue4(lb4, srv4, DefaultGUEPort, gue(41, inner6())), xdpDrop, nil, func(s Stats) uint64 { return s.BadVersion }},
		{"inner version wrong", ipip4(lb4, srv4, inner6()), xdpDrop, nil, func(s Stats) uint64 { return s.BadVersion }},
		{"bad checksum", badCsum, xdpDrop, nil, func(s Stats) uint64 { return s.BadChecksum }},
		{"GUE control message", ctrl, xdpDrop, nil, func(s Stats) uint64 { return s.BadHeader }},
		{"outer fragment", frag, xdpDrop, nil, func(s Stats) uint64 { return s.BadHeader }},
		{"not from a balancer v4", ipip4(other4, srv4, inner4()), xdpDrop, nil, func(s Stats) uint64 { return s.NotBalancer }},
		{"not from a balancer v6", gue6(other6, srv6, DefaultGUEPort, gue(41, inner6())), xdpDrop, nil, func(s Stats) uint64 { return s.NotBalancer }},
		{"wrong port", gue4(lb4, srv4, 6081, gue(4, inner4())), xdpPass, nil, func(s Stats) uint64 { return s.Passed }},
		{"not for us v4", ipip4(lb4, other4, inner4()), xdpPass, nil, func(s Stats) uint64 { return s.Passed }},
		{"not for us v6", ipip6(lb6, other6, inner6()), xdpPass, nil, func(s Stats) uint64 { return s.Passed }},
		{"ordinary traffic", plain, xdpPass, nil, func(s Stats) uint64 { return s.Passed }},
		{"only a link header", ft.Build(ft.Ethernet{Dst: srvMAC, Src: gwMAC, EtherType: frame.EtherTypeIPv4}), xdpPass, nil, func(s Stats) uint64 { return s.Passed }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := loadT(t)
			verdict, out, err := p.Run(tc.in)
			require.NoError(t, err)
			assert.Equal(t, tc.verdict, verdict)
			want := tc.out
			if want == nil {
				want = tc.in
			}
			if verdict == xdpPass {
				assert.Equal(t, want, out)
			}
			st, err := p.Stats()
			require.NoError(t, err)
			assert.EqualValues(t, 1, tc.counter(st), "%+v", st)
			total := st.Passed + st.Decapsulated() + st.Dropped()
			assert.EqualValues(t, 1, total, "counted once: %+v", st)
		})
	}
}

func TestIntegrationDecapGUEOff(t *testing.T) {
	netlab.RequirePrivileged(t)
	p, err := Load(&Config{Balancers: []netip.Addr{lb4}, Locals: []netip.Addr{srv4}})
	require.NoError(t, err)
	defer p.Close()
	in := gue4(lb4, srv4, DefaultGUEPort, gue(4, inner4()))
	verdict, out, err := p.Run(in)
	require.NoError(t, err)
	assert.EqualValues(t, xdpPass, verdict)
	assert.Equal(t, in, out, "GUE off: UDP passes untouched")
	verdict, _, err = p.Run(ipip4(lb4, srv4, inner4()))
	require.NoError(t, err)
	assert.EqualValues(t, xdpPass, verdict)
	st, err := p.Stats()
	require.NoError(t, err)
	assert.EqualValues(t, 1, st.IPIP4)
}

func TestConfigCheck(t *testing.T) {
	_, err := Load(&Config{Locals: []netip.Addr{srv4}})
	assert.Error(t, err)
	_, err = Load(&Config{Balancers: []netip.Addr{lb4}})
	assert.Error(t, err)
	_, err = Load(nil)
	assert.Error(t, err)
	_, err = Load(&Config{Balancers: []netip.Addr{{}}, Locals: []netip.Addr{srv4}})
	assert.Error(t, err)
}

// FuzzDecap runs the program on arbitrary frames: it must pass or drop,
// count every frame once, and only ever remove bytes after the link
// header.
func FuzzDecap(f *testing.F) {
	for _, s := range [][]byte{
		ipip4(lb4, srv4, inner4()), ipip6(lb6, srv6, inner6()),
		gue4(lb4, srv4, DefaultGUEPort, gue(4, inner4())), gue6(lb6, srv6, DefaultGUEPort, gue(41, inner6())),
		gue4(lb4, srv4, DefaultGUEPort, inner4()), {},
	} {
		f.Add(s)
	}
	netlab.RequirePrivileged(f)
	p, err := Load(&Config{Balancers: []netip.Addr{lb4, lb6}, Locals: []netip.Addr{srv4, srv6}, GUE: true})
	require.NoError(f, err)
	defer p.Close()
	f.Fuzz(func(t *testing.T, in []byte) {
		if len(in) < 14 {
			return // BPF_PROG_TEST_RUN refuses frames shorter than Ethernet
		}
		before, err := p.Stats()
		require.NoError(t, err)
		verdict, out, err := p.Run(in)
		require.NoError(t, err)
		require.Contains(t, []uint32{xdpPass, xdpDrop}, verdict)
		after, err := p.Stats()
		require.NoError(t, err)
		n := func(s Stats) uint64 { return s.Passed + s.Decapsulated() + s.Dropped() }
		require.EqualValues(t, 1, n(after)-n(before))
		if verdict == xdpPass && after.Decapsulated() > before.Decapsulated() {
			require.Less(t, len(out), len(in))
			require.Equal(t, in[:12], out[:12], "addresses kept")
			require.True(t, bytes.HasSuffix(in, out[len(out)-min(len(out), 20):]), "the inner packet is the tail of the frame")
		}
	})
}

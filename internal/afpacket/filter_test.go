package afpacket

import (
	"encoding/binary"
	"net/netip"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/net/bpf"
)

var (
	vip4      = netip.MustParseAddr("192.0.2.100")
	vip4b     = netip.MustParseAddr("203.0.113.7")
	vip6      = netip.MustParseAddr("2001:db8::100")
	other4    = netip.MustParseAddr("192.0.2.101")
	other6    = netip.MustParseAddr("2001:db8::101")
	solicited = netip.MustParseAddr("ff02::1:ff00:100")
)

// ethFrame builds an Ethernet frame with an optional 802.1Q tag.
func ethFrame(vlan bool, etherType uint16, payload []byte) []byte {
	b := []byte{0x02, 0, 0, 0, 0, 1, 0x02, 0, 0, 0, 0, 2}
	if vlan {
		b = binary.BigEndian.AppendUint16(b, etherTypeVLAN)
		b = binary.BigEndian.AppendUint16(b, 42)
	}
	b = binary.BigEndian.AppendUint16(b, etherType)
	return append(b, payload...)
}

func ipv4Packet(dst netip.Addr) []byte {
	p := make([]byte, 28)
	p[0] = 0x45
	binary.BigEndian.PutUint16(p[2:], 28)
	p[8] = 64
	p[9] = 17
	copy(p[12:16], []byte{198, 51, 100, 1})
	d := dst.As4()
	copy(p[16:20], d[:])
	return p
}

func ipv6Packet(dst netip.Addr, next, icmpType byte) []byte {
	p := make([]byte, 48)
	p[0] = 0x60
	binary.BigEndian.PutUint16(p[4:], 8)
	p[6] = next
	p[7] = 255
	s := netip.MustParseAddr("2001:db8::1").As16()
	copy(p[8:24], s[:])
	d := dst.As16()
	copy(p[24:40], d[:])
	p[40] = icmpType
	return p
}

func runFilter(t testing.TB, prog []bpf.Instruction, frame []byte) bool {
	t.Helper()
	vm, err := bpf.NewVM(prog)
	require.NoError(t, err)
	n, err := vm.Run(frame)
	require.NoError(t, err)
	if n != 0 {
		require.Equal(t, Snaplen, n, "an accepting filter must return the whole frame")
	}
	return n != 0
}

func TestVIPFilter(t *testing.T) {
	prog, err := VIPFilter([]netip.Addr{vip4, vip6, vip4b, netip.AddrFrom16(vip4.As16()).Unmap()})
	require.NoError(t, err)

	tests := []struct {
		name  string
		frame []byte
		want  bool
	}{
		{"arp", ethFrame(false, etherTypeARP, make([]byte, 28)), true},
		{"ipv4 to vip", ethFrame(false, etherTypeIPv4, ipv4Packet(vip4)), true},
		{"ipv4 to second vip", ethFrame(false, etherTypeIPv4, ipv4Packet(vip4b)), true},
		{"ipv4 to other", ethFrame(false, etherTypeIPv4, ipv4Packet(other4)), false},
		{"ipv6 to vip", ethFrame(false, etherTypeIPv6, ipv6Packet(vip6, 6, 0)), true},
		{"ipv6 to other", ethFrame(false, etherTypeIPv6, ipv6Packet(other6, 6, 0)), false},
		{"ipv6 neighbour solicitation", ethFrame(false, etherTypeIPv6, ipv6Packet(solicited, protoICMPv6, icmpv6NeighborSolicit)), true},
		{"ipv6 icmp echo to solicited-node", ethFrame(false, etherTypeIPv6, ipv6Packet(solicited, protoICMPv6, 128)), false},
		{"ipv6 udp to solicited-node", ethFrame(false, etherTypeIPv6, ipv6Packet(solicited, 17, icmpv6NeighborSolicit)), false},
		{"ipv6 NS to all-nodes", ethFrame(false, etherTypeIPv6, ipv6Packet(netip.MustParseAddr("ff02::1"), protoICMPv6, icmpv6NeighborSolicit)), false},
		{"vlan arp", ethFrame(true, etherTypeARP, make([]byte, 28)), true},
		{"vlan ipv4 to vip", ethFrame(true, etherTypeIPv4, ipv4Packet(vip4)), true},
		{"vlan ipv4 to other", ethFrame(true, etherTypeIPv4, ipv4Packet(other4)), false},
		{"vlan ipv6 to vip", ethFrame(true, etherTypeIPv6, ipv6Packet(vip6, 17, 0)), true},
		{"vlan ipv6 to other", ethFrame(true, etherTypeIPv6, ipv6Packet(other6, 17, 0)), false},
		{"vlan neighbour solicitation", ethFrame(true, etherTypeIPv6, ipv6Packet(solicited, protoICMPv6, icmpv6NeighborSolicit)), true},
		{"lldp", ethFrame(false, 0x88cc, make([]byte, 40)), false},
		{"truncated ipv4", ethFrame(false, etherTypeIPv4, ipv4Packet(vip4)[:12]), false},
		{"truncated ethernet", []byte{1, 2, 3}, false},
		{"empty", nil, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			assert.Equal(t, tt.want, runFilter(t, prog, tt.frame))
			assert.Equal(t, tt.want, referenceMatch(tt.frame, []netip.Addr{vip4, vip4b, vip6}), "reference classifier disagrees")
		})
	}
}

func TestVIPFilterNoVIPs(t *testing.T) {
	prog, err := VIPFilter(nil)
	require.NoError(t, err)
	assert.True(t, runFilter(t, prog, ethFrame(false, etherTypeARP, make([]byte, 28))))
	assert.False(t, runFilter(t, prog, ethFrame(false, etherTypeIPv4, ipv4Packet(vip4))))
	assert.False(t, runFilter(t, prog, ethFrame(false, etherTypeIPv6, ipv6Packet(vip6, 6, 0))))
}

func TestVIPFilterErrors(t *testing.T) {
	_, err := VIPFilter([]netip.Addr{{}})
	assert.Error(t, err)
	_, err = VIPFilter([]netip.Addr{netip.MustParseAddr("fe80::1%eth0")})
	assert.Error(t, err)

	many := make([]netip.Addr, 0, 3000)
	for i := range 3000 {
		many = append(many, netip.AddrFrom4([4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)}))
	}
	_, err = VIPFilter(many)
	assert.ErrorIs(t, err, ErrFilterTooLarge)

	// The documented capacity must actually fit and assemble.
	fits4 := many[:2000]
	raw, err := VIPFilterRaw(fits4)
	require.NoError(t, err)
	assert.LessOrEqual(t, len(raw), MaxFilterInstructions)

	fits6 := make([]netip.Addr, 0, 450)
	for i := range 450 {
		a := vip6.As16()
		a[14], a[15] = byte(i>>8), byte(i)
		fits6 = append(fits6, netip.AddrFrom16(a))
	}
	raw, err = VIPFilterRaw(fits6)
	require.NoError(t, err)
	assert.LessOrEqual(t, len(raw), MaxFilterInstructions)
}

// TestVIPFilterLongJump checks that the IPv6 block is reachable past many
// IPv4 VIPs (more than a conditional jump's 255-instruction reach).
func TestVIPFilterLongJump(t *testing.T) {
	vips := []netip.Addr{vip6}
	for i := range 500 {
		vips = append(vips, netip.AddrFrom4([4]byte{10, 0, byte(i >> 8), byte(i)}))
	}
	prog, err := VIPFilter(vips)
	require.NoError(t, err)
	require.Greater(t, len(prog), 255)
	assert.True(t, runFilter(t, prog, ethFrame(false, etherTypeIPv6, ipv6Packet(vip6, 6, 0))))
	assert.True(t, runFilter(t, prog, ethFrame(true, etherTypeIPv4, ipv4Packet(netip.MustParseAddr("10.0.1.243")))))
	assert.False(t, runFilter(t, prog, ethFrame(false, etherTypeIPv6, ipv6Packet(other6, 6, 0))))
}

// referenceMatch is a straightforward Go statement of what VIPFilter must
// accept; the fuzz target checks the BPF program against it.
func referenceMatch(f []byte, vips []netip.Addr) bool {
	if len(f) < 14 {
		return false
	}
	off := 0
	if binary.BigEndian.Uint16(f[12:]) == etherTypeVLAN {
		off = 4
		if len(f) < 18 {
			return false
		}
	}
	et := binary.BigEndian.Uint16(f[12+off:])
	p := f[14+off:]
	switch et {
	case etherTypeARP:
		return true
	case etherTypeIPv4:
		if len(p) < 20 {
			return false
		}
		dst := netip.AddrFrom4([4]byte(p[16:20]))
		for _, v := range vips {
			if v.Unmap() == dst {
				return true
			}
		}
	case etherTypeIPv6:
		if len(p) < 40 {
			return false
		}
		dst := netip.AddrFrom16([16]byte(p[24:40]))
		for _, v := range vips {
			if v == dst {
				return true
			}
		}
		if p[6] == protoICMPv6 && len(p) > 40 && p[40] == icmpv6NeighborSolicit &&
			netip.MustParsePrefix("ff02::1:ff00:0/104").Contains(dst) {
			return true
		}
	}
	return false
}

func FuzzVIPFilter(f *testing.F) {
	f.Add(ethFrame(false, etherTypeARP, make([]byte, 28)))
	f.Add(ethFrame(false, etherTypeIPv4, ipv4Packet(vip4)))
	f.Add(ethFrame(true, etherTypeIPv6, ipv6Packet(vip6, 6, 0)))
	f.Add(ethFrame(false, etherTypeIPv6, ipv6Packet(solicited, protoICMPv6, icmpv6NeighborSolicit)))
	vips := []netip.Addr{vip4, vip4b, vip6}
	prog, err := VIPFilter(vips)
	require.NoError(f, err)
	vm, err := bpf.NewVM(prog)
	require.NoError(f, err)
	f.Fuzz(func(t *testing.T, frame []byte) {
		n, err := vm.Run(frame)
		require.NoError(t, err)
		require.Equal(t, referenceMatch(frame, vips), n != 0)
	})
}

package frametest_test

import (
	"encoding/binary"
	"fmt"
	"net/netip"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/net/ipv4"

	"github.com/dsrlb/dsrlb/internal/frame"
	ft "github.com/dsrlb/dsrlb/internal/frame/frametest"
)

var (
	a4 = netip.MustParseAddr("192.0.2.1")
	b4 = netip.MustParseAddr("198.51.100.2")
	a6 = netip.MustParseAddr("2001:db8::1")
	b6 = netip.MustParseAddr("2001:db8::2")
)

func TestBuildTCP4(t *testing.T) {
	b := ft.Build(ft.Ethernet{Dst: ft.MAC("02:00:00:00:00:01"), Src: ft.MAC("02:00:00:00:00:02")},
		ft.IPv4{Src: a4, Dst: b4, ID: 0x1234, DF: true},
		ft.TCP{SrcPort: 1000, DstPort: 80, Seq: 7, Flags: frame.FlagSYN, Window: 512}, ft.Raw("hi"))
	require.Len(t, b, 14+20+20+2)
	assert.Equal(t, []byte{2, 0, 0, 0, 0, 1, 2, 0, 0, 0, 0, 2, 0x08, 0x00}, b[:14])
	h, err := ipv4.ParseHeader(b[14:])
	require.NoError(t, err)
	assert.Equal(t, 20, h.Len)
	assert.Equal(t, 42, h.TotalLen)
	assert.Equal(t, 0x1234, h.ID)
	assert.Equal(t, ipv4.DontFragment, h.Flags)
	assert.Equal(t, 64, h.TTL)
	assert.Equal(t, 6, h.Protocol)
	assert.Equal(t, uint16(0), frame.Checksum(b[14:34], 0), "IPv4 header checksum")
	tcp := b[34:]
	assert.Equal(t, uint16(1000), binary.BigEndian.Uint16(tcp[0:]))
	assert.Equal(t, uint8(0x50), tcp[12])
	assert.Equal(t, uint8(frame.FlagSYN), tcp[13])
	// Pseudo-header: src, dst, zero, proto, TCP length.
	ph := append(append(a4.AsSlice(), b4.AsSlice()...), 0, 6, 0, 22)
	assert.Equal(t, uint16(0), frame.Checksum(append(ph, tcp...), 0), "TCP checksum")
}

func TestBuildDerivedFields(t *testing.T) {
	tests := []struct {
		name  string
		b     []byte
		at    int
		bytes []byte
	}{
		{"VLAN EtherTypes", ft.Build(ft.Ethernet{}, ft.VLAN{TCI: 0x0123}, ft.IPv6{Src: a6, Dst: b6}), 12, []byte{0x81, 0, 0x01, 0x23, 0x86, 0xdd}},
		{"QinQ", ft.Build(ft.Ethernet{}, ft.VLAN{QinQ: true}, ft.ARP{}), 12, []byte{0x88, 0xa8, 0, 0, 0x08, 0x06}},
		{"ARP request", ft.Build(ft.ARP{SenderIP: a4, TargetIP: b4}), 0, []byte{0, 1, 8, 0, 6, 4, 0, 1}},
		{"IPv4 options IHL", ft.Build(ft.IPv4{Src: a4, Dst: b4, Options: make([]byte, 4)}, ft.UDP{}), 0, []byte{0x46}},
		{"IPv4 GSO length 0", ft.Build(ft.IPv4{Src: a4, Dst: b4, Length: -1}, ft.UDP{}), 2, []byte{0, 0}},
		{"IPv4 fragment flags", ft.Build(ft.IPv4{Src: a4, Dst: b4, MF: true, FragOffset: 3}, ft.Raw{}), 6, []byte{0x20, 3}},
		{"IPv4 raw protocol 255", ft.Build(ft.IPv4{Src: a4, Dst: b4}, ft.Raw{}), 9, []byte{255}},
		{"IPv6 next header and lengths", ft.Build(ft.IPv6{Src: a6, Dst: b6}, ft.IPv6Ext{Header: 0, Data: make([]byte, 7)}, ft.UDP{}), 4, []byte{0, 24, 0, 64}},
		{"IPv6 ext length", ft.Build(ft.IPv6{Src: a6, Dst: b6}, ft.IPv6Ext{Header: 0, Data: make([]byte, 7)}, ft.UDP{}), 40, []byte{17, 1}},
		{"IPv6 AH length", ft.Build(ft.IPv6{Src: a6, Dst: b6}, ft.IPv6Ext{Header: 51, Data: make([]byte, 10)}, ft.TCP{}), 40, []byte{6, 1}},
		{"IPv6 no next header", ft.Build(ft.IPv6{Src: a6, Dst: b6}), 6, []byte{59}},
		{"IPv6 fragment", ft.Build(ft.IPv6{Src: a6, Dst: b6}, ft.IPv6Fragment{Offset: 2, More: true, ID: 0x01020304}, ft.UDP{}), 40, []byte{17, 0, 0, 0x11, 1, 2, 3, 4}},
		{"UDP length", ft.Build(ft.IPv4{Src: a4, Dst: b4}, ft.UDP{SrcPort: 1, DstPort: 2}, ft.Raw("abc")), 20, []byte{0, 1, 0, 2, 0, 11}},
		{"UDP length 0", ft.Build(ft.IPv6{Src: a6, Dst: b6}, ft.UDP{Length: -1}), 44, []byte{0, 0}},
		{"UDP zero checksum", ft.Build(ft.IPv4{Src: a4, Dst: b4}, ft.UDP{Checksum: ft.ChecksumZero}), 26, []byte{0, 0}},
		{"ICMP truncates quote", ft.Build(ft.IPv4{Src: a4, Dst: b4}, ft.ICMPv4{Type: 3, Code: 4, Rest: 1400, Truncate: 28}, ft.IPv4{Src: b4, Dst: a4}, ft.TCP{}, ft.Raw(make([]byte, 100))),
			2, []byte{0, 20 + 8 + 28}},
		{"Ethernet trailer", ft.Build(ft.Ethernet{Trailer: ft.PadTo(14 + 28)}, ft.ARP{}), 14 + 28, make([]byte, 18)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			require.GreaterOrEqual(t, len(tt.b), tt.at+len(tt.bytes))
			assert.Equal(t, tt.bytes, tt.b[tt.at:tt.at+len(tt.bytes)])
		})
	}
	assert.Nil(t, ft.PadTo(60))
}

func TestChecksumModes(t *testing.T) {
	build := func(m ft.ChecksumMode) []byte {
		return ft.Build(ft.IPv6{Src: a6, Dst: b6}, ft.UDP{SrcPort: 1, DstPort: 2, Checksum: m}, ft.Raw("payload"))
	}
	full, partial, bad := build(ft.ChecksumFull), build(ft.ChecksumPartial), build(ft.ChecksumBad)
	field := func(b []byte) uint16 { return binary.BigEndian.Uint16(b[46:]) }
	assert.Equal(t, field(full)^1, field(bad))
	// The partial value is the folded pseudo-header sum: src, dst, length, next header.
	ph := append(append(a6.AsSlice(), b6.AsSlice()...), 0, 0, 0, 15, 0, 0, 0, 17)
	assert.Equal(t, ^frame.Checksum(ph, 0), field(partial))
	// Full checksum verifies over pseudo-header and segment.
	assert.Equal(t, uint16(0), frame.Checksum(append(ph, full[40:]...), 0))
}

func TestBuildPanics(t *testing.T) {
	assert.PanicsWithValue(t, "frametest: TCP layer without an IPv4 or IPv6 layer before it", func() { ft.Build(ft.Ethernet{}, ft.TCP{}) })
	assert.Panics(t, func() { ft.MAC("nonsense") })
	assert.Panics(t, func() { ft.MAC("02:00:00:00:00:00:00:01") })
	assert.Equal(t, []byte{}, ft.Build())
}

func ExampleBuild() {
	b := ft.Build(
		ft.Ethernet{Dst: ft.MAC("02:00:00:00:00:01"), Src: ft.MAC("02:00:00:00:00:02")},
		ft.IPv4{Src: netip.MustParseAddr("192.0.2.1"), Dst: netip.MustParseAddr("198.51.100.10")},
		ft.TCP{SrcPort: 40000, DstPort: 80, Flags: frame.FlagSYN},
	)
	var p frame.Packet
	_ = frame.Parse(b, &p)
	fmt.Println(len(b), p.Src, p.Dst, p.DstPort, frame.TransportChecksumOK(b, &p))
	// Output: 54 192.0.2.1 198.51.100.10 80 true
}

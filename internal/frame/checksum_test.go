package frame_test

import (
	"encoding/binary"
	"math/rand/v2"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dsrlb/dsrlb/internal/frame"
	ft "github.com/dsrlb/dsrlb/internal/frame/frametest"
)

// checksumFrames builds, for each transport, a frame whose checksum is set
// according to mode.
func checksumFrames(mode ft.ChecksumMode) map[string][]byte {
	pay := ft.Raw("odd-length payload!")
	return map[string][]byte{
		"tcp4":    ft.Build(eth(), ft.IPv4{Src: client4, Dst: vip4}, ft.TCP{SrcPort: 1, DstPort: 80, Seq: 0xfffffff0, Checksum: mode}, pay),
		"udp4":    ft.Build(eth(), ft.IPv4{Src: client4, Dst: vip4}, ft.UDP{SrcPort: 1, DstPort: 53, Checksum: mode}, pay),
		"tcp6":    ft.Build(eth(), ft.VLAN{TCI: 5}, ft.IPv6{Src: client6, Dst: vip6}, ft.IPv6Ext{Header: 0}, ft.TCP{SrcPort: 1, DstPort: 80, Checksum: mode}, pay),
		"udp6":    ft.Build(eth(), ft.IPv6{Src: client6, Dst: vip6}, ft.UDP{SrcPort: 1, DstPort: 53, Checksum: mode}, pay),
		"icmp4":   ft.Build(eth(), ft.IPv4{Src: client4, Dst: vip4}, ft.ICMPv4{Type: 8, Checksum: mode}, pay),
		"icmp6":   ft.Build(eth(), ft.IPv6{Src: client6, Dst: vip6}, ft.ICMPv6{Type: 128, Checksum: mode}, pay),
		"tcp4gso": ft.Build(eth(), ft.IPv4{Src: client4, Dst: vip4}, ft.TCP{SrcPort: 1, DstPort: 80, Checksum: mode}, ft.Raw(make([]byte, 9001))),
	}
}

func TestTransportChecksumOK(t *testing.T) {
	for name, b := range checksumFrames(ft.ChecksumFull) {
		t.Run(name, func(t *testing.T) {
			var p frame.Packet
			require.NoError(t, frame.Parse(b, &p))
			assert.True(t, frame.TransportChecksumOK(b, &p))
		})
	}
	for name, b := range checksumFrames(ft.ChecksumBad) {
		t.Run(name+" bad", func(t *testing.T) {
			var p frame.Packet
			require.NoError(t, frame.Parse(b, &p))
			assert.False(t, frame.TransportChecksumOK(b, &p))
		})
	}
	t.Run("udp4 without checksum", func(t *testing.T) {
		b := ft.Build(eth(), ft.IPv4{Src: client4, Dst: vip4}, ft.UDP{SrcPort: 1, DstPort: 53, Checksum: ft.ChecksumZero})
		var p frame.Packet
		require.NoError(t, frame.Parse(b, &p))
		assert.True(t, frame.TransportChecksumOK(b, &p))
	})
	t.Run("not checkable", func(t *testing.T) {
		for _, name := range []string{"udp4_later_fragment", "udp4_first_fragment", "esp6", "arp"} {
			b := kind(t, name)
			var p frame.Packet
			require.NoError(t, frame.Parse(b, &p))
			assert.False(t, frame.TransportChecksumOK(b, &p), name)
		}
		var p frame.Packet
		b := kind(t, "tcp4")
		require.NoError(t, frame.Parse(b, &p))
		assert.False(t, frame.TransportChecksumOK(b[:40], &p), "packet longer than buffer")
	})
}

func TestCompleteChecksum(t *testing.T) {
	full := checksumFrames(ft.ChecksumFull)
	for name, b := range checksumFrames(ft.ChecksumPartial) {
		t.Run(name, func(t *testing.T) {
			var p frame.Packet
			require.NoError(t, frame.Parse(b, &p))
			start, off, ok := p.ChecksumOffsets()
			require.True(t, ok)
			if p.Proto != frame.ProtoICMP { // ICMPv4 has no pseudo-header: partial == 0 is still "correct" by chance only
				assert.False(t, frame.TransportChecksumOK(b, &p), "partial checksum must not verify")
			}
			require.NoError(t, frame.CompleteChecksum(b, start, off))
			assert.True(t, frame.TransportChecksumOK(b, &p))
			assert.Equal(t, full[name], b, "completed frame equals the fully checksummed one")
		})
	}
}

// TestCompleteChecksumMatchesReference compares the optimised sum with the
// simple reference in frametest over every length and alignment up to 300.
func TestCompleteChecksumMatchesReference(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	buf := make([]byte, 320)
	for n := 2; n <= 300; n++ {
		for start := 0; start < 4; start++ {
			for i := range buf {
				buf[i] = byte(r.Uint32())
			}
			b := buf[:start+n]
			off := int(r.Uint32N(uint32(n-1))) &^ 1
			binary.BigEndian.PutUint16(b[start+off:], 0)
			want := refChecksum(b[start:], 0)
			if want == 0 {
				want = 0xffff
			}
			require.NoError(t, frame.CompleteChecksum(b, start, off))
			require.Equal(t, want, binary.BigEndian.Uint16(b[start+off:]), "n=%d start=%d off=%d", n, start, off)
		}
	}
}

func TestCompleteChecksumAllOnes(t *testing.T) {
	// Data summing to 0xffff gives checksum 0, which must be sent as 0xffff.
	b := []byte{0xff, 0xff, 0, 0}
	require.NoError(t, frame.CompleteChecksum(b, 0, 2))
	assert.Equal(t, []byte{0xff, 0xff, 0xff, 0xff}, b)
	// A 64 KiB run of 0xff exercises every carry path of the 64-bit sum.
	big := make([]byte, 65536)
	for i := range big {
		big[i] = 0xff
	}
	big[100], big[101], big[7] = 0, 0, 0x12
	want := refChecksum(big, 0)
	require.NoError(t, frame.CompleteChecksum(big, 0, 100))
	assert.Equal(t, want, binary.BigEndian.Uint16(big[100:]))
}

func TestCompleteChecksumOutOfRange(t *testing.T) {
	tests := []struct {
		name          string
		n, start, off int
	}{
		{"negative start", 10, -1, 0},
		{"negative offset", 10, 0, -2},
		{"start past end", 10, 11, 0},
		{"start at end", 10, 10, 0},
		{"field past end", 10, 4, 5},
		{"field straddles end", 10, 0, 9},
		{"huge offset", 10, 2, int(^uint(0) >> 1)},
		{"huge start", 10, int(^uint(0) >> 1), 0},
		{"empty", 0, 0, 0},
		{"odd offset", 10, 0, 3},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := make([]byte, tt.n)
			err := frame.CompleteChecksum(b, tt.start, tt.off)
			assert.Equal(t, frame.ErrBadChecksumPosition, err)
			assert.Equal(t, make([]byte, tt.n), b, "buffer untouched")
		})
	}
	require.NoError(t, frame.CompleteChecksum(make([]byte, 10), 0, 8), "field ending exactly at the end")
}

func TestChecksumOffsets(t *testing.T) {
	tests := []struct {
		kind      string
		start, at int
		ok        bool
	}{
		{"tcp4", 34, 16, true},
		{"udp4_vlan", 38, 6, true},
		{"icmp4_echo", 34, 2, true},
		{"icmp6_echo", 54, 2, true},
		{"udp4_first_fragment", 0, 0, false},
		{"esp6", 0, 0, false},
		{"arp", 0, 0, false},
	}
	for _, tt := range tests {
		var p frame.Packet
		require.NoError(t, frame.Parse(kind(t, tt.kind), &p))
		start, at, ok := p.ChecksumOffsets()
		assert.Equal(t, []any{tt.start, tt.at, tt.ok}, []any{start, at, ok}, tt.kind)
	}
}

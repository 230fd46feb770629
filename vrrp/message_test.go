package vrrp

import (
	"encoding/binary"
	"net/netip"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

var (
	srcA = netip.MustParseAddr("192.0.2.1")
	srcB = netip.MustParseAddr("192.0.2.2")
	vip1 = netip.MustParseAddr("192.0.2.100")
	vip2 = netip.MustParseAddr("192.0.2.101")
)

// onesSum folds the 16-bit one's complement sum the receiver computes; a
// correct message sums to 0xffff together with its pseudo-header.
func onesSum(b []byte) uint16 {
	var s uint32
	for i := 0; i < len(b); i += 2 {
		w := uint32(b[i]) << 8
		if i+1 < len(b) {
			w |= uint32(b[i+1])
		}
		s += w
	}
	for s > 0xffff {
		s = s>>16 + s&0xffff
	}
	return uint16(s)
}

func TestAdvertisementWireLayout(t *testing.T) {
	a := Advertisement{VRID: 51, Priority: 150, Interval: 100, Addrs: []netip.Addr{vip1, vip2}}
	b := a.Append(nil, srcA, Group4)
	require.Len(t, b, 8+4*2)
	assert.Equal(t, byte(0x31), b[0], "version 3, type 1 (RFC 5798 §5.2.1-2)")
	assert.Equal(t, byte(51), b[1])
	assert.Equal(t, byte(150), b[2])
	assert.Equal(t, byte(2), b[3], "address count")
	assert.Equal(t, uint16(100), binary.BigEndian.Uint16(b[4:])&0x0fff)
	assert.Zero(t, b[4]&0xf0, "reserved bits are zero")
	assert.Equal(t, vip1.AsSlice(), b[8:12])
	assert.Equal(t, vip2.AsSlice(), b[12:16])

	// The checksum covers the IPv4 pseudo-header: src, dst, zero, protocol,
	// VRRP length.
	pseudo := append(append(srcA.AsSlice(), Group4.AsSlice()...), 0, IPProtocol, 0, byte(len(b)))
	assert.Equal(t, uint16(0xffff), onesSum(append(pseudo, b...)))
	// ... and only the message: without the pseudo-header it does not hold.
	assert.NotEqual(t, uint16(0xffff), onesSum(b))
}

func TestAdvertisementRoundTrip(t *testing.T) {
	for _, a := range []Advertisement{
		{VRID: 1, Priority: 1, Interval: 1, Addrs: []netip.Addr{vip1}},
		{VRID: 255, Priority: 254, Interval: 4095, Addrs: []netip.Addr{vip1, vip2}},
		{VRID: 7, Priority: 0, Interval: 10, Addrs: nil},
	} {
		b := a.Append(nil, srcA, Group4)
		var got Advertisement
		require.NoError(t, got.Decode(b, srcA, Group4))
		assert.Equal(t, a.VRID, got.VRID)
		assert.Equal(t, a.Priority, got.Priority)
		assert.Equal(t, a.Interval, got.Interval)
		assert.Equal(t, len(a.Addrs), len(got.Addrs))
		for i := range a.Addrs {
			assert.Equal(t, a.Addrs[i], got.Addrs[i])
		}
	}
}

func TestAdvertisementDecodeRejects(t *testing.T) {
	good := (&Advertisement{VRID: 9, Priority: 100, Interval: 100, Addrs: []netip.Addr{vip1}}).Append(nil, srcA, Group4)
	mut := func(f func(b []byte) []byte) []byte { return f(append([]byte(nil), good...)) }
	cases := []struct {
		name string
		msg  []byte
		src  netip.Addr
		want error
	}{
		{"empty", nil, srcA, errShort},
		{"header cut", good[:7], srcA, errShort},
		{"address list cut", good[:10], srcA, errShort},
		{"count larger than the message", mut(func(b []byte) []byte { b[3] = 2; return b }), srcA, errShort},
		{"version 2", mut(func(b []byte) []byte { b[0] = 0x21; return b }), srcA, errVersion},
		{"type 2", mut(func(b []byte) []byte { b[0] = 0x32; return b }), srcA, errVersion},
		{"flipped priority", mut(func(b []byte) []byte { b[2] ^= 1; return b }), srcA, errChecksum},
		{"flipped address", mut(func(b []byte) []byte { b[11] ^= 0x80; return b }), srcA, errChecksum},
		{"other source (pseudo-header)", good, srcB, errChecksum},
		{"zero interval", func() []byte {
			return (&Advertisement{VRID: 9, Priority: 100, Interval: 0, Addrs: []netip.Addr{vip1}}).Append(nil, srcA, Group4)
		}(), srcA, errInterval},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var a Advertisement
			require.ErrorIs(t, a.Decode(c.msg, c.src, Group4), c.want)
		})
	}
}

func TestAdvertisementDecodeIgnoresTrailer(t *testing.T) {
	b := (&Advertisement{VRID: 9, Priority: 100, Interval: 100, Addrs: []netip.Addr{vip1}}).Append(nil, srcA, Group4)
	var a Advertisement
	require.NoError(t, a.Decode(append(b, 0xde, 0xad), srcA, Group4))
	assert.Equal(t, []netip.Addr{vip1}, a.Addrs)
}

func TestAdvertisementDecodeAllocs(t *testing.T) {
	b := (&Advertisement{VRID: 9, Priority: 100, Interval: 100, Addrs: []netip.Addr{vip1, vip2}}).Append(nil, srcA, Group4)
	var a Advertisement
	require.NoError(t, a.Decode(b, srcA, Group4))
	allocs := testing.AllocsPerRun(100, func() { _ = a.Decode(b, srcA, Group4) })
	assert.Zero(t, allocs)
}

func FuzzAdvertisementDecode(f *testing.F) {
	f.Add((&Advertisement{VRID: 9, Priority: 100, Interval: 100, Addrs: []netip.Addr{vip1}}).Append(nil, srcA, Group4))
	f.Add([]byte{0x31, 1, 100, 0, 0, 100, 0, 0})
	f.Add([]byte{0x31, 1, 100, 255})
	f.Fuzz(func(t *testing.T, b []byte) {
		var a Advertisement
		if err := a.Decode(b, srcA, Group4); err != nil {
			return
		}
		require.Equal(t, int(b[3]), len(a.Addrs))
		require.NotZero(t, a.Interval)
		// A decoded message re-encodes to the same bytes, except that the
		// reserved bits are ignored on receipt and sent as zero.
		out := a.Append(nil, srcA, Group4)
		if b[4]&0xf0 == 0 {
			require.Equal(t, b[:len(out)], out)
		}
		var back Advertisement
		require.NoError(t, back.Decode(out, srcA, Group4))
	})
}

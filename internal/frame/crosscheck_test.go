package frame_test

import (
	"net/netip"
	"runtime"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/net/ipv4"
	"golang.org/x/net/ipv6"

	"github.com/dsrlb/dsrlb/internal/frame"
)

// TestCrossCheckIPHeaders compares the IP header fields of every golden
// frame with golang.org/x/net's control-plane parsers, which share no code
// with this package or with frametest.
func TestCrossCheckIPHeaders(t *testing.T) {
	for _, k := range frameKinds() {
		var p frame.Packet
		require.NoError(t, frame.Parse(k.b, &p), k.name)
		hdr := k.b[p.L3Off:]
		switch p.Version {
		case 4:
			h, err := ipv4.ParseHeader(hdr)
			require.NoError(t, err, k.name)
			assert.Equal(t, 4, h.Version, k.name)
			assert.Equal(t, netip.AddrFrom4([4]byte(h.Src.To4())), p.Src, k.name)
			assert.Equal(t, netip.AddrFrom4([4]byte(h.Dst.To4())), p.Dst, k.name)
			assert.Equal(t, h.Protocol, int(p.Proto), k.name)
			assert.Equal(t, h.TTL, int(p.TTL), k.name)
			assert.Equal(t, h.ID, int(p.FragID), k.name)
			if runtime.GOOS == "linux" { // x/net reads these in host order on some BSDs
				assert.Equal(t, h.FragOff != 0, p.Fragment == frame.LaterFragment, k.name)
				assert.Equal(t, h.FragOff == 0 && h.Flags&ipv4.MoreFragments != 0, p.Fragment == frame.FirstFragment, k.name)
				if h.TotalLen != 0 {
					assert.Equal(t, p.L3Off+h.TotalLen, p.Len, k.name)
				}
			}
			if p.L4Off != 0 {
				assert.Equal(t, p.L3Off+h.Len, p.L4Off, k.name)
			}
			assert.Equal(t, uint16(0), refChecksum(hdr[:h.Len], 0), "%s: IPv4 header checksum", k.name)
		case 6:
			h, err := ipv6.ParseHeader(hdr)
			require.NoError(t, err, k.name)
			assert.Equal(t, 6, h.Version, k.name)
			assert.Equal(t, netip.AddrFrom16([16]byte(h.Src)), p.Src, k.name)
			assert.Equal(t, netip.AddrFrom16([16]byte(h.Dst)), p.Dst, k.name)
			assert.Equal(t, h.HopLimit, int(p.TTL), k.name)
			if h.PayloadLen != 0 {
				assert.Equal(t, p.L3Off+ipv6.HeaderLen+h.PayloadLen, p.Len, k.name)
			}
			if p.L4Off == p.L3Off+ipv6.HeaderLen {
				assert.Equal(t, h.NextHeader, int(p.Proto), k.name)
			}
		}
	}
}

//go:build linux && (386 || amd64 || arm || arm64 || loong64 || mips64le || mipsle || ppc64le || riscv64)

package xdp

import (
	"encoding/binary"
	"fmt"
	"net/netip"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dsrlb/dsrlb/internal/frame"
	ft "github.com/dsrlb/dsrlb/internal/frame/frametest"
	"github.com/dsrlb/dsrlb/scheduler"
)

// addUDP6 installs the plan's current table as the IPv6 VIP's all-ports
// UDP service (index 1, shared with its TCP service).
func (pl *plan) addUDP6() {
	tab, ok := scheduler.FlowTable(pl.sched)
	require.True(pl.t, ok)
	ids := make([]uint32, len(tab))
	for i, x := range tab {
		ids[i] = pl.ids[x]
	}
	require.NoError(pl.t, pl.p.SetService(ServiceKey{VIP: vip6, Port: 0, Proto: frame.ProtoUDP}, 1, true, ids))
}

// completed is what the Go path sends for in: its partial checksum
// completed by frame.CompleteChecksum (the reference), the MACs those of a
// frame forwarded to be.
func completed(t testing.TB, in []byte, be testBackend) []byte {
	t.Helper()
	out := append([]byte(nil), in...)
	var p frame.Packet
	require.NoError(t, frame.Parse(out, &p))
	start, off, ok := p.ChecksumOffsets()
	require.True(t, ok)
	require.NoError(t, frame.CompleteChecksum(out[:p.Len], start, off))
	frame.SetMACs(out, be.mac, ourMAC)
	return out
}

// checksumOK parses b and verifies its transport checksum.
func checksumOK(t testing.TB, b []byte) bool {
	t.Helper()
	var p frame.Packet
	require.NoError(t, frame.Parse(b, &p))
	return frame.TransportChecksumOK(b, &p)
}

// isPartial says whether b's TCP or UDP checksum field holds exactly the
// pseudo-header sum, computed by the Go side.
func isPartial(b []byte) bool {
	var p frame.Packet
	if frame.Parse(b, &p) != nil || p.Fragment != frame.NotFragment || p.Len > len(b) {
		return false
	}
	var field int
	switch p.Proto {
	case frame.ProtoTCP:
		field = p.L4Off + 16
	case frame.ProtoUDP:
		field = p.L4Off + 6
	default:
		return false
	}
	if field+2 > p.Len {
		return false
	}
	want := uint16(frame.PseudoHeaderSum(p.Src, p.Dst, p.Proto, p.Len-p.L4Off))
	return binary.BigEndian.Uint16(b[field:]) == want
}

func payloadOf(n int) ft.Raw {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(i*7 + 3)
	}
	return ft.Raw(b)
}

// TestIntegrationPartialChecksumCompleted: TCP and UDP frames over IPv4 and
// IPv6 with a partial checksum leave with the full one, computed as the Go
// path's frame.CompleteChecksum computes it, and otherwise byte-identical.
func TestIntegrationPartialChecksumCompleted(t *testing.T) {
	pl := newPlan(t)
	pl.addUDP6()
	type tc struct {
		name  string
		vlan  bool
		src   netip.Addr
		dst   netip.Addr
		proto uint8
		n     int // payload bytes
	}
	var cases []tc
	for _, n := range []int{0, 1, 2, 3, 7, 255, 511, 512, 513, 1001, 1024, 1460, 1472, 3001} {
		for _, fam := range []struct{ src, dst netip.Addr }{{client4, vip4}, {client6, vip6}} {
			for _, proto := range []uint8{frame.ProtoTCP, frame.ProtoUDP} {
				for _, vlan := range []bool{false, true} {
					if vlan && n%2 == 0 {
						continue
					}
					cases = append(cases, tc{fmt.Sprintf("%v/proto=%d/payload=%d/vlan=%v", fam.src, proto, n, vlan), vlan, fam.src, fam.dst, proto, n})
				}
			}
		}
	}
	for i, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			sport := uint16(20000 + i)
			layers := []ft.Layer{ethTo(ourMAC)}
			if c.vlan {
				// A priority tag (VLAN ID 0): the tag shifts the offsets,
				// and the frame still matches the plan's untagged services.
				layers = append(layers, ft.VLAN{TCI: 5 << 13})
			}
			layers = append(layers, ipLayer(c.src, c.dst))
			var dport uint16 = 80
			if c.proto == frame.ProtoTCP {
				layers = append(layers, ft.TCP{SrcPort: sport, DstPort: 80, Flags: frame.FlagACK | frame.FlagPSH,
					Seq: uint32(i) * 7919, Window: 512, Checksum: ft.ChecksumPartial})
			} else {
				dport = 53
				layers = append(layers, ft.UDP{SrcPort: sport, DstPort: dport, Checksum: ft.ChecksumPartial})
			}
			in := ft.Build(append(layers, payloadOf(c.n))...)
			require.True(t, isPartial(in))
			require.False(t, checksumOK(t, in), "a partial checksum does not verify")

			before := pl.counters()
			be := pl.pick(c.src, c.dst, sport, dport, c.proto)
			v, out, err := pl.p.Run(in)
			require.NoError(t, err)
			require.Equal(t, TX, v)
			require.Equal(t, completed(t, in, be), out, "the Go path's bytes")
			assert.True(t, checksumOK(t, out), "the checksum verifies")
			after := pl.counters()
			assert.Equal(t, before.ChecksumsCompleted+1, after.ChecksumsCompleted)
			assert.Equal(t, before.Forwarded+1, after.Forwarded)
		})
	}
}

// TestIntegrationPartialChecksumEveryLength sweeps the segment length over
// more than two chunks of the program's checksum loop, so that every path
// through its tail (each power of two below the chunk, odd lengths) runs.
func TestIntegrationPartialChecksumEveryLength(t *testing.T) {
	pl := newPlan(t)
	be := pl.pick(client4, vip4, 5353, 53, frame.ProtoUDP)
	for n := 0; n <= 1100; n++ {
		in := ft.Build(ethTo(ourMAC), ft.IPv4{Src: client4, Dst: vip4},
			ft.UDP{SrcPort: 5353, DstPort: 53, Checksum: ft.ChecksumPartial}, payloadOf(n))
		v, out, err := pl.p.Run(in)
		require.NoError(t, err)
		require.Equal(t, TX, v, "payload %d", n)
		require.Equal(t, completed(t, in, be), out, "payload %d", n)
		require.True(t, checksumOK(t, out), "payload %d", n)
	}
	assert.EqualValues(t, 1101, pl.counters().ChecksumsCompleted)
}

// TestIntegrationFullChecksumsUnchanged: frames that are not partial keep
// their checksum field, whatever it holds: correct, wrong, or the IPv4 UDP
// "no checksum" 0. And a correct checksum that happens to equal the
// pseudo-header sum (one frame in 2^16) is taken for partial and rewritten,
// to the value it had: valid frames never change.
func TestIntegrationFullChecksumsUnchanged(t *testing.T) {
	pl := newPlan(t)
	pl.addUDP6()
	eth := ethTo(ourMAC)
	for _, tc := range []struct {
		name      string
		in        []byte
		completed bool
	}{
		{"IPv4 TCP full", ft.Build(eth, ft.IPv4{Src: client4, Dst: vip4}, ft.TCP{SrcPort: 1, DstPort: 80, Flags: frame.FlagSYN}, payloadOf(11)), false},
		{"IPv6 UDP full", ft.Build(eth, ft.IPv6{Src: client6, Dst: vip6}, ft.UDP{SrcPort: 1, DstPort: 53}, payloadOf(11)), false},
		{"IPv4 TCP bad", ft.Build(eth, ft.IPv4{Src: client4, Dst: vip4}, ft.TCP{SrcPort: 2, DstPort: 80, Flags: frame.FlagSYN, Checksum: ft.ChecksumBad}), false},
		{"IPv6 UDP bad", ft.Build(eth, ft.IPv6{Src: client6, Dst: vip6}, ft.UDP{SrcPort: 2, DstPort: 53, Checksum: ft.ChecksumBad}, payloadOf(3)), false},
		{"IPv4 UDP no checksum", ft.Build(eth, ft.IPv4{Src: client4, Dst: vip4}, ft.UDP{SrcPort: 3, DstPort: 53, Checksum: ft.ChecksumZero}, payloadOf(5)), false},
		{"IPv4 TCP valid and equal to the pattern", collision(t, eth, ft.IPv4{Src: client4, Dst: vip4}, ft.TCP{SrcPort: 4, DstPort: 80, Flags: frame.FlagACK}, 16), true},
		{"IPv6 UDP valid and equal to the pattern", collision(t, eth, ft.IPv6{Src: client6, Dst: vip6}, ft.UDP{SrcPort: 4, DstPort: 53}, 6), true},
		{"IPv4 UDP valid and equal to the pattern", collision(t, eth, ft.IPv4{Src: client4, Dst: vip4}, ft.UDP{SrcPort: 5, DstPort: 53}, 6), true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			sub := *pl
			sub.t = t
			before := sub.counters()
			v, out, err := pl.p.Run(tc.in)
			require.NoError(t, err)
			require.Equal(t, TX, v)
			assert.Equal(t, tc.in[12:], out[12:], "only the MACs change")
			completed := sub.counters().ChecksumsCompleted - before.ChecksumsCompleted
			if tc.completed {
				assert.EqualValues(t, 1, completed, "taken for partial")
			} else {
				assert.Zero(t, completed, "not taken for partial")
			}
		})
	}
}

// collision builds a frame with a correct checksum equal to its
// pseudo-header sum: a payload word is chosen to make it so. field is the
// checksum's offset in the transport header.
func collision(t *testing.T, eth ft.Ethernet, ip, l4 ft.Layer, field int) []byte {
	t.Helper()
	b := ft.Build(eth, ip, l4, ft.Raw(make([]byte, 9)))
	var p frame.Packet
	require.NoError(t, frame.Parse(b, &p))
	seg := b[p.L4Off:p.Len]
	pseudo := frame.PseudoHeaderSum(p.Src, p.Dst, p.Proto, len(seg))
	// With the field holding the pseudo-header sum P, the segment verifies
	// when P + sum(segment) is a ones' complement zero; the word at w
	// (zero so far) supplies the difference.
	w := (len(seg) - 4) &^ 1 // a word of the payload, at an even offset
	binary.BigEndian.PutUint16(seg[field:], uint16(pseudo))
	binary.BigEndian.PutUint16(seg[w:], frame.Checksum(seg, pseudo))
	require.True(t, isPartial(b), "the field equals the pseudo-header sum")
	require.True(t, frame.TransportChecksumOK(b, &p), "and the checksum is correct")
	return b
}

// TestIntegrationPartialChecksumTooLong: a partial segment longer than the
// program completes goes up as csum_partial before it touches the flow
// table; a full-checksum frame of the same length is forwarded. (The bound
// is lowered for the test: BPF_PROG_TEST_RUN gives the program at most a
// page, less than MaxChecksumLen.)
func TestIntegrationPartialChecksumTooLong(t *testing.T) {
	pl := newPlan(t)
	pl.p.mu.Lock()
	pl.p.settings.CsumMax = 1000
	require.NoError(t, pl.p.writeSettings())
	pl.p.mu.Unlock()

	in := func(n int, mode ft.ChecksumMode) []byte {
		return ft.Build(ethTo(ourMAC), ft.IPv4{Src: client4, Dst: vip4},
			ft.TCP{SrcPort: 40000, DstPort: 80, Flags: frame.FlagACK, Checksum: mode}, payloadOf(n))
	}
	pl.passed(in(1000-20+1, ft.ChecksumPartial), PassCSumPartial)
	_, ok := pl.flow(client4, vip4, 40000, 80, frame.ProtoTCP)
	assert.False(t, ok, "no flow entry for a frame passed up")

	be := pl.pick(client4, vip4, 40000, 80, frame.ProtoTCP)
	pl.forwarded(in(1000-20+1, ft.ChecksumFull), be)
	// At the bound: completed.
	full := in(1000-20, ft.ChecksumPartial)
	v, out, err := pl.p.Run(full)
	require.NoError(t, err)
	require.Equal(t, TX, v)
	assert.Equal(t, completed(t, full, be), out)
	assert.EqualValues(t, 1, pl.counters().Passed[PassCSumPartial])
}

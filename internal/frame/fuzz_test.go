package frame_test

import (
	"bytes"
	"encoding/binary"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dsrlb/dsrlb/internal/frame"
)

var writeCorpus = flag.Bool("write-corpus", false, "rewrite testdata/fuzz/FuzzParse from the golden frames")

func corpusFile(b []byte) []byte {
	return fmt.Appendf(nil, "go test fuzz v1\n[]byte(%+q)\n", b)
}

// TestFuzzParseCorpus keeps the committed seed corpus in step with the
// golden frames: one seed per frame kind. Run with -write-corpus to
// regenerate it after changing the builder or adding a kind.
func TestFuzzParseCorpus(t *testing.T) {
	dir := filepath.Join("testdata", "fuzz", "FuzzParse")
	for _, k := range frameKinds() {
		path := filepath.Join(dir, k.name)
		want := corpusFile(k.b)
		if *writeCorpus {
			require.NoError(t, os.MkdirAll(dir, 0o755))
			require.NoError(t, os.WriteFile(path, want, 0o644))
			continue
		}
		got, err := os.ReadFile(path)
		require.NoError(t, err, "missing seed; run go test -run TestFuzzParseCorpus -write-corpus")
		assert.Equal(t, string(want), string(got), k.name)
	}
}

func FuzzParse(f *testing.F) {
	for _, k := range frameKinds() {
		f.Add(k.b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		var p frame.Packet
		err := frame.Parse(b, &p)
		if err != nil {
			e, ok := err.(frame.Error)
			if !ok || e == 0 || int(e) >= frame.NumErrors {
				t.Fatalf("error %v (%T) is not a frame.Error reason", err, err)
			}
			return
		}
		checkPacket(t, b, &p)

		// Parsing is a pure function of the bytes, whatever p held before.
		q := frame.Packet{Len: 7, L4Off: 3, ICMPError: true, Inner: frame.Inner{HasPorts: true}}
		require.NoError(t, frame.Parse(b, &q))
		require.Equal(t, p, q)

		// Completing the checksum works wherever Parse found one.
		if start, off, ok := p.ChecksumOffsets(); ok {
			c := append([]byte(nil), b[:p.Len]...)
			old := binary.BigEndian.Uint16(c[start+off:])
			require.NoError(t, frame.CompleteChecksum(c, start, off))
			require.Equal(t, uint16(0), refChecksum(c[start:], uint32(old)))
		}

		// The checksum verifiers agree with the reference on whatever parsed.
		if p.Version == 4 {
			ihl := int(b[p.L3Off]&0x0f) << 2
			require.Equal(t, refChecksum(b[p.L3Off:p.L3Off+ihl], 0) == 0, frame.IPv4HeaderChecksumOK(b, &p))
		} else {
			require.False(t, frame.IPv4HeaderChecksumOK(b, &p))
		}
		_ = frame.TransportChecksumOK(b, &p)

		// Rewriting the MACs changes nothing else the parser sees.
		frame.SetMACs(b, [6]byte{1}, [6]byte{2})
		require.NoError(t, frame.Parse(b, &q))
		q.EthDst, q.EthSrc = p.EthDst, p.EthSrc
		require.Equal(t, p, q)
	})
}

// checkPacket asserts the invariants of a successfully parsed packet.
func checkPacket(t *testing.T, b []byte, p *frame.Packet) {
	t.Helper()
	fail := func(format string, args ...any) {
		t.Helper()
		t.Fatalf("%s: %+v", fmt.Sprintf(format, args...), *p)
	}
	if p.Len > len(b) || p.L3Off > p.Len || (p.L3Off != 14 && p.L3Off != 18) {
		fail("bad L3Off/Len for %d bytes", len(b))
	}
	if p.Tagged != (p.L3Off == 18) {
		fail("Tagged disagrees with L3Off")
	}
	switch p.Version {
	case 0:
		if p.Len != len(b) || p.L4Off != 0 || p.Src.IsValid() || p.Proto != 0 {
			fail("non-IP frame with IP fields")
		}
	case 4:
		if !p.Src.Is4() || !p.Dst.Is4() || p.Len < p.L3Off+20 || p.EtherType != frame.EtherTypeIPv4 {
			fail("bad IPv4")
		}
	case 6:
		if !p.Src.Is6() || !p.Dst.Is6() || p.Len < p.L3Off+40 || p.EtherType != frame.EtherTypeIPv6 {
			fail("bad IPv6")
		}
	default:
		fail("bad version")
	}
	if p.L4Off != 0 && (p.L4Off <= p.L3Off || p.L4Off > p.Len) {
		fail("L4Off out of range")
	}
	if p.Fragment == frame.LaterFragment && p.L4Off != 0 {
		fail("later fragment with transport header")
	}
	min := map[uint8]int{frame.ProtoTCP: 20, frame.ProtoUDP: 8, frame.ProtoICMP: 8, frame.ProtoICMPv6: 8}[p.Proto]
	if p.L4Off != 0 && (min == 0 || p.L4Off+min > p.Len) {
		fail("transport header does not fit")
	}
	if p.L4Off == 0 && (p.SrcPort != 0 || p.DstPort != 0 || p.TCPFlags != 0 || p.ICMPType != 0 || p.ICMPError) {
		fail("transport fields without transport header")
	}
	if p.Proto != frame.ProtoTCP && p.TCPFlags != 0 {
		fail("TCP flags on non-TCP")
	}
	if p.ICMPError != p.Inner.Src.IsValid() || (p.ICMPError && p.Inner.Src.Is4() != (p.Version == 4)) {
		fail("ICMPError disagrees with Inner")
	}
	if p.Inner.HasPorts && p.Inner.Proto != frame.ProtoTCP && p.Inner.Proto != frame.ProtoUDP {
		fail("inner ports on non-TCP/UDP")
	}
}

func FuzzCompleteChecksum(f *testing.F) {
	f.Add([]byte{0x45, 0, 0, 0x1c, 0xff, 0xff, 0, 0}, 0, 6)
	f.Add([]byte{0xff, 0xff, 0, 0}, 0, 2)
	f.Add(make([]byte, 1501), 34, 16)
	f.Add([]byte{1, 2, 3}, 1, 0)
	f.Add([]byte{}, 0, 0)
	f.Add([]byte{1, 2}, -1, 1)
	f.Fuzz(func(t *testing.T, b []byte, start, offset int) {
		orig := append([]byte(nil), b...)
		err := frame.CompleteChecksum(b, start, offset)
		if err != nil {
			require.Equal(t, frame.ErrBadChecksumPosition, err)
			require.True(t, bytes.Equal(orig, b), "failed call must not write")
			return
		}
		require.True(t, start >= 0 && offset >= 0 && offset%2 == 0 && start+offset+2 <= len(b))
		old := binary.BigEndian.Uint16(orig[start+offset:])
		require.Equal(t, uint16(0), refChecksum(b[start:], uint32(old)), "sum with the pseudo-header sum must verify")
		require.NotEqual(t, uint16(0), binary.BigEndian.Uint16(b[start+offset:]), "0 is sent as 0xffff")
		require.Equal(t, orig[:start+offset], b[:start+offset])
		require.Equal(t, orig[start+offset+2:], b[start+offset+2:])
	})
}

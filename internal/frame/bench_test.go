package frame_test

import (
	"testing"

	"github.com/dsrlb/dsrlb/internal/frame"
)

func benchParse(b *testing.B, name string) {
	f := kind(b, name)
	var p frame.Packet
	b.ReportAllocs()
	b.SetBytes(int64(len(f)))
	for b.Loop() {
		if err := frame.Parse(f, &p); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkParseTCP4(b *testing.B)           { benchParse(b, "tcp4") }
func BenchmarkParseTCP6(b *testing.B)           { benchParse(b, "tcp6") }
func BenchmarkParseICMP4Error(b *testing.B)     { benchParse(b, "icmp4_frag_needed") }
func BenchmarkParseICMP6Error(b *testing.B)     { benchParse(b, "icmp6_packet_too_big") }
func BenchmarkParseTCP6ExtHeaders(b *testing.B) { benchParse(b, "tcp6_ext") }

func BenchmarkSetMACs(b *testing.B) {
	f := kind(b, "tcp4")
	b.ReportAllocs()
	for b.Loop() {
		frame.SetMACs(f, macServer, macLB)
	}
}

func benchChecksum(b *testing.B, n int) {
	buf := make([]byte, n)
	for i := range buf {
		buf[i] = byte(i * 7)
	}
	b.ReportAllocs()
	b.SetBytes(int64(n))
	for b.Loop() {
		if err := frame.CompleteChecksum(buf, 0, 16); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkCompleteChecksum1500(b *testing.B)  { benchChecksum(b, 1500) }
func BenchmarkCompleteChecksum64000(b *testing.B) { benchChecksum(b, 64000) }

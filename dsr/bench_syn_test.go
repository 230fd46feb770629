package dsr

import (
	"testing"

	"github.com/dsrlb/dsrlb/internal/frame"
)

// BenchmarkProcessSYN is BenchmarkProcess with bare SYNs only, every one
// on a flow the table holds: the path of clients retransmitting their
// first packet (a SYN flood on known tuples looks the same). It shows what
// the SYN path costs beyond a plain hit; the flow's previous state comes
// with the lookup, so no SYN takes the flow table's shard lock.
func BenchmarkProcessSYN(b *testing.B) {
	h := newHarness(b, nil, web4(3))
	const flows = 10000
	for i := range flows {
		h.send(tcp4(uint16(i+1), frame.FlagSYN))
	}
	frames := make([]Frame, 64)
	inputs := make([][]byte, len(frames))
	for i := range frames {
		frames[i].Buf = make([]byte, 2048)
		inputs[i] = tcp4(uint16(1+(i*157)%flows), frame.FlagSYN)
	}
	out := make([]Frame, 0, len(frames))
	b.ReportAllocs()
	b.ResetTimer()
	for n := 0; n < b.N; n += len(frames) {
		for i := range frames {
			frames[i].N = copy(frames[i].Buf, inputs[i])
		}
		out = h.w.processBatch(frames, out[:0])
	}
	b.StopTimer()
	if len(out) != len(frames) {
		b.Fatalf("forwarded %d of %d", len(out), len(frames))
	}
}

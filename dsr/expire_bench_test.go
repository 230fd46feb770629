package dsr

import (
	"net/netip"
	"testing"

	"github.com/dsrlb/dsrlb/internal/frame"
	ft "github.com/dsrlb/dsrlb/internal/frame/frametest"
)

// BenchmarkExpireFlows measures one sweep as Run makes it every
// SweepInterval: ExpireFlows visiting a tenth of the flow table's slots,
// with a million live flows in a table of 1<<20 and none of them idle long
// enough to expire (the steady state of a busy balancer: the sweep reads
// every visited slot and removes nothing). ns/op is the time per sweep;
// "slots/sweep" the slots it visits.
func BenchmarkExpireFlows(b *testing.B) {
	h := newHarness(b, &Config{MaxFlows: 1 << 20}, web4(3))
	const flows = 1 << 20
	for i := range flows {
		src := netip.AddrFrom4([4]byte{198, 51, byte(i >> 12), byte(i >> 4)})
		h.send(ft.Build(ft.Ethernet{Dst: lbMAC, Src: clientMAC}, ft.IPv4{Src: src, Dst: vip4},
			ft.TCP{SrcPort: 1000 + uint16(i&15), DstPort: 80, Flags: frame.FlagSYN}))
	}
	live := h.b.Stats().Flows
	if live < flows*9/10 {
		b.Fatalf("only %d flows in the table", live)
	}
	slots := h.b.flows.Cap()/10 + 1 // as Run's sweep
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		if n := h.b.ExpireFlows(slots); n != 0 {
			b.Fatalf("a sweep expired %d flows: the benchmark measures live ones", n)
		}
	}
	b.StopTimer()
	b.ReportMetric(float64(slots), "slots/sweep")
	if got := h.b.Stats().Flows; got != live {
		b.Fatalf("flows went from %d to %d", live, got)
	}
}

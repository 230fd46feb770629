//go:build linux && (386 || amd64 || arm || arm64 || loong64 || mips64le || mipsle || ppc64le || riscv64)

package xdp

import (
	"encoding/binary"
	"fmt"
	"net/netip"
	"testing"
	"time"

	"github.com/cilium/ebpf"
	"github.com/stretchr/testify/require"

	"github.com/dsrlb/dsrlb/internal/flowtable"
	"github.com/dsrlb/dsrlb/internal/frame"
	ft "github.com/dsrlb/dsrlb/internal/frame/frametest"
)

// BenchmarkRun measures the program's cost per frame as issue 13 states
// it: BPF_PROG_TEST_RUN with repeat, the kernel's time for many runs
// divided by their number, on a flow-table hit and on a miss (a new flow:
// schedule and insert), with 10k and 1M live flows, and on a hit by a
// 1500-byte IPv4 packet whose TCP checksum is partial (hit-partial1500:
// the program completes it). xdp_dsr itself cannot be repeated on a
// forwarded frame (it rewrites the MACs, so a second run would see another
// frame), so it runs the same code through xdp_bench, which restores the
// frame after each run and steps to another flow: hits walk the live flows
// (stride 7919, so a large table is not all in the cache), misses count up
// through flows never seen. ns/frame is the kernel's time per run;
// hit-oneflow repeats one live flow: the cost with the caches warm.
// floor-lookup and floor-insert do only the flow table's part of hit and
// miss (xdp_flow_floor: a lookup, and an insert on a miss, of the same
// keys in the same order): what the kernel's LRU hash map alone costs;
// floor-lookup-oneflow looks up hit-oneflow's one flow.
// floor-ns/frame is the same measure of a program that only returns
// (xdp_pass): what the test run itself costs per repetition.
func BenchmarkRun(b *testing.B) {
	for _, live := range []int{10_000, 1_000_000} {
		for _, kind := range []string{"hit", "miss", "hit-partial1500", "hit-oneflow"} {
			b.Run(fmt.Sprintf("%s/flows=%s", kind, count(live)), func(b *testing.B) {
				benchRepeat(b, live, kind, kind != "miss", kind == "hit-partial1500")
			})
		}
		for _, kind := range []string{"floor-lookup", "floor-insert", "floor-lookup-oneflow"} {
			b.Run(fmt.Sprintf("%s/flows=%s", kind, count(live)), func(b *testing.B) {
				benchFlowFloor(b, live, kind == "floor-insert", kind == "floor-lookup-oneflow")
			})
		}
	}
}

// BenchmarkRunCold runs the program once per BPF_PROG_TEST_RUN call, each
// frame timed by the kernel around the program alone: every run starts
// with the caches as the system call left them. ns/frame is that time less
// the same measure of a program that does nothing (clock-ns/frame, the
// cost of reading the clock twice).
func BenchmarkRunCold(b *testing.B) {
	for _, live := range []int{10_000, 1_000_000} {
		for _, kind := range []string{"hit", "miss", "hit-partial1500"} {
			b.Run(fmt.Sprintf("%s/flows=%s", kind, count(live)), func(b *testing.B) {
				benchRun(b, live, kind != "miss", kind == "hit-partial1500")
			})
		}
	}
}

func count(n int) string {
	if n >= 1_000_000 {
		return fmt.Sprintf("%dM", n/1_000_000)
	}
	return fmt.Sprintf("%dk", n/1000)
}

// benchClient is the source address of live flow i.
func benchClient(i int) netip.Addr {
	return netip.AddrFrom4([4]byte{203, 0, 113, byte(i >> 16)})
}

// seedLive loads a program whose flow table holds live established flows,
// flow i from benchClient(i), source port uint16(i), to vip4:80, on the
// backends their hash picks.
func seedLive(b *testing.B, live int) *plan {
	pl := newPlanSized(b, &Config{MaxFlows: live + live/4 + 1<<16, MaxBackendSlots: 64, MaxServices: 8})
	// Seed the live flows straight into the map, established on the
	// backends their hash picks.
	keys := make([]xdpFlowKey, 0, 1<<16)
	vals := make([]xdpFlowEntry, 0, 1<<16)
	flush := func() {
		if len(keys) == 0 {
			return
		}
		_, err := pl.p.objs.Flows.BatchUpdate(keys, vals, &ebpf.BatchOptions{})
		require.NoError(b, err)
		keys, vals = keys[:0], vals[:0]
	}
	for i := range live {
		k := flowtable.MakeKey(benchClient(i), vip4, uint16(i), 80, frame.ProtoTCP)
		keys = append(keys, flowKeyOf(&k))
		vals = append(vals, xdpFlowEntry{Backend: pl.pick(benchClient(i), vip4, uint16(i), 80, frame.ProtoTCP).id,
			State: uint8(flowtable.Established)})
		if len(keys) == cap(keys) {
			flush()
		}
	}
	flush()
	return pl
}

func benchRun(b *testing.B, live int, hit, partial bool) {
	pl := seedLive(b, live)

	// Frames of live flows (hits) or of flows never seen (misses, each a
	// new client address and port, from a range no live flow uses).
	const nframes = 4096
	frames := make([][]byte, nframes)
	for i := range frames {
		switch {
		case partial:
			j := (i * 7919) % live
			frames[i] = ft.Build(ethTo(ourMAC), ft.IPv4{Src: benchClient(j), Dst: vip4},
				ft.TCP{SrcPort: uint16(j), DstPort: 80, Flags: frame.FlagACK, Window: 1024, Checksum: ft.ChecksumPartial},
				payloadOf(1500-40))
		case hit:
			j := (i * 7919) % live
			frames[i] = tcpFrame(benchClient(j), vip4, uint16(j), frame.FlagACK)
		default:
			frames[i] = tcpFrame(netip.AddrFrom4([4]byte{198, 51, 100, byte(i)}), vip4, 0, frame.FlagSYN)
		}
	}
	idle := tcpFrame(client4, vip4, 1, frame.FlagACK)[:14]

	var spent, clock time.Duration
	b.ResetTimer()
	for i := range b.N {
		f := frames[i%nframes]
		if !hit {
			// A new flow every time, for 2^24 frames: the source
			// address's last byte and the source port count up.
			f[14+15] = byte(i)
			binary.BigEndian.PutUint16(f[14+20:], uint16(i>>8))
		}
		v, d, err := pl.p.runTimed(pl.p.objs.XdpDsr, f)
		if err != nil || v != TX {
			b.Fatalf("frame %d: verdict %v, %v", i, v, err)
		}
		spent += d
		_, d, err = pl.p.runTimed(pl.p.objs.XdpHash, idle)
		if err != nil {
			b.Fatal(err)
		}
		clock += d
	}
	b.StopTimer()
	perFrame := float64(spent) / float64(b.N)
	perClock := float64(clock) / float64(b.N)
	b.ReportMetric(perFrame-perClock, "ns/frame")
	b.ReportMetric(perClock, "clock-ns/frame")
	c := pl.counters()
	if partial && c.ChecksumsCompleted != uint64(b.N) {
		b.Fatalf("%d checksums completed for %d partial frames", c.ChecksumsCompleted, b.N)
	}
	if hit && c.Services[0].Flows != 0 {
		b.Fatalf("%d new flows in a hit benchmark", c.Services[0].Flows)
	}
	if !hit && c.Services[0].Flows+c.Stateless < uint64(b.N) {
		b.Fatalf("%d new flows for %d misses", c.Services[0].Flows, b.N)
	}
}

//go:build linux && (386 || amd64 || arm || arm64 || loong64 || mips64le || mipsle || ppc64le || riscv64)

package xdp

import (
	"encoding/binary"
	"fmt"
	"net/netip"
	"runtime"
	"testing"
	"unsafe"

	"github.com/cilium/ebpf"
	"golang.org/x/sys/unix"

	"github.com/stretchr/testify/require"

	"github.com/dsrlb/dsrlb/internal/flowtable"
	"github.com/dsrlb/dsrlb/internal/frame"
	ft "github.com/dsrlb/dsrlb/internal/frame/frametest"
)

// The benchmark-only programs of bpf/bench.c, embedded in the test binary
// alone (xdpbench_bpfel_test.{go,o}); scripts/bpf-generate.sh checks them
// with the others.
//go:generate go run github.com/cilium/ebpf/cmd/bpf2go -tags linux -target bpfel -no-global-types -output-suffix _test -cflags "-O2 -g -Wall -Werror -mcpu=v3" xdpbench bpf/bench.c

// benchPrograms are bench.c's programs, loaded on a Program's maps.
type benchPrograms struct {
	XdpBench     *ebpf.Program `ebpf:"xdp_bench"`
	XdpFlowFloor *ebpf.Program `ebpf:"xdp_flow_floor"`
}

// loadBench loads bench.c's programs so that they use p's maps (the very
// maps xdp_dsr runs on), and closes them when the benchmark ends.
func loadBench(b testing.TB, p *Program) *benchPrograms {
	spec, err := loadXdpbench()
	require.NoError(b, err)
	m := &p.objs.xdpMaps
	maps := map[string]*ebpf.Map{
		"config": m.Config, "flows": m.Flows, "services": m.Services, "vips": m.Vips,
		"tables": m.Tables, "backends": m.Backends, "counters": m.Counters,
		"be_counters": m.BeCounters, "svc_counters": m.SvcCounters,
	}
	require.Len(b, spec.Maps, len(maps), "bench.c's maps are xdp.c's")
	for name, mp := range maps {
		ms, ok := spec.Maps[name]
		require.True(b, ok, "map %s", name)
		ms.MaxEntries = mp.MaxEntries()
	}
	var progs benchPrograms
	require.NoError(b, spec.LoadAndAssign(&progs, &ebpf.CollectionOptions{MapReplacements: maps}))
	b.Cleanup(func() {
		progs.XdpBench.Close()
		progs.XdpFlowFloor.Close()
	})
	return &progs
}

// benchMetaLen is the size of xdp_bench's state (struct bench_state), which
// it reads from the frame's metadata.
const benchMetaLen = 16

// benchRunsPerCall bounds the repetitions of one BPF_PROG_TEST_RUN call,
// so that a benchmark's time is spread over several calls.
const benchRunsPerCall = 1 << 14

// xdpMD is struct xdp_md, the context BPF_PROG_TEST_RUN takes for XDP: the
// metadata's length is Data, the input's length DataEnd.
type xdpMD struct {
	Data, DataEnd, DataMeta, IngressIfindex, RxQueueIndex, EgressIfindex uint32
}

// progRunAttr is the BPF_PROG_TEST_RUN part of union bpf_attr.
type progRunAttr struct {
	ProgFD, Retval, DataSizeIn, DataSizeOut uint32
	DataIn, DataOut                         uint64
	Repeat, Duration, CtxSizeIn, CtxSizeOut uint32
	CtxIn, CtxOut                           uint64
	Flags, CPU, BatchSize, _                uint32
}

// testRun runs prog repeat times on in (metadata of metaLen bytes, then
// the frame) and returns its last verdict and the kernel's mean time per
// run in nanoseconds. cilium/ebpf's Benchmark takes no context, and Run
// returns no time.
func testRun(prog *ebpf.Program, in []byte, metaLen, repeat uint32) (uint32, uint32, error) {
	return testRunOut(prog, in, metaLen, repeat, nil)
}

// testRunOut is testRun that also copies the metadata and frame as the
// last run left them into out (at least len(in) bytes), when out is not
// nil.
func testRunOut(prog *ebpf.Program, in []byte, metaLen, repeat uint32, out []byte) (uint32, uint32, error) {
	md := xdpMD{Data: metaLen, DataEnd: uint32(len(in))}
	attr := progRunAttr{
		ProgFD:     uint32(prog.FD()),
		DataSizeIn: uint32(len(in)),
		DataIn:     uint64(uintptr(unsafe.Pointer(&in[0]))),
		Repeat:     repeat,
	}
	if out != nil {
		attr.DataSizeOut = uint32(len(out))
		attr.DataOut = uint64(uintptr(unsafe.Pointer(&out[0])))
	}
	if metaLen > 0 {
		attr.CtxSizeIn = uint32(unsafe.Sizeof(md))
		attr.CtxIn = uint64(uintptr(unsafe.Pointer(&md)))
	}
	for {
		_, _, errno := unix.Syscall(unix.SYS_BPF, unix.BPF_PROG_TEST_RUN, uintptr(unsafe.Pointer(&attr)), unsafe.Sizeof(attr))
		runtime.KeepAlive(in)
		runtime.KeepAlive(out)
		runtime.KeepAlive(&md)
		switch errno {
		case 0:
			return attr.Retval, attr.Duration, nil
		case unix.EINTR:
			continue // interrupted before the end: run again
		default:
			return 0, 0, fmt.Errorf("BPF_PROG_TEST_RUN: %w", errno)
		}
	}
}

// benchFlowFrame is the frame of flow f of xdp_bench's numbering: from
// base's /24 with last byte f>>16, source port uint16(f), to vip4:80.
func benchFlowFrame(base [3]byte, f uint32, flags uint8, partial bool) []byte {
	src := netip.AddrFrom4([4]byte{base[0], base[1], base[2], byte(f >> 16)})
	if partial {
		return ft.Build(ethTo(ourMAC), ft.IPv4{Src: src, Dst: vip4},
			ft.TCP{SrcPort: uint16(f), DstPort: 80, Flags: flags, Window: 1024, Checksum: ft.ChecksumPartial},
			payloadOf(1500-40))
	}
	return tcpFrame(src, vip4, uint16(f), flags)
}

// benchFlows is where the flows of a benchmark start and how they step:
// hits walk the live flows, misses count up through flows never seen.
func benchFlows(live int, hit bool) (base [3]byte, step, modulus uint32) {
	if hit {
		return [3]byte{203, 0, 113}, 7919, uint32(live) // benchClient
	}
	// 198.51.100.0/24 holds no live flow.
	return [3]byte{198, 51, 100}, 1, 1 << 24
}

// putBenchState writes struct bench_state at the start of in.
func putBenchState(in []byte, first, step, modulus uint32, flag bool) {
	binary.NativeEndian.PutUint32(in[0:], first)
	binary.NativeEndian.PutUint32(in[4:], step)
	binary.NativeEndian.PutUint32(in[8:], modulus)
	binary.NativeEndian.PutUint32(in[12:], boolU32(flag))
}

// benchFlowFloor runs xdp_flow_floor on the flows benchRepeat's hits
// (insert false) or misses (insert true) walk, or on one live flow
// (oneflow).
func benchFlowFloor(b *testing.B, live int, insert, oneflow bool) {
	pl := seedLive(b, live)
	progs := loadBench(b, pl.p)
	base, step, modulus := benchFlows(live, !insert)
	if oneflow {
		step = 0
	}
	var first uint32
	in := make([]byte, benchMetaLen+int(unsafe.Sizeof(xdpFlowKey{})))
	var spent float64
	b.ResetTimer()
	for done := 0; done < b.N; {
		n := min(b.N-done, benchRunsPerCall)
		src := netip.AddrFrom4([4]byte{base[0], base[1], base[2], byte(first >> 16)})
		k := flowtable.MakeKey(src, vip4, uint16(first), 80, frame.ProtoTCP)
		xk := flowKeyOf(&k)
		copy(in[benchMetaLen:], unsafe.Slice((*byte)(unsafe.Pointer(&xk)), unsafe.Sizeof(xk)))
		putBenchState(in, first, step, modulus, insert)
		v, d, err := testRun(progs.XdpFlowFloor, in, benchMetaLen, uint32(n))
		if err != nil || Verdict(v) != TX {
			b.Fatalf("runs %d..%d: verdict %v, %v", done, done+n, Verdict(v), err)
		}
		spent += float64(d) * float64(n)
		first = uint32((uint64(first) + uint64(n)*uint64(step)) % uint64(modulus))
		done += n
	}
	b.StopTimer()
	b.ReportMetric(spent/float64(b.N), "ns/frame")
	// The walk found what it should: every hit's flow is there, and every
	// miss inserted one.
	want := live
	if insert {
		want = min(live+b.N, pl.p.cfg.maxFlows)
	}
	n := 0
	require.NoError(b, pl.p.Flows(func(flowtable.Key, Flow) bool { n++; return true }))
	if insert && n < want*9/10 || !insert && n != want {
		b.Fatalf("%d flows in the table after %d runs on %d live flows", n, b.N, live)
	}
}

func benchRepeat(b *testing.B, live int, kind string, hit, partial bool) {
	pl := seedLive(b, live)
	progs := loadBench(b, pl.p)
	base, step, modulus := benchFlows(live, hit)
	var first uint32
	flags := uint8(frame.FlagACK)
	if !hit {
		flags = frame.FlagSYN
	}
	if kind == "hit-oneflow" {
		step = 0 // the same flow every time: the cost with warm caches
	}
	in := make([]byte, benchMetaLen, 2048)
	floorIn := make([]byte, benchMetaLen+60)
	var spent, floor float64
	b.ResetTimer()
	for done := 0; done < b.N; {
		n := min(b.N-done, benchRunsPerCall)
		in = append(in[:benchMetaLen], benchFlowFrame(base, first, flags, partial)...)
		putBenchState(in, first, step, modulus, partial)
		v, d, err := testRun(progs.XdpBench, in, benchMetaLen, uint32(n))
		if err != nil || Verdict(v) != TX {
			b.Fatalf("runs %d..%d: verdict %v, %v", done, done+n, Verdict(v), err)
		}
		spent += float64(d) * float64(n)
		_, d, err = testRun(pl.p.objs.XdpPass, floorIn, benchMetaLen, uint32(n))
		if err != nil {
			b.Fatal(err)
		}
		floor += float64(d) * float64(n)
		first = uint32((uint64(first) + uint64(n)*uint64(step)) % uint64(modulus))
		done += n
	}
	b.StopTimer()
	b.ReportMetric(spent/float64(b.N), "ns/frame")
	b.ReportMetric(floor/float64(b.N), "floor-ns/frame")
	// Every run forwarded (an interrupted call runs again, so there may be
	// more runs than b.N), and hits created no flow.
	c := pl.counters()
	if c.Forwarded < uint64(b.N) || c.Received != c.Forwarded {
		b.Fatalf("%d frames forwarded of %d received, for %d runs", c.Forwarded, c.Received, b.N)
	}
	if partial && c.ChecksumsCompleted != c.Forwarded {
		b.Fatalf("%d checksums completed for %d partial frames", c.ChecksumsCompleted, c.Forwarded)
	}
	// A full checksum equals the pseudo-header sum for about one frame in
	// 2^16; the program then "completes" it, writing the value it had.
	if !partial && c.ChecksumsCompleted > c.Forwarded>>12 {
		b.Fatalf("%d checksums completed in a benchmark of %d full checksums", c.ChecksumsCompleted, c.Forwarded)
	}
	if hit && c.Services[0].Flows != 0 {
		b.Fatalf("%d new flows in a hit benchmark", c.Services[0].Flows)
	}
	// A call interrupted by a signal runs again from its first flow, so
	// some misses may repeat a flow that the interrupted call created.
	if !hit && c.Services[0].Flows+c.Stateless < uint64(b.N) {
		b.Fatalf("%d new flows for %d misses", c.Services[0].Flows+c.Stateless, b.N)
	}
}

func boolU32(v bool) uint32 {
	if v {
		return 1
	}
	return 0
}

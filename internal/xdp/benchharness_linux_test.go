//go:build linux && (386 || amd64 || arm || arm64 || loong64 || mips64le || mipsle || ppc64le || riscv64)

package xdp

import (
	"encoding/binary"
	"net/netip"
	"testing"
	"unsafe"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dsrlb/dsrlb/internal/flowtable"
	"github.com/dsrlb/dsrlb/internal/frame"
)

// TestIntegrationBenchHarness checks that BenchmarkRun measures what it
// says: every repetition of xdp_bench is a full decision of xdp_dsr's code
// on another flow (each new flow lands in the table on the backend the Go
// scheduler picks and is counted), the frame is restored between runs
// (checksum included, so partial frames stay partial), and
// xdp_flow_floor looks up and inserts the flows it is given.
func TestIntegrationBenchHarness(t *testing.T) {
	const runs = 5
	for _, tc := range []struct {
		name    string
		partial bool
	}{{"full checksum", false}, {"partial checksum", true}} {
		t.Run(tc.name, func(t *testing.T) {
			pl := newPlan(t)
			progs := loadBench(t, pl.p)
			base, step, modulus := benchFlows(0, false)
			// The runs cross from source address .3 to .4: both checksums
			// follow the address as well as the port.
			first := uint32(3<<16 | 0xfffd)
			in := make([]byte, benchMetaLen, 2048)
			in = append(in, benchFlowFrame(base, first, frame.FlagSYN, tc.partial)...)
			putBenchState(in, first, step, modulus, tc.partial)
			out := make([]byte, len(in)+256)
			v, _, err := testRunOut(progs.XdpBench, in, benchMetaLen, runs, out)
			require.NoError(t, err)
			require.Equal(t, TX, Verdict(v))

			// The frame left is the next flow's, as built from scratch.
			next := first + runs*step
			assert.Equal(t, next, binary.NativeEndian.Uint32(out[0:]), "flow number in the metadata")
			assert.Equal(t, benchFlowFrame(base, next, frame.FlagSYN, tc.partial), out[benchMetaLen:len(in)])

			c := pl.counters()
			assert.Equal(t, uint64(runs), c.Forwarded)
			assert.Equal(t, uint64(runs), c.Services[0].Flows)
			want := uint64(0)
			if tc.partial {
				want = runs
			}
			assert.Equal(t, want, c.ChecksumsCompleted)
			for i := range uint32(runs) {
				f := first + i*step
				src := netip.AddrFrom4([4]byte{base[0], base[1], base[2], byte(f >> 16)})
				got, ok := pl.flow(src, vip4, uint16(f), 80, frame.ProtoTCP)
				require.True(t, ok, "flow %d", f)
				assert.Equal(t, pl.pick(src, vip4, uint16(f), 80, frame.ProtoTCP).id, got.Backend, "flow %d", f)
			}
		})
	}

	t.Run("flow floor", func(t *testing.T) {
		pl := newPlan(t)
		progs := loadBench(t, pl.p)
		base, step, modulus := benchFlows(0, false)
		first := uint32(7 << 16)
		count := func() int {
			n := 0
			require.NoError(t, pl.p.Flows(func(flowtable.Key, Flow) bool { n++; return true }))
			return n
		}
		for _, insert := range []bool{false, true} {
			src := netip.AddrFrom4([4]byte{base[0], base[1], base[2], byte(first >> 16)})
			k := flowtable.MakeKey(src, vip4, uint16(first), 80, frame.ProtoTCP)
			xk := flowKeyOf(&k)
			in := make([]byte, benchMetaLen, benchMetaLen+int(unsafe.Sizeof(xk)))
			in = append(in, unsafe.Slice((*byte)(unsafe.Pointer(&xk)), unsafe.Sizeof(xk))...)
			putBenchState(in, first, step, modulus, insert)
			v, _, err := testRun(progs.XdpFlowFloor, in, benchMetaLen, runs)
			require.NoError(t, err)
			require.Equal(t, TX, Verdict(v))
			if insert {
				assert.Equal(t, runs, count(), "lookups and inserts of new flows")
			} else {
				assert.Zero(t, count(), "lookups alone")
			}
		}
	})
}

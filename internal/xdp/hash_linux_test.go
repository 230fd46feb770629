//go:build linux && (386 || amd64 || arm || arm64 || loong64 || mips64le || mipsle || ppc64le || riscv64)

package xdp

import (
	"encoding/binary"
	"math/rand/v2"
	"net/netip"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/dsrlb/dsrlb/internal/flowtable"
	"github.com/dsrlb/dsrlb/scheduler"
)

// hashRecord mirrors struct hash_record of bpf/xdp.c: a flow key (40
// bytes), the seed and the range n in, the hash and the slot out.
const (
	hashRecordSize = 72
	hashRecords    = 32 // NRECORDS
)

func putKey(b []byte, k *flowtable.Key) {
	copy(b[0:16], k.Src[:])
	copy(b[16:32], k.Dst[:])
	binary.LittleEndian.PutUint16(b[32:], k.SrcPort)
	binary.LittleEndian.PutUint16(b[34:], k.DstPort)
	b[36] = k.Proto
	b[37], b[38], b[39] = 0, 0, 0
}

// randomKey returns an IPv4-mapped or an IPv6 key with random ports and
// protocol.
func randomKey(r *rand.Rand) flowtable.Key {
	var src, dst netip.Addr
	if r.IntN(2) == 0 {
		var a, b [4]byte
		binary.LittleEndian.PutUint32(a[:], r.Uint32())
		binary.LittleEndian.PutUint32(b[:], r.Uint32())
		src, dst = netip.AddrFrom4(a), netip.AddrFrom4(b)
	} else {
		var a, b [16]byte
		binary.LittleEndian.PutUint64(a[:], r.Uint64())
		binary.LittleEndian.PutUint64(a[8:], r.Uint64())
		binary.LittleEndian.PutUint64(b[:], r.Uint64())
		binary.LittleEndian.PutUint64(b[8:], r.Uint64())
		src, dst = netip.AddrFrom16(a), netip.AddrFrom16(b)
	}
	return flowtable.MakeKey(src, dst, uint16(r.Uint32()), uint16(r.Uint32()), uint8(r.Uint32()))
}

// TestIntegrationHashParity runs 10^6 random keys through the program's
// flow hash and range reduction (the xdp_hash program, built from the same
// functions as xdp_dsr) and through the Go ones: flowtable.Key.Hashes and
// scheduler.Reduce must agree on every key.
func TestIntegrationHashParity(t *testing.T) {
	p := loadT(t, nil)
	const keys = 1_000_000
	// Table sizes: the Maglev ladder's ends, other primes, tiny ranges and
	// full 64-bit ones (which exercise every partial product).
	sizes := []uint64{1, 2, 3, 65537, 131101, 1048583, 16777259, 67108879, 4294967291, 1<<63 + 1}
	seed := rand.Uint64()
	t.Logf("seed %#x", seed)
	r := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))

	frame := make([]byte, hashRecords*hashRecordSize)
	var want [hashRecords]struct{ hash, slot uint64 }
	for done := 0; done < keys; done += hashRecords {
		for i := range hashRecords {
			rec := frame[i*hashRecordSize:]
			k := randomKey(r)
			s := r.Uint64()
			if r.IntN(8) == 0 {
				s = 0
			}
			n := sizes[r.IntN(len(sizes))]
			if r.IntN(4) == 0 {
				n = r.Uint64() | 1
			}
			putKey(rec, &k)
			binary.LittleEndian.PutUint64(rec[40:], s)
			binary.LittleEndian.PutUint64(rec[48:], n)
			h, _ := k.Hashes(s)
			want[i].hash, want[i].slot = h, scheduler.Reduce(h, n)
		}
		opts := runOpts(frame)
		ret, err := p.objs.XdpHash.Run(opts)
		require.NoError(t, err)
		require.EqualValues(t, Pass, ret)
		out := opts.DataOut
		require.Len(t, out, len(frame))
		for i := range hashRecords {
			rec := out[i*hashRecordSize:]
			gotHash := binary.LittleEndian.Uint64(rec[56:])
			gotSlot := binary.LittleEndian.Uint64(rec[64:])
			if gotHash != want[i].hash || gotSlot != want[i].slot {
				require.Failf(t, "hash mismatch", "record %d of batch at %d (key %x, seed %#x, n %d): BPF hash %#x slot %d, Go hash %#x slot %d",
					i, done, rec[:40], binary.LittleEndian.Uint64(rec[40:]), binary.LittleEndian.Uint64(rec[48:]),
					gotHash, gotSlot, want[i].hash, want[i].slot)
			}
		}
	}
}

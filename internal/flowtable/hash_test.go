package flowtable

import (
	"math"
	"math/bits"
	"testing"
	"unsafe"

	"github.com/stretchr/testify/assert"
)

// TestHashSpread checks that structured keys (sequential clients and ports,
// the common real pattern) spread evenly over shards and home slots.
func TestHashSpread(t *testing.T) {
	tab := newTable(t, Config{MaxFlows: 1 << 18})
	const n = 1 << 18
	shards := make([]int, len(tab.shards))
	homes := make([]int, tab.shards[0].n)
	for i := uint32(0); i < n; i++ {
		k := v4Key(i, protoTCP)
		h := tab.Hash(&k)
		si := int(h >> (64 - tab.shardBits))
		shards[si]++
		if si == 0 {
			homes[tab.shards[0].home(h)]++
		}
	}
	mean := float64(n) / float64(len(shards))
	sd := math.Sqrt(mean)
	for i, c := range shards {
		assert.InDelta(t, mean, float64(c), 6*sd, "shard %d", i)
	}
	// Chi-square of home slots in shard 0 against uniform: for k cells the
	// statistic has mean k-1 and standard deviation sqrt(2(k-1)).
	total := 0
	for _, c := range homes {
		total += c
	}
	e := float64(total) / float64(len(homes))
	chi := 0.0
	for _, c := range homes {
		chi += (float64(c) - e) * (float64(c) - e) / e
	}
	dof := float64(len(homes) - 1)
	assert.InDelta(t, dof, chi, 6*math.Sqrt(2*dof), "chi-square of home slots")
}

// TestHashAvalanche flips each input bit and checks that about half of the
// output bits change, so that nearby tuples land far apart.
func TestHashAvalanche(t *testing.T) {
	state := uint64(7)
	const samples = 200
	for bit := 0; bit < 37*8; bit++ {
		flips := 0
		for s := 0; s < samples; s++ {
			k := randKey(&state)
			k.Proto = uint8(state)
			h0 := k.Hash(testSeed)
			flipBit(&k, bit)
			flips += bits.OnesCount64(h0 ^ k.Hash(testSeed))
		}
		avg := float64(flips) / samples
		assert.InDelta(t, 32, avg, 3, "input bit %d", bit)
	}
}

func flipBit(k *Key, bit int) {
	switch byteIdx := bit / 8; {
	case byteIdx < 16:
		k.Src[byteIdx] ^= 1 << (bit % 8)
	case byteIdx < 32:
		k.Dst[byteIdx-16] ^= 1 << (bit % 8)
	case byteIdx < 34:
		k.SrcPort ^= 1 << (bit - 256)
	case byteIdx < 36:
		k.DstPort ^= 1 << (bit - 272)
	default:
		k.Proto ^= 1 << (bit - 288)
	}
}

func TestHashSeeded(t *testing.T) {
	k := v4Key(1, protoTCP)
	assert.NotEqual(t, k.Hash(1), k.Hash(2))
	assert.Equal(t, k.Hash(1), k.Hash(1))
	// No collisions among many structured keys.
	seen := make(map[uint64]struct{}, 1<<18)
	for i := uint32(0); i < 1<<18; i++ {
		k := v4Key(i, protoUDP)
		seen[k.Hash(testSeed)] = struct{}{}
	}
	assert.Len(t, seen, 1<<18)
}

func TestShardSize(t *testing.T) {
	// One shard per pair of cache lines: a writer on one shard never
	// invalidates the line another shard's lookups read.
	assert.Equal(t, uintptr(128), unsafe.Sizeof(shard{}))
}

package scheduler

import (
	"math/rand/v2"
	"net/netip"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestFastModExact(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 1))
	divisors := []uint32{1, 2, 3, 7, 1000, 65536, 65537, 1<<31 - 1, 1 << 31, 1<<32 - 1}
	for range 200 {
		divisors = append(divisors, r.Uint32()|1, r.Uint32N(5000)+1)
	}
	for _, n := range divisors {
		m := fastModM(n)
		for _, a := range []uint32{0, 1, n - 1, n, n + 1, 1<<32 - 1, r.Uint32(), r.Uint32()} {
			require.Equal(t, a%n, fastMod(a, m, n), "%d %% %d", a, n)
		}
	}
}

func TestReduceRange(t *testing.T) {
	for _, n := range []uint64{1, 2, 7, 65537, 1 << 40} {
		for _, h := range []uint64{0, 1, 1<<63 - 1, 1 << 63, 1<<64 - 1} {
			assert.Less(t, reduce(h, n), n)
		}
	}
}

func TestIsPrime(t *testing.T) {
	primes := map[uint64]bool{2: true, 3: true, 5: true, 7: true, 65537: true, 131101: true, 4093: true}
	for n := uint64(0); n < 100; n++ {
		want := n >= 2
		for d := uint64(2); d*d <= n; d++ {
			if n%d == 0 {
				want = false
			}
		}
		assert.Equal(t, want, isPrime(n), "%d", n)
	}
	for p := range primes {
		assert.True(t, isPrime(p), "%d", p)
	}
	assert.False(t, isPrime(65535))
	assert.False(t, isPrime(4096))
}

func TestHashAddr(t *testing.T) {
	a := netip.MustParseAddr("192.0.2.1")
	b := netip.MustParseAddr("192.0.2.2")
	assert.Equal(t, hashAddr(a, 1), hashAddr(a, 1), "deterministic")
	assert.NotEqual(t, hashAddr(a, 1), hashAddr(b, 1))
	assert.NotEqual(t, hashAddr(a, 1), hashAddr(a, 2), "seeded")
	assert.Equal(t, hashAddr(a, 1), hashAddr(a.WithZone("eth0"), 1), "zone ignored")
}

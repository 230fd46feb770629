package scheduler

import (
	"encoding/binary"
	"math/bits"
	"net/netip"
)

// Hashing helpers shared by the hashing schedulers. Everything here is a
// pure function of its inputs, so two balancers configured alike place
// backends identically.

const (
	golden = 0x9e3779b97f4a7c15 // 2^64 / phi, an odd constant that spreads keys
	mixK1  = 0xff51afd7ed558ccd
	mixK2  = 0xc4ceb9fe1a85ec53
)

// mix64 is a bijective finaliser with full avalanche: every input bit
// affects every output bit with probability close to one half. It turns
// structured keys (addresses, bucket numbers) into uniform 64-bit values.
func mix64(x uint64) uint64 {
	x ^= x >> 33
	x *= mixK1
	x ^= x >> 33
	x *= mixK2
	x ^= x >> 33
	return x
}

// hashAddr hashes an address with seed. IPv4 addresses hash as their
// IPv4-mapped IPv6 form, so callers must unmap consistently (the balancer
// does). The zone is ignored: it does not identify a host on the wire.
func hashAddr(a netip.Addr, seed uint64) uint64 {
	b := a.As16()
	hi := binary.BigEndian.Uint64(b[:8])
	lo := binary.BigEndian.Uint64(b[8:])
	h := mix64(seed ^ golden ^ hi)
	return mix64(h ^ lo*golden)
}

// mum is the folded 128-bit product of a and b, a fast mixing step (one
// multiplication) whose high output bits depend on every input bit.
func mum(a, b uint64) uint64 {
	hi, lo := bits.Mul64(a, b)
	return hi ^ lo
}

// sourceKey hashes a flow's source address, and port when withPort, on the
// hot path of sh, keyed by k1 and k2 (derived from the seed by
// sourceKeys). It trades hashAddr's full avalanche for speed (one 128-bit
// multiplication): its output feeds only reduce, which reads the high bits,
// and those depend on every input bit. The address bytes come from
// AppendBinary into a stack buffer, which measures several times faster
// than As16 (whose 16-byte result is copied through memory). An
// IPv4-mapped address hashes unlike its IPv4 form; the balancer unmaps flow
// addresses.
func sourceKey(a netip.Addr, port uint16, withPort bool, k1, k2 uint64) uint64 {
	// AppendBinary appends an IPv6 zone after the 16 address bytes; the
	// buffer leaves room for any interface name (at most 15 bytes on
	// Linux), and the zone is not hashed.
	var buf [32]byte
	b, _ := a.AppendBinary(buf[:0])
	var hi, lo uint64
	switch {
	case len(b) == 4:
		lo = uint64(binary.BigEndian.Uint32(b))
	case len(b) >= 16:
		hi = binary.LittleEndian.Uint64(b[:8])
		lo = binary.LittleEndian.Uint64(b[8:16])
	}
	if withPort {
		lo ^= uint64(port) << 40
	}
	return mum(hi^k1, lo^k2)
}

// sourceKeys derives sourceKey's keys from a seed.
func sourceKeys(seed uint64) (k1, k2 uint64) {
	return mix64(seed ^ golden), mix64(seed^mixK1) | 1
}

// reduce maps a uniform 64-bit hash onto [0, n) with one multiplication
// (Lemire's multiply-shift range reduction) instead of a division. It uses
// the high bits of h, which a good mixer makes uniform.
func reduce(h uint64, n uint64) uint64 {
	hi, _ := bits.Mul64(h, n)
	return hi
}

// fastMod computes a % n for 32-bit a using a precomputed reciprocal
// m = fastModM(n); it is exact for every a and n in [1, 2^32). Round-robin
// counters need a true modulo (a range reduction would not cycle), and this
// avoids a hardware division on the hot path.
func fastMod(a uint32, m uint64, n uint32) uint32 {
	low := m * uint64(a)
	hi, _ := bits.Mul64(low, uint64(n))
	return uint32(hi)
}

// fastModM returns the reciprocal used by fastMod for divisor n (n > 0).
func fastModM(n uint32) uint64 {
	return ^uint64(0)/uint64(n) + 1
}

// isPrime reports whether n is prime, by trial division. It runs only when
// a configuration is validated, on values below 2^32.
func isPrime(n uint64) bool {
	if n < 2 {
		return false
	}
	if n%2 == 0 {
		return n == 2
	}
	for d := uint64(3); d*d <= n; d += 2 {
		if n%d == 0 {
			return false
		}
	}
	return true
}

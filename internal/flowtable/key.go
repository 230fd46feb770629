package flowtable

import (
	"encoding/binary"
	"math/bits"
	"net/netip"
)

// Key is a flow's 5-tuple in compact, comparable form. IPv4 addresses are
// stored IPv4-mapped (::ffff:a.b.c.d) so that one fixed-size layout serves
// both families and keys can be hashed and compared as plain words.
type Key struct {
	Src, Dst         [16]byte
	SrcPort, DstPort uint16
	Proto            uint8
}

// MakeKey builds the Key of a flow. It does not allocate. Zones are dropped:
// a flow is identified by addresses on the wire, which carry none. An
// invalid (zero) netip.Addr becomes the all-zero address.
func MakeKey(src, dst netip.Addr, srcPort, dstPort uint16, proto uint8) Key {
	return Key{
		Src:     src.As16(),
		Dst:     dst.As16(),
		SrcPort: srcPort,
		DstPort: dstPort,
		Proto:   proto,
	}
}

// SrcAddr returns the source address, unmapped (an IPv4 flow gives a 4-byte
// address), for logs and the control plane.
func (k *Key) SrcAddr() netip.Addr { return netip.AddrFrom16(k.Src).Unmap() }

// DstAddr returns the destination address, unmapped.
func (k *Key) DstAddr() netip.Addr { return netip.AddrFrom16(k.Dst).Unmap() }

// Constants of the hash mixer: odd 64-bit values with well-spread bits.
const (
	hashK0 = 0xa0761d6478bd642f
	hashK1 = 0xe7037ed1a0b428db
	hashK2 = 0x8ebc6af09c88c6e3
	hashK3 = 0x589965cc75374cc3
	hashK4 = 0x1d8e4e27c47d124f
)

// mix multiplies a and b to 128 bits and folds the halves together: every
// input bit influences the result, at the cost of one multiplication.
func mix(a, b uint64) uint64 {
	hi, lo := bits.Mul64(a, b)
	return hi ^ lo
}

// Hash returns a well-mixed 64-bit hash of k. The seed enters both sides of
// every multiplication, so without knowing it a sender cannot craft tuples
// that collide (a zero multiplicand would otherwise erase its partner). It
// is a handful of multiplications and does not allocate.
//
// Hash the key with the table's seed (Table.Hash) before calling the
// table's methods; the balancer computes it once per packet and also hands
// it to schedulers.
func (k *Key) Hash(seed uint64) uint64 {
	h, _ := k.Hashes(seed)
	return h
}

// Hashes returns Hash and, from the same pass, a hash of the source
// address alone (the first half of the mixing), which source-hashing
// schedulers place a flow by.
func (k *Key) Hashes(seed uint64) (flow, src uint64) {
	s0 := binary.LittleEndian.Uint64(k.Src[0:8])
	s1 := binary.LittleEndian.Uint64(k.Src[8:16])
	d0 := binary.LittleEndian.Uint64(k.Dst[0:8])
	d1 := binary.LittleEndian.Uint64(k.Dst[8:16])
	pp := uint64(k.SrcPort) | uint64(k.DstPort)<<16 | uint64(k.Proto)<<32
	a := mix(s0^seed^hashK0, s1^seed^hashK1)
	b := mix(d0^seed^hashK2, d1^seed^hashK3)
	return mix(a^pp^hashK4, b^seed^hashK0), a
}

// keyWords is a Key laid out as the table stores it, computed once per
// operation so that probing compares words, not bytes.
type keyWords struct {
	s0, s1, d0, d1 uint64
	meta           uint64 // ports, proto and the live bit; see table.go
	tag            uint64 // tagOf the hash, set by Insert
}

func (k *Key) words() keyWords {
	return keyWords{
		s0:   binary.LittleEndian.Uint64(k.Src[0:8]),
		s1:   binary.LittleEndian.Uint64(k.Src[8:16]),
		d0:   binary.LittleEndian.Uint64(k.Dst[0:8]),
		d1:   binary.LittleEndian.Uint64(k.Dst[8:16]),
		meta: uint64(k.SrcPort) | uint64(k.DstPort)<<16 | uint64(k.Proto)<<32 | metaLive,
	}
}

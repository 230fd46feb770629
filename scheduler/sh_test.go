package scheduler

import (
	"net/netip"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestSourceHash(t *testing.T) {
	bs := testBackends(50, 1)
	client := netip.MustParseAddr("203.0.113.9")
	t.Run("address only", func(t *testing.T) {
		s, err := New("sh", bs, Config{})
		require.NoError(t, err)
		first, ok := s.Pick(&Flow{Src: client, SrcPort: 1, Hash: 1})
		require.True(t, ok)
		for port := range uint16(200) {
			i, _ := s.Pick(&Flow{Src: client, SrcPort: port, Hash: uint64(port) * 7919})
			require.Equal(t, first, i, "every flow of a client goes to one backend")
		}
	})
	t.Run("with ports", func(t *testing.T) {
		s, err := New("sh", bs, Config{HashPorts: true})
		require.NoError(t, err)
		seen := map[int]bool{}
		for port := range uint16(200) {
			i, _ := s.Pick(&Flow{Src: client, SrcPort: port})
			seen[i] = true
			again, _ := s.Pick(&Flow{Src: client, SrcPort: port, Hash: 99})
			require.Equal(t, i, again, "the flow hash plays no part")
		}
		assert.Greater(t, len(seen), 25, "ports spread one client's flows")
	})
	t.Run("seed", func(t *testing.T) {
		a, err := New("sh", bs, Config{Seed: 1})
		require.NoError(t, err)
		b, err := New("sh", bs, Config{Seed: 2})
		require.NoError(t, err)
		differ := 0
		for k := range 100 {
			f := &Flow{Src: netip.AddrFrom4([4]byte{198, 51, 100, byte(k)})}
			ia, _ := a.Pick(f)
			ib, _ := b.Pick(f)
			if ia != ib {
				differ++
			}
		}
		assert.Greater(t, differ, 50)
	})
}

// TestSourceHashSpreadsSequentialClients checks the fast source hash on
// the worst realistic input: consecutive client addresses.
func TestSourceHashSpreadsSequentialClients(t *testing.T) {
	for _, ports := range []bool{false, true} {
		bs := testBackends(8, 1)
		s, err := New("sh", bs, Config{HashPorts: ports})
		require.NoError(t, err)
		c := make([]float64, len(bs))
		const clients = 4096
		for k := range clients {
			f := &Flow{Src: netip.AddrFrom4([4]byte{198, 51, byte(k >> 8), byte(k)}), SrcPort: 40000}
			if ports {
				f.Src = netip.AddrFrom4([4]byte{198, 51, 100, 7})
				f.SrcPort = uint16(k)
			}
			i, _ := s.Pick(f)
			c[i]++
		}
		for i := range c {
			// 512 expected; binomial sd about 21: five of them.
			assert.InDelta(t, clients/8, c[i], 110, "ports=%v backend %d", ports, i)
		}
	}
}

func TestSourceKeyZonesAndAllocs(t *testing.T) {
	k1, k2 := sourceKeys(1)
	plain := netip.MustParseAddr("fe80::1")
	zoned := netip.MustParseAddr("fe80::1%a-very-long-zone-name-that-overflows")
	assert.Equal(t, sourceKey(plain, 0, false, k1, k2), sourceKey(zoned, 0, false, k1, k2), "zone ignored")
	assert.Equal(t, sourceKey(plain, 0, false, k1, k2), sourceKey(plain.WithZone("eth0"), 0, false, k1, k2))
	assert.NotEqual(t, sourceKey(plain, 0, true, k1, k2), sourceKey(plain, 1, true, k1, k2), "port hashed")
	var zero netip.Addr
	_ = sourceKey(zero, 0, true, k1, k2) // no panic
	for _, a := range []netip.Addr{plain, plain.WithZone("eth0"), netip.MustParseAddr("192.0.2.1")} {
		allocs := testing.AllocsPerRun(100, func() { _ = sourceKey(a, 1, true, k1, k2) })
		assert.Zero(t, allocs, "%v", a)
	}
}

// TestSourceHashPrecomputed checks sh on flows that carry the balancer's
// source hash: the address bytes are then not read, one SrcHash keeps a
// client on one backend, ports spread it only with HashPorts, and sources
// with distinct hashes spread evenly.
func TestSourceHashPrecomputed(t *testing.T) {
	bs := testBackends(8, 1)
	s, err := New("sh", bs, Config{})
	require.NoError(t, err)
	client := netip.MustParseAddr("203.0.113.9")
	first, ok := s.Pick(&Flow{Src: client, SrcHash: 0xdeadbeefcafe, SrcPort: 1})
	require.True(t, ok)
	for port := range uint16(200) {
		// A different Src with the same SrcHash proves the hash, not the
		// address, is what places the flow.
		i, _ := s.Pick(&Flow{Src: netip.MustParseAddr("2001:db8::7"), SrcHash: 0xdeadbeefcafe, SrcPort: port, Hash: uint64(port)})
		require.Equal(t, first, i)
	}

	sp, err := New("sh", bs, Config{HashPorts: true})
	require.NoError(t, err)
	seen := map[int]bool{}
	for port := range uint16(200) {
		i, _ := sp.Pick(&Flow{SrcHash: 0xdeadbeefcafe, SrcPort: port})
		seen[i] = true
	}
	assert.Len(t, seen, len(bs), "ports spread one client's flows")

	// Well-mixed source hashes (as the balancer computes) spread evenly.
	c := make([]float64, len(bs))
	const clients = 4096
	for k := range uint64(clients) {
		i, _ := s.Pick(&Flow{SrcHash: mix64(k) | 1})
		c[i]++
	}
	for i := range c {
		assert.InDelta(t, clients/8, c[i], 110, "backend %d", i)
	}
}
